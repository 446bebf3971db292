"""Signed callbacks: Standard Webhooks signatures, the private-address guard, one HTTP attempt.

One attempt either succeeds, fails for good (a 4xx other than 408/429: retrying cannot help)
or fails for now (connection error, timeout, 5xx, 408, 429 with its Retry-After). The retry
schedule itself lives in the ledger (Redis), not here.
"""

from __future__ import annotations

import ipaddress
import json
import random
import socket
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit

import httpx
from standardwebhooks.webhooks import Webhook

from .errors import DeliveryError
from .settings import Client

_USER_AGENT = "autotag-webhooks/1"


def sign(secret: str, message_id: str, body: str, now: datetime | None = None) -> dict[str, str]:
    """Standard Webhooks headers for `body`; the same message id on every retry."""
    timestamp = now or datetime.now(timezone.utc)
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(int(timestamp.timestamp())),
        "webhook-signature": Webhook(secret).sign(message_id, timestamp, body),
    }


def check_callback_target(url: str, *, allow_private: bool) -> None:
    """Refuse a callback whose host is, or resolves to, a private, loopback, link-local or
    otherwise non-public address, unless the client's config explicitly allows it."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise DeliveryError(f"callback URL {url!r} is not an http(s) URL", permanent=True)
    if allow_private:
        return
    try:
        infos = socket.getaddrinfo(parts.hostname, parts.port or (443 if parts.scheme == "https" else 80), proto=socket.IPPROTO_TCP)
    except socket.gaierror as exc:
        raise DeliveryError(f"callback host {parts.hostname!r} does not resolve: {exc}") from exc
    for info in infos:
        address = ipaddress.ip_address(info[4][0].split("%")[0])
        if not address.is_global or address.is_multicast:
            raise DeliveryError(
                f"callback host {parts.hostname!r} resolves to non-public address {address}; "
                "set allow_private_callback = true for this client to permit it",
                permanent=True,
            )


def post_callback(client: Client, message_id: str, payload: dict, *, timeout: float, http: httpx.Client | None = None) -> int:
    """One signed POST of `payload` to the client's callback URL; returns the 2xx status."""
    check_callback_target(client.callback_url, allow_private=client.allow_private_callback)
    body = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
    headers = {"content-type": "application/json", "user-agent": _USER_AGENT, **sign(client.callback_secret, message_id, body)}
    owner = http is None
    http = http or httpx.Client(timeout=timeout, follow_redirects=False)
    try:
        response = http.post(client.callback_url, content=body.encode("utf-8"), headers=headers, timeout=timeout)
    except httpx.TimeoutException as exc:
        raise DeliveryError(f"callback timed out after {timeout:g}s") from exc
    except httpx.HTTPError as exc:
        raise DeliveryError(f"callback failed: {type(exc).__name__}: {exc}") from exc
    finally:
        if owner:
            http.close()
    status = response.status_code
    if 200 <= status < 300:
        return status
    if 300 <= status < 400:
        # a redirect could lead anywhere, private addresses included: never followed
        raise DeliveryError(f"callback answered {status} (redirects are not followed)", status_code=status, permanent=True)
    if status in (408, 429) or status >= 500:
        raise DeliveryError(f"callback answered {status}", status_code=status, retry_after=_retry_after(response.headers.get("retry-after")))
    raise DeliveryError(f"callback answered {status}: permanent", status_code=status, permanent=True)


def next_delay(attempt: int, delays: tuple[float, ...], jitter: float, retry_after: float | None = None, rng=random) -> float | None:
    """Seconds before try number `attempt + 1` (attempt counts failures so far), or None when
    the schedule is exhausted. A server's Retry-After wins when it asks for longer."""
    if attempt > len(delays):
        return None
    base = delays[attempt - 1]
    delay = base * (1 + rng.uniform(-jitter, jitter))
    return max(delay, retry_after or 0.0)


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
