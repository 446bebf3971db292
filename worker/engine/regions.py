"""Country tags: gazetteer mentions -> per-country features -> trained salience classifier.

"About Russia" differs from "mentions Russia": every country the matcher finds becomes a
candidate described by how, where and how often the article names it (count and share,
title, lead, spread over paragraphs, kind of mention, dateline), and a gradient-boosted
classifier trained on the corpus' region labels scores how central it is.
"""

from __future__ import annotations

import math
import re
import struct
from bisect import bisect_left, bisect_right
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache
from itertools import repeat
from operator import attrgetter

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.ensemble import HistGradientBoostingClassifier

from .gazetteer import CountryMatcher, Mention
from .text import CleanArticle

FEATURES = (
    "log_count", "share", "count_over_top", "is_top", "rank", "n_candidates",
    "in_title", "title_count", "first_position", "in_lead", "lead_count", "paragraph_spread",
    "last_half_only", "dateline", "distinct_aliases", "log_body_chars",
    "kind_name", "kind_demonym", "kind_place", "kind_institution", "kind_subnational",
)
_ALIAS = attrgetter("alias")
_KIND_GROUP = {
    "name": "kind_name", "short": "kind_name", "demonym": "kind_demonym",
    "capital": "kind_place", "city": "kind_place", "metonym": "kind_institution",
    "leader": "kind_institution", "subnational": "kind_subnational",
}
_KIND_COLUMNS = ("kind_name", "kind_demonym", "kind_place", "kind_institution", "kind_subnational")
assert FEATURES[-len(_KIND_COLUMNS):] == _KIND_COLUMNS
# a dateline: "KYIV, Ukraine (AP) —", "Zurich (AFP) -", "NYON, Switzerland --", "New Delhi, Aug 05:";
# the place opens a paragraph, alone or after its city, and a date, an agency and a dash or colon follow
_DATELINE_CITY = re.compile(r"[A-Z][\w.'’\- ]{1,30}, ")
_DATELINE_TAIL = re.compile(r"(?:,? (?:[A-Z][a-z]{2,8}\.? \d{1,2}|\d{1,2} [A-Z][a-z]{2,8}))?\s*(?:\([^()\n]{1,30}\)\s*)?(?:—|–|--?|:)\s")
_LEAD_PARAGRAPHS = 2
# where in the text a country is first named is measured over at least this many characters
# (about a wire paragraph): in a one-sentence brief the object of the verb is not "late"
POSITION_SPAN = 400


@dataclass(frozen=True)
class Candidate:
    """A country the article mentions, with the mentions that make the evidence."""

    code: str
    mentions: tuple[Mention, ...]


def find_candidates(article: CleanArticle, matcher: CountryMatcher) -> tuple[list[Candidate], np.ndarray]:
    """Candidates and their feature rows (len(candidates), len(FEATURES)).

    The matcher gives mentions in text order, so a country's title mentions come first and
    most counts are one bisect over its mentions' starts rather than a loop over them.
    """
    title_len = len(article.title) + 2 if article.title else 0
    text = article.text
    mentions = matcher.find(text)
    if not mentions:
        return [], np.zeros((0, len(FEATURES)), dtype=np.float32)
    by_code: dict[str, list[Mention]] = {}
    for mention in mentions:
        found = by_code.get(mention.code)
        if found is None:
            by_code[mention.code] = [mention]
        else:
            found.append(mention)
    # most mentions first, ties to the country named first (dict order, and sorts are stable)
    ranking = sorted(by_code.values(), key=len, reverse=True)

    paragraph_starts = _paragraph_starts(article, title_len)
    n_paragraphs = max(1, len(paragraph_starts))
    # a mention is in the lead when it starts before the first paragraph after it
    lead_end = paragraph_starts[_LEAD_PARAGRAPHS] if len(paragraph_starts) > _LEAD_PARAGRAPHS else len(text) + 1
    body_len = max(1, len(text) - title_len)
    position_span = max(body_len, POSITION_SPAN)
    log_body_len = math.log(body_len)
    total, top, n_candidates = len(mentions), len(ranking[0]), float(len(ranking))
    values, candidates = [], []
    for rank, found in enumerate(ranking):
        _, aliases, kinds, starts, ends = zip(*found)
        count = len(found)
        title_count = bisect_left(starts, title_len)
        if title_count < count:
            first_start = starts[title_count]
            first = (first_start - title_len) / position_span
            lead_count = bisect_left(starts, lead_end, title_count) - title_count
            # paragraph index + 1 per body mention: only how many distinct ones counts
            spread = len(set(map(bisect_right, repeat(paragraph_starts), starts[title_count:]))) / n_paragraphs
            dateline = _is_dateline(text, paragraph_starts, first_start, ends[title_count])
        else:
            first, lead_count, spread, dateline = 1.0, 0, 0.0, False
        # one value per name in FEATURES, in that order
        values += (
            math.log1p(count),                                    # log_count
            count / total,                                        # share
            count / top,                                          # count_over_top
            1.0 if count == top else 0.0,                         # is_top
            float(rank),                                          # rank
            n_candidates,                                         # n_candidates
            1.0 if title_count else 0.0,                          # in_title
            float(title_count),                                   # title_count
            first,                                                # first_position
            1.0 if lead_count else 0.0,                           # in_lead
            float(lead_count),                                    # lead_count
            spread,                                               # paragraph_spread
            1.0 if title_count < count and first > 0.5 else 0.0,  # last_half_only
            1.0 if dateline else 0.0,                             # dateline
            float(len(set(aliases))),                             # distinct_aliases
            log_body_len,                                         # log_body_chars: in a brief, every party counts
            *_kind_shares(kinds),                                 # kind_* shares
        )
        candidates.append(Candidate(found[0].code, tuple(found)))
    return candidates, _float32_rows(values, len(ranking))


@lru_cache(maxsize=4096)
def _kind_shares(kinds: tuple[str, ...]) -> tuple[float, ...]:
    """The share of each kind column, summed 1/count at a time as the model was trained; a
    country's kinds are mostly one of a few short tuples, so they are worked out once."""
    shares = dict.fromkeys(_KIND_COLUMNS, 0.0)
    for kind in kinds:
        shares[_KIND_GROUP[kind]] += 1.0 / len(kinds)
    return tuple(shares.values())


@lru_cache(maxsize=64)
def _row_packer(n_values: int) -> struct.Struct:
    return struct.Struct(f"{n_values}f")


def _float32_rows(values: list[float], n_rows: int) -> np.ndarray:
    """A writable (n_rows, len(FEATURES)) float32 array: struct packs the floats with the same
    double -> float rounding as numpy, at a third of np.array's cost for a few dozen values."""
    packed = bytearray(_row_packer(len(values)).pack(*values))
    return np.ndarray((n_rows, len(FEATURES)), np.float32, packed)


class SalienceClassifier(ClassifierMixin, BaseEstimator):
    """Scores how central a candidate country is to its article, from FEATURES rows."""

    # Small steps, shallow trees and leaves of 40 candidates or more: a model that adding forty
    # articles to the corpus moves by a few hundredths, not by a fifth, on a borderline country
    # (with 0.15, depth 5 and leaves of 10, corpus file 19 moved France in an Airbus-to-China story
    # from 0.63 to 0.44). Cross-validated region F1 0.958 -> 0.963 on the corpus with file 19.
    def __init__(self, max_iter: int = 120, learning_rate: float = 0.1, max_leaf_nodes: int = 15, max_depth: int = 4,
                 min_samples_leaf: int = 40, random_state: int = 0):
        self.max_iter = max_iter
        self.max_depth = max_depth
        self.learning_rate = learning_rate
        self.max_leaf_nodes = max_leaf_nodes
        self.min_samples_leaf = min_samples_leaf
        self.random_state = random_state

    def fit(self, X: np.ndarray, y: np.ndarray):
        self.model_ = HistGradientBoostingClassifier(
            max_iter=self.max_iter,
            learning_rate=self.learning_rate,
            max_leaf_nodes=self.max_leaf_nodes,
            max_depth=self.max_depth,
            l2_regularization=1.0,
            min_samples_leaf=self.min_samples_leaf,
            random_state=self.random_state,
        )
        self.model_.fit(X, y)
        self.classes_ = self.model_.classes_
        self._pack_trees()
        return self

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        return self.model_.predict_proba(X)

    def salience(self, X: np.ndarray) -> np.ndarray:
        """P(the article is about this country) per row, walking all trees at once in numpy.

        scikit-learn's predictor visits its trees one Python call at a time (~4 ms for one
        article's handful of rows); stepping every tree a level at a time gives the same
        numbers (a test holds them equal) in a few hundred microseconds.
        """
        if len(X) == 0:
            return np.zeros(0)
        X = np.asarray(X, dtype=np.float64)
        rows = np.arange(len(X))[:, None]
        children = self._children()
        node = np.broadcast_to(self.tree_roots_, (len(X), len(self.tree_roots_)))
        for _ in range(self.tree_depth_):
            goes_left = X[rows, self.node_feature_[node]] <= self.node_threshold_[node]
            node = children[2 * node + goes_left]
        raw = self.node_value_[node].sum(axis=1) + self.baseline_
        return 1.0 / (1.0 + np.exp(-raw))

    def _children(self) -> np.ndarray:
        """Each node's right then left child, side by side (node n's at 2n and 2n + 1): a step
        down every tree is one lookup instead of two and a choice. Worked out once per model."""
        children = getattr(self, "_children_cache", None)
        if children is None:
            children = self._children_cache = np.column_stack([self.node_right_, self.node_left_]).ravel()
        return children

    def __getstate__(self):
        """What a bundle stores: the fitted model, without the lookup derived from it."""
        state = super().__getstate__()
        state.pop("_children_cache", None)
        return state

    def _pack_trees(self) -> None:
        """Flatten the fitted trees into node arrays; leaves point to themselves."""
        features, thresholds, lefts, rights, values, roots, depth = [], [], [], [], [], [], 0
        offset = 0
        for (predictor,) in self.model_._predictors:
            nodes = predictor.nodes
            if nodes["is_categorical"].any():
                raise ValueError("categorical splits are not supported by the packed evaluator")
            here = np.arange(len(nodes)) + offset
            leaf = nodes["is_leaf"].astype(bool)
            features.append(np.where(leaf, 0, nodes["feature_idx"]))
            thresholds.append(np.where(leaf, np.inf, nodes["num_threshold"]))
            lefts.append(np.where(leaf, here, nodes["left"].astype(np.int64) + offset))
            rights.append(np.where(leaf, here, nodes["right"].astype(np.int64) + offset))
            values.append(np.where(leaf, nodes["value"], 0.0))
            roots.append(offset)
            depth = max(depth, int(nodes["depth"].max()))
            offset += len(nodes)
        self.node_feature_ = np.concatenate(features).astype(np.intp)
        self.node_threshold_ = np.concatenate(thresholds)
        self.node_left_ = np.concatenate(lefts).astype(np.intp)
        self.node_right_ = np.concatenate(rights).astype(np.intp)
        self.node_value_ = np.concatenate(values)
        self.tree_roots_ = np.asarray(roots, dtype=np.intp)
        self.tree_depth_ = depth
        self.baseline_ = float(np.ravel(self.model_._baseline_prediction)[0])


def mention_evidence(candidate: Candidate, limit: int = 4) -> list[str]:
    """The distinct phrases that named the country, most frequent first."""
    ranked = Counter(map(_ALIAS, candidate.mentions)).most_common(limit)  # ties in order of first mention
    return [f"{alias} ({count})" if count > 1 else alias for alias, count in ranked]


def _paragraph_starts(article: CleanArticle, offset: int) -> list[int]:
    starts, position = [], offset
    for paragraph in article.paragraphs:
        starts.append(position)
        position += len(paragraph) + 2
    return starts or [offset]


def _is_dateline(text: str, paragraph_starts: list[int], start: int, end: int) -> bool:
    """A place named in the dateline ("KYIV, Ukraine (AP) —") tells where, not what, the story is.
    It opens one of the first paragraphs (CMS debris may stand before it); start and end are the
    country's first mention in the body."""
    paragraph = bisect_right(paragraph_starts, start) - 1
    if paragraph >= _LEAD_PARAGRAPHS:
        return False
    begin = paragraph_starts[paragraph]
    # text before the place must be a dateline city, which ends in ", " (checked first: most text does not)
    if begin < start and not (text.startswith(", ", start - 2) and _DATELINE_CITY.fullmatch(text, begin, start)):
        return False
    return _DATELINE_TAIL.match(text, end) is not None
