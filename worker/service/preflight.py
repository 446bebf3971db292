"""Checks run before the service takes traffic: each client's callback host resolves, and only
into addresses its config allows. A misconfigured callback is named at start (and by `autotag
check`), not found in the dead letters after the first publish; delivery checks again, since
DNS answers change."""

from __future__ import annotations

import socket
from urllib.parse import urlsplit

from ..errors import DeliveryError
from .delivery import check_callback_target
from .settings import Settings


def callback_problems(settings: Settings) -> list[str]:
    """One line per client whose callback host does not resolve, or resolves outside what the
    client allows (public addresses, its callback_allow_networks, or anything with
    allow_private_callback)."""
    problems = []
    for client in settings.clients:
        try:
            if client.allow_private_callback:
                _resolve(client.callback_url)
            else:
                check_callback_target(client.callback_url, allow_private=False, allow_networks=client.callback_allow_networks)
        except DeliveryError as exc:
            problems.append(f"client {client.id!r}: {exc}")
    return problems


def _resolve(url: str) -> None:
    parts = urlsplit(url)
    try:
        socket.getaddrinfo(parts.hostname, parts.port or (443 if parts.scheme == "https" else 80), proto=socket.IPPROTO_TCP)
    except socket.gaierror as exc:
        raise DeliveryError(f"callback host {parts.hostname!r} does not resolve: {exc}") from exc


def warn_about_callbacks(settings: Settings, stream) -> None:
    """At worker and ingress start: name each problem on stderr but start anyway, so that one
    client's CMS missing from DNS for a moment does not stop every other client's tagging (its
    deliveries are retried, or dead-lettered with the same reason). `autotag check` refuses."""
    for problem in callback_problems(settings):
        print(f"autotag: warning: {problem}; its callbacks will fail until this is fixed (`autotag check` to recheck)",
              file=stream, flush=True)
