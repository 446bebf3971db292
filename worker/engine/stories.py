"""Versions of one story: a small signature per article, the test that two are the same story,
batch grouping, and one tag set per story.

Copies, trimmed copies, rewrites and other outlets' write-ups of one event share what the event
is: its rare words and its names (people, places, organisations, weapons). A signature keeps an
article's strongest rare terms and strongest names, each weighted by sublinear tf times the
corpus idf the topic model already holds, and normalised: `similarity` is the mean of the two
cosines. A copy scores near 1; a write-up by another outlet 0.3-0.6; another story on the same
subject (last year's F-16 deliveries, another bank's fine) can score as high, and only a date
tells it apart: when both versions carry one, they must fall within the story window.

Articles are taken in order (of input, or of arrival), and each joins the story of the earlier
article it is closest to, or starts its own: it must score LIKELY_STORY with that article and
with the story's first version (a story never drifts from what it began as), and two articles
about other countries, or dated further apart than the window, never score.
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

LIKELY_STORY = 0.25  # a version scores this much with its closest earlier version and with the story's first
WINDOW_DAYS = 3  # versions of one story are published within this many days of each other
TERMS_KEPT, NAMES_KEPT, COUNTRIES_KEPT = 48, 24, 8  # the signature's size: under 1.5 KB of JSON
COUNTRIES_AGREE = 0.7  # versions of one story are about the same countries, in about the same measure
KEY_TERMS, KEY_NAMES = 8, 8  # index keys per article
MODES = ("shared", "suggest", "off")
_TERM_FLOOR, _NAME_FLOOR = 2.0, 2.5  # idf below these (common words, frequent names) says nothing of an event
# (month names stay: two versions of one event name the same month, two stories a year apart rarely do)
_COMMON = frozenset(ENGLISH_STOP_WORDS) | {"said", "says", "told", "according", "also", "year", "years", "week"}
_PUNCTUATION = ".,;:!?\"'()[]\u201c\u201d\u2018\u2019"
_CAPITAL_WORD = re.compile(r"\b[A-ZÀ-ÖØ-ÞĀ-ž][\w'\u2019\-]*\w")  # Vučić and Türkiye are names too
_POSSESSIVE = re.compile(r"['\u2019]s$")
_URL_DATE = re.compile(r"(?<!\d)(20\d\d)[/-](0?[1-9]|1[0-2])[/-](0?[1-9]|[12]\d|3[01])(?!\d)")


@dataclass(frozen=True)
class Signature:
    """What a story index keeps of an article: its rare terms and names, weighted, and its date."""

    terms: dict[str, float]
    names: dict[str, float]
    published: str | None = None  # ISO date, when known
    countries: dict[str, float] = field(default_factory=dict)  # mention counts, normalised

    def as_json(self) -> dict:
        return {"t": self.terms, "n": self.names, "d": self.published, "c": self.countries}

    @classmethod
    def from_json(cls, data: dict) -> "Signature":
        return cls(data["t"], data["n"], data.get("d"), data.get("c", {}))


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

    def __init__(self, idf: dict[str, float], max_idf: float, feature_names, feature_idf, country_words: frozenset = frozenset()):
        self.idf, self.max_idf = idf, max_idf
        self.country_words = country_words  # country names, demonyms, capitals: the country check's business
        self.feature_names = feature_names
        self.keep_feature = (feature_idf >= _TERM_FLOOR) & ~np.isin(feature_names, list(_COMMON))

    @classmethod
    def from_topic_model(cls, topic_model, alias_table=()) -> "SignatureMaker":
        idf = {}
        for word, word_id in topic_model.token_id_.items():
            feature = topic_model.unigram_feature_[word_id]
            if feature >= 0:
                idf[word.decode("ascii")] = float(topic_model.idf_[feature])
        country_words = frozenset(alias.lower() for alias, _, _ in alias_table if " " not in alias)
        return cls(idf, float(topic_model.idf_.max()), np.asarray(topic_model.feature_names_, dtype=object), topic_model.idf_,
                   country_words)

    def sign_many(self, articles: list[CleanArticle], published: list[str | None], rows, countries: list[dict]) -> list[Signature]:
        """`rows`: the articles' TF-IDF rows from the topic model (a CSR matrix); `countries`:
        per article, country code -> mentions (what the gazetteer found)."""
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
            signatures.append(Signature(terms, _normalised(self._names(article.text), NAMES_KEPT), published[index],
                                        _normalised(countries[index], COUNTRIES_KEPT)))
        return signatures

    def _names(self, text: str) -> dict[str, float]:
        """Capitalised words the article never writes in lower case (so not a sentence's first
        word), rare in the corpus, weighted by sublinear tf x idf."""
        lower = {token.strip(_PUNCTUATION) for token in text.split() if token[0].islower()}
        counts = Counter(_POSSESSIVE.sub("", word) for word in _CAPITAL_WORD.findall(text))
        weights = {}
        for word, count in counts.items():
            word = word.lower()
            if word in _COMMON or word in lower or word in self.country_words:
                continue
            idf = self.idf.get(word.replace("'", ""), self.max_idf)
            if idf >= _NAME_FLOOR:
                weights[word] = (1.0 + math.log(count)) * idf
        return weights


def _normalised(weights: dict[str, float], kept: int) -> dict[str, float]:
    strongest = sorted(weights.items(), key=lambda item: (-item[1], item[0]))[:kept]
    norm = math.sqrt(sum(w * w for _, w in strongest)) or 1.0
    return {word: round(w / norm, 4) for word, w in strongest}


def similarity(a: Signature, b: Signature, window_days: int = WINDOW_DAYS) -> float:
    """0..1: the mean of the cosines of their rare terms and of their names; 0 when their dates
    fall outside the window or they are about other countries (a Serbian arms order and a
    Serbian refinery's sanctions share many names)."""
    if not within_window(a, b, window_days) or (a.countries and b.countries and _cosine(a.countries, b.countries) < COUNTRIES_AGREE):
        return 0.0
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


def joins(score_to_closest: float, score_to_first: float) -> bool:
    """Whether an article joins the story that holds its closest earlier article: it scores
    LIKELY_STORY with that version and with the story's first version, so that a story never
    drifts from what it began as (a chain of look-alikes is not one story)."""
    return score_to_closest >= LIKELY_STORY and score_to_first >= LIKELY_STORY


def group(article_ids: list, signatures: list[Signature]) -> StoryGroups:
    """Stories in a batch, found the way the live index finds them: articles in input order,
    each joining the story of its closest earlier article (see `joins`) or starting its own,
    named after its first version. All pair scores at once: two sparse products over terms and
    names."""
    n = len(signatures)
    scores = (0.5 * _gram([s.terms for s in signatures]) + 0.5 * _gram([s.names for s in signatures])).toarray()
    story_of = np.full(n, -1)
    first_of: list[int] = []
    for i in range(n):
        earlier = scores[i, :i].copy()
        for j in np.flatnonzero(earlier >= LIKELY_STORY):  # dates apart or other countries: no pair (as `similarity` says)
            earlier[j] = similarity(signatures[i], signatures[j])
        closest = int(np.argmax(earlier)) if i else -1
        if closest >= 0 and joins(earlier[closest], earlier[first_of[story_of[closest]]]):
            story_of[i] = story_of[closest]
        else:
            story_of[i] = len(first_of)
            first_of.append(i)
    ids, sizes, named = [""] * n, [0] * n, {}
    for story, first in enumerate(first_of):
        versions = np.flatnonzero(story_of == story).tolist()
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
