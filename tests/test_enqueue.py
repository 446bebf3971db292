"""The ingress' one-round-trip enqueue (worker/enqueue.py) pushes the message Celery's own
send_task would, claims the event id with it, and counts: checked against a real Redis."""

from __future__ import annotations

import asyncio
import base64
import json
import secrets

import pytest
import redis

from tests.stack import machine_redis_url
from worker.service.app import create_app
from worker.service.enqueue import EventQueue
from worker.service.events import parse_event
from worker.service.ledger import Ledger
from worker.service.up import EmbeddedRedis
from worker.service.settings import Settings

RAW = json.dumps({"id": "evt-1", "type": "article.published", "occurred_at": "2026-11-22T10:00:00Z",
                  "article": {"id": "a1", "revision": 3, "title": "Seoul ships shells",
                              "body": "South Korea agreed to sell artillery shells to Poland. " * 40}}).encode()


@pytest.fixture
def redis_url(tmp_path):
    url = machine_redis_url()
    if url:
        yield url
        return
    embedded = EmbeddedRedis(tmp_path / "redis").start()
    try:
        yield embedded.url
    finally:
        embedded.stop()


@pytest.fixture
def setup(redis_url):
    prefix = "t" + secrets.token_hex(4)
    settings = Settings(redis_url=redis_url, data_dir="/tmp", model_dir=None, clients=(), key_prefix=prefix)
    app = create_app(settings, queue_prefix=prefix + ".")
    client = redis.Redis.from_url(redis_url)
    ledger = Ledger(client, prefix)
    queue = prefix + ".autotag.tag"
    yield app, ledger, queue, client
    for key in client.scan_iter(f"{prefix}*"):
        client.delete(key)
    for key in client.scan_iter(f"_kombu.binding*{prefix}.*"):
        client.delete(key)


def _decoded(raw: bytes) -> dict:
    message = json.loads(raw)
    message["body"] = json.loads(base64.b64decode(message["body"]))
    # ids and origin differ per message; ignore_result is the task's option when this process
    # imported worker.tasks, else None (no result backend: it changes nothing)
    for volatile in ("id", "root_id", "origin", "ignore_result"):
        message["headers"].pop(volatile)
    for volatile in ("correlation_id", "delivery_tag", "reply_to"):
        message["properties"].pop(volatile)
    return message


def test_message_is_what_send_task_pushes(setup):
    app, ledger, queue, client = setup
    event = parse_event(RAW, max_body_bytes=1 << 20)
    app.send_task("autotag.tag_event", args=[event.to_message("newsroom", 1.5)], queue=queue)
    expected = client.rpop(queue)
    fast = EventQueue.for_app(app, ledger, queue, 3600)
    assert fast is not None
    assert asyncio.run(fast.queue_event("newsroom", event, 1.5)) == "queued"
    assert _decoded(client.rpop(queue)) == _decoded(expected)


def test_claims_once_and_counts(setup):
    app, ledger, queue, client = setup
    event = parse_event(RAW, max_body_bytes=1 << 20)
    fast = EventQueue.for_app(app, ledger, queue, 3600)

    async def twice():
        try:
            return [await fast.queue_event("newsroom", event, 1.5), await fast.queue_event("newsroom", event, 1.5)]
        finally:
            await fast.close()

    assert asyncio.run(twice()) == ["queued", "duplicate"]
    assert client.llen(queue) == 1
    assert 0 < client.ttl(ledger.key("seen", "newsroom", "evt-1")) <= 3600
    counters, _ = ledger.counters()
    assert counters["events_received"] == 1 and counters["events_duplicate"] == 1


def test_other_redis_keeps_send_task(setup, redis_url):
    app, _, queue, _ = setup
    elsewhere = Ledger(redis.Redis.from_url(redis_url.rsplit("/", 1)[0] + "/5"), "x")
    assert EventQueue.for_app(app, elsewhere, queue, 3600) is None
