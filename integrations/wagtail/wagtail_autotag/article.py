"""A page as the service's `article`: id, revision, title, and the body fields rendered to HTML
(StreamField blocks and RichText expanded as the site renders them; plain text as paragraphs)."""

from __future__ import annotations

from django.utils.html import escape
from wagtail.blocks import StreamValue
from wagtail.fields import RichTextField, StreamField
from wagtail.rich_text import RichText, expand_db_html

from .conf import AutotagSettings


def page_article(page, revision_id: int | None, conf: AutotagSettings) -> dict:
    article = {"id": conf.article_id(page.pk), "title": page.title, "body": page_body(page, conf)}
    if revision_id is not None:
        article["revision"] = revision_id
    url = _full_url(page)
    if url:
        article["url"] = url
    locale = getattr(page, "locale", None)
    if locale is not None and getattr(locale, "language_code", None):
        article["language"] = locale.language_code
    return article


def page_body(page, conf: AutotagSettings) -> str:
    parts = []
    for name in conf.fields_for(type(page)):
        try:
            field = page._meta.get_field(name)
        except Exception:
            field = None
        value = getattr(page, name, None)
        if value in (None, ""):
            continue
        if isinstance(field, RichTextField):
            parts.append(expand_db_html(value))
        elif isinstance(field, StreamField) or isinstance(value, StreamValue):
            parts.extend(_render_stream(value))
        else:
            parts.append(render_value(value))
    return "\n".join(part for part in parts if part.strip())


def _render_stream(stream) -> list[str]:
    return [render_value(child.render()) if not isinstance(child.value, (str, RichText)) else render_value(child.value)
            for child in stream]


def render_value(value) -> str:
    if isinstance(value, RichText):
        return value.__html__()
    text = str(value)
    if hasattr(value, "__html__"):
        return value.__html__()
    if "<" in text and ">" in text:  # a block that rendered HTML through its template
        return text
    return "".join(f"<p>{escape(paragraph.strip())}</p>" for paragraph in text.split("\n\n") if paragraph.strip())


def _full_url(page) -> str | None:
    try:
        url = page.get_full_url()
    except Exception:  # a page outside any Site has no URL; the article needs none
        return None
    return url if url and url.startswith(("http://", "https://")) else None
