"""HTTP to the autotag service: bearer token, optional Standard Webhooks signature, one attempt.

An attempt answers with the status and JSON, or raises ServiceUnavailable (connection error,
timeout) so the outbox can tell "try later" from "refused".
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime

import httpx
from standardwebhooks.webhooks import Webhook

from .conf import AutotagSettings


class ServiceUnavailable(Exception):
    """The service could not be reached (connection refused, timeout, broken response)."""


@dataclass(frozen=True)
class Answer:
    status: int
    body: dict
    retry_after: float | None

    @property
    def error(self) -> str:
        message = self.body.get("error") or f"HTTP {self.status}"
        return f"{message} (field {self.body['field']})" if self.body.get("field") else message


def post(conf: AutotagSettings, path: str, payload: dict, message_id: str | None = None) -> Answer:
    raw = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
    headers = {"authorization": f"Bearer {conf.token}", "content-type": "application/json", "user-agent": "wagtail-autotag/0.1"}
    if conf.client_id:
        headers["x-autotag-client"] = conf.client_id
    if conf.signing_secret:
        webhook_id = message_id or "msg_" + secrets.token_hex(12)
        now = datetime.now(timezone.utc)
        headers.update({"webhook-id": webhook_id, "webhook-timestamp": str(int(now.timestamp())),
                        "webhook-signature": Webhook(conf.signing_secret).sign(webhook_id, now, raw)})
    try:
        response = httpx.post(conf.service_url + path, content=raw.encode("utf-8"), headers=headers, timeout=conf.timeout)
    except httpx.HTTPError as exc:
        raise ServiceUnavailable(f"{type(exc).__name__}: {exc}") from exc
    try:
        body = response.json()
    except ValueError:
        body = {"error": response.text[:200]}
    return Answer(response.status_code, body if isinstance(body, dict) else {"answer": body},
                  _retry_after(response.headers.get("retry-after")))


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        try:
            return max(0.0, (parsedate_to_datetime(value) - datetime.now(timezone.utc)).total_seconds())
        except (TypeError, ValueError):
            return None
