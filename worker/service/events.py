"""The publish-event contract (see README) and its validation: raw bytes in, PublishEvent out;
the same article fields serve a preview (`POST /v1/tag`).

Every refusal is an EventError naming the field and the HTTP status to answer with, so the
CMS engineer reading the 4xx knows what to fix.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from datetime import datetime

from ..errors import EventError

EVENT_TYPES = ("article.published", "article.updated", "article.unpublished")
_MAX_ID_CHARS = 200
# the ledger's Lua scripts compare revisions as doubles: exact up to 2**53 - 1, no further
MAX_REVISION = 2**53 - 1
# JSON may escape half a UTF-16 pair ("\ud800"): no valid text, and Redis and the tagger refuse it
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


@dataclass(frozen=True)
class Article:
    id: str | int
    revision: int | None  # None only in a preview of a draft
    title: str
    body: str
    url: str | None = None
    language: str | None = None


@dataclass(frozen=True)
class PublishEvent:
    id: str
    type: str
    occurred_at: str
    article: Article

    @property
    def tags_wanted(self) -> bool:
        return self.type != "article.unpublished"

    def to_message(self, client_id: str, received_at: float) -> dict:
        """The JSON-safe task message the queue carries."""
        return {"client": client_id, "received_at": received_at, "event": asdict(self)}

    @classmethod
    def from_message(cls, event: dict) -> "PublishEvent":
        return cls(event["id"], event["type"], event["occurred_at"], Article(**event["article"]))


def parse_event(raw: bytes, *, max_body_bytes: int) -> PublishEvent:
    data = decode_object(raw, max_body_bytes=max_body_bytes, what="the event")
    event_id = _string(data, "id", "id")
    if len(event_id) > _MAX_ID_CHARS:
        raise EventError(f"'id' is longer than {_MAX_ID_CHARS} characters", field="id")
    event_type = _string(data, "type", "type")
    if event_type not in EVENT_TYPES:
        raise EventError(f"'type' must be one of {', '.join(EVENT_TYPES)}", field="type")
    occurred_at = _string(data, "occurred_at", "occurred_at")
    try:
        datetime.fromisoformat(occurred_at)
    except ValueError as exc:
        raise EventError("'occurred_at' must be an RFC 3339 timestamp", field="occurred_at") from exc
    article = parse_article_fields(data.get("article"), wants_text=event_type != "article.unpublished")
    return PublishEvent(id=event_id, type=event_type, occurred_at=occurred_at, article=article)


def parse_preview(raw: bytes, *, max_body_bytes: int) -> Article:
    """`POST /v1/tag`: {"article": {...}} as in an event; a draft may have no revision yet."""
    data = decode_object(raw, max_body_bytes=max_body_bytes, what="the request")
    return parse_article_fields(data.get("article"), wants_text=True, revision_required=False)


def decode_object(raw: bytes, *, max_body_bytes: int, what: str) -> dict:
    """Raw request bytes -> a JSON object, or the EventError to answer with."""
    if len(raw) > max_body_bytes:
        raise EventError(f"request body is {len(raw):,} bytes, over the {max_body_bytes:,}-byte limit", status=413)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise EventError(f"request body is not valid UTF-8 (byte 0x{raw[exc.start]:02x} at offset {exc.start})", status=400) from exc
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise EventError(f"malformed JSON: {exc.msg} at line {exc.lineno} column {exc.colno}", status=400) from exc
    except RecursionError as exc:
        raise EventError("malformed JSON: nested too deeply", status=400) from exc
    except ValueError as exc:  # an integer over Python's 4,300-digit conversion limit
        raise EventError(f"malformed JSON: {exc}", status=400) from exc
    if not isinstance(data, dict):
        raise EventError(f"{what} must be a JSON object", status=422)
    return data


def parse_article_id(article: object) -> str | int:
    """`article.id`: a non-empty string or an integer, at most 200 characters, valid Unicode."""
    if not isinstance(article, dict):
        raise EventError("'article' is missing or not an object", field="article")
    article_id = article.get("id")
    if isinstance(article_id, bool) or not isinstance(article_id, (str, int)) or article_id == "":
        raise EventError("'article.id' is missing or not a string/integer", field="article.id")
    if len(str(article_id)) > _MAX_ID_CHARS:
        raise EventError(f"'article.id' is longer than {_MAX_ID_CHARS} characters", field="article.id")
    if isinstance(article_id, str):
        _check_unicode(article_id, "article.id")
    return article_id


def parse_revision(article: dict, *, required: bool = True) -> int | None:
    revision = article.get("revision")
    if revision is None and not required:
        return None
    if isinstance(revision, bool) or not isinstance(revision, int) or revision < 0:
        raise EventError("'article.revision' is missing or not a non-negative integer", field="article.revision")
    if revision > MAX_REVISION:
        raise EventError(f"'article.revision' is over {MAX_REVISION:,}", field="article.revision")
    return revision


def parse_article_fields(article: object, *, wants_text: bool, revision_required: bool = True) -> Article:
    article_id = parse_article_id(article)
    revision = parse_revision(article, required=revision_required)
    title = _optional_string(article, "title", "article.title", required=wants_text)
    body = _optional_string(article, "body", "article.body", required=wants_text)
    if wants_text and not body.strip():
        raise EventError("'article.body' is empty", field="article.body")
    return Article(
        id=article_id,
        revision=revision,
        title=title or "",
        body=body or "",
        url=_optional_string(article, "url", "article.url", required=False),
        language=_optional_string(article, "language", "article.language", required=False),
    )


def _string(data: dict, key: str, field: str) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value:
        raise EventError(f"'{field}' is missing or not a non-empty string", field=field)
    return _check_unicode(value, field)


def _optional_string(data: dict, key: str, field: str, *, required: bool) -> str | None:
    value = data.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str):
        raise EventError(f"'{field}' is {'missing or ' if required else ''}not a string", field=field)
    return _check_unicode(value, field)


def _check_unicode(value: str, field: str) -> str:
    if _LONE_SURROGATE.search(value):
        raise EventError(f"'{field}' holds an unpaired UTF-16 surrogate (not valid Unicode)", field=field)
    return value
