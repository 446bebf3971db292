"""`autotag train`: corpus -> cross-validated thresholds -> fitted models -> versioned bundle.

Thresholds are chosen on out-of-fold scores (5-fold, fixed seed), never on the articles a
model was fitted on (thresholds.py says how).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sklearn.model_selection import GroupKFold, KFold

from .artifacts import save_bundle
from .corpus import Corpus, load_corpus
from ..errors import TrainingError
from .gazetteer import CountryMatcher, build_alias_table
from .regions import FEATURES, SalienceClassifier, find_candidates
from .text import CleanArticle, clean_article
from .thresholds import choose_region_thresholds, choose_thresholds
from .topics import TopicClassifier

log = logging.getLogger(__name__)

SEED = 20261122
_MIN_POSITIVES = 5


@dataclass(frozen=True)
class TrainingOptions:
    folds: int = 5
    topic_C: float = 8.0
    salience_iterations: int = 80


def train(corpus_path: str | Path, out_dir: str | Path, options: TrainingOptions = TrainingOptions()) -> dict:
    """Train every model on the corpus and write the bundle; returns what training put in the manifest."""
    corpus = load_corpus(corpus_path)
    labels = corpus.labels
    _check_trainable(corpus, labels, options.folds)
    cleaned = [clean_article(a.title, a.body) for a in corpus.articles]
    texts = [c.text for c in cleaned]
    Y = np.array([[label in a.topics for label in labels] for a in corpus.articles], dtype=np.int8)

    log.info("topics: %d-fold cross-validation over %d articles, labels %s", options.folds, len(texts), labels)
    topic_oof = _topic_out_of_fold(texts, Y, labels, options)
    topic_thresholds, topic_metrics = {}, {}
    for j, label in enumerate(labels):
        accept, review, metrics = choose_thresholds(topic_oof[:, j], Y[:, j])
        topic_thresholds[label] = {"accept": accept, "review": review}
        topic_metrics[label] = metrics
    topic_model = TopicClassifier(C=options.topic_C).fit(texts, Y, labels)

    alias_table = build_alias_table()
    matcher = CountryMatcher(alias_table)
    region_rows = salience_rows(corpus, cleaned, matcher)
    if region_rows is None:
        raise TrainingError("no article in the corpus carries region labels; add `regions` lists")
    X, y, groups, weights, missed = region_rows
    log.info("regions: %d candidate rows from %d articles (%d labeled regions never mentioned)", len(X), len(set(groups)), missed)
    region_oof = _salience_out_of_fold(X, y, groups, weights, options)
    region_accept, region_review, region_metrics = choose_region_thresholds(region_oof, y, weights, groups, missed)
    salience_model = SalienceClassifier(max_iter=options.salience_iterations, random_state=SEED)
    salience_model.fit(X[weights > 0], y[weights > 0])

    manifest = {
        "corpus": {"digest": corpus.digest, "articles": len(corpus.articles), "files": [Path(p).name for p in corpus.paths]},
        "labels": labels,
        "thresholds": {"topics": topic_thresholds, "regions": {"accept": region_accept, "review": region_review}},
        "metrics": {"cross_validated": {"topics": topic_metrics, "regions": region_metrics}, "folds": options.folds},
        "salience_features": list(FEATURES),
        "seed": SEED,
    }
    save_bundle(
        out_dir,
        objects={"topics.joblib": topic_model, "salience.joblib": salience_model},
        json_files={"aliases.json": alias_table},
        manifest=manifest,
    )
    return manifest


def salience_rows(corpus: Corpus, cleaned: list[CleanArticle], matcher: CountryMatcher):
    """Feature rows for every mentioned country of every region-labeled article.

    Labels: 1 for a must-tag region, 0 for a country only mentioned; optional regions get
    weight 0 (tagging them is neither right nor wrong). `missed` counts labeled regions the
    gazetteer never found, which the threshold search books as false negatives.
    """
    rows, labels, groups, weights, missed = [], [], [], [], 0
    for index, (article, clean) in enumerate(zip(corpus.articles, cleaned)):
        if article.regions is None:
            continue
        candidates, features = find_candidates(clean, matcher)
        found = {c.code for c in candidates}
        missed += len(set(article.regions) - found)
        for candidate, row in zip(candidates, features):
            rows.append(row)
            labels.append(int(candidate.code in article.regions))
            weights.append(0.0 if candidate.code in article.regions_optional else 1.0)
            groups.append(index)
    if not rows:
        return None
    return np.asarray(rows), np.asarray(labels), np.asarray(groups), np.asarray(weights), missed


def _topic_out_of_fold(texts, Y, labels, options) -> np.ndarray:
    oof = np.zeros(Y.shape, dtype=np.float64)
    folds = KFold(n_splits=options.folds, shuffle=True, random_state=SEED)
    texts = np.asarray(texts, dtype=object)
    for train_index, test_index in folds.split(texts):
        model = TopicClassifier(C=options.topic_C).fit(list(texts[train_index]), Y[train_index], labels)
        oof[test_index] = model.predict_proba(list(texts[test_index]))
    return oof


def _salience_out_of_fold(X, y, groups, weights, options) -> np.ndarray:
    oof = np.zeros(len(X))
    folds = GroupKFold(n_splits=min(options.folds, len(set(groups.tolist()))))
    for train_index, test_index in folds.split(X, y, groups):
        keep = train_index[weights[train_index] > 0]
        model = SalienceClassifier(max_iter=options.salience_iterations, random_state=SEED).fit(X[keep], y[keep])
        oof[test_index] = model.salience(X[test_index])
    return oof


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
