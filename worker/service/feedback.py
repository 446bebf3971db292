"""The feedback contract (`POST /v1/feedback`): what editors decided about an article's tags.

    {"id": "fb-1", "article": {"id": "a-42", "revision": 3}, "model_version": "...",
     "decisions": [{"kind": "topic", "tag": "sanctions", "decision": "rejected", "editor": "u17"},
                   {"kind": "region", "tag": "FR", "decision": "added", "editor": "u17"}]}

`accepted`: a suggestion or a model tag an editor confirmed; `rejected`: one an editor removed;
`added`: a tag the model did not give. Every refusal is an EventError naming the field
(`decisions[0].decision`), like the event contract's.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from ..engine.decisions import REMOVED, SET
from ..errors import EventError
from .events import decode_object, parse_article_id, parse_revision

DECISIONS = ("accepted", "rejected", "added")
KINDS = ("topic", "region")
MAX_FEEDBACK_BYTES = 256 * 1024  # a thousand decisions fit ten times over
MAX_DECISIONS = 1000
_MAX_ID_CHARS = 200
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
# what a decision means for the article's tags from now on
EFFECT = {"accepted": SET, "added": SET, "rejected": REMOVED}
RESULT_KIND = {"topic": "topics", "region": "regions"}


@dataclass(frozen=True)
class Decision:
    kind: str  # topic | region
    tag: str  # a topic label, or an ISO 3166-1 alpha-2 code
    decision: str  # accepted | rejected | added
    editor: str | None = None
    score: float | None = None  # the score the CMS saw, used when the service has none


@dataclass(frozen=True)
class Feedback:
    id: str
    article_id: str | int
    revision: int
    model_version: str | None
    decisions: tuple[Decision, ...]


def parse_feedback(raw: bytes, *, topics: list[str], regions, max_body_bytes: int = MAX_FEEDBACK_BYTES) -> Feedback:
    """Validate a feedback body against the model's topic labels and the ISO country codes."""
    data = decode_object(raw, max_body_bytes=max_body_bytes, what="the feedback")
    feedback_id = _text(data.get("id"), "id", required=True)
    article = data.get("article")
    article_id = parse_article_id(article)
    revision = parse_revision(article)
    model_version = _text(data.get("model_version"), "model_version", required=False)
    entries = data.get("decisions")
    if not isinstance(entries, list) or not entries:
        raise EventError("'decisions' must be a non-empty list", field="decisions")
    if len(entries) > MAX_DECISIONS:
        raise EventError(f"'decisions' holds {len(entries):,} entries, over {MAX_DECISIONS:,}", field="decisions")
    decisions = tuple(_decision(entry, f"decisions[{index}]", topics, regions) for index, entry in enumerate(entries))
    return Feedback(feedback_id, article_id, revision, model_version, decisions)


def _decision(entry: object, where: str, topics: list[str], regions) -> Decision:
    if not isinstance(entry, dict):
        raise EventError(f"'{where}' must be an object", field=where)
    kind = entry.get("kind")
    if kind not in KINDS:
        raise EventError(f"'{where}.kind' must be one of {', '.join(KINDS)}", field=f"{where}.kind")
    tag = entry.get("tag")
    if kind == "topic" and tag not in topics:
        raise EventError(f"'{where}.tag' must be one of the model's topics ({', '.join(topics)})", field=f"{where}.tag")
    if kind == "region" and (not isinstance(tag, str) or tag not in regions):
        raise EventError(f"'{where}.tag' must be an ISO 3166-1 alpha-2 country code such as FR", field=f"{where}.tag")
    decision = entry.get("decision")
    if decision not in DECISIONS:
        raise EventError(f"'{where}.decision' must be one of {', '.join(DECISIONS)}", field=f"{where}.decision")
    editor = _text(entry.get("editor"), f"{where}.editor", required=False)
    score = entry.get("score")
    if score is not None and (isinstance(score, bool) or not isinstance(score, (int, float)) or not math.isfinite(score) or not 0 <= score <= 1):
        raise EventError(f"'{where}.score' must be a number from 0 to 1", field=f"{where}.score")
    return Decision(kind, tag, decision, editor, None if score is None else float(score))


def _text(value: object, field: str, *, required: bool) -> str | None:
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value:
        raise EventError(f"'{field}' is {'missing or ' if required else ''}not a non-empty string", field=field)
    if len(value) > _MAX_ID_CHARS:
        raise EventError(f"'{field}' is longer than {_MAX_ID_CHARS} characters", field=field)
    if _LONE_SURROGATE.search(value):
        raise EventError(f"'{field}' holds an unpaired UTF-16 surrogate (not valid Unicode)", field=field)
    return value
