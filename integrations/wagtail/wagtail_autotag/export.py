"""The re-tag export (`autotag retag`'s input): one JSON line per live page of the tagged models,
with the tags the page holds now, editors' marks, and what editors removed."""

from __future__ import annotations

import json
from typing import IO, Iterator

from wagtail.models import Page

from .article import page_article
from .conf import AutotagSettings
from .models import BY_EDITOR, TOPIC, PageTag


def export_lines(conf: AutotagSettings) -> Iterator[dict]:
    for label in conf.page_models:
        model = _model(label)
        for page in model.objects.live().order_by("pk").iterator(chunk_size=200):
            yield export_record(page, conf)


def export_record(page, conf: AutotagSettings) -> dict:
    record = page_article(page, page.live_revision_id or page.latest_revision_id or 0, conf)
    rows = PageTag.objects.filter(page_id=page.pk).order_by("kind", "tag")
    current = {"topics": [], "regions": [], "removed_by_editor": {"topics": [], "regions": []}}
    for row in rows:
        group = "topics" if row.kind == TOPIC else "regions"
        if row.status == PageTag.APPLIED:
            current[group].append({"tag": row.tag, "by": row.by} if row.kind == TOPIC else {"code": row.tag, "by": row.by})
        elif row.status == PageTag.REMOVED and row.by == BY_EDITOR:
            current["removed_by_editor"][group].append(row.tag)
    record["current_tags"] = current
    return record


def write_export(out: IO[str], conf: AutotagSettings) -> int:
    count = 0
    for record in export_lines(conf):
        out.write(json.dumps(record, ensure_ascii=False) + "\n")
        count += 1
    return count


def _model(label: str):
    from django.apps import apps

    model = apps.get_model(label)
    if not issubclass(model, Page):
        raise ValueError(f"AUTOTAG['PAGE_MODELS'] names {label}, which is not a Wagtail page model")
    return model
