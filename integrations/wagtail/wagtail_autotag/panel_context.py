"""What the editor's panel shows for a page: its tags grouped by kind, suggestions, editors'
removals, the draft preview, and the outbox's state for the page."""

from __future__ import annotations

from django.urls import reverse

from .conf import AutotagSettings
from .models import BY_EDITOR, REGION, TOPIC, OutboxMessage, PageTag, PageTagState, TagDecision


def panel_context(page, conf: AutotagSettings, message: str = "", error: str = "") -> dict:
    if page is None or page.pk is None:
        return {"unsaved": True}
    rows = list(PageTag.objects.filter(page_id=page.pk))
    state = PageTagState.objects.filter(page_id=page.pk).first()
    applied = [r for r in rows if r.status == PageTag.APPLIED]
    on_page = {(r.kind, r.tag) for r in applied}
    removed_keys = {(r.kind, r.tag) for r in rows if r.status == PageTag.REMOVED}
    by_score = lambda r: (-(r.score if r.score is not None else 2), r.tag)  # editor-added (no score) first
    preview = []
    if state and state.preview:
        for group, kind, key in (("topics", TOPIC, "tag"), ("regions", REGION, "code")):
            for sure, items in ((True, state.preview.get(group, [])), (False, state.preview.get("suggested", {}).get(group, []))):
                for item in items:
                    preview.append({"kind": kind, "tag": item.get(key), "name": item.get("name", ""), "score": item.get("score"),
                                    "evidence": item.get("evidence", []), "sure": sure, "by": item.get("by", "model"),
                                    "on_page": (kind, item.get(key)) in on_page, "removed": (kind, item.get(key)) in removed_keys})
    pending = OutboxMessage.objects.filter(page_id=page.pk, status=OutboxMessage.PENDING)
    failed = OutboxMessage.objects.filter(page_id=page.pk, status=OutboxMessage.FAILED).order_by("-id")[:3]
    known_topics = sorted(set(conf.topics) | set(PageTag.objects.filter(kind=TOPIC).values_list("tag", flat=True).distinct()[:500]))
    return {
        "page": page,
        "state": state,
        "topics": sorted((r for r in applied if r.kind == TOPIC), key=by_score),
        "regions": sorted((r for r in applied if r.kind == REGION), key=by_score),
        "suggested": sorted((r for r in rows if r.status == PageTag.SUGGESTED), key=lambda r: (r.kind != TOPIC, *by_score(r))),
        "removed": sorted((r for r in rows if r.status == PageTag.REMOVED), key=lambda r: (r.kind, r.tag)),
        "preview": preview,
        "pending_events": pending.filter(kind=OutboxMessage.EVENT).count(),
        "pending_feedback": pending.filter(kind=OutboxMessage.FEEDBACK).count(),
        "failed": failed,
        "recent_decisions": TagDecision.objects.filter(page_id=page.pk).select_related("user")[:5],
        "known_topics": known_topics,
        "action_url": reverse("wagtail_autotag:panel_action", args=[page.pk]),
        "message": message,
        "error": error,
        "BY_EDITOR": BY_EDITOR,
    }
