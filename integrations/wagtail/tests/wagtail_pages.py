"""Helpers for the plugin's tests: articles from the repository's own files, pages made and
published through Wagtail's publish path, and waiting for the service's callback to land."""

from __future__ import annotations

import json
import time
from pathlib import Path

from wagtail.rich_text import RichText

REPO = Path(__file__).resolve().parents[3]


def sample(article_id: str) -> dict:
    """An article from the plugin tests' own articles, examples/articles.jsonl or the shipped
    training corpus, by id. The tests' own hold an article whose sanctions score sits in the
    review band of the shipped model (a suggestion to accept): corpus articles, learned by the
    model, score at the extremes."""
    for path in [Path(__file__).with_name("articles.jsonl"), REPO / "examples" / "articles.jsonl",
                 *sorted((REPO / "models" / "corpus").glob("*.jsonl"))]:
        for line in path.read_text(encoding="utf-8").splitlines():
            record = json.loads(line)
            if record["id"] == article_id:
                return record
    raise KeyError(article_id)


def make_page(parent, record: dict, publish: bool = True):
    from wagtail_autotag.demo.models import ArticlePage

    page = parent.add_child(instance=ArticlePage(title=record["title"], slug=f"a-{time.monotonic_ns()}",
                                                 body=[("paragraph", RichText(record["body"]))]))
    if publish:
        page.save_revision().publish()
        page.refresh_from_db()
    return page


def republish(page, record: dict):
    """A new revision with this article's text, published through Wagtail."""
    page.title = record["title"]
    page.body = [("paragraph", RichText(record["body"]))]
    revision = page.save_revision()
    revision.publish()
    page.refresh_from_db()
    return revision


def wait_for_tags(page, revision_id: int | None = None, timeout: float = 30.0):
    """The page's tag state once the callback for `revision_id` (default: the live one) is applied."""
    from wagtail_autotag.models import PageTagState

    revision_id = revision_id or page.live_revision_id
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = PageTagState.objects.filter(page_id=page.pk).first()
        if state and state.applied_revision == revision_id:
            return state
        time.sleep(0.1)
    raise AssertionError(f"no tags for page {page.pk} revision {revision_id} within {timeout}s")


def wait_for(predicate, timeout: float = 30.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"{what} not met within {timeout}s")


def page_tags(page) -> dict:
    """The page's tags as `autotag tag` prints them: topics, regions, suggested (tag, by) pairs."""
    from wagtail_autotag.models import PageTag

    rows = PageTag.objects.filter(page_id=page.pk)
    pick = lambda status, kind: sorted(r.tag for r in rows if r.status == status and r.kind == kind)
    return {"topics": pick("applied", "topic"), "regions": pick("applied", "region"),
            "suggested": {"topics": pick("suggested", "topic"), "regions": pick("suggested", "region")}}


def tool_tags(result: dict) -> dict:
    """The same shape from an `autotag tag` or callback result."""
    return {"topics": sorted(t["tag"] for t in result["topics"]), "regions": sorted(r["code"] for r in result["regions"]),
            "suggested": {"topics": sorted(t["tag"] for t in result["suggested"]["topics"]),
                          "regions": sorted(r["code"] for r in result["suggested"]["regions"])}}
