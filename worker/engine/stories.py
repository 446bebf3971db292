"""Versions of one story: a small signature per article, the test that two are the same story,
batch grouping, and one tag set per story.

Copies, trimmed copies, rewrites and other outlets' write-ups of one event share what the event
is: its rare words and its names (people, places, organisations, weapons: words capitalised
inside a sentence, never in lower case). A signature keeps an article's strongest rare terms and
strongest names, each weighted by sublinear tf times the corpus idf the topic model already
holds, and normalised: `similarity` is the mean of the two cosines. A copy scores near 1; a
write-up by another outlet 0.3-0.6; another story on the same subject (last year's F-16
deliveries, another bank's fine) can score as high, and only a date tells it apart: when both
versions carry one, they must fall within the story window.

Articles are taken in order (of input, or of arrival), and each joins the story of the closest
earlier article that will have it, or starts its own: it must score LIKELY_STORY with that
article and with the story's first version (a story never drifts from what it began as), and
two articles about other countries, or dated further apart than the window, never score. When
the closest article's story began too far away, the next closest article's story is tried (in
an archive, a version's closest look-alike is often another story on its subject).
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
from itertools import chain, repeat
from operator import itemgetter, mul
from typing import Iterable

import numpy as np
from scipy import sparse
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

from .text import CleanArticle

LIKELY_STORY = 0.2  # a version scores this much with its closest earlier version and with the story's first
WINDOW_DAYS = 3  # versions of one story are published within this many days of each other
TERMS_KEPT, NAMES_KEPT, COUNTRIES_KEPT = 48, 24, 8  # the signature's size: under 1.5 KB of JSON
COUNTRIES_AGREE = 0.7  # versions of one story are about the same countries, in about the same measure
KEY_TERMS, KEY_NAMES = 8, 8  # index keys per article
MODES = ("shared", "suggest", "off")
_TERM_FLOOR, _NAME_FLOOR = 2.0, 2.5  # idf below these (common words, frequent names) says nothing of an event
# (month names stay: two versions of one event name the same month, two stories a year apart rarely do)
_COMMON = frozenset(ENGLISH_STOP_WORDS) | {"said", "says", "told", "according", "also", "year", "years", "week"}
_PUNCTUATION = ".,;:!?\"'()[]\u201c\u201d\u2018\u2019"
# Vučić and Türkiye are names too. A capitalised word counts inside a sentence only: after a
# word, a comma or a closing quote or bracket and one space (a sentence's or paragraph's first
# word, "Additionally" or "Afterward", is capitalised whatever it is; a name is written inside
# sentences too). The capital comes first so that the regular expression engine can skip to
# capitals; the look-behind then reads the two characters before it.
_CAPITAL_WORD = re.compile(r"[A-ZÀ-ÖØ-ÞĀ-ž](?<=[\w,;'\u2019\u201d\")\]] .)[\w'\u2019\-]*\w")
_POSSESSIVE_ENDINGS = ("'s", "\u2019s")
_NAME_CACHE_SIZE = 50_000  # capitalised words whose (lower case, idf) is remembered: a few MB, forgotten at once when full
_WEIGHT = itemgetter(1)
_UNSEEN = object()
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
    (no second tokenisation), the names from one regular-expression pass, weighted by the
    model's idf (a word it never saw counts as rare: names mostly). A batch is signed with a
    handful of numpy calls; what is left per article is its names."""

    def __init__(self, idf: dict[str, float], max_idf: float, feature_names, feature_idf, country_words: frozenset = frozenset()):
        self.idf, self.max_idf = idf, max_idf
        self.country_words = country_words  # country names, demonyms, capitals: the country check's business
        self.feature_names = feature_names
        self.keep_feature = (feature_idf >= _TERM_FLOOR) & ~np.isin(feature_names, list(_COMMON))
        # ties of weight are broken by the term (as `_normalised` does): by its rank in sorted order
        names = feature_names.tolist()
        ordered = all(a < b for a, b in zip(names, names[1:]))  # the vectoriser sorts its features
        self.feature_rank = np.arange(len(names)) if ordered else np.argsort(np.argsort(np.asarray(names, dtype=str)))
        self._name_weights: dict[str, tuple | None] = {}  # a capitalised word -> what `_name_weight` says

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
        parts = [self._strongest_terms(rows, len(articles)),
                 _strongest([self._names(article.text) for article in articles], NAMES_KEPT),
                 _strongest(countries, COUNTRIES_KEPT)]
        values = _rounded(np.concatenate([shares for _, shares, _ in parts]))  # one rounding for all
        dicts, at = [], 0
        for words, _, lengths in parts:
            part, end = [], 0
            for length in lengths:
                part.append(dict(zip(words[end : end + length], values[at + end : at + end + length])))
                end += length
            dicts.append(part)
            at += end
        terms, names, places = dicts
        return [Signature(terms[index], names[index], published[index], places[index]) for index in range(len(articles))]

    def _strongest_terms(self, rows, count: int) -> tuple[list[str], np.ndarray, list[int]]:
        """Per row, its TERMS_KEPT strongest rare terms in `_normalised`'s order, with their
        weights divided by the norm (not yet rounded): flat, and how many per row."""
        end = rows.indptr[count]
        keep = self.keep_feature[rows.indices[:end]]
        features, weights = rows.indices[:end][keep], rows.data[:end][keep]
        if count == 1:  # one article (a live worker's): no rows to tell apart
            if len(features) > TERMS_KEPT:
                strongest = np.argpartition(-weights, TERMS_KEPT)[:TERMS_KEPT]
                features, weights = features[strongest], weights[strongest]
            order = np.lexsort((self.feature_rank[features], -weights))
            features, weights = features[order], weights[order].astype(np.float64)
            listed = weights.tolist()
            norm = math.sqrt(sum(map(mul, listed, listed))) or 1.0  # as `_normalised` sums: in order
            return self.feature_names[features].tolist(), weights / norm, [len(features)]
        row_of = np.repeat(np.arange(count), np.diff(rows.indptr[: count + 1]))[keep]
        starts = np.concatenate([[0], np.cumsum(np.bincount(row_of, minlength=count))])
        too_many = np.diff(starts) > TERMS_KEPT
        if too_many.any():  # the strongest, chosen as np.argpartition chooses among equal weights (most rows have some)
            negated, bounds = -weights, starts.tolist()
            strongest = [np.argpartition(negated[bounds[row] : bounds[row + 1]], TERMS_KEPT)[:TERMS_KEPT]
                         for row in np.flatnonzero(too_many).tolist()]
            chosen = ~too_many[row_of]
            chosen[np.concatenate(strongest) + np.repeat(starts[:-1][too_many], TERMS_KEPT)] = True
            row_of, features, weights = row_of[chosen], features[chosen], weights[chosen]
        order = np.lexsort((self.feature_rank[features], -weights, row_of))  # per row: strongest first, then by term
        row_of, features, weights = row_of[order], features[order], weights[order].astype(np.float64)
        lengths = np.bincount(row_of, minlength=count)
        starts = np.concatenate([[0], np.cumsum(lengths)])
        # each norm summed in that order, one addition after another (as `sum` does): padded rows, cumsum
        squares = np.zeros((count, TERMS_KEPT))
        squares[row_of, np.arange(len(row_of)) - starts[row_of]] = weights * weights
        norms = np.sqrt(np.cumsum(squares, axis=1)[:, -1])
        norms[norms == 0] = 1.0
        return self.feature_names[features].tolist(), weights / norms[row_of], lengths.tolist()

    def _names(self, text: str) -> dict[str, float]:
        """Words capitalised inside sentences (see `_CAPITAL_WORD`) that the article never writes
        in lower case, rare in the corpus, weighted by sublinear tf x idf."""
        known = self._name_weights
        if len(known) > _NAME_CACHE_SIZE:
            known.clear()
        words = _CAPITAL_WORD.findall(text)
        names = list(map(known.get, words, repeat(_UNSEEN)))
        if _UNSEEN in names:  # words met for the first time
            for index, name in enumerate(names):
                if name is _UNSEEN:
                    names[index] = known[words[index]] = self._name_weight(words[index])
        # (word, lower case, idf) -> mentions, possessives folded in, in order of appearance
        counts = Counter(filter(None, names))
        weights = {}
        for (_, word, idf), count in counts.items():
            if not _written_in_lower_case(text, word):  # mostly not in the text at all
                weights[word] = (1.0 + math.log(count)) * idf
        return weights

    def _name_weight(self, word: str) -> tuple[str, str, float] | None:
        """(the word without a possessive, in lower case, its idf) for a word that may be a name,
        else None (a common word, a country's, or not rare enough): what does not depend on the
        article."""
        if word.endswith(_POSSESSIVE_ENDINGS):
            word = word[:-2]
        lower = word.lower()
        if lower in _COMMON or lower in self.country_words:
            return None
        idf = self.idf.get(lower.replace("'", ""), self.max_idf)
        return (word, lower, idf) if idf >= _NAME_FLOOR else None


def _written_in_lower_case(text: str, word: str) -> bool:
    """Whether a white-space separated token of `text` that starts in lower case is `word` once
    its trailing punctuation is stripped (the set of such tokens, without building it)."""
    start = text.find(word)
    if start < 0 or not word[0].islower() or word[-1] in _PUNCTUATION:
        return False
    end_of_text = len(text)
    while start >= 0:
        if start == 0 or text[start - 1].isspace():
            end = start + len(word)
            while end < end_of_text and text[end] in _PUNCTUATION:
                end += 1
            if end == end_of_text or text[end].isspace():
                return True
        start = text.find(word, start + 1)
    return False


def _normalised(weights: dict[str, float], kept: int) -> dict[str, float]:
    """The `kept` strongest (ties by word), as a unit vector rounded to 4 places: the definition
    `_strongest`, `_strongest_terms` and `_rounded` give in bulk (tests hold them equal)."""
    strongest = sorted(weights.items(), key=lambda item: (-item[1], item[0]))[:kept]
    norm = math.sqrt(sum(w * w for _, w in strongest)) or 1.0
    return {word: round(w / norm, 4) for word, w in strongest}


def _strongest(many: list[dict[str, float]], kept: int) -> tuple[list[str], np.ndarray, list[int]]:
    """`_normalised` of each, before rounding: the words, their weights divided by the norm (flat)
    and how many per dict."""
    words, weights, norms, lengths = [], [], [], []
    for one in many:
        # by word, then (stably) by weight, strongest first: the order of key (-weight, word)
        strongest = sorted(sorted(one.items()), key=_WEIGHT, reverse=True)[:kept]
        lengths.append(len(strongest))
        if strongest:
            kept_words, kept_weights = zip(*strongest)
            words += kept_words
            weights += kept_weights
            norms.append(math.sqrt(sum(map(mul, kept_weights, kept_weights))) or 1.0)
    return words, np.asarray(weights, dtype=np.float64) / np.repeat(np.asarray(norms, dtype=np.float64), [n for n in lengths if n]), lengths


def _rounded(values: np.ndarray) -> list[float]:
    """`round(value, 4)` of each (correctly rounded, half to even), without a call per value: a
    value whose ten-thousandths sit this close to a half is rounded by `round` itself."""
    scaled = values * 10000.0
    results = (np.rint(scaled) / 10000.0).tolist()
    for index in np.flatnonzero(np.abs(scaled - np.floor(scaled) - 0.5) < 1e-6).tolist():
        results[index] = round(float(values[index]), 4)
    return results


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


def joins(score_to_version: float, score_to_first: float) -> bool:
    """Whether an article may join the story that holds one of its earlier look-alikes: it
    scores LIKELY_STORY with that version and with the story's first version, so that a story
    never drifts from what it began as (a chain of look-alikes is not one story)."""
    return score_to_version >= LIKELY_STORY and score_to_first >= LIKELY_STORY


def story_to_join(scored: dict, story_of, first_of) -> int | None:
    """The story an article joins: `scored` holds its earlier look-alikes (index -> score, those
    at LIKELY_STORY or above), `story_of` each article's story and `first_of` each story's first
    version. The closest look-alike's story, if `joins` allows, else the next closest's, the
    earliest of equally close first; None when none will have it."""
    tried = set()
    for j in sorted(scored, key=lambda j: (-scored[j], j)):
        story = story_of[j]
        if story not in tried:
            tried.add(story)
            if joins(scored[j], scored.get(first_of[story], 0.0)):
                return story
    return None


def group(article_ids: list, signatures: list[Signature]) -> StoryGroups:
    """Stories in a batch, found the way the live index finds them: articles in input order,
    each joining the story of its closest earlier article that will have it (`story_to_join`)
    or starting its own, named after its first version. All pair scores at once: two sparse
    products over terms and names, which are never below `similarity` (hashed words only add),
    so only the pairs they put at LIKELY_STORY or above are scored one by one, and they decide."""
    n = len(signatures)
    scores = (0.5 * _gram([s.terms for s in signatures]) + 0.5 * _gram([s.names for s in signatures])).toarray()
    later, earlier = np.nonzero(np.tril(scores, -1) >= LIKELY_STORY)  # row by row, earlier versions in order
    close: dict[int, dict[int, float]] = {}  # article -> its earlier articles scoring LIKELY_STORY
    for i, j in zip(later.tolist(), earlier.tolist()):
        score = similarity(signatures[i], signatures[j])  # dates apart or other countries: no pair
        if score >= LIKELY_STORY:
            close.setdefault(i, {})[j] = score
    story_of: list[int] = []
    first_of: list[int] = []
    for i in range(n):
        story = story_to_join(close[i], story_of, first_of) if i in close else None
        if story is not None:
            story_of.append(story)
        else:
            story_of.append(len(first_of))
            first_of.append(i)
    versions: list[list[int]] = [[] for _ in first_of]
    for index, story in enumerate(story_of):
        versions[story].append(index)
    ids, sizes, named = [""] * n, [0] * n, {}
    for story, first in enumerate(first_of):
        sid = story_id(article_ids[first])
        named[sid] = versions[story]
        for index in versions[story]:
            ids[index], sizes[index] = sid, len(versions[story])
    return StoryGroups(ids, sizes, named)


def _gram(vectors: list[dict[str, float]]) -> sparse.csr_matrix:
    """Pairwise dot products of sparse unit vectors (words hashed to columns: a collision in a
    million columns changes a score by a rounding error, upwards), over the columns in use."""
    lengths = [len(vector) for vector in vectors]
    total = sum(lengths)
    hashed = np.fromiter(map(hash, chain.from_iterable(vectors)), dtype=np.int64, count=total) & 0xFFFFF
    values = np.fromiter(chain.from_iterable(map(dict.values, vectors)), dtype=np.float64, count=total)
    in_use, columns = np.unique(hashed, return_inverse=True)  # in order: the products sum as before
    indptr = np.concatenate([[0], np.cumsum(lengths)])
    matrix = sparse.csr_matrix((values, columns.reshape(-1), indptr), shape=(len(vectors), len(in_use)))
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
