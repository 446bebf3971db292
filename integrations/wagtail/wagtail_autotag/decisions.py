"""Editors' decisions on a page's tags: accept or reject a suggestion, remove a tag, add one.

Each decision changes the page's rows, is recorded (TagDecision and Wagtail's audit log) and is
queued for the service's /v1/feedback through the outbox, all in one transaction.
"""

from __future__ import annotations

import re
import secrets

from django.db import transaction
from django.utils import timezone
from wagtail.log_actions import log

from . import outbox
from .conf import AutotagSettings
from .countries import country_name, near_miss
from .models import BY_EDITOR, REGION, TOPIC, OutboxMessage, PageTag, PageTagState, TagDecision

_TOPIC = re.compile(r"^[a-z0-9][a-z0-9-]{0,99}$")
_REGION = re.compile(r"^[A-Z]{2}$")
ACTIONS = {"accept": TagDecision.ACCEPTED, "reject": TagDecision.REJECTED, "remove": TagDecision.REJECTED, "add": TagDecision.ADDED}
LOG_ACTIONS = {TagDecision.ACCEPTED: "wagtail_autotag.accept", TagDecision.REJECTED: "wagtail_autotag.reject",
               TagDecision.ADDED: "wagtail_autotag.add"}


class DecisionError(ValueError):
    """An editor's request that cannot be carried out; the message is shown to the editor."""


def clean_tag(kind: str, tag: str, conf: AutotagSettings) -> str:
    tag = (tag or "").strip()
    if kind == TOPIC:
        tag = tag.lower()
        if not _TOPIC.match(tag):
            raise DecisionError("A topic is a lower-case label such as arms-deals.")
        if conf.topics and tag not in conf.topics:
            raise DecisionError(f"'{tag}' is not one of the topics: {', '.join(conf.topics)}.")
    elif kind == REGION:
        tag = tag.upper()
        if not _REGION.match(tag):
            raise DecisionError("A region is a two-letter country code such as FR.")
        if country_name(tag) is None:
            meant = near_miss(tag)
            hint = f" Did you mean {meant} ({country_name(meant)})?" if meant else ""
            raise DecisionError(f"{tag} is not a country code (ISO 3166-1 alpha-2).{hint}")
    else:
        raise DecisionError("Choose topic or region.")
    return tag


@transaction.atomic
def decide(page, user, action: str, kind: str, tag: str, conf: AutotagSettings) -> TagDecision:
    if action not in ACTIONS:
        raise DecisionError(f"Unknown action {action!r}.")
    tag = clean_tag(kind, tag, conf)
    decision = ACTIONS[action]
    row = PageTag.objects.select_for_update().filter(page=page, kind=kind, tag=tag).first()
    in_preview, preview_score, preview_evidence = _from_preview(page, kind, tag)
    offered = (row is not None and row.status != PageTag.REMOVED) or (row is None and in_preview)
    if action == "accept" and not offered:
        raise DecisionError(f"There is no suggestion {tag} to accept.")
    if action in ("reject", "remove") and not offered:
        raise DecisionError(f"{tag} is not on the page.")
    if action == "add" and row is not None and row.status == PageTag.APPLIED:
        raise DecisionError(f"{tag} is already on the page.")
    if action == "accept" and row.status == PageTag.APPLIED and row.by == BY_EDITOR:
        raise DecisionError(f"{tag} is already on the page.")
    if row is None:
        row = PageTag(page=page, kind=kind, tag=tag, score=preview_score, evidence=preview_evidence or [])
    if kind == REGION and not row.name:
        row.name = country_name(tag) or ""
    row.status = PageTag.REMOVED if decision == TagDecision.REJECTED else PageTag.APPLIED
    row.by, row.updated_at = BY_EDITOR, timezone.now()
    state = PageTagState.objects.filter(page=page).first()
    revision = (state.applied_revision if state and state.applied_revision is not None else None) or page.live_revision_id \
        or page.latest_revision_id or 0
    row.revision = revision
    row.save()
    editor = f"u{user.pk}" if user is not None and user.pk is not None else "unknown"
    record = TagDecision.objects.create(page=page, kind=kind, tag=tag, decision=decision, user=user, editor=editor,
                                        revision=revision, score=row.score)
    feedback_id = f"wagtail-fb-{page.pk}-{record.pk}-{secrets.token_hex(4)}"
    entry = {"kind": kind, "tag": tag, "decision": decision, "editor": editor}
    if row.score is not None and 0 <= row.score <= 1:
        entry["score"] = row.score
    payload = {"id": feedback_id, "article": {"id": conf.article_id(page.pk), "revision": revision}, "decisions": [entry]}
    if state and state.model_version:
        payload["model_version"] = state.model_version
    record.outbox = outbox.queue(OutboxMessage.FEEDBACK, feedback_id, payload, page.pk)
    record.save(update_fields=["outbox"])
    log(instance=page, action=LOG_ACTIONS[decision], user=user,
        data={"kind": kind, "tag": tag, "decision": decision, "revision": revision, "score": row.score})
    from .mirror import sync_mirror

    sync_mirror(page.specific, conf)
    return record


def _from_preview(page, kind: str, tag: str):
    """The score and evidence a draft preview gave the tag, for a tag added from the preview."""
    state = PageTagState.objects.filter(page=page).first()
    if not state or not state.preview:
        return False, None, None
    result = state.preview
    key = "tag" if kind == TOPIC else "code"
    group = "topics" if kind == TOPIC else "regions"
    for item in [*result.get(group, []), *result.get("suggested", {}).get(group, [])]:
        if item.get(key) == tag:
            return True, item.get("score"), item.get("evidence")
    return False, None, None
