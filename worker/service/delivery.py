"""Signed callbacks: Standard Webhooks signatures, the private-address guard, one HTTP attempt.

One attempt either succeeds, fails for good (a 4xx other than 408/429: retrying cannot help)
or fails for now (connection error, timeout, 5xx, 408, 429 with its Retry-After). The retry
schedule itself lives in the ledger (Redis), not here.
"""

from __future__ import annotations

import http.client
import ipaddress
import json
import random
import socket
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit

from standardwebhooks.webhooks import Webhook

from ..errors import DeliveryError
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


def check_callback_target(url: str, *, allow_private: bool, allow_networks: tuple = ()) -> str | None:
    """Refuse a callback whose host is, or resolves to, a private, loopback, link-local or
    otherwise non-public address, unless the client's config allows it: all of them
    (`allow_private_callback`) or those within its `callback_allow_networks`. Returns the
    checked address to connect to (None when private targets are allowed: connect by name), so
    a second DNS answer cannot swap in another address between the check and the connection.
    Run at every delivery, not only at start: DNS answers change."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise DeliveryError(f"callback URL {url!r} is not an http(s) URL", permanent=True)
    if allow_private:
        return None
    try:
        infos = socket.getaddrinfo(parts.hostname, parts.port or (443 if parts.scheme == "https" else 80), proto=socket.IPPROTO_TCP)
    except socket.gaierror as exc:
        raise DeliveryError(f"callback host {parts.hostname!r} does not resolve: {exc}") from exc
    for info in infos:
        address = ipaddress.ip_address(info[4][0].split("%")[0])
        if any(address in network for network in allow_networks):
            continue
        if not address.is_global or address.is_multicast:
            outside = f" outside its callback_allow_networks ({', '.join(map(str, allow_networks))})" if allow_networks else ""
            raise DeliveryError(
                f"callback host {parts.hostname!r} resolves to non-public address {address}{outside}; "
                "add its network to the client's callback_allow_networks (e.g. [\"10.0.0.0/8\"]) to permit it",
                permanent=True,
            )
    return infos[0][4][0]


class _PinnedHTTPConnection(http.client.HTTPConnection):
    """Connects to a checked address while naming the host in the request (Host header)."""

    def __init__(self, host, port=None, *, address: str | None, timeout: float):
        super().__init__(host, port, timeout=timeout)
        self.address = address

    def connect(self):
        self.sock = socket.create_connection((self.address or self.host, self.port), self.timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """TLS to a checked address, with the host name for SNI and certificate verification."""

    def __init__(self, host, port=None, *, address: str | None, timeout: float):
        super().__init__(host, port, timeout=timeout)
        self.address = address

    def connect(self):
        sock = socket.create_connection((self.address or self.host, self.port), self.timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)


class CallbackSession:
    """Keep-alive HTTP/1.1 connections to callback hosts, one per host, on the standard
    library's http.client: a third of a full-featured client's cost per request, and it never
    follows a redirect. A connection the server closed while idle is reopened once."""

    def __init__(self):
        self._connections: dict[tuple, http.client.HTTPConnection] = {}

    def post(self, url: str, body: bytes, headers: dict, timeout: float, address: str | None = None) -> tuple[int, http.client.HTTPMessage]:
        parts = urlsplit(url)
        key = (parts.scheme, parts.hostname, parts.port, address)
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        for fresh in (False, True):
            connection = self._connections.get(key)
            reused = connection is not None and not fresh
            if connection is None or fresh:
                self._drop(key)
                kind = _PinnedHTTPSConnection if parts.scheme == "https" else _PinnedHTTPConnection
                connection = self._connections[key] = kind(parts.hostname, parts.port, address=address, timeout=timeout)
            connection.timeout = timeout
            try:
                connection.request("POST", path, body=body, headers=headers)
                response = connection.getresponse()
                response.read()
                if response.will_close:
                    self._drop(key)
                return response.status, response.headers
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                self._drop(key)
                if reused:
                    continue  # the server closed an idle connection: once more on a new one
                raise
            except BaseException:
                self._drop(key)
                raise
        raise AssertionError("unreachable")

    def close(self) -> None:
        for key in list(self._connections):
            self._drop(key)

    def _drop(self, key) -> None:
        connection = self._connections.pop(key, None)
        if connection is not None:
            connection.close()


def post_callback(client: Client, message_id: str, payload: dict, *, timeout: float, session: CallbackSession | None = None) -> int:
    """One signed POST of `payload` to the client's callback URL; returns the 2xx status."""
    address = check_callback_target(client.callback_url, allow_private=client.allow_private_callback,
                                     allow_networks=client.callback_allow_networks)
    body = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
    headers = {"content-type": "application/json", "user-agent": _USER_AGENT, **sign(client.callback_secret, message_id, body)}
    owner = session is None
    session = session or CallbackSession()
    try:
        status, response_headers = session.post(client.callback_url, body.encode("utf-8"), headers, timeout, address)
    except (socket.timeout, TimeoutError) as exc:
        raise DeliveryError(f"callback timed out after {timeout:g}s") from exc
    except (OSError, http.client.HTTPException) as exc:
        raise DeliveryError(f"callback failed: {type(exc).__name__}: {exc}") from exc
    finally:
        if owner:
            session.close()
    if 200 <= status < 300:
        return status
    if 300 <= status < 400:
        # a redirect could lead anywhere, private addresses included: never followed
        raise DeliveryError(f"callback answered {status} (redirects are not followed)", status_code=status, permanent=True)
    if status in (408, 429) or status >= 500:
        raise DeliveryError(f"callback answered {status}", status_code=status, retry_after=_retry_after(response_headers.get("retry-after")))
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
