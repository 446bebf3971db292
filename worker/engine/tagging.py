"""Tagger: a loaded bundle + articles -> topic and country tags with scores and evidence (pure).

The same object serves the CLI, the benchmark and (later) the queue workers; a process
loads it once. `tag_many` cleans each article, then vectorises and scores the whole batch in
one pass, which is where batch throughput comes from.
"""

from __future__ import annotations

import functools
import gc
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .artifacts import default_bundle_path, load_bundle
from ..errors import BundleError, InputError
from .gazetteer import CountryMatcher
from .regions import FEATURES, find_candidates, mention_evidence
from .stories import Signature, SignatureMaker, group, harmonise, published_date
from .text import CleanArticle, clean_article

DEFAULT_MAX_BODY_BYTES = 2 * 1024 * 1024
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
# Past this much clean text an article says nothing new about its tags; bounds time per article.
MAX_ANALYSED_CHARS = 60_000


@dataclass(frozen=True)
class ArticleInput:
    id: str | int
    title: str
    body: str
    published: str | None = None  # ISO date, when the record says (stories: versions fall within a window)


def parse_article(record: object, *, max_body_bytes: int = DEFAULT_MAX_BODY_BYTES, line_no: int | None = None) -> ArticleInput:
    """Validate one input record: an object with `id`, `title` and a non-empty `body`."""
    if not isinstance(record, dict):
        raise InputError("an article must be a JSON object", line_no=line_no)
    article_id = record.get("id")
    if isinstance(article_id, bool) or not isinstance(article_id, (str, int)) or article_id == "":
        raise InputError("field 'id' is missing or not a string/integer", field="id", line_no=line_no)
    title = record.get("title", "")
    if title is None:
        title = ""
    if not isinstance(title, str):
        raise InputError("field 'title' must be a string", field="title", article_id=article_id, line_no=line_no)
    body = record.get("body")
    if not isinstance(body, str):
        raise InputError("field 'body' is missing or not a string", field="body", article_id=article_id, line_no=line_no)
    for field, value in (("id", article_id), ("title", title), ("body", body)):
        if isinstance(value, str) and _LONE_SURROGATE.search(value):
            raise InputError(
                f"field {field!r} holds an unpaired UTF-16 surrogate (not valid Unicode)",
                field=field, article_id=article_id if field != "id" else None, line_no=line_no,
            )
    size = len(body.encode("utf-8"))
    if size > max_body_bytes:
        raise InputError(
            f"field 'body' is {size:,} bytes, over the {max_body_bytes:,}-byte limit",
            field="body", article_id=article_id, line_no=line_no,
        )
    if not body.strip():
        raise InputError("field 'body' is empty", field="body", article_id=article_id, line_no=line_no)
    return ArticleInput(article_id, title, body, published_date(record))


class Tagger:
    """Loaded models and thresholds; `tag` / `tag_many` return plain dicts ready for JSON."""

    def __init__(self, manifest: dict, topic_model, salience_model, alias_table: list):
        trained_with = manifest.get("salience_features")
        if trained_with is not None and list(trained_with) != list(FEATURES):
            raise BundleError(f"bundle {manifest.get('model_version')} scores countries from other features than this version of "
                              f"autotag computes ({len(trained_with)} vs {len(FEATURES)}); retrain it with `autotag train`")
        self.manifest = manifest
        self.model_version: str = manifest["model_version"]
        self.topic_model = topic_model
        self.salience_model = salience_model
        self.matcher = CountryMatcher([tuple(row) for row in alias_table])
        self.labels: list[str] = [str(label) for label in topic_model.classes_]
        thresholds = manifest["thresholds"]
        self.topic_accept = [float(thresholds["topics"][label]["accept"]) for label in self.labels]
        self.topic_review = [float(thresholds["topics"][label]["review"]) for label in self.labels]
        self.region_accept = float(thresholds["regions"]["accept"])
        self.region_review = float(thresholds["regions"]["review"])
        self.accept = {("topics", label): accept for label, accept in zip(self.labels, self.topic_accept)}
        self.accept.update({("regions", code): self.region_accept for code in country_names()})
        self.signer = SignatureMaker.from_topic_model(topic_model, alias_table)
        self._country_names = country_names()

    @classmethod
    def load(cls, bundle_dir: str | Path | None = None) -> "Tagger":
        manifest, files = load_bundle(bundle_dir or default_bundle_path())
        try:
            tagger = cls(manifest, files["topics.joblib"], files["salience.joblib"], files["aliases.json"])
        except KeyError as exc:
            raise BundleError(f"bundle {bundle_dir} lacks {exc.args[0]}", path=bundle_dir) from exc
        # The models are hundreds of thousands of long-lived objects (vocabulary, names); moving
        # them out of the collector's sight stops every full collection from walking them again,
        # worth about a third of batch throughput. They live as long as the process anyway.
        gc.collect()
        gc.freeze()
        return tagger

    def tag(self, article: ArticleInput) -> dict:
        return self.tag_many([article])[0]

    def tag_many(self, articles: list[ArticleInput], *, stories: str | None = None, story_ids: list[str] | None = None) -> list[dict]:
        """Tags per article. `stories` (shared | suggest | off): find the versions of one story
        in this batch (or take them from `story_ids`) and give them one tag set (see stories.py)."""
        if stories is None:
            return self.tag_signed(articles, sign=False)[0]
        results, signatures = self.tag_signed(articles)
        if story_ids is None:
            story_ids = group([a.id for a in articles], signatures).ids
        versions: dict[str, list[int]] = {}
        for index, sid in enumerate(story_ids):
            versions.setdefault(sid, []).append(index)
        harmonised = list(results)
        for sid, indices in versions.items():
            for index, result in zip(indices, self.harmonise([results[i] for i in indices], sid, stories)):
                harmonised[index] = result
        return harmonised

    def harmonise(self, results: list[dict], sid: str, mode: str) -> list[dict]:
        """One story's versions given the story's tag set, by this model's thresholds."""
        return harmonise(results, sid, self.accept, mode)

    def tag_signed(self, articles: list[ArticleInput], *, sign: bool = True) -> tuple[list[dict], list[Signature] | None]:
        """Tags per article and, with `sign`, each article's story signature (one cleaning)."""
        if not articles:
            return [], []
        cleaned = [_bounded(clean_article(a.title, a.body)) for a in articles]
        vectors = self.topic_model.vectorize([c.text for c in cleaned])
        rows = vectors.articles
        topic_scores = self.topic_model.scores(vectors)
        found = [find_candidates(c, self.matcher) for c in cleaned]
        signatures = None
        if sign:
            countries = [{c.code: len(c.mentions) for c in candidates} for candidates, _ in found]
            signatures = self.signer.sign_many(cleaned, [a.published for a in articles], rows, countries)
        all_features = [features for _, features in found if len(features)]
        salience = self.salience_model.salience(np.vstack(all_features)).tolist() if all_features else []
        results, offset = [], 0
        for index, article in enumerate(articles):
            candidates, features = found[index]
            article_salience = salience[offset : offset + len(candidates)]
            offset += len(candidates)
            topics, suggested_topics = self._topics(rows, index, topic_scores[index].tolist())
            regions, suggested_regions = self._regions(candidates, article_salience)
            results.append(
                {
                    "id": article.id,
                    "model_version": self.model_version,
                    "topics": topics,
                    "regions": regions,
                    "suggested": {"topics": suggested_topics, "regions": suggested_regions},
                }
            )
        return results, signatures

    def scores(self, articles: list[ArticleInput]) -> list[dict]:
        """Every score, below the review thresholds too, for curves against a threshold: per
        article {"topics": {label: score}, "regions": {code: salience}} (regions: the countries
        the gazetteer found)."""
        if not articles:
            return []
        cleaned = [_bounded(clean_article(a.title, a.body)) for a in articles]
        topic_scores = self.topic_model.scores(self.topic_model.vectorize([c.text for c in cleaned]))
        found = [find_candidates(c, self.matcher) for c in cleaned]
        all_features = [features for _, features in found if len(features)]
        salience = self.salience_model.salience(np.vstack(all_features)).tolist() if all_features else []
        per_article, offset = [], 0
        for index, (candidates, _) in enumerate(found):
            regions = dict(zip((c.code for c in candidates), salience[offset : offset + len(candidates)]))
            offset += len(candidates)
            per_article.append({"topics": dict(zip(self.labels, topic_scores[index].tolist())), "regions": regions})
        return per_article

    def _topics(self, rows, index: int, scores: list[float]) -> tuple[list, list]:
        accepted, suggested = [], []
        for j in sorted(range(len(scores)), key=scores.__getitem__, reverse=True):
            score = scores[j]
            if score < self.topic_review[j]:
                continue
            tag = {"tag": self.labels[j], "score": round(score, 4), "evidence": self.topic_model.evidence(rows, index, j), "by": "model"}
            (accepted if score >= self.topic_accept[j] else suggested).append(tag)
        return accepted, suggested

    def _regions(self, candidates, salience: list[float]) -> tuple[list, list]:
        accepted, suggested = [], []
        for k in sorted(range(len(salience)), key=salience.__getitem__, reverse=True):
            score = salience[k]
            if score < self.region_review:
                break
            candidate = candidates[k]
            tag = {
                "code": candidate.code,
                "name": self._country_names.get(candidate.code, candidate.code),
                "score": round(score, 4),
                "evidence": mention_evidence(candidate),
                "by": "model",
            }
            (accepted if score >= self.region_accept else suggested).append(tag)
        return accepted, suggested


def _bounded(article: CleanArticle) -> CleanArticle:
    if len(article.body) <= MAX_ANALYSED_CHARS:
        return article
    kept, total = [], 0
    for paragraph in article.paragraphs:
        if total + len(paragraph) > MAX_ANALYSED_CHARS:
            kept.append(paragraph[: max(0, MAX_ANALYSED_CHARS - total)])
            break
        kept.append(paragraph)
        total += len(paragraph) + 2
    return CleanArticle(article.title[:1000], tuple(kept))


@functools.cache
def country_names() -> dict[str, str]:
    """ISO 3166-1 alpha-2 code -> the name editors know the country by (Kosovo's XK included)."""
    import pycountry

    names = {c.alpha_2: getattr(c, "common_name", None) or c.name for c in pycountry.countries}
    names.update({"XK": "Kosovo", "RU": "Russia", "TR": "Turkey", "PS": "Palestine", "VA": "Vatican City", "CD": "DR Congo", "CG": "Republic of the Congo"})
    return names
