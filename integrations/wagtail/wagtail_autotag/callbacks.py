"""A verified callback payload -> the page's tags.

Rules: a webhook-id is applied once; a revision older than the one applied is ignored, and so is
one at or below the revision the page was unpublished at; a tag an editor set or removed keeps
the editor's decision whatever the model says; model tags and suggestions that the model no
longer gives are dropped. Only the plugin's own tables are written: no revision, no publish.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from django.db import IntegrityError, transaction
from django.utils import timezone
from wagtail.models import Page

from .conf import AutotagSettings
from .models import BY_EDITOR, BY_MODEL, REGION, TOPIC, PageTag, PageTagState, ReceivedCallback

APPLIED, DUPLICATE, OLDER, UNPUBLISHED, NO_PAGE = "applied", "duplicate", "older", "unpublished", "no-page"


class PayloadError(ValueError):
    """A signed payload that does not follow the callback contract; `field` names what is wrong."""

    def __init__(self, message: str, field: str):
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class TagIn:
    kind: str
    tag: str
    name: str
    score: float | None
    evidence: list
    by: str


@dataclass(frozen=True)
class TagCallback:
    event_id: str
    article_id: str | int
    revision: int
    model_version: str
    reason: str
    applied: tuple[TagIn, ...]
    suggested: tuple[TagIn, ...]


def parse_callback(payload: object) -> TagCallback:
    """Check the contract's fields; unknown fields (story, reason, ...) are tolerated."""
    if not isinstance(payload, dict):
        raise PayloadError("the callback must be a JSON object", "body")
    if payload.get("type") != "article.tags":
        raise PayloadError("'type' must be 'article.tags'", "type")
    article = payload.get("article")
    if not isinstance(article, dict):
        raise PayloadError("'article' is missing or not an object", "article")
    article_id = article.get("id")
    if isinstance(article_id, bool) or not isinstance(article_id, (str, int)) or article_id == "":
        raise PayloadError("'article.id' is missing or not a string/integer", "article.id")
    revision = article.get("revision")
    if isinstance(revision, bool) or not isinstance(revision, int) or revision < 0:
        raise PayloadError("'article.revision' is missing or not a non-negative integer", "article.revision")
    suggested = payload.get("suggested") or {}
    if not isinstance(suggested, dict):
        raise PayloadError("'suggested' is not an object", "suggested")
    return TagCallback(
        event_id=str(payload.get("event_id") or ""),
        article_id=article_id,
        revision=revision,
        model_version=str(payload.get("model_version") or "")[:100],
        reason=str(payload.get("reason") or ("retag" if str(payload.get("event_id", "")).startswith("retag-") else ""))[:20],
        applied=_tags(payload.get("topics"), TOPIC, "topics") + _tags(payload.get("regions"), REGION, "regions"),
        suggested=_tags(suggested.get("topics"), TOPIC, "suggested.topics") + _tags(suggested.get("regions"), REGION, "suggested.regions"),
    )


def _tags(items: object, kind: str, where: str) -> tuple[TagIn, ...]:
    if items is None:
        return ()
    if not isinstance(items, list):
        raise PayloadError(f"'{where}' is not a list", where)
    tags = []
    key = "tag" if kind == TOPIC else "code"
    for index, item in enumerate(items):
        at = f"{where}[{index}]"
        if not isinstance(item, dict) or not isinstance(item.get(key), str) or not item[key] or len(item[key]) > 100:
            raise PayloadError(f"'{at}.{key}' is missing or not a short string", f"{at}.{key}")
        score = item.get("score")
        if score is not None and (isinstance(score, bool) or not isinstance(score, (int, float)) or not math.isfinite(score)):
            raise PayloadError(f"'{at}.score' is not a number or null", f"{at}.score")
        evidence = item.get("evidence") or []
        if not isinstance(evidence, list):
            raise PayloadError(f"'{at}.evidence' is not a list", f"{at}.evidence")
        by = BY_EDITOR if item.get("by") == BY_EDITOR else BY_MODEL
        tags.append(TagIn(kind, item[key], str(item.get("name") or "")[:200], None if score is None else float(score),
                          [str(e)[:200] for e in evidence][:20], by))
    return tuple(tags)


def apply_callback(webhook_id: str, callback: TagCallback, payload: dict, conf: AutotagSettings) -> str:
    """Apply once per webhook-id; returns what happened (applied, duplicate, older, unpublished, no-page)."""
    try:
        with transaction.atomic():
            if ReceivedCallback.objects.filter(webhook_id=webhook_id).exists():
                return DUPLICATE
            page_id = conf.page_id(callback.article_id)
            page = Page.objects.filter(pk=page_id).first() if page_id is not None else None
            outcome = NO_PAGE if page is None else _apply_to_page(page, callback, conf)
            ReceivedCallback.objects.create(webhook_id=webhook_id, event_id=callback.event_id, article_id=str(callback.article_id),
                                            page_id=page.pk if page else None, revision=callback.revision, reason=callback.reason,
                                            outcome=outcome, payload=payload)
            return outcome
    except IntegrityError:  # the same webhook-id applied concurrently by another request
        if ReceivedCallback.objects.filter(webhook_id=webhook_id).exists():
            return DUPLICATE
        raise


def _apply_to_page(page: Page, callback: TagCallback, conf: AutotagSettings) -> str:
    state, _ = PageTagState.objects.select_for_update().get_or_create(page=page)
    if state.applied_revision is not None and callback.revision < state.applied_revision:
        return OLDER
    if state.unpublished_revision is not None and callback.revision <= state.unpublished_revision:
        return UNPUBLISHED
    merge_tags(page, callback)
    state.applied_revision = callback.revision
    state.applied_event_id = callback.event_id[:200]
    state.applied_at = timezone.now()
    state.model_version = callback.model_version
    state.save()
    from .mirror import sync_mirror

    sync_mirror(page.specific, conf)
    return APPLIED


def merge_tags(page: Page, callback: TagCallback) -> None:
    """The callback's tags onto the page's rows, editors' decisions kept."""
    now = timezone.now()
    rows = {(row.kind, row.tag): row for row in PageTag.objects.filter(page=page)}
    given = set()
    for status, tags in ((PageTag.APPLIED, callback.applied), (PageTag.SUGGESTED, callback.suggested)):
        for tag in tags:
            key = (tag.kind, tag.tag)
            if key in given:
                continue
            given.add(key)
            row = rows.get(key)
            if row is not None and row.by == BY_EDITOR:
                # the editor's decision stands; the model's latest view is kept beside it
                row.score, row.evidence, row.updated_at = tag.score if tag.score is not None else row.score, tag.evidence or row.evidence, now
                if tag.name:
                    row.name = tag.name
                row.save()
                continue
            if row is None:
                row = PageTag(page=page, kind=tag.kind, tag=tag.tag)
            row.name, row.score, row.evidence = tag.name, tag.score, tag.evidence
            row.by = tag.by if status == PageTag.APPLIED else BY_MODEL
            row.status, row.revision, row.updated_at = status, callback.revision, now
            row.save()
    for key, row in rows.items():
        if key not in given and row.by == BY_MODEL:
            row.delete()  # the model no longer gives it, and no editor decided on it
