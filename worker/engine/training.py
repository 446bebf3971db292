"""`autotag train`: corpus -> cross-validated thresholds -> fitted models -> versioned bundle.

Thresholds are chosen on out-of-fold scores (5-fold, fixed seed), never on the articles a
model was fitted on: per topic the accept threshold is the point nearest 0.5 on the plateau
where F1 is best, and the lower review threshold maximises F2 (recall-heavy) between half the accept
threshold and 0.05 below it, so the review band holds the near misses an editor should see.
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
from .evaluation import prf
from .gazetteer import CountryMatcher, build_alias_table
from .regions import FEATURES, SalienceClassifier, find_candidates
from .text import CleanArticle, clean_article
from .topics import TopicClassifier

log = logging.getLogger(__name__)

SEED = 20261122
_MIN_POSITIVES = 5
_THRESHOLD_GRID = np.round(np.arange(0.05, 0.96, 0.01), 2)
_MIN_REVIEW_BAND = 0.05


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


def choose_thresholds(scores: np.ndarray, truth: np.ndarray) -> tuple[float, float, dict]:
    """Accept threshold (best F1) and review threshold (best F2 below it) from out-of-fold scores."""
    f1 = np.array([_f_beta(scores >= t, truth, 1.0) for t in _THRESHOLD_GRID])
    accept = _nearest_half_of_best(f1)
    f2 = np.array([_f_beta(scores >= t, truth, 2.0) for t in _THRESHOLD_GRID])
    review = _middle_of_best(np.where(_review_range(accept), f2, -1.0))
    predicted = scores >= accept
    metrics = prf(int((predicted & (truth == 1)).sum()), int((predicted & (truth == 0)).sum()), int((~predicted & (truth == 1)).sum()))
    metrics["positives"] = int(truth.sum())
    return accept, review, metrics


def choose_region_thresholds(scores, y, weights, groups, missed) -> tuple[float, float, dict]:
    def counts(threshold):
        predicted = scores >= threshold
        tp = int((predicted & (y == 1) & (weights > 0)).sum())
        fp = int((predicted & (y == 0) & (weights > 0)).sum())
        fn = int((~predicted & (y == 1) & (weights > 0)).sum()) + missed
        return tp, fp, fn

    def f_beta(threshold, beta):
        tp, fp, fn = counts(threshold)
        return (1 + beta**2) * tp / max(1, (1 + beta**2) * tp + beta**2 * fn + fp)

    accept = _nearest_half_of_best(np.array([f_beta(t, 1.0) for t in _THRESHOLD_GRID]))
    f2 = np.array([f_beta(t, 2.0) for t in _THRESHOLD_GRID])
    review = _middle_of_best(np.where(_review_range(accept), f2, -1.0))
    metrics = prf(*counts(accept))
    metrics["articles"] = int(len(set(groups.tolist())))
    metrics["never_mentioned"] = missed
    return accept, review, metrics


def _middle_of_best(values: np.ndarray, tolerance: float = 0.002) -> float:
    """The middle of the thresholds that score within `tolerance` of the best: a plateau's edge
    is where a few out-of-fold articles happened to fall, its middle is what generalises."""
    best = np.flatnonzero(values >= values.max() - tolerance)
    return float(_THRESHOLD_GRID[best[len(best) // 2]])


def _nearest_half_of_best(values: np.ndarray, tolerance: float = 0.002) -> float:
    """Of the thresholds that score within `tolerance` of the best, the one nearest 0.5.

    On the corpus the best-F1 plateau is often wide (its articles are cleanly separable);
    on unseen articles scores shrink towards the middle from both sides, so the plateau's
    point nearest 0.5 loses least when they do.
    """
    best = _THRESHOLD_GRID[values >= values.max() - tolerance]
    return float(best[np.argmin(np.abs(best - 0.5))])


def _review_range(accept: float) -> np.ndarray:
    """Review thresholds lie in [accept / 2, accept - 0.05]: a band that always exists."""
    return (_THRESHOLD_GRID >= accept / 2) & (_THRESHOLD_GRID <= accept - _MIN_REVIEW_BAND + 1e-9)


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


def _f_beta(predicted: np.ndarray, truth: np.ndarray, beta: float) -> float:
    tp = float((predicted & (truth == 1)).sum())
    fp = float((predicted & (truth == 0)).sum())
    fn = float((~predicted & (truth == 1)).sum())
    return (1 + beta**2) * tp / max(1.0, (1 + beta**2) * tp + beta**2 * fn + fp)


