"""The publish pipeline end to end: real Redis, a real worker process, the ingress process and a
loopback CMS that verifies every callback's Standard Webhooks signature."""

import json
import subprocess
import sys
import time

import pytest

from .stack import ROOT, Stack

ARMS = ("Warsaw signs contract for South Korean tanks",
        "Poland signed a contract on Friday for 180 K2 battle tanks from South Korea's Hyundai Rotem. "
        "Seoul has become one of Warsaw's main weapons suppliers, selling tanks, howitzers and fighter jets. "
        "Polish officials said the arms deal includes ammunition and training.")


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    running = Stack(tmp_path_factory.mktemp("stack")).start()
    yield running
    running.stop()


def test_publish_gets_signed_callback_with_the_tags(stack):
    """A published article's tags arrive at the CMS, signed, with the contract's fields."""
    answer = stack.publish("a-arms", 1, event_id="evt-arms-1", title=ARMS[0], body=ARMS[1])
    assert answer.status_code == 202 and answer.json() == {"event_id": "evt-arms-1", "status": "queued"}
    (callback,) = stack.cms.wait_for("a-arms")
    payload = callback["payload"]  # present only when the signature verified
    assert payload["type"] == "article.tags" and payload["event_id"] == "evt-arms-1"
    assert payload["article"] == {"id": "a-arms", "revision": 1}
    assert [t["tag"] for t in payload["topics"]] == ["arms-deals"]
    assert {r["code"] for r in payload["regions"]} == {"PL", "KR"}
    assert payload["model_version"] and "suggested" in payload
    assert callback["headers"]["webhook-id"].startswith("msg_")


def test_the_same_event_twice_is_tagged_and_delivered_once(stack):
    first = stack.publish("a-dup", 1, event_id="evt-dup")
    second = stack.publish("a-dup", 1, event_id="evt-dup")
    assert first.json()["status"] == "queued" and second.json()["status"] == "duplicate"
    stack.cms.wait_for("a-dup")
    time.sleep(1.0)
    assert len(stack.cms.for_article("a-dup")) == 1


def test_an_older_revision_never_follows_a_newer_one(stack):
    stack.publish("a-order", 3, body=ARMS[1])
    stack.cms.wait_for("a-order")
    assert stack.publish("a-order", 2, body="An older draft.").status_code == 202
    time.sleep(1.5)
    assert [c["payload"]["article"]["revision"] for c in stack.cms.for_article("a-order")] == [3]


def test_finished_deliveries_drop_their_payload_and_expire(stack):
    """Redis holds what is pending, not everything ever published: a delivered record keeps its
    outcome for inspection (with a TTL) but not its payload."""
    stack.publish("a-ttl", 1, event_id="evt-ttl", body=ARMS[1])
    (callback,) = stack.cms.wait_for("a-ttl")
    key = stack.ledger.key("delivery", callback["headers"]["webhook-id"])
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and stack.redis.hget(key, "state") != b"delivered":
        time.sleep(0.05)
    assert stack.redis.hget(key, "state") == b"delivered"
    assert stack.redis.hget(key, "payload") is None
    assert 0 < stack.redis.ttl(key) <= 7 * 24 * 3600


def test_a_newer_revision_supersedes_a_pending_older_delivery(stack):
    stack.cms.respond["a-supersede"] = 503
    stack.publish("a-supersede", 1)
    stack.cms.wait_for("a-supersede")  # first attempt refused, a retry is scheduled
    stack.cms.respond["a-supersede"] = 200
    stack.publish("a-supersede", 2)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not any(c["payload"]["article"]["revision"] == 2 for c in stack.cms.for_article("a-supersede")):
        time.sleep(0.05)
    time.sleep(1.5)  # the old retry would have come by now
    revisions = [c["payload"]["article"]["revision"] for c in stack.cms.for_article("a-supersede")]
    assert revisions[-1] == 2 and revisions.count(2) == 1 and revisions.count(1) == 1  # rev 1 only the refused try


def test_unpublish_cancels_the_pending_delivery(stack):
    stack.cms.respond["a-unpub"] = 500
    stack.publish("a-unpub", 1)
    stack.cms.wait_for("a-unpub")
    assert stack.publish("a-unpub", 1, type="article.unpublished").status_code == 202
    time.sleep(0.5)
    stack.cms.respond["a-unpub"] = 200
    time.sleep(2.0)
    assert all(c["payload"]["article"]["revision"] == 1 for c in stack.cms.for_article("a-unpub"))
    assert len(stack.cms.for_article("a-unpub")) <= 2  # the refused try, perhaps one retry before the cancel
    pending = [r for r in stack.ledger.listing("due") if r["article"] == "a-unpub"]
    assert pending == []


def test_callback_down_then_back_is_retried_with_a_stable_webhook_id(stack):
    stack.cms.respond["a-flaky"] = 500
    stack.publish("a-flaky", 1)
    stack.cms.wait_for("a-flaky", count=2)
    stack.cms.respond["a-flaky"] = 200
    calls = stack.cms.wait_for("a-flaky", count=3)
    assert len({c["headers"]["webhook-id"] for c in calls}) == 1
    time.sleep(1.0)
    assert len(stack.cms.for_article("a-flaky")) == 3  # delivered: no more tries


def test_a_permanent_4xx_goes_to_the_dead_letters_and_redeliver_sends_it(stack):
    stack.cms.respond["a-gone"] = 404
    stack.publish("a-gone", 1)
    stack.cms.wait_for("a-gone")
    time.sleep(1.0)
    assert len(stack.cms.for_article("a-gone")) == 1  # no retry of a 404
    listed = _autotag(stack, "deliveries", "--dead", "--json")
    dead = [json.loads(line) for line in listed.stdout.splitlines()]
    (record,) = [d for d in dead if d["article"] == "a-gone"]
    assert "404" in record["last_error"]
    stack.cms.respond["a-gone"] = 200
    assert _autotag(stack, "redeliver", record["id"]).returncode == 0
    calls = stack.cms.wait_for("a-gone", count=2)
    assert calls[-1]["headers"]["webhook-id"] == record["id"]


@pytest.mark.parametrize(
    "raw, status, field",
    [
        (b"{not json", 400, None),
        (json.dumps({"type": "article.published", "occurred_at": "2026-11-22T10:00:00Z", "article": {"id": 1, "revision": 1, "title": "t", "body": "b"}}).encode(), 422, "id"),
        (json.dumps({"id": "e", "type": "article.deleted", "occurred_at": "2026-11-22T10:00:00Z", "article": {"id": 1, "revision": 1, "title": "t", "body": "b"}}).encode(), 422, "type"),
        (json.dumps({"id": "e", "type": "article.published", "occurred_at": "yesterday", "article": {"id": 1, "revision": 1, "title": "t", "body": "b"}}).encode(), 422, "occurred_at"),
        (json.dumps({"id": "e", "type": "article.published", "occurred_at": "2026-11-22T10:00:00Z", "article": {"id": 1, "revision": "2", "title": "t", "body": "b"}}).encode(), 422, "article.revision"),
        (json.dumps({"id": "e", "type": "article.published", "occurred_at": "2026-11-22T10:00:00Z", "article": {"id": 1, "revision": 1, "title": "t"}}).encode(), 422, "article.body"),
        (json.dumps({"id": "e", "type": "article.published", "occurred_at": "2026-11-22T10:00:00Z", "article": {"id": 1, "revision": 1, "title": "t", "body": "  "}}).encode(), 422, "article.body"),
        (b'{"id": "e", "type": "article.published", "body": "caf\xe9"}', 400, None),
        (json.dumps([1, 2]).encode(), 422, None),
        (b"[" * 100000, 400, None),
        (json.dumps({"id": "e", "type": "article.published", "occurred_at": "2026-11-22T10:00:00Z", "article": {"id": 1, "revision": 1, "title": "t", "body": "x" * (3 * 1024 * 1024)}}).encode(), 413, "body"),
    ],
    ids=["malformed", "no-id", "bad-type", "bad-time", "mistyped-revision", "no-body", "empty-body", "not-utf8", "array", "deep-nesting", "too-large"],
)
def test_bad_input_gets_its_4xx_and_enqueues_nothing(stack, raw, status, field):
    before = stack.queue_length()
    answer = stack.post_raw(raw)
    assert answer.status_code == status, answer.text
    assert "error" in answer.json()
    if field:
        assert answer.json().get("field") == field
    assert stack.queue_length() == before


def test_unknown_or_missing_tokens_are_refused(stack):
    good = json.dumps({"id": "e-auth", "type": "article.published", "occurred_at": "2026-11-22T10:00:00Z",
                       "article": {"id": "x", "revision": 1, "title": "t", "body": "b"}}).encode()
    assert stack.post_raw(good, token="wrong-token").status_code == 401
    assert stack.http.post("/v1/events", content=good).status_code == 401
    assert stack.post_raw(good, headers={"x-autotag-client": "someone-else"}).status_code == 401
    assert not stack.redis.exists(f"{stack.prefix}:seen:newsroom:e-auth")


def test_health_readiness_and_metrics(stack):
    assert stack.http.get("/healthz").json() == {"status": "ok"}
    ready = stack.http.get("/readyz").json()
    assert ready["status"] == "ready" and ready["model_version"]  # the ingress' own model, loaded and verified
    text = stack.http.get("/metrics").text
    for name in ("autotag_events_received_total", "autotag_deliveries_ok_total", "autotag_end_to_end_seconds_bucket",
                 "autotag_queue_depth", "autotag_deliveries_dead", "autotag_previews_total", "autotag_feedback_received_total"):
        assert name in text


def test_broker_down_answers_503(tmp_path):
    """With its own Redis stopped, the ingress answers 503 so the CMS retries; back up, it queues again."""
    from worker.service.up import EmbeddedRedis

    own = EmbeddedRedis(tmp_path / "redis").start()
    running = Stack(tmp_path, redis_url=own.url)
    running.n_workers = 0
    try:
        running.ingress = subprocess.Popen([sys.executable, "-m", "worker.cli", "serve"], env=running.env, cwd=ROOT,
                                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _wait(lambda: running.http.get("/healthz").status_code == 200)
        assert running.publish("b1", 1).status_code == 202
        own.stop()
        answer = running.publish("b2", 1)
        assert answer.status_code == 503 and answer.headers.get("retry-after")
        assert running.http.get("/readyz").status_code == 503
        own.start()
        _wait(lambda: running.publish("b3", 1).status_code == 202)
    finally:
        running.stop()
        own.stop()


def _wait(check, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except Exception:
            pass
        time.sleep(0.1)
    raise AssertionError("condition not met in time")


def _autotag(stack, *args):
    return subprocess.run([sys.executable, "-m", "worker.cli", *args], env=stack.env, cwd=ROOT, capture_output=True, text=True, timeout=60)


def test_signed_inbound_events_are_checked(tmp_path):
    """A client with a signing_secret: unsigned, forged and replayed (stale) events are refused, a good one is queued."""
    from datetime import datetime, timedelta, timezone

    from worker.service.delivery import sign

    running = Stack(tmp_path, signing=True)
    running.n_workers = 0
    try:
        log = tmp_path / "signed-ingress.log"
        running.ingress = subprocess.Popen([sys.executable, "-m", "worker.cli", "serve"], env=running.env, cwd=ROOT,
                                           stdout=subprocess.DEVNULL, stderr=open(log, "wb"))
        _wait(lambda: running.http.get("/healthz").status_code == 200)
        raw = json.dumps({"id": "signed-1", "type": "article.published", "occurred_at": "2026-11-22T10:00:00Z",
                          "article": {"id": "s1", "revision": 1, "title": "t", "body": "b"}})
        assert running.post_raw(raw.encode(), signed=False).status_code == 401
        forged = sign("whsec_" + "QUJD" * 8, "m1", raw)
        assert running.post_raw(raw.encode(), headers=forged).json()["field"] == "webhook-signature"
        stale = sign(running.signing_secret, "m2", raw, now=datetime.now(timezone.utc) - timedelta(minutes=10))
        assert running.post_raw(raw.encode(), headers=stale).status_code == 401
        good = sign(running.signing_secret, "m3", raw)
        answer = running.post_raw(raw.encode(), headers=good)
        assert answer.status_code == 202 and answer.json()["status"] == "queued"
        assert running.post_raw(raw.encode(), headers=good, token="not-the-token").status_code == 401
        logged = log.read_text()
        assert "bad or stale signature" in logged and "refused token sha256:" in logged  # refusals are logged...
        assert running.signing_secret not in logged and running.token not in logged and "not-the-token" not in logged  # ...secrets are not
    finally:
        running.stop()


def test_a_worker_beside_a_django_cms_ignores_its_settings(tmp_path):
    """A worker run where DJANGO_SETTINGS_MODULE is set (a CMS's container, a shared shell) tags
    as usual: Celery's Django fix-up would import those settings and die on a module it cannot see."""
    running = Stack(tmp_path)
    running.env["DJANGO_SETTINGS_MODULE"] = "a_cms_this_worker_cannot_import.settings"
    try:
        running.start()
        running.publish("a-django", 1, title=ARMS[0], body=ARMS[1])
        (callback,) = running.cms.wait_for("a-django")
        assert [t["tag"] for t in callback["payload"]["topics"]] == ["arms-deals"]
    finally:
        running.stop()
