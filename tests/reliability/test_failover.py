"""Redis with a replica and three Sentinels: the service follows a failover by itself, and no
event it acknowledged (202) is lost when the primary dies right after. Real processes on free
loopback ports (tests/ha_redis.py): a primary, a replica, three Sentinels, the ingress and the
workers; the machine's Redis on 6379 is never touched."""

from __future__ import annotations

import signal
import threading
import time
from collections import Counter

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


class SteadyPublisher:
    """Publishes one event (a new article) every 1/rate seconds from a thread, as a CMS does: an
    event answered 503 (or not answered) is sent again, same id, 0.2 s later, until it is
    acknowledged; the events due meanwhile wait their turn."""

    def __init__(self, stack: Stack, rate: float):
        self.stack, self.rate = stack, rate
        self.acked: dict[str, dict] = {}  # article id -> status, when, 503s before it
        self.refusals: list[tuple[float, int]] = []  # (when, status or 0 for no answer)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="steady-publisher", daemon=True)

    def start(self) -> "SteadyPublisher":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=60)

    def _run(self) -> None:
        began, index = time.monotonic(), 0
        while not self._stop.is_set():
            time.sleep(max(0.0, began + index / self.rate - time.monotonic()))
            article, refused = f"f{index}", 0
            while not self._stop.is_set():
                try:
                    answer = self.stack.publish(article, 1, event_id=f"evt-{article}", body=BODY)
                    status = answer.status_code
                except httpx.HTTPError:
                    status = 0
                if status == 202:
                    self.acked[article] = {"status": answer.json()["status"], "at": time.time(), "refused": refused}
                    break
                assert status in (0, 503), f"{article}: {status} {answer.text}"
                refused += 1
                self.refusals.append((time.time(), status))
                time.sleep(0.2)
            index += 1

    def refused_between(self, start: float, end: float) -> int:
        return sum(1 for when, _ in self.refusals if start <= when < end)

    def first_refusal_after(self, moment: float) -> float | None:
        return next((when for when, _ in list(self.refusals) if when >= moment), None)

    def first_ack_after(self, moment: float) -> float | None:
        after = [entry["at"] for entry in list(self.acked.values()) if entry["at"] > moment]
        return min(after) if after else None


def test_primary_killed_mid_run_loses_no_acknowledged_event(tmp_path, ha, scale, figures):
    """Events at a steady rate through the ingress to two workers. The replica is SIGKILLed
    (nothing is refused) and started again; then the primary is SIGKILLed: the Sentinels
    promote the replica, the ingress answers 503 until then and accepts again by itself, the
    workers carry on; the old primary comes back as a replica. Every acknowledged event's tags
    reach the CMS stand-in; a repeat carries the same webhook-id."""
    rate, phase = scale.pick(10, 25), scale.pick(6, 20)
    stack = ha_stack(tmp_path, ha, workers=2)
    publisher = SteadyPublisher(stack, rate).start()
    try:
        time.sleep(phase)
        replica = ha.replica()
        replica_killed = time.time()
        replica.kill()
        time.sleep(phase)
        refused_without_replica = publisher.refused_between(replica_killed, time.time())
        replica.start()
        ha.wait_until(lambda: ha.replica_online(ha.primary()), 30, "the replica to rejoin")
        time.sleep(phase / 2)

        primary = ha.primary()
        killed = time.time()
        primary.kill()
        ha.wait_until(lambda: ha.primary_port() not in (None, primary.port), 60, "the Sentinels to promote the replica")
        promoted = time.time()
        wait_until(lambda: publisher.first_ack_after(promoted), 60, "the ingress to accept again")
        accepted = publisher.first_ack_after(publisher.first_refusal_after(killed) or killed)
        time.sleep(phase)
        primary.start()  # on its old files: the Sentinels turn it into the new primary's replica
        rejoined = ha.wait_until(lambda: _is_replica_of(primary, ha.primary_port()), 60, "the old primary to come back as a replica")
        ha.wait_until(lambda: ha.replica_online(ha.primary()), 60, "the old primary to sync")
        time.sleep(phase / 2)
    finally:
        publisher.stop()
    try:
        acknowledged = set(publisher.acked)
        wait_until(lambda: acknowledged <= set(delivered_ok(stack)), 180, "every acknowledged event's callback", stack=stack,
                   expected=acknowledged)
        by_article = delivered_ok(stack)
        repeats = {a: calls for a, calls in by_article.items() if a in acknowledged and len(calls) > 1}
        for article, calls in repeats.items():
            assert len({c["headers"]["webhook-id"] for c in calls}) == 1, article
        statuses = Counter(entry["status"] for entry in publisher.acked.values())
        figures.record("failover-primary-killed", rate_per_second=rate, events_acknowledged=len(acknowledged),
                       acknowledged_as_duplicate=statuses.get("duplicate", 0),
                       refused_while_replica_down=refused_without_replica,
                       seconds_to_promotion=round(promoted - killed, 1), seconds_until_ingress_accepts=round(accepted - killed, 1),
                       refused_during_failover=publisher.refused_between(killed, accepted + 0.01),
                       refused_in_all=len(publisher.refusals), old_primary_is_replica=bool(rejoined),
                       callbacks_delivered=sum(len(calls) for a, calls in by_article.items() if a in acknowledged),
                       lost=len(acknowledged - set(by_article)), repeated_same_webhook_id=len(repeats))
        assert refused_without_replica == 0
    finally:
        stack.stop()


def _is_replica_of(server, port) -> bool:
    try:
        info = server.client().info("replication")
    except Exception:
        return False
    return info.get("role") == "slave" and int(info.get("master_port", -1)) == port and info.get("master_link_status") == "up"
