"""Callbacks: signatures the standardwebhooks package verifies, no private targets unless allowed,
no redirects followed, and a retry schedule that backs off and ends."""

import json
import random
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from standardwebhooks.webhooks import Webhook

from worker.service.delivery import check_callback_target, next_delay, post_callback, sign
from worker.errors import DeliveryError
from worker.service.settings import Client

from .stack import new_secret


def test_signature_verifies_with_standard_webhooks():
    secret = new_secret()
    body = json.dumps({"type": "article.tags"})
    headers = sign(secret, "msg_abc", body)
    assert Webhook(secret).verify(body, headers) == {"type": "article.tags"}
    assert headers["webhook-id"] == "msg_abc"


@pytest.mark.parametrize("url", ["http://127.0.0.1/hook", "http://169.254.169.254/latest/meta-data", "http://10.1.2.3/hook",
                                 "http://[::1]:8080/hook", "http://localhost/hook", "http://192.168.1.10/x", "http://0.0.0.0/x"])
def test_private_loopback_and_link_local_targets_are_refused(url):
    with pytest.raises(DeliveryError, match="non-public") as raised:
        check_callback_target(url, allow_private=False)
    assert raised.value.permanent
    check_callback_target(url, allow_private=True)  # explicitly allowed: fine


def test_non_http_targets_are_refused():
    with pytest.raises(DeliveryError):
        check_callback_target("file:///etc/passwd", allow_private=True)


def _server(status: int, location: str | None = None):
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            self.rfile.read(int(self.headers.get("content-length", 0)))
            self.send_response(status)
            if location:
                self.send_header("location", location)
            self.send_header("retry-after", "7")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.mark.parametrize("status, permanent", [(200, None), (302, True), (404, True), (410, True), (408, False), (429, False), (500, False), (503, False)])
def test_one_attempt_is_classified(status, permanent):
    server = _server(status, location="http://169.254.169.254/" if status == 302 else None)
    client = Client("c", "t", f"http://127.0.0.1:{server.server_port}/hook", new_secret(), allow_private_callback=True)
    try:
        if permanent is None:
            assert post_callback(client, "msg_1", {"a": 1}, timeout=2) == 200
        else:
            with pytest.raises(DeliveryError) as raised:
                post_callback(client, "msg_1", {"a": 1}, timeout=2)
            assert raised.value.permanent is permanent and raised.value.status_code == status
            if status == 429:
                assert raised.value.retry_after == 7
    finally:
        server.shutdown()


def test_a_refused_connection_is_worth_retrying():
    client = Client("c", "t", "http://127.0.0.1:9/hook", new_secret(), allow_private_callback=True)
    with pytest.raises(DeliveryError) as raised:
        post_callback(client, "msg_1", {}, timeout=1)
    assert not raised.value.permanent


def test_retry_schedule_backs_off_with_jitter_and_ends():
    delays = (10, 30, 60)
    rng = random.Random(1)
    assert [next_delay(n, delays, 0.0) for n in (1, 2, 3)] == [10, 30, 60]
    assert next_delay(4, delays, 0.0) is None
    jittered = [next_delay(1, delays, 0.2, rng=rng) for _ in range(100)]
    assert 8 <= min(jittered) < max(jittered) <= 12
    assert next_delay(1, delays, 0.0, retry_after=120) == 120


def test_connections_go_to_the_checked_address_not_a_second_lookup():
    """The session connects to the address the guard checked, whatever the name resolves to later."""
    from worker.service.delivery import CallbackSession

    server = _server(204)
    try:
        session = CallbackSession()
        status, _ = session.post(f"http://callback.example.invalid:{server.server_port}/hook", b"{}", {"content-type": "application/json"},
                                 timeout=2, address="127.0.0.1")
        assert status == 204  # the name does not resolve at all: only the pinned address was used
        session.close()
    finally:
        server.shutdown()
