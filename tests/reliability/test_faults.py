"""Faults: a killed worker, a restarted Redis, a CMS that is down, poison input. Each scenario
runs its own stack; the ones that stop Redis run their own redis-server (AOF on) on a free port,
so the machine's Redis on 6379 is never touched. Every published article must end with its tags
at the CMS stand-in: nothing lost, and any repeat carries the same webhook-id."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import defaultdict


from worker.service.up import EmbeddedRedis

from ..stack import ROOT, Stack

BODY = ("Poland signed a contract on Friday for 180 K2 battle tanks from South Korea's Hyundai Rotem, "
        "its defence ministry said. Seoul has become one of Warsaw's main weapons suppliers. ") * 3


def process_tree(pid: int) -> list[int]:
    """A worker parent and its pool children (Celery prefork)."""
    children = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True).stdout.split()
    return [pid, *map(int, children)]


def signal_tree(process: subprocess.Popen, sig: int) -> None:
    for pid in process_tree(process.pid):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass


def delivered_ok(stack: Stack) -> dict[str, list[dict]]:
    """Verified callbacks the CMS answered 2xx, by article id."""
    by_article = defaultdict(list)
    for record in list(stack.cms.received):
        if "payload" in record and 200 <= record["status"] < 300:
            by_article[record["payload"]["article"]["id"]].append(record)
    return by_article


def wait_until(condition, timeout: float, what: str, step: float = 0.2, stack: Stack | None = None, expected=()):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(step)
    raise AssertionError(f"timed out after {timeout:g}s waiting for {what}" + (diagnose(stack, expected) if stack else ""))


def diagnose(stack: Stack, expected) -> str:
    """What a failed wait leaves to look at: the missing articles, the queue, the schedule, logs."""
    missing = sorted(set(expected) - set(delivered_ok(stack)))
    try:
        due, dead = stack.ledger.schedule_size()
        queued = stack.queue_length()
    except Exception as exc:  # Redis itself may be the problem
        due = dead = queued = repr(exc)
    logs = "".join(f"\n--- {log.name}\n" + log.read_text(errors="replace")[-3000:] for log in sorted(stack.tmp.glob("*.log")))
    return f"\nmissing {len(missing)}: {missing[:20]}\nqueue {queued}, due {due}, dead {dead}{logs}"


def publish_all(stack: Stack, ids: list[str], revision: int = 1) -> None:
    for article_id in ids:
        answer = stack.publish(article_id, revision, body=BODY)
        assert answer.status_code == 202, answer.text


def test_a_worker_killed_mid_run_loses_nothing(tmp_path, scale, figures):
    """SIGKILL the whole worker (parent and pool child) while events flow; a new worker finishes
    them. The killed worker's unacknowledged task comes back after the visibility timeout."""
    total = scale.pick(300, 1000)
    stack = Stack(tmp_path, own_redis=True, loglevel="WARNING", extra_config="visibility_timeout = 15\ntask_time_limit = 10").start()
    try:
        ids = [f"k{i}" for i in range(total)]
        publish_all(stack, ids)
        published_at = time.monotonic()
        wait_until(lambda: len(delivered_ok(stack)) >= total // 4, 60, "a quarter of the callbacks")
        killed_after = len(delivered_ok(stack))
        victim = stack.workers[0]
        signal_tree(victim, signal.SIGKILL)
        victim.wait(timeout=10)
        stack.start_worker()
        started = time.monotonic()
        wait_until(lambda: set(ids) <= set(delivered_ok(stack)), 120, "every article's callback", stack=stack, expected=ids)
        recovered = time.monotonic() - started

        by_article = delivered_ok(stack)
        repeats = {a: calls for a, calls in by_article.items() if a in set(ids) and len(calls) > 1}
        for article_id, calls in repeats.items():  # a repeat is the same delivery: the CMS can drop it
            assert len({c["headers"]["webhook-id"] for c in calls}) == 1, article_id
        figures.record("worker-killed", events=total, delivered=len(set(ids) & set(by_article)), lost=len(set(ids) - set(by_article)),
                       killed_after_callbacks=killed_after, repeated_same_webhook_id=len(repeats),
                       seconds_to_finish_after_restart=round(recovered, 1), seconds_total=round(time.monotonic() - published_at, 1))
    finally:
        stack.stop()


def test_an_event_lost_between_the_queue_and_a_worker_is_queued_again(tmp_path, figures):
    """kombu takes a message off the Redis list before it records it as unacknowledged, so a
    worker killed in between takes the event with it (celery/celery#4354). Recreated here: a
    frozen worker (its pending BRPOP may take the message) or a test that pops it, then the
    worker killed. The ingress' in-flight record brings it back once it is well past the
    visibility timeout."""
    stack = Stack(tmp_path, own_redis=True, loglevel="WARNING", extra_config="visibility_timeout = 5\ntask_time_limit = 3").start()
    try:
        signal_tree(stack.workers[0], signal.SIGSTOP)
        assert stack.publish("lost-1", 1, body=BODY).status_code == 202
        time.sleep(0.5)
        taken_by_test = stack.redis.rpop(stack.prefix + ".autotag.tag") is not None  # else the frozen worker took it
        signal_tree(stack.workers[0], signal.SIGKILL)
        stack.workers[0].wait(timeout=10)
        assert stack.redis.llen(stack.prefix + ".autotag.tag") == 0 and stack.redis.hlen("unacked") == 0
        lost_at = time.monotonic()
        stack.start_worker()
        publish_all(stack, ["after-1"])  # traffic goes on; it overtakes the lost event
        wait_until(lambda: delivered_ok(stack).get("after-1"), 30, "a later event")
        wait_until(lambda: delivered_ok(stack).get("lost-1"), 90, "the lost event's callback", stack=stack, expected=["lost-1"])
        came_back = time.monotonic() - lost_at
        counters, _ = stack.ledger.counters()
        assert counters.get("events_requeued", 0) == 1
        wait_until(lambda: stack.redis.hlen(stack.ledger.key("inflight")) == 0, 10, "the in-flight records to clear")
        figures.record("event-lost-in-transit", lost=0, taken_by="test" if taken_by_test else "frozen worker",
                       seconds_to_callback=round(came_back, 1), visibility_timeout=5)
    finally:
        stack.stop()


def test_redis_restarted_with_work_queued_loses_nothing(tmp_path, scale, figures):
    """Deliveries scheduled (the CMS is down) and events queued (the worker frozen) when Redis
    stops; the ingress answers 503 while it is away; after a restart on the same AOF the worker
    carries on by itself and every article arrives."""
    batch = scale.pick(40, 200)
    delays = (1, 1, 2, 2, 3, 3, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5)  # ~60 s of retries: the CMS outage outlasts the Redis one
    # a task a worker held when the connection broke comes back after the visibility timeout
    stack = Stack(tmp_path, own_redis=True, retry_delays=delays, loglevel="WARNING",
                  extra_config="visibility_timeout = 15\ntask_time_limit = 10").start()
    port, data_dir = stack.embedded.port, stack.embedded.data_dir
    try:
        stack.cms.stop()  # refused connections: every delivery goes on the durable schedule
        scheduled = [f"s{i}" for i in range(batch)]
        publish_all(stack, scheduled)
        wait_until(lambda: stack.ledger.schedule_size()[0] >= batch, 60, "the deliveries to be scheduled")

        signal_tree(stack.workers[0], signal.SIGSTOP)  # events now wait in the queue
        queued = [f"q{i}" for i in range(batch)]
        publish_all(stack, queued)
        assert stack.queue_length() >= batch - 1  # one may sit prefetched, unacknowledged

        stack.embedded.stop()  # SIGTERM: Redis writes its AOF and exits
        refused = [stack.publish(f"d{i}", 1, body=BODY).status_code for i in range(20)]
        signal_tree(stack.workers[0], signal.SIGCONT)  # the worker wakes to a missing Redis
        time.sleep(3)
        assert set(refused) == {503}, refused
        assert stack.http.get("/readyz").status_code == 503

        down_for = time.monotonic()
        stack.embedded = EmbeddedRedis(data_dir, port=port).start()
        wait_until(lambda: stack.http.get("/readyz").status_code == 200, 30, "the ingress to be ready again")
        ingress_back = time.monotonic() - down_for
        republished = [f"d{i}" for i in range(20)]  # what the CMS does with a 503: send it again
        publish_all(stack, republished)
        stack.cms.start()
        everything = scheduled + queued + republished
        wait_until(lambda: set(everything) <= set(delivered_ok(stack)), 120, "every article after the restart", stack=stack, expected=everything)
        all_back = time.monotonic() - down_for
        after = [f"a{i}" for i in range(10)]  # consumption goes on: no silent stop
        publish_all(stack, after)
        wait_until(lambda: set(after) <= set(delivered_ok(stack)), 30, "events published after recovery")
        figures.record("redis-restarted", scheduled_deliveries=batch, queued_events=batch, refused_with_503_while_down=len(refused),
                       lost=len(set(everything) - set(delivered_ok(stack))), seconds_ingress_ready_after_restart=round(ingress_back, 1),
                       seconds_all_delivered_after_restart=round(all_back, 1), visibility_timeout=15, worker_consumed_after_restart=len(after))
    finally:
        stack.stop()


def test_editor_decisions_survive_a_redis_restart_and_a_killed_worker(tmp_path, scale, figures):
    """Feedback answered 202 is in Redis' append-only file: after Redis restarts, and with the
    worker that holds the next revisions killed mid-run, every next revision's callback still
    leaves out what editors rejected and gives what they added."""
    total = scale.pick(40, 200)
    stack = Stack(tmp_path, own_redis=True, loglevel="WARNING", extra_config="visibility_timeout = 15\ntask_time_limit = 10").start()
    port, data_dir = stack.embedded.port, stack.embedded.data_dir
    try:
        ids = [f"ed{i}" for i in range(total)]
        publish_all(stack, ids)
        wait_until(lambda: set(ids) <= set(delivered_ok(stack)), 60, "the first revisions", stack=stack, expected=ids)
        assert all("KR" in {r["code"] for r in delivered_ok(stack)[a][0]["payload"]["regions"]} for a in ids)
        for article_id in ids:
            answer = stack.feedback({"id": f"fb-{article_id}", "article": {"id": article_id, "revision": 1},
                                     "decisions": [{"kind": "region", "tag": "KR", "decision": "rejected", "editor": "u1"},
                                                   {"kind": "topic", "tag": "sanctions", "decision": "added", "editor": "u1"}]})
            assert answer.status_code == 202, answer.text

        stack.embedded.stop()  # SIGTERM: Redis writes its AOF and exits
        stack.embedded = EmbeddedRedis(data_dir, port=port).start()
        wait_until(lambda: stack.http.get("/readyz").status_code == 200, 30, "the ingress to be ready again")
        kept = sum(stack.redis.exists(stack.ledger.key("editor", "newsroom", a)) for a in ids)

        publish_all(stack, ids, revision=2)
        wait_until(lambda: sum(len(calls) >= 2 for calls in delivered_ok(stack).values()) >= total // 4, 60, "a quarter of revision 2")
        signal_tree(stack.workers[0], signal.SIGKILL)
        stack.workers[0].wait(timeout=10)
        stack.start_worker()
        wait_until(lambda: all(any(c["payload"]["article"]["revision"] == 2 for c in delivered_ok(stack).get(a, [])) for a in ids),
                   120, "every article's revision 2", stack=stack, expected=ids)
        latest = {a: [c for c in delivered_ok(stack)[a] if c["payload"]["article"]["revision"] == 2][-1]["payload"] for a in ids}
        honoured = sum("KR" not in {r["code"] for r in p["regions"] + p["suggested"]["regions"]}
                       and {t["tag"]: t["by"] for t in p["topics"]}.get("sanctions") == "editor" for p in latest.values())
        assert kept == total and honoured == total
        figures.record("decisions-survive", articles=total, decisions_kept_after_redis_restart=kept, revision_2_honouring_them=honoured,
                       worker_killed_mid_revision_2=True)
    finally:
        stack.stop()


def test_cms_down_then_failing_then_back_delivers_everything_in_revision_order(tmp_path, scale, figures):
    """Refused connections, then 500s, then recovery: every article's latest revision arrives, and
    no article ever receives an older revision after a newer one. An endpoint that never recovers
    ends in the dead letters, and `autotag redeliver` sends it once it is back."""
    articles = scale.pick(30, 150)
    delays = (0.5, 0.5, 1, 1, 2, 2, 3, 3, 3)  # ~16 s: survives the outage below, ends a permanent one
    stack = Stack(tmp_path, own_redis=True, retry_delays=delays, loglevel="WARNING").start()
    try:
        stack.cms.stop()
        ids = [f"c{i}" for i in range(articles)]
        for revision in (1, 2, 3):  # edits while the CMS is down: newer revisions supersede pending ones
            publish_all(stack, ids, revision)
        doomed = "c-never"
        stack.cms.respond[doomed] = 500
        assert stack.publish(doomed, 1, body=BODY).status_code == 202
        time.sleep(3)
        stack.cms.default_status = 500
        stack.cms.start()
        time.sleep(3)
        stack.cms.default_status = 200
        wait_until(lambda: all(3 in [c["payload"]["article"]["revision"] for c in delivered_ok(stack).get(a, [])] for a in ids),
                   90, "revision 3 of every article")

        out_of_order = 0
        for article_id in ids:
            revisions = [r["payload"]["article"]["revision"] for r in stack.cms.received
                         if "payload" in r and r["payload"]["article"]["id"] == article_id]
            out_of_order += any(later < earlier for earlier, later in zip(revisions, revisions[1:]))
            assert delivered_ok(stack)[article_id][-1]["payload"]["article"]["revision"] == 3
        assert out_of_order == 0

        dead = wait_until(lambda: [r for r in stack.ledger.listing("dead") if r["article"] == doomed], 60, "the dead letter")
        assert "500" in dead[0]["last_error"]
        stack.cms.respond[doomed] = 200
        run = subprocess.run([sys.executable, "-m", "worker.cli", "redeliver", dead[0]["id"]], env=stack.env, cwd=ROOT,
                             capture_output=True, text=True, timeout=60)
        assert run.returncode == 0, run.stderr
        wait_until(lambda: delivered_ok(stack).get(doomed), 30, "the redelivered dead letter")
        figures.record("cms-down", articles=articles, revisions_each=3, lost=sum(1 for a in ids if a not in delivered_ok(stack)),
                       out_of_order=out_of_order, attempts_seen=len(stack.cms.received), dead_then_redelivered=1)
    finally:
        stack.stop()


def test_poison_input_fails_alone_and_is_recorded(tmp_path, figures):
    """Poison the ingress refuses (an unpaired surrogate, which survives JSON), and poison only a
    worker sees, pushed straight onto the queue as a buggy producer would: a message of the
    wrong shape, and one whose article cannot be tagged. Each is recorded with its reason, and
    the same worker process goes on tagging the events around them."""
    stack = Stack(tmp_path, own_redis=True, loglevel="WARNING").start()
    try:
        pids = process_tree(stack.workers[0].pid)
        poison_event = {"id": "evt-poison", "type": "article.published", "occurred_at": "2026-11-22T10:00:00Z",
                        "article": {"id": "p-surrogate", "revision": 1, "title": "Title", "body": "Text \\ud800 more text."}}
        raw = json.dumps(poison_event).replace("\\\\ud800", "\\ud800").encode()
        answer = stack.post_raw(raw)
        assert answer.status_code == 422 and "surrogate" in answer.json()["error"]

        from worker.service.app import create_app
        from worker.service.settings import load_settings

        app = create_app(load_settings(stack.config, environ={}), redis_url=stack.redis_url, queue_prefix=stack.prefix + ".")
        crafted = {
            "evt-malformed": {"id": "evt-malformed"},
            "evt-untaggable": {"id": "evt-untaggable", "type": "article.published", "occurred_at": "2026-11-22T10:00:00Z",
                               "article": {"id": "p-untaggable", "revision": 1, "title": ["not", "text"], "body": {"html": 3}}},
        }
        healthy = [f"h{i}" for i in range(20)]
        publish_all(stack, healthy[:10])
        for event in crafted.values():
            app.send_task("autotag.tag_event", args=[{"client": "newsroom", "received_at": time.time(), "event": event}],
                          queue=stack.prefix + ".autotag.tag")
        publish_all(stack, healthy[10:])
        reasons = {event_id: wait_until(lambda: stack.ledger.failure("newsroom", event_id), 30, f"{event_id}'s failure record")
                   for event_id in crafted}
        wait_until(lambda: set(healthy) <= set(delivered_ok(stack)), 30, "the events around the poison", stack=stack, expected=healthy)
        assert "malformed task message" in reasons["evt-malformed"]
        assert process_tree(stack.workers[0].pid) == pids  # same parent, same pool child: nothing crashed
        counters, _ = stack.ledger.counters()
        assert counters.get("tasks_failed", 0) == len(crafted)
        figures.record("poison-input", refused_at_ingress=1, failed_in_worker=len(crafted), recorded=len(reasons),
                       worker_restarts=0, healthy_events_around=len(healthy), reasons=reasons)
    finally:
        stack.stop()


def test_an_event_that_keeps_killing_its_worker_is_stopped(tmp_path):
    """A task that dies with its worker is handed out again (late acks); one that has done so
    MAX_TASK_STARTS times is recorded as poison instead of taking the worker down forever. The
    earlier deaths are simulated by their start count: what a worker killed mid-task leaves."""
    from worker.service.pipeline import MAX_TASK_STARTS, Runtime, process_event
    from worker.service.settings import load_settings

    stack = Stack(tmp_path, own_redis=True, workers=0)
    try:
        runtime = Runtime(settings=load_settings(stack.config, environ={}), ledger=stack.ledger, load_tagger=lambda: None)
        message = {"client": "newsroom", "received_at": time.time(),
                   "event": {"id": "evt-killer", "type": "article.published", "occurred_at": "2026-11-22T10:00:00Z",
                             "article": {"id": "p-killer", "revision": 1, "title": "T", "body": BODY}}}
        stack.redis.set(stack.ledger.key("starts", "newsroom", "evt-killer"), MAX_TASK_STARTS)
        assert process_event(runtime, message) == "failed"
        assert "died 3 times" in stack.ledger.failure("newsroom", "evt-killer")
        assert process_event(runtime, message) == "duplicate"  # done: a further copy does nothing
    finally:
        stack.stop()


def test_a_backlog_is_never_mistaken_for_lost_events(tmp_path):
    """Events waiting in a long queue are old but not lost: while the queue holds messages, only
    events queued before the latest started one count as having left it."""
    from worker.service.pipeline import requeue_stalled_events

    stack = Stack(tmp_path, own_redis=True, workers=0)
    stack.start_ingress_only()
    try:
        for i in range(3):
            assert stack.publish(f"backlog-{i}", 1, body=BODY).status_code == 202
        queue, later = stack.prefix + ".autotag.tag", time.time() + 3600
        assert requeue_stalled_events(stack.ledger, queue, queued_before=later) == 0  # all still queued
        assert stack.redis.llen(queue) == 3
        assert stack.redis.rpop(queue) is not None  # a worker took the oldest and died; the next one then started
        scores = sorted(score for _, score in stack.redis.zrange(stack.ledger.key("inflight_at"), 0, -1, withscores=True))
        stack.ledger.start_event("newsroom", "some-later-event", 60, received_at=scores[1])
        assert requeue_stalled_events(stack.ledger, queue, queued_before=later) == 1  # only the one that left
        assert stack.redis.llen(queue) == 3
    finally:
        stack.stop()
