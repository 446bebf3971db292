"""What a worker does with an event and a delivery, as plain functions (no Celery here).

process_event: event -> (unpublish | tags) -> a scheduled delivery -> a first attempt at once.
attempt_delivery: one try at a scheduled delivery -> delivered, rescheduled or dead.
dispatch_due: hand deliveries whose retry time has come to the delivery queue.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Callable

from ..engine.decisions import apply_decisions
from ..engine.tagging import Tagger, parse_article
from ..errors import DeliveryError
from .decision_store import DecisionStore
from .delivery import CallbackSession, next_delay, post_callback
from .events import PublishEvent
from .ledger import Ledger
from .settings import Settings
from .story_index import StoryIndex, tag_digest

log = logging.getLogger("autotag.pipeline")
# while a first attempt runs inline, the schedule holds the delivery this far in the future
FIRST_ATTEMPT_LEASE = 60.0
# a task that dies with its worker is redelivered; past this many starts its event is poison
MAX_TASK_STARTS = 3
# an attempt's post lease outlives its callback timeout by this much (a worker that dies while
# posting holds up the article's next attempt for no longer than timeout + margin)
POST_LEASE_MARGIN = 5.0


@dataclass
class Runtime:
    """A worker process's long-lived parts: settings, ledger, the tagger (loaded once), HTTP."""

    settings: Settings
    ledger: Ledger
    load_tagger: Callable[[], Tagger]
    _tagger: Tagger | None = None
    _decisions: DecisionStore | None = None
    _stories: StoryIndex | None = None
    http: CallbackSession = field(default_factory=CallbackSession)
    _lanes: list = field(default_factory=list)

    def lane_sessions(self, count: int) -> list[CallbackSession]:
        """`count` keep-alive sessions for parallel delivery, the first being `http`; kept."""
        while len(self._lanes) < count - 1:
            self._lanes.append(CallbackSession())
        return [self.http, *self._lanes[: count - 1]]

    def fresh_connections(self) -> None:
        """After a fork: sockets must not be shared with the parent (the loaded tagger is)."""
        self.ledger.redis.connection_pool.reset()
        self.http, self._lanes = CallbackSession(), []

    @property
    def stories(self) -> StoryIndex:
        """The live story index, on the ledger's Redis connection."""
        if self._stories is None:
            self._stories = StoryIndex(self.ledger.redis, self.settings.key_prefix, self.settings.story_window_days)
        return self._stories

    @property
    def decisions(self) -> DecisionStore:
        """Editors' decisions, on the ledger's Redis connection."""
        if self._decisions is None:
            self._decisions = DecisionStore(self.ledger.redis, self.settings.key_prefix, self.settings.feedback_retention)
        return self._decisions

    @property
    def tagger(self) -> Tagger:
        if self._tagger is None:
            self._tagger = self.load_tagger()
        return self._tagger


def process_event(runtime: Runtime, message: dict, retries: int = 0) -> str:
    """Handle one queued event; returns what happened (for logs and tests). `retries`: how many
    of the earlier starts were the task's own retries (a transient error), not a worker's death."""
    ledger, settings = runtime.ledger, runtime.settings
    try:
        client_id, received_at = message["client"], float(message["received_at"])
        event = PublishEvent.from_message(message["event"])
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        # not our message's shape (a bug, or an older producer): record it where an operator
        # looks, under the ids it carries, and take it off the queue instead of retrying it
        return _malformed_message(ledger, settings, message, exc)
    done, starts = ledger.start_event(client_id, event.id, settings.idempotency_ttl, received_at)
    if done:
        return "duplicate"
    if starts - retries > MAX_TASK_STARTS:  # the earlier tasks died with their worker (killed, out of memory)
        return _poison(ledger, settings, client_id, event.id, f"the worker died {starts - retries - 1} times while handling this event")
    if not event.tags_wanted:
        runtime.stories.forget(client_id, event.article.id)
        cancelled = ledger.unpublish(client_id, event.article.id, event.article.revision)
        ledger.mark_event_done(client_id, event.id, settings.idempotency_ttl)
        ledger.count("events_unpublished")
        return "cancelled" if cancelled else "unpublished"
    try:
        article = parse_article(
            {"id": event.article.id, "title": event.article.title, "body": event.article.body, "published_at": event.occurred_at},
            max_body_bytes=settings.max_body_bytes,
        )
        (result,), (signature,) = runtime.tagger.tag_signed([article])
    except Exception as exc:  # poison input: record it, never block the queue on it
        return _poison(ledger, settings, client_id, event.id, f"{type(exc).__name__}: {exc}")
    story, versions = tag_story(runtime, client_id, article.id, event.article.revision, signature, result)
    (remembered,) = runtime.decisions.exchange(client_id, [(event.article.id, event.article.revision, result)])
    result = apply_decisions(story, remembered)[0]  # an editor's decision wins over the story's tags
    payload = tags_payload(result, event.id, event.article.revision, "publish")
    message_id, outcome = ledger.schedule(
        client_id, event.id, event.article.id, event.article.revision, payload, received_at,
        due_at=time.time() + FIRST_ATTEMPT_LEASE, done_ttl=settings.idempotency_ttl,
    )
    if outcome == "superseded":
        ledger.count("deliveries_superseded")
        return "superseded"
    update_versions(runtime, client_id, versions)
    if outcome == "exists":  # a rerun of this task: the delivery's own record decides
        return attempt_delivery(runtime, message_id)
    # just scheduled, atomically, as the article's pending delivery: try it at once
    record = {"id": message_id, "client": client_id, "article": event.article.id, "revision": event.article.revision,
              "attempts": 0, "received_at": received_at, "state": "pending"}
    return _attempt(runtime, record, payload)


def tags_payload(result: dict, event_id: str, revision, reason: str) -> dict:
    """The callback's body: the article's tags, and why they are sent (publish, story, retag)."""
    return {"type": "article.tags", "reason": reason, "event_id": event_id, "article": {"id": result["id"], "revision": revision},
            "model_version": result["model_version"], "topics": result["topics"], "regions": result["regions"],
            "suggested": result["suggested"], "story": result["story"]}


def tag_story(runtime: Runtime, client_id: str, article_id, revision, signature, result: dict) -> tuple[dict, list]:
    """Place a freshly tagged article in its story and give it the story's tags (the client's
    `story_tags` mode says how). Returns its result and, for every other version, the story's
    tags for it: (Version, harmonised result)."""
    client = runtime.settings.client(client_id)
    placed = runtime.stories.place(client_id, article_id, revision, signature, result)
    harmonised = runtime.tagger.harmonise([v.result for v in placed.versions], placed.story_id, client.story_tags if client else "shared")
    runtime.stories.mark_sent(client_id, {article_id: tag_digest(harmonised[0])})
    return harmonised[0], list(zip(placed.versions[1:], harmonised[1:]))


def update_versions(runtime: Runtime, client_id: str, versions: list) -> int:
    """A new version changed the story's tags: each earlier version whose tags change gets a
    callback with them (reason "story"), scheduled at its own latest revision, so the ledger's
    ordering holds (an older revision never after a newer one). Editors' decisions on each
    version still win there. Returns how many were scheduled."""
    changed = [(version, result) for version, result in versions if version.revision is not None and tag_digest(result) != version.sent]
    if not changed:
        return 0
    remembered = runtime.decisions.decisions_for_many(client_id, [version.article_id for version, _ in changed])
    now, entries = time.time(), []
    for (version, result), decisions in zip(changed, remembered):
        digest = tag_digest(result)
        event_id = f"story-{result['story']['id']}-{digest}-{version.article_id}"
        payload = tags_payload(apply_decisions(result, decisions)[0], event_id, version.revision, "story")
        entries.append({"client_id": client_id, "event_id": event_id, "article_id": version.article_id, "revision": version.revision,
                        "payload": payload, "received_at": now, "due_at": now})
    outcomes = runtime.ledger.schedule_many(entries, done_ttl=runtime.settings.idempotency_ttl, counter="")
    runtime.stories.mark_sent(client_id, {version.article_id: tag_digest(result) for version, result in changed})
    scheduled = sum(outcome == "scheduled" for _, outcome in outcomes)
    runtime.ledger.count("story_updates", scheduled)
    return scheduled


def _malformed_message(ledger: Ledger, settings: Settings, message, error: Exception) -> str:
    fields = message if isinstance(message, dict) else {}
    event = fields.get("event") if isinstance(fields.get("event"), dict) else {}
    return _poison(ledger, settings, str(fields.get("client", "?"))[:200], str(event.get("id", "?"))[:200],
                   f"malformed task message: {type(error).__name__}: {error}")


def _poison(ledger: Ledger, settings: Settings, client_id: str, event_id: str, reason: str) -> str:
    """Record why an event cannot be handled, mark it done so no copy tries again, count it."""
    log.error("event %s (client %s) failed: %s", event_id, client_id, reason)
    ledger.record_failure(client_id, event_id, reason, settings.idempotency_ttl)
    ledger.mark_event_done(client_id, event_id, settings.idempotency_ttl)
    ledger.count("tasks_failed")
    return "failed"


def attempt_delivery(runtime: Runtime, message_id: str) -> str:
    ledger = runtime.ledger
    record = ledger.delivery(message_id)
    if record is None or record["state"] != "pending":
        return record["state"] if record else "missing"
    if not ledger.is_current(record):
        ledger.drop(record, "superseded")
        ledger.count("deliveries_superseded")
        return "superseded"
    return _attempt(runtime, record, json.loads(record["payload"]))


def attempt_deliveries(runtime: Runtime, message_ids: list[str]) -> list[str]:
    """A batch of scheduled deliveries (the dispatcher hands them out 25 at a time): read and
    held in two round trips, then each posted over the kept-alive connection once its post
    lease is taken (which checks again, right before the POST, that a newer revision has not
    been scheduled or delivered while the batch ran) and recorded as soon as it arrives."""
    ledger, settings = runtime.ledger, runtime.settings
    records = ledger.current_deliveries(message_ids, hold_until=time.time() + settings.callback_timeout * len(message_ids) + 5)
    outcomes = []
    started, budget = time.time(), settings.task_time_limit / 2  # a slow CMS must not run the task into its hard limit
    for position, record in enumerate(records):
        if time.time() - started > budget:
            ledger.redis.zadd(ledger.key("due"), {later["id"]: time.time() for later in records[position:]}, xx=True)
            outcomes += ["released"] * (len(records) - position)
            break
        outcome = _post(runtime, record, json.loads(record["payload"]))
        if outcome == "delivered":
            ledger.mark_delivered(record, time.time() - float(record["received_at"]))
        outcomes.append(outcome)
    return outcomes


def post_in_lanes(runtime: Runtime, records: list[dict], slots: list[float], connections: int) -> list[str]:
    """Post scheduled deliveries (ledger records, payload included), each not before its slot,
    over `connections` keep-alive connections at once (record i on connection i mod n, in
    order), each through its post lease like any other attempt and recorded as it arrives
    (latency not observed: these are re-tag callbacks, not events). A connection stops at its
    first failure (that delivery goes on to its next retry), so a slow CMS never ties up the
    task; the records it did not reach are made due at their slots for the dispatcher.
    Returns each record's outcome ('delivered', 'superseded', 'retrying', 'dead', 'released', ...)."""
    lanes = [list(range(start, len(records), connections)) for start in range(min(connections, len(records)))]
    sessions = runtime.lane_sessions(len(lanes))
    outcomes = ["released"] * len(records)

    def run(index: int) -> None:
        for position, number in enumerate(lanes[index]):
            wait = slots[number] - time.time()
            if wait > 0:
                time.sleep(wait)
            record = records[number]
            outcome = outcomes[number] = _post(runtime, record, json.loads(record["payload"]), session=sessions[index])
            if outcome == "delivered":
                runtime.ledger.mark_delivered(record, None)
            elif outcome in ("retrying", "dead"):
                rest = lanes[index][position + 1 :]
                if rest:
                    runtime.ledger.redis.zadd(runtime.ledger.key("due"), {records[n]["id"]: max(slots[n], time.time()) for n in rest}, xx=True)
                return

    if len(lanes) == 1:
        run(0)
    else:
        threads = [threading.Thread(target=run, args=(index,), name=f"autotag-lane-{index}") for index in range(len(lanes))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    return outcomes


def _attempt(runtime: Runtime, record: dict, payload: dict) -> str:
    outcome = _post(runtime, record, payload)
    if outcome == "delivered":
        runtime.ledger.mark_delivered(record, latency=time.time() - float(record["received_at"]))
    return outcome


def _post(runtime: Runtime, record: dict, payload: dict, session: CallbackSession | None = None) -> str:
    """One try, under the article's post lease, its failure handled (rescheduled or dead); a
    success is for the caller to record (which releases the lease). A failure of our own (not
    the CMS's: a secret that cannot sign, a bug) is recorded with its error, counted, and ends
    in the dead letters at once, where an operator sees it and can redeliver after the fix."""
    ledger, settings = runtime.ledger, runtime.settings
    lease = _take_post_lease(runtime, record)
    if lease == "superseded":
        ledger.drop(record, "superseded")
        ledger.count("deliveries_superseded")
        return "superseded"
    if lease == "busy":  # an attempt for the article outlived its lease's margin: the dispatcher tries later
        ledger.hold(record["id"], time.time() + 1.0)
        return "waiting"
    if lease != "ok":
        return lease
    client = settings.client(record["client"])
    if client is None:
        ledger.kill(record, f"client {record['client']!r} is no longer configured")
        ledger.count("deliveries_dead")
        return "dead"
    try:
        post_callback(client, record["id"], payload, timeout=settings.callback_timeout, session=session or runtime.http)
    except DeliveryError as exc:
        return record_failed_attempt(runtime, record, exc)
    except Exception as exc:  # noqa: BLE001 - ours, not the CMS's: never retried unseen
        log.exception("delivery %s failed before reaching the CMS", record["id"])
        ledger.kill(record, f"not sent: {type(exc).__name__}: {exc}")
        ledger.count("deliveries_dead")
        ledger.count("deliveries_failed_internal")
        return "dead"
    return "delivered"


def _take_post_lease(runtime: Runtime, record: dict) -> str:
    """`Ledger.begin_post`, waiting while another attempt for the same article is on the wire
    (it ends within its callback timeout; a lease whose holder died expires after the margin)."""
    lease = runtime.settings.callback_timeout + POST_LEASE_MARGIN
    deadline, pause = time.monotonic() + lease + 1.0, 0.002
    while True:
        outcome = runtime.ledger.begin_post(record, lease)
        if outcome != "busy" or time.monotonic() > deadline:
            return outcome
        time.sleep(pause)
        pause = min(pause * 2, 0.05)


def record_failed_attempt(runtime: Runtime, record: dict, error: DeliveryError) -> str:
    """A scheduled delivery's try failed: on to its next retry, or dead."""
    ledger, settings = runtime.ledger, runtime.settings
    failures = record["attempts"] + 1
    delay = None if error.permanent else next_delay(failures, settings.retry_delays, settings.retry_jitter, error.retry_after)
    if delay is None:
        log.warning("delivery %s is dead after %d attempt(s): %s", record["id"], failures, error)
        ledger.kill(record, str(error))
        ledger.count("deliveries_dead")
        return "dead"
    ledger.reschedule(record, time.time() + delay, str(error))
    ledger.count("deliveries_retried")
    return "retrying"


def requeue_stalled_events(ledger: Ledger, queue: str, queued_before: float) -> int:
    """Queue again every event the ingress queued before `queued_before` that no worker has
    finished and that is no longer in the queue: kombu's Redis transport can lose a message
    taken off the list by a worker that dies before recording it as unacknowledged, and
    nothing else would ever bring it back. An event is known to have left the queue when the
    queue is empty or a later-queued event has started (the queue is first in, first out), so a
    backlog is never copied. Each copy gets a fresh delivery tag; a copy of an event already
    done does nothing."""
    if ledger.redis.llen(queue):
        queued_before = min(queued_before, ledger.started_upto())
    requeued = 0
    for client_id, event_id, message in ledger.stalled_events(queued_before):
        envelope = json.loads(message)
        envelope["properties"]["delivery_tag"] = str(uuid.uuid4())
        if ledger.requeue_stalled(client_id, event_id, queue, json.dumps(envelope), queued_before):
            log.warning("event %s (client %s) was lost on its way to a worker; queued again", event_id, client_id)
            requeued += 1
    return requeued


def dispatch_due(ledger: Ledger, send: Callable[[list[str]], None], lease: float, limit: int = 1000, batch: int = 25) -> int:
    """Send every delivery whose time has come to the delivery queue, `batch` ids a task (one
    task per callback would cost more than the callback); returns how many."""
    due = ledger.claim_due(time.time(), lease, limit)
    for start in range(0, len(due), batch):
        send(due[start : start + batch])
    return len(due)
