"""Wagtail's publish and unpublish signals -> outbox events, for the configured page models.

A page that is only scheduled (not live yet) is skipped: `publish_scheduled` sends the signal
again when it goes live. Nothing here publishes or saves a revision, so no loop can start.
"""

from __future__ import annotations

import secrets

from django.utils import timezone
from wagtail.signals import page_published, page_unpublished

from . import outbox
from .article import page_article
from .conf import get_settings
from .models import OutboxMessage, PageTagState


def connect() -> None:
    page_published.connect(on_page_published, dispatch_uid="wagtail_autotag.published")
    page_unpublished.connect(on_page_unpublished, dispatch_uid="wagtail_autotag.unpublished")


def on_page_published(sender, instance, revision=None, **kwargs) -> None:
    conf = get_settings()
    if not conf.tags_model(type(instance)) or not instance.live:
        return
    revision_id = revision.pk if revision is not None else instance.live_revision_id
    already = OutboxMessage.objects.filter(kind=OutboxMessage.EVENT, page_id=instance.pk,
                                           payload__type__in=["article.published", "article.updated"]).exists()
    event_type = "article.updated" if already else "article.published"
    _queue_event(instance, event_type, page_article(instance, revision_id, conf))
    from .mirror import sync_mirror  # the publish reset the site's taggit field to the revision's

    sync_mirror(instance, conf)


def on_page_unpublished(sender, instance, **kwargs) -> None:
    conf = get_settings()
    if not conf.tags_model(type(instance)):
        return
    revision_id = instance.latest_revision_id or 0
    PageTagState.objects.update_or_create(page_id=instance.pk, defaults={"unpublished_revision": revision_id})
    _queue_event(instance, "article.unpublished", {"id": conf.article_id(instance.pk), "revision": revision_id})


def _queue_event(page, event_type: str, article: dict) -> None:
    event_id = f"wagtail-{page.pk}-{article['revision']}-{event_type.split('.')[1]}-{secrets.token_hex(4)}"
    payload = {"id": event_id, "type": event_type, "occurred_at": timezone.now().isoformat(), "article": article}
    outbox.queue(OutboxMessage.EVENT, event_id, payload, page.pk)
