"""The rows training learns from: corpus articles with every label, archive articles with only
the labels their editors decided (reviewed.py says which), each row marked with its source.

Corpus rows come first and in corpus order, so a corpus alone gives exactly the rows (and,
downstream, the folds and the bundle) it always gave.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .corpus import Corpus
from .gazetteer import CountryMatcher
from .regions import find_candidates
from .reviewed import ReviewedArticle
from .text import CleanArticle


@dataclass(frozen=True)
class TopicRows:
    texts: list[str]
    Y: np.ndarray  # (n_rows, n_labels) 0/1
    known: np.ndarray | None  # (n_rows, n_labels) bool, the cells that are labels; None: all of them
    in_archive: np.ndarray  # bool per row

    def known_in(self, column: int) -> np.ndarray:
        """Rows whose label in `column` is known (bool mask)."""
        return np.ones(len(self.texts), dtype=bool) if self.known is None else self.known[:, column]


@dataclass(frozen=True)
class RegionRows:
    """One row per mentioned country of every region-labeled article (see `salience_rows`)."""

    X: np.ndarray
    y: np.ndarray
    groups: np.ndarray  # the article each row belongs to
    weights: np.ndarray  # 0: neither right nor wrong to tag (optional, or undecided)
    in_archive: np.ndarray
    missed: dict  # {"corpus": n, "archive": n}: labeled countries the gazetteer never found


def topic_rows(corpus: Corpus, corpus_clean: list[CleanArticle], reviewed: list[ReviewedArticle],
               reviewed_clean: list[CleanArticle], labels: list[str]) -> TopicRows:
    """Corpus rows, then the archive articles that carry a decision on some topic."""
    Y = np.array([[label in a.topics for label in labels] for a in corpus.articles], dtype=np.int8)
    texts = [c.text for c in corpus_clean]
    decided = [(a, c) for a, c in zip(reviewed, reviewed_clean) if a.topics]
    if not decided:
        return TopicRows(texts, Y, None, np.zeros(len(texts), dtype=bool))
    archive_Y = np.array([[a.topics.get(label, False) for label in labels] for a, _ in decided], dtype=np.int8)
    archive_known = np.array([[label in a.topics for label in labels] for a, _ in decided], dtype=bool)
    return TopicRows(
        texts + [c.text for _, c in decided],
        np.vstack([Y, archive_Y]),
        np.vstack([np.ones(Y.shape, dtype=bool), archive_known]),
        np.r_[np.zeros(len(texts), dtype=bool), np.ones(len(decided), dtype=bool)],
    )


def region_rows(corpus: Corpus, corpus_clean: list[CleanArticle], reviewed: list[ReviewedArticle],
                reviewed_clean: list[CleanArticle], matcher: CountryMatcher) -> RegionRows | None:
    corpus_part = salience_rows(corpus, corpus_clean, matcher)
    if corpus_part is None:
        return None
    X, y, groups, weights, missed = corpus_part
    parts = [(X, y, groups, weights, np.zeros(len(X), dtype=bool))]
    archive_missed = 0
    first_group = len(corpus.articles)
    for index, (article, clean) in enumerate(zip(reviewed, reviewed_clean)):
        if not article.regions:
            continue
        candidates, features = find_candidates(clean, matcher)
        found = {c.code for c in candidates}
        archive_missed += sum(decided and code not in found for code, decided in article.regions.items())
        codes = [c.code for c in candidates]
        parts.append((
            features.reshape(len(codes), X.shape[1]),
            np.array([int(article.regions.get(code, False)) for code in codes], dtype=y.dtype),
            np.full(len(codes), first_group + index, dtype=groups.dtype),
            np.array([1.0 if code in article.regions else 0.0 for code in codes]),
            np.ones(len(codes), dtype=bool),
        ))
    if len(parts) > 1:
        X, y, groups, weights, in_archive = (np.concatenate(column) for column in zip(*parts))
    else:
        in_archive = parts[0][4]
    return RegionRows(X, y, groups, weights, in_archive, {"corpus": missed, "archive": archive_missed})


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
