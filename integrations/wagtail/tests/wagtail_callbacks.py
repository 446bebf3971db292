"""Signed callbacks made by the tests themselves, for the refusal and ordering cases."""

from __future__ import annotations

import json
import secrets
from datetime import datetime, timedelta, timezone

import httpx
from standardwebhooks.webhooks import Webhook


def callback_payload(page, revision: int, topics=(), regions=(), suggested=None, event_id=None) -> dict:
    from wagtail_autotag.conf import get_settings

    return {"type": "article.tags", "event_id": event_id or f"evt-test-{secrets.token_hex(3)}",
            "article": {"id": get_settings().article_id(page.pk), "revision": revision}, "model_version": "test",
            "topics": list(topics), "regions": list(regions), "suggested": suggested or {"topics": [], "regions": []}}


def signed_headers(secret: str, raw: str, webhook_id: str, at: datetime | None = None) -> dict:
    at = at or datetime.now(timezone.utc)
    return {"webhook-id": webhook_id, "webhook-timestamp": str(int(at.timestamp())),
            "webhook-signature": Webhook(secret).sign(webhook_id, at, raw), "content-type": "application/json"}


def post_signed_callback(base_url: str, secret: str, page, revision: int, *, webhook_id=None, at=None, **fields) -> httpx.Response:
    raw = json.dumps(callback_payload(page, revision, **fields))
    headers = signed_headers(secret, raw, webhook_id or f"msg_{secrets.token_hex(8)}", at)
    return httpx.post(base_url + "/autotag/callback/", content=raw, headers=headers, timeout=10)


STALE = timedelta(minutes=10)
