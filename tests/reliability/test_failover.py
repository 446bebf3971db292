"""Redis with a replica and three Sentinels: the service follows a failover by itself, and no
event it acknowledged (202) is lost when the primary dies right after. Real processes on free
loopback ports (tests/ha_redis.py): a primary, a replica, three Sentinels, the ingress and the
workers; the machine's Redis on 6379 is never touched."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections import Counter, defaultdict

import httpx
import pytest

from ..ha_redis import MASTER_NAME, HaRedis
from ..stack import Stack
from .test_faults import BODY, delivered_ok, wait_until

FAST_FAILOVER = "visibility_timeout = 15\ntask_time_limit = 10\nreplica_ack_timeout = 0.5"


@pytest.fixture
def ha(tmp_path):
    cluster = HaRedis(tmp_path / "ha").start()
    try:
        yield cluster
    finally:
        cluster.stop()


def ha_stack(tmp_path, ha: HaRedis, workers: int = 1) -> Stack:
    return Stack(tmp_path, redis_url=ha.url, redis_master_name=MASTER_NAME, workers=workers, loglevel="WARNING",
                 extra_config=FAST_FAILOVER).start()


def test_an_event_the_replica_has_not_confirmed_is_a_503_and_its_retry_is_safe(tmp_path, ha, figures):
    """The replica frozen: the write lands on the primary but WAIT times out, so the ingress
    answers 503. A retry while the replica is still frozen is a 503 again, not a "duplicate"
    202 for an event a failover could still lose. Then two endings: the primary survives (the
    retry is a duplicate of an event that is queued, and its tags arrive), or it dies before
    the replica had the event (the retry, at the promoted replica, queues it afresh)."""
    stack = ha_stack(tmp_path, ha)
    try:
        replica = ha.replica()
        replica.process.send_signal(signal.SIGSTOP)
        first = stack.publish("landed-1", 1, event_id="evt-landed-1", body=BODY)
        assert first.status_code == 503, first.text
        assert stack.redis.exists(stack.ledger.key("seen", "newsroom", "evt-landed-1")), "the write did land on the primary"
        again = stack.publish("landed-1", 1, event_id="evt-landed-1", body=BODY)
        assert again.status_code == 503, f"a retry answered {again.status_code} {again.text} before any replica had the event"
        replica.process.send_signal(signal.SIGCONT)
        retried = wait_until(lambda: _accepted(stack, "landed-1", "evt-landed-1"), 20, "the retry to be accepted")
        assert retried.json()["status"] == "duplicate"
        stack.cms.wait_for("landed-1", timeout=30)

        # the primary dies before its replica had the event: with the replica frozen, 32 MB of
        # filler fill the sockets between them, so the event stays in the primary's output buffer
        old_primary = ha.primary()
        replica.process.send_signal(signal.SIGSTOP)
        stack.redis.set(stack.ledger.key("filler"), b"x" * (32 << 20))
        lost_write = stack.publish("landed-2", 1, event_id="evt-landed-2", body=BODY)
        assert lost_write.status_code == 503, lost_write.text
        old_primary.kill()
        replica.process.send_signal(signal.SIGCONT)
        killed_at = time.monotonic()
        ha.wait_until(lambda: ha.primary_port() == replica.port, 30, "the Sentinels to promote the replica")
        assert not replica.client().exists(stack.ledger.key("seen", "newsroom", "evt-landed-2")), "the replica never had it"
        retried = wait_until(lambda: _accepted(stack, "landed-2", "evt-landed-2"), 30, "the retry at the new primary")
        assert retried.json()["status"] == "queued"
        stack.cms.wait_for("landed-2", timeout=60)
        ids = {r["headers"]["webhook-id"] for r in stack.cms.for_article("landed-2")}
        assert len(ids) == 1, ids
        figures.record("failover-unconfirmed-write", retry_while_unreplicated=again.status_code, retry_after_catch_up="duplicate",
                       retry_after_failover="queued", seconds_to_accept_after_kill=round(time.monotonic() - killed_at, 1), lost=0)
    finally:
        for node in ha.nodes:
            if node.process and node.process.poll() is None:
                node.process.send_signal(signal.SIGCONT)
        stack.stop()


def _accepted(stack: Stack, article_id: str, event_id: str):
    answer = stack.publish(article_id, 1, event_id=event_id, body=BODY)
    return answer if answer.status_code == 202 else None
