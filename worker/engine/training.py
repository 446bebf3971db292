"""`autotag train`: corpus (+ archive) -> cross-validated thresholds -> fitted models -> versioned bundle.

Thresholds are chosen on out-of-fold scores (5-fold, fixed seed), never on the articles a
model was fitted on (thresholds.py says how). Given an archive export, its editors' decisions
join the corpus as partial labels (reviewed.py), cross-validation runs for the corpus alone and
for corpus + archive over the same folds (crossval.py), and the manifest keeps both sets of
figures side by side (comparison.py); the bundle written is the one trained with the archive.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .artifacts import save_bundle
from .comparison import region_comparison, topic_comparison
from .corpus import Corpus, load_corpus
from .crossval import CORPUS_ONLY, SEED, WITH_ARCHIVE, salience_out_of_fold, topic_out_of_fold
from ..errors import TrainingError
from .gazetteer import CountryMatcher, build_alias_table
from .regions import FEATURES, SalienceClassifier
from .reviewed import ReviewedArchive
from .text import clean_article
from .thresholds import choose_region_thresholds, choose_thresholds
from .topics import TopicClassifier
from .trainset import RegionRows, TopicRows, region_rows, topic_rows

log = logging.getLogger(__name__)

_MIN_POSITIVES = 5


@dataclass(frozen=True)
class TrainingOptions:
    folds: int = 5
    topic_C: float = 8.0
    salience_iterations: int = 120


def train(corpus: Corpus | str | Path, out_dir: str | Path, options: TrainingOptions = TrainingOptions(),
          archive: ReviewedArchive | None = None) -> dict:
    """Train every model on the corpus (and the archive's decisions) and write the bundle;
    returns what training put in the manifest."""
    if not isinstance(corpus, Corpus):
        corpus = load_corpus(corpus)
    labels = corpus.labels
    _check_trainable(corpus, labels, options.folds)
    reviewed = archive.articles if archive is not None else []
    if archive is not None and not reviewed:
        raise TrainingError("the archive holds no editor decision on the corpus' topics or on countries; nothing to learn from it")
    cleaned = [clean_article(a.title, a.body) for a in corpus.articles]
    reviewed_clean = [clean_article(a.title, a.body) for a in reviewed]

    rows = topic_rows(corpus, cleaned, reviewed, reviewed_clean, labels)
    log.info("topics: %d-fold cross-validation over %d articles (%d from the archive), labels %s",
             options.folds, len(rows.texts), int(rows.in_archive.sum()), labels)
    topic_scores = topic_out_of_fold(rows, labels, options.folds, options.topic_C)
    topic_thresholds = {regime: _topic_thresholds(scores, rows, labels, regime) for regime, scores in topic_scores.items()}
    topic_model = TopicClassifier(C=options.topic_C).fit(rows.texts, rows.Y, labels, known=rows.known)

    alias_table = build_alias_table()
    regions = region_rows(corpus, cleaned, reviewed, reviewed_clean, CountryMatcher(alias_table))
    if regions is None:
        raise TrainingError("no article in the corpus carries region labels; add `regions` lists")
    log.info("regions: %d candidate rows from %d articles (%d labeled regions never mentioned)",
             len(regions.X), len(set(regions.groups.tolist())), sum(regions.missed.values()))
    region_scores = salience_out_of_fold(regions, options.folds, options.salience_iterations)
    region_thresholds = {regime: _region_thresholds(scores, regions, regime) for regime, scores in region_scores.items()}
    learn = regions.weights > 0
    salience_model = SalienceClassifier(max_iter=options.salience_iterations, random_state=SEED).fit(regions.X[learn], regions.y[learn])

    if archive is not None:
        # an archive with no decision on any topic (or on any country) trains nothing there:
        # that part's "with archive" column is the corpus alone's
        for computed in (topic_scores, topic_thresholds, region_scores, region_thresholds):
            computed.setdefault(WITH_ARCHIVE, computed[CORPUS_ONLY])
    shipped = WITH_ARCHIVE if archive is not None else CORPUS_ONLY
    topics_shipped, regions_shipped = topic_thresholds[shipped], region_thresholds[shipped]
    manifest = {
        "corpus": {"digest": corpus.digest, "articles": len(corpus.articles), "files": [Path(p).name for p in corpus.paths]},
        "labels": labels,
        "thresholds": {"topics": {label: _cut(t) for label, t in topics_shipped.items()}, "regions": _cut(regions_shipped)},
        "metrics": {"cross_validated": {"topics": {label: t["metrics"] for label, t in topics_shipped.items()}, "regions": regions_shipped["metrics"]},
                    "folds": options.folds},
        "salience_features": list(FEATURES),
        "seed": SEED,
    }
    if archive is not None:
        manifest["archive"] = archive.provenance()
        manifest["metrics"]["comparison"] = {
            "topics": topic_comparison(topic_scores, rows, labels, topic_thresholds),
            "regions": region_comparison(region_scores, regions, region_thresholds),
        }
    save_bundle(
        out_dir,
        objects={"topics.joblib": topic_model, "salience.joblib": salience_model},
        json_files={"aliases.json": alias_table},
        manifest=manifest,
    )
    return manifest


def _topic_thresholds(scores: np.ndarray, rows: TopicRows, labels: list[str], regime: str) -> dict:
    """Per label {"accept", "review", "metrics"}, from the rows that regime's models learn from
    and whose label is known (the corpus alone: corpus rows only)."""
    learned_from = ~rows.in_archive if regime == CORPUS_ONLY else np.ones(len(rows.texts), dtype=bool)
    chosen = {}
    for j, label in enumerate(labels):
        rows_used = learned_from & rows.known_in(j)
        accept, review, metrics = choose_thresholds(scores[rows_used, j], rows.Y[rows_used, j])
        chosen[label] = {"accept": accept, "review": review, "metrics": metrics}
    return chosen


def _region_thresholds(scores: np.ndarray, rows: RegionRows, regime: str) -> dict:
    part = ~rows.in_archive if regime == CORPUS_ONLY else np.ones(len(scores), dtype=bool)
    missed = rows.missed["corpus"] + (rows.missed["archive"] if regime == WITH_ARCHIVE else 0)
    accept, review, metrics = choose_region_thresholds(scores[part], rows.y[part], rows.weights[part], rows.groups[part], missed)
    return {"accept": accept, "review": review, "metrics": metrics}


def _cut(chosen: dict) -> dict:
    return {"accept": chosen["accept"], "review": chosen["review"]}


def _check_trainable(corpus: Corpus, labels: list[str], folds: int) -> None:
    if len(corpus.articles) < 2 * folds:
        raise TrainingError(f"corpus has {len(corpus.articles)} articles; need at least {2 * folds} for {folds}-fold thresholds")
    if not labels:
        raise TrainingError("no article carries a topic; the corpus needs labeled positives")
    for label in labels:
        positives = sum(label in a.topics for a in corpus.articles)
        negatives = len(corpus.articles) - positives
        if positives < _MIN_POSITIVES or negatives < _MIN_POSITIVES:
            raise TrainingError(f"label {label!r} has {positives} positives and {negatives} negatives; need {_MIN_POSITIVES} of each")
