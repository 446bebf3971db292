"""Out-of-fold scores: for the corpus alone and, given an archive, for corpus + archive over the
same folds, so that the two sets of figures can be laid side by side.

Corpus rows keep the folds a corpus-only training has always given them (KFold over articles
for topics, GroupKFold by article for regions); archive articles are dealt over the same folds
by a seeded shuffle. In each fold two models are fitted, one on the corpus outside the fold and
one on corpus + archive outside it, and each scores every row inside it, corpus and archive
alike. The two columns of figures then differ only in what the models learned from, never in
which articles were held out; the corpus-only column is what the corpus alone would ship.
Without an archive only the corpus-only models are fitted, in the order training always
fitted them, so a corpus gives the same scores (and bundle) as before archives existed.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
from sklearn.model_selection import GroupKFold, KFold

from .regions import SalienceClassifier
from .topics import TopicClassifier
from .trainset import RegionRows, TopicRows

SEED = 20261122
CORPUS_ONLY, WITH_ARCHIVE = "corpus_only", "with_archive"


def topic_out_of_fold(rows: TopicRows, labels: list[str], folds: int, C: float) -> dict[str, np.ndarray]:
    """{regime: (n_rows, n_labels) out-of-fold probabilities}."""
    corpus = np.flatnonzero(~rows.in_archive)
    fold_of = np.full(len(rows.texts), -1)
    for k, (_, test) in enumerate(KFold(n_splits=folds, shuffle=True, random_state=SEED).split(corpus)):
        fold_of[corpus[test]] = k
    archive = np.flatnonzero(rows.in_archive)
    fold_of[archive] = _deal(len(archive), folds)
    texts = np.asarray(rows.texts, dtype=object)

    def fit(train: np.ndarray) -> TopicClassifier:
        known = None if rows.known is None or not rows.in_archive[train].any() else rows.known[train]
        return TopicClassifier(C=C).fit(list(texts[train]), rows.Y[train], labels, known=known)

    return _out_of_fold(fold_of, folds, rows.in_archive, fit, lambda model, index: model.predict_proba(list(texts[index])), (len(labels),))


def salience_out_of_fold(rows: RegionRows, folds: int, iterations: int) -> dict[str, np.ndarray]:
    """{regime: out-of-fold salience per candidate row}; weight-0 rows are scored, never learned from."""
    corpus = np.flatnonzero(~rows.in_archive)
    n_folds = min(folds, len(set(rows.groups[corpus].tolist())))
    fold_of = np.full(len(rows.X), -1)
    for k, (_, test) in enumerate(GroupKFold(n_splits=n_folds).split(rows.X[corpus], rows.y[corpus], rows.groups[corpus])):
        fold_of[corpus[test]] = k
    archive = np.flatnonzero(rows.in_archive)
    articles, article_of_row = np.unique(rows.groups[archive], return_inverse=True)
    fold_of[archive] = _deal(len(articles), n_folds)[article_of_row]

    def fit(train: np.ndarray) -> SalienceClassifier:
        keep = train[rows.weights[train] > 0]
        return SalienceClassifier(max_iter=iterations, random_state=SEED).fit(rows.X[keep], rows.y[keep])

    return _out_of_fold(fold_of, n_folds, rows.in_archive, fit, lambda model, index: model.salience(rows.X[index]), ())


def _out_of_fold(fold_of: np.ndarray, n_folds: int, in_archive: np.ndarray, fit: Callable, score: Callable, width: tuple) -> dict[str, np.ndarray]:
    """Per regime, fold by fold: fit on the regime's rows outside the fold, score the fold's
    corpus rows and its archive rows (in separate batches, so corpus scores never depend on
    what else is in the batch)."""
    regimes = [(CORPUS_ONLY, ~in_archive)] + ([(WITH_ARCHIVE, np.ones_like(in_archive))] if in_archive.any() else [])
    scores = {}
    for regime, learns_from in regimes:
        scores[regime] = np.zeros((len(fold_of), *width), dtype=np.float64)
        for k in range(n_folds):
            held_out = fold_of == k
            model = fit(np.flatnonzero(learns_from & ~held_out))
            for part in (~in_archive, in_archive):
                index = np.flatnonzero(held_out & part)
                if len(index):
                    scores[regime][index] = score(model, index)
    return scores


def _deal(n: int, folds: int) -> np.ndarray:
    """A fold for each of n archive articles: a seeded shuffle dealt round the folds, so every
    fold gets its share however few the articles."""
    dealt = np.empty(n, dtype=np.int64)
    dealt[np.random.RandomState(SEED).permutation(n)] = np.arange(n) % folds
    return dealt
