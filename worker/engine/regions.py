"""Country tags: gazetteer mentions -> per-country features -> trained salience classifier.

"About Russia" differs from "mentions Russia": every country the matcher finds becomes a
candidate described by how, where and how often the article names it (count and share,
title, lead, spread over paragraphs, kind of mention, dateline), and a gradient-boosted
classifier trained on the corpus' region labels scores how central it is.
"""

from __future__ import annotations

import math
import re
from bisect import bisect_left, bisect_right
from collections import Counter
from dataclasses import dataclass
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
_ALIAS = attrgetter("alias")
# where in the text a country is first named is measured over at least this many characters
# (about a wire paragraph): in a one-sentence brief the object of the verb is not "late"
POSITION_SPAN = 400


@dataclass(frozen=True)
class Candidate:
    """A country the article mentions, with the mentions that make the evidence."""

    code: str
    mentions: tuple[Mention, ...]


def find_candidates(article: CleanArticle, matcher: CountryMatcher) -> tuple[list[Candidate], np.ndarray]:
    """Candidates and their feature rows (len(candidates), len(FEATURES))."""
    title_len = len(article.title) + 2 if article.title else 0
    text = article.text
    mentions = matcher.find(text)
    by_code: dict[str, list[Mention]] = {}
    for mention in mentions:
        by_code.setdefault(mention.code, []).append(mention)
    if not by_code:
        return [], np.zeros((0, len(FEATURES)), dtype=np.float32)

    paragraph_starts = _paragraph_starts(article, title_len)
    body_len = max(1, len(text) - title_len)
    total = len(mentions)
    counts = {code: len(found) for code, found in by_code.items()}
    top = max(counts.values())
    ranking = sorted(counts, key=lambda code: (-counts[code], by_code[code][0].start))
    n_paragraphs = max(1, len(paragraph_starts))
    rows, candidates = [], []
    for rank, code in enumerate(ranking):
        found = by_code[code]
        count = len(found)
        in_title = 0  # mentions come in text order: the title's first
        while in_title < count and found[in_title].start < title_len:
            in_title += 1
        body_mentions = found[in_title:]
        paragraph_of = [bisect_right(paragraph_starts, m.start) - 1 for m in body_mentions]
        lead_count = bisect_left(paragraph_of, _LEAD_PARAGRAPHS)  # in order too
        first = (body_mentions[0].start - title_len) / max(body_len, POSITION_SPAN) if body_mentions else 1.0
        kinds = dict.fromkeys(_KIND_COLUMNS, 0.0)
        share = 1.0 / count
        for mention in found:
            kinds[_KIND_GROUP[mention.kind]] += share
        # one value per name in FEATURES, in that order
        rows.append([
            math.log1p(count),                                    # log_count
            count / total,                                        # share
            count / top,                                          # count_over_top
            float(count == top),                                  # is_top
            float(rank),                                          # rank
            float(len(by_code)),                                  # n_candidates
            float(count > len(body_mentions)),                    # in_title
            float(count - len(body_mentions)),                    # title_count
            first,                                                # first_position
            float(lead_count > 0),                                # in_lead
            float(lead_count),                                    # lead_count
            len(set(paragraph_of)) / n_paragraphs,                # paragraph_spread
            float(bool(body_mentions) and first > 0.5),           # last_half_only
            float(_is_dateline(text, body_mentions, paragraph_of, paragraph_starts)),  # dateline
            float(len(set(map(_ALIAS, found)))),                  # distinct_aliases
            math.log(body_len),                                   # log_body_chars: in a brief, every party counts
            *kinds.values(),                                      # kind_* shares
        ])
        candidates.append(Candidate(code, tuple(found)))
    return candidates, np.asarray(rows, dtype=np.float32)


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


def _is_dateline(text: str, body_mentions: list[Mention], paragraph_of: list[int], paragraph_starts: list[int]) -> bool:
    """A place named in the dateline ("KYIV, Ukraine (AP) —") tells where, not what, the story is.
    It opens one of the first paragraphs (CMS debris may stand before it)."""
    if not body_mentions or paragraph_of[0] >= _LEAD_PARAGRAPHS:
        return False
    first = body_mentions[0]
    before = text[paragraph_starts[paragraph_of[0]] : first.start]
    if before and not _DATELINE_CITY.fullmatch(before):
        return False
    return _DATELINE_TAIL.match(text, first.end) is not None
