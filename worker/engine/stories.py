"""Versions of one story: a small signature per article, the test that two are the same story,
batch grouping, and one tag set per story.

Copies, trimmed copies, rewrites and other outlets' write-ups of one event share what the event
is: its rare words and its names (people, places, organisations, weapons). A signature keeps an
article's strongest rare terms and strongest names, each weighted by sublinear tf times the
corpus idf the topic model already holds, and normalised: `similarity` is the mean of the two
cosines. A copy scores near 1; a write-up by another outlet 0.3-0.6; another story on the same
subject (last year's F-16 deliveries, another bank's fine) can score as high, and only a date
tells it apart: when both versions carry one, they must fall within the story window.

Two articles are one story when their similarity is at least SAME_STORY; two stories so found
are one when their closest versions score at least LIKELY_STORY and each story is the other's
closest (in a batch, or in the live window).
Harmonisation (`harmonise`) gives every version the story's tags: a tag a version accepts is the
story's when another version corroborates it (also accepts it, or scores it in the review band)
or its score is far above the threshold, so one version's lone mistake does not spread.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Iterable

import numpy as np
from scipy import sparse
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

from .text import CleanArticle

SAME_STORY = 0.4  # alone enough: the two say the same things about the same names
LIKELY_STORY = 0.25  # enough when the two are each other's closest article
WINDOW_DAYS = 3  # versions of one story are published within this many days of each other
TERMS_KEPT, NAMES_KEPT = 48, 24  # the signature's size: under 1 KB of JSON
KEY_TERMS, KEY_NAMES = 8, 8  # index keys per article
MODES = ("shared", "suggest", "off")
_TERM_FLOOR, _NAME_FLOOR = 2.0, 2.5  # idf below these (common words, frequent names) says nothing of an event
_COMMON = frozenset(ENGLISH_STOP_WORDS) | {"said", "says", "told", "according", "also", "year", "years", "week"}
_PUNCTUATION = ".,;:!?\"'()[]\u201c\u201d\u2018\u2019"
_CAPITAL_WORD = re.compile(r"\b[A-Z][A-Za-z'\-]*[A-Za-z0-9]")
_URL_DATE = re.compile(r"(?<!\d)(20\d\d)[/-](0?[1-9]|1[0-2])[/-](0?[1-9]|[12]\d|3[01])(?!\d)")


@dataclass(frozen=True)
class Signature:
    """What a story index keeps of an article: its rare terms and names, weighted, and its date."""

    terms: dict[str, float]
    names: dict[str, float]
    published: str | None = None  # ISO date, when known

    def as_json(self) -> dict:
        return {"t": self.terms, "n": self.names, "d": self.published}

    @classmethod
    def from_json(cls, data: dict) -> "Signature":
        return cls(data["t"], data["n"], data.get("d"))


@dataclass
class StoryGroups:
    """A batch's stories: story id and number of versions per article, in input order."""

    ids: list[str]
    sizes: list[int]
    members: dict[str, list[int]] = field(default_factory=dict)


class SignatureMaker:
    """Signatures from cleaned articles: the terms come from the topic model's own TF-IDF rows
    (no second tokenisation), the names from two regular-expression passes, weighted by the
    model's idf (a word it never saw counts as rare: names mostly)."""

    def __init__(self, idf: dict[str, float], max_idf: float, feature_names, feature_idf):
        self.idf, self.max_idf = idf, max_idf
        self.feature_names = feature_names
        self.keep_feature = (feature_idf >= _TERM_FLOOR) & ~np.isin(feature_names, list(_COMMON))

    @classmethod
    def from_topic_model(cls, topic_model) -> "SignatureMaker":
        idf = {}
        for word, word_id in topic_model.token_id_.items():
            feature = topic_model.unigram_feature_[word_id]
            if feature >= 0:
                idf[word.decode("ascii")] = float(topic_model.idf_[feature])
        return cls(idf, float(topic_model.idf_.max()), np.asarray(topic_model.feature_names_, dtype=object), topic_model.idf_)

    def sign_many(self, articles: list[CleanArticle], published: list[str | None], rows) -> list[Signature]:
        """`rows`: the articles' TF-IDF rows from the topic model (a CSR matrix)."""
        signatures = []
        for index, article in enumerate(articles):
            start, end = rows.indptr[index], rows.indptr[index + 1]
            features, weights = rows.indices[start:end], rows.data[start:end]
            keep = self.keep_feature[features]
            features, weights = features[keep], weights[keep]
            if len(features) > TERMS_KEPT:
                strongest = np.argpartition(-weights, TERMS_KEPT)[:TERMS_KEPT]
                features, weights = features[strongest], weights[strongest]
            terms = _normalised(dict(zip(self.feature_names[features].tolist(), weights.tolist())), TERMS_KEPT)
            signatures.append(Signature(terms, _normalised(self._names(article.text), NAMES_KEPT), published[index]))
        return signatures

    def _names(self, text: str) -> dict[str, float]:
        """Capitalised words the article never writes in lower case (so not a sentence's first
        word), rare in the corpus, weighted by sublinear tf x idf."""
        lower = {token.strip(_PUNCTUATION) for token in text.split() if token[0].islower()}
        counts = Counter(_CAPITAL_WORD.findall(text))
        weights = {}
        for word, count in counts.items():
            word = word.lower()
            if word in _COMMON or word in lower:
                continue
            idf = self.idf.get(word.replace("'", ""), self.max_idf)
            if idf >= _NAME_FLOOR:
                weights[word] = (1.0 + math.log(count)) * idf
        return weights


def _normalised(weights: dict[str, float], kept: int) -> dict[str, float]:
    strongest = sorted(weights.items(), key=lambda item: (-item[1], item[0]))[:kept]
    norm = math.sqrt(sum(w * w for _, w in strongest)) or 1.0
    return {word: round(w / norm, 4) for word, w in strongest}


def similarity(a: Signature, b: Signature) -> float:
    """0..1: the mean of the cosines of their rare terms and of their names."""
    return 0.5 * _cosine(a.terms, b.terms) + 0.5 * _cosine(a.names, b.names)


def _cosine(a: dict[str, float], b: dict[str, float]) -> float:
    if len(a) > len(b):
        a, b = b, a
    return sum(w * b.get(word, 0.0) for word, w in a.items())


def within_window(a: Signature, b: Signature, days: int = WINDOW_DAYS) -> bool:
    """False only when both dates are known and further apart than the window."""
    if not a.published or not b.published:
        return True
    return abs((date.fromisoformat(a.published) - date.fromisoformat(b.published)).days) <= days


def candidate_keys(signature: Signature) -> list[str]:
    """The index keys under which a version of the same story is looked for: its strongest
    names and terms (two versions share several of them)."""
    names = list(signature.names)[:KEY_NAMES]
    terms = [t for t in signature.terms if t not in signature.names][:KEY_TERMS]
    return [f"n:{n}" for n in names] + [f"t:{t}" for t in terms]


def story_id(first_article_id) -> str:
    """A story is named after its first version: stable, and known when that version arrives."""
    return "st-" + hashlib.sha256(str(first_article_id).encode()).hexdigest()[:12]


def group(article_ids: list, signatures: list[Signature]) -> StoryGroups:
    """Stories in a batch: pairs at SAME_STORY are versions of one story; then two stories whose
    closest versions score LIKELY_STORY are one when each is the other's closest; never across
    dates further apart than the window. Named after the first version in input order. All
    pairs at once: two sparse products over the batch's terms and names."""
    n = len(signatures)
    scores = (0.5 * _gram([s.terms for s in signatures]) + 0.5 * _gram([s.names for s in signatures])).toarray()
    np.fill_diagonal(scores, 0.0)
    dated = [(i, date.fromisoformat(s.published)) for i, s in enumerate(signatures) if s.published]
    for position, (i, day) in enumerate(dated):
        for j, other in dated[position + 1 :]:
            if abs((day - other).days) > WINDOW_DAYS:
                scores[i, j] = scores[j, i] = 0.0
    parent = list(range(n))

    def root(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    def join(i: int, j: int) -> None:
        a, b = root(i), root(j)
        parent[max(a, b)] = min(a, b)  # the earlier version names the story

    for i, j in zip(*np.nonzero(np.triu(scores >= SAME_STORY, 1))):
        join(int(i), int(j))
    # a looser pair joins two stories only when each is the other's closest story
    closest: dict[int, tuple[float, int]] = {}
    for i, j in zip(*np.nonzero(np.triu((scores >= LIKELY_STORY) & (scores < SAME_STORY), 1))):
        a, b, score = root(int(i)), root(int(j)), scores[i, j]
        if a != b:
            for one, other in ((a, b), (b, a)):
                if score > closest.get(one, (0.0, -1))[0]:
                    closest[one] = (score, other)
    for one, (_, other) in closest.items():
        if one < other and closest.get(other, (0.0, -1))[1] == one:
            join(one, other)
    members: dict[int, list[int]] = {}
    for index in range(n):
        members.setdefault(root(index), []).append(index)
    ids, sizes, named = [""] * n, [0] * n, {}
    for first, versions in members.items():
        sid = story_id(article_ids[first])
        named[sid] = versions
        for index in versions:
            ids[index], sizes[index] = sid, len(versions)
    return StoryGroups(ids, sizes, named)


def _gram(vectors: list[dict[str, float]]) -> sparse.csr_matrix:
    """Pairwise dot products of sparse unit vectors (words hashed to columns: a collision in a
    million columns changes a score by a rounding error)."""
    lengths = [len(vector) for vector in vectors]
    columns = np.fromiter((hash(word) & 0xFFFFF for vector in vectors for word in vector), dtype=np.int64, count=sum(lengths))
    values = np.fromiter((weight for vector in vectors for weight in vector.values()), dtype=np.float64, count=sum(lengths))
    indptr = np.concatenate([[0], np.cumsum(lengths)])
    matrix = sparse.csr_matrix((values, columns, indptr), shape=(len(vectors), 0x100000))
    matrix.sum_duplicates()
    return matrix @ matrix.T


def harmonise(results: list[dict], sid: str, accept: dict[tuple[str, str], float], mode: str = "shared") -> list[dict]:
    """The versions' results (in order) with the story's topic and region sets. `accept`:
    (kind, tag) -> the model's accept threshold. `shared`: every version gets the story's tags
    and loses those the story does not confirm (to its suggestions); `suggest`: a version keeps
    its own tags and gets the story's others as suggestions; `off`: tags untouched. Every result
    says its story: {"id", "versions"}."""
    if mode not in MODES:
        raise ValueError(f"story mode must be one of {', '.join(MODES)}, not {mode!r}")
    versions = len(results)
    story = {"id": sid, "versions": versions}
    if versions == 1 or mode == "off":
        return [{**result, "story": story} for result in results]
    harmonised = [dict(result, story=story, suggested=dict(result["suggested"])) for result in results]
    for kind, key in (("topics", "tag"), ("regions", "code")):
        chosen = _story_tags(results, kind, key, accept)
        for own, result in zip(results, harmonised):
            given = {tag[key]: tag for tag in own[kind]}
            offered = {tag[key]: tag for tag in own["suggested"][kind]}
            if mode == "shared":
                result[kind] = [given.get(value) or _from_story(value, offered, chosen[value], versions) for value in chosen]
                demoted = [tag for value, tag in given.items() if value not in chosen]
                result["suggested"][kind] = [tag for value, tag in offered.items() if value not in chosen] + demoted
            else:  # suggest
                extra = [_from_story(value, offered, chosen[value], versions) for value in chosen if value not in given]
                result["suggested"][kind] = [tag for value, tag in offered.items() if value not in chosen or value in given] + extra
    return harmonised


def _story_tags(results: list[dict], kind: str, key: str, accept: dict) -> dict[str, dict]:
    """The story's tags, strongest first, each with its best version's tag object and how many
    versions accept it."""
    accepted: dict[str, list[dict]] = {}
    scored: Counter = Counter()
    for result in results:
        for tag in result[kind]:
            accepted.setdefault(tag[key], []).append(tag)
            scored[tag[key]] += 1
        for tag in result["suggested"][kind]:
            scored[tag[key]] += 1
    chosen = {}
    for value, tags in accepted.items():
        best = max(tags, key=lambda tag: tag["score"] if tag["score"] is not None else 1.0)
        threshold = accept.get((kind, value), 0.5)
        strong = (best["score"] or 1.0) >= (1.0 + threshold) / 2
        if len(tags) >= 2 or scored[value] >= 2 or strong:
            chosen[value] = {"best": best, "accepted_by": len(tags)}
    return dict(sorted(chosen.items(), key=lambda item: -(item[1]["best"]["score"] or 1.0)))


def _from_story(value: str, offered: dict, chosen: dict, versions: int) -> dict:
    """A tag this version gets from the other versions: its own score if it had one, else the
    best version's; the evidence says where it came from."""
    base = offered.get(value) or chosen["best"]
    others = chosen["accepted_by"]
    note = f"story: {others} of {versions - 1} other version{'s' if versions > 2 else ''}"
    return {**base, "evidence": [note, *[e for e in base["evidence"] if not e.startswith("story:")]]}


def published_date(record: dict) -> str | None:
    """An article's publication date, when its record says: a `published_at`, `date` or
    `occurred_at` field (RFC 3339 or a date), else a date in its URL (/2023/09/14/)."""
    for name in ("published_at", "date", "occurred_at"):
        value = record.get(name)
        if isinstance(value, str) and value:
            try:
                return datetime.fromisoformat(value.replace("Z", "+00:00")).date().isoformat()
            except ValueError:
                pass
    url = record.get("url")
    if isinstance(url, str):
        found = _URL_DATE.search(url)
        if found:
            try:
                return date(int(found[1]), int(found[2]), int(found[3])).isoformat()
            except ValueError:
                return None
    return None


def pairs_within(groups: StoryGroups) -> Iterable[tuple[int, int]]:
    """Every pair of versions the grouping put in one story (for measuring)."""
    for versions in groups.members.values():
        for position, i in enumerate(versions):
            for j in versions[position + 1 :]:
                yield i, j
