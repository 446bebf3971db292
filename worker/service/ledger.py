"""The ledger in Redis: which events were seen, which revision of each article is current, and
every delivery with its retry schedule, dead letters and counters.

Keys (all under one prefix):
    seen:{client}:{event}      ingress dedupe (SET NX, TTL)
    done:{client}:{event}      a processed event (TTL): a redelivered task does nothing twice
    failed:{client}:{event}    why tagging an event failed (poison input), kept for inspection
    inflight / inflight_at     hash and sorted set: every event the ingress queued and no worker
                               has finished yet, with its task message; an event still here long
                               after the visibility timeout was lost on its way to a worker
                               (kombu takes a message off the list before it records it as
                               unacknowledged) and is queued again
    starts:{client}:{event}    how many tasks have started on an event (one that kills its worker
                               each time is stopped after MAX_TASK_STARTS)
    article:{client}:{id}      hash: latest revision, unpublished revision, pending delivery
    delivery:{id}              hash: the delivery, its payload, attempts, state, last error;
                               once delivered, superseded or cancelled, the payload goes and
                               the record expires after `finished_ttl` (Redis memory stays
                               bounded by what is pending, not by everything ever published)
    posting:{client}:{id}      the article's post lease: the delivery id whose attempt is on the
                               wire (PX: the callback timeout and a margin), so that no two
                               attempts for one article are ever on the wire at once
    due                        sorted set: delivery id -> when to try next (the durable schedule)
    dead                       sorted set: delivery id -> when it died
    progress                   sorted set: `started_upto`, the latest queueing time of a started event
    metrics / latency          hashes of counters and latency-histogram buckets
    activity:{slot}            the last hour's events, callbacks and latencies (see activity.py)

Ordering rules live in Lua scripts so each is one atomic step: a delivery for an older
revision is never scheduled after a newer one, scheduling a newer revision supersedes a pending
older one, and unpublishing cancels what is pending. Every path that posts a callback (a first
attempt, a retry batch, a re-tag) takes the article's post lease first (`begin_post`), which
re-checks, right before the POST, that the delivery is still the article's current one: an
older revision whose attempt was already on the wire makes a newer one wait for it, and one
that was superseded while it waited stands down, so the CMS never ends on an older revision.
"""

from __future__ import annotations

import hashlib
import json
import time

import redis

from . import activity

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)

_SCHEDULE = """
local article, delivery, due = KEYS[1], KEYS[2], KEYS[3]
local id, now = ARGV[2], tonumber(ARGV[3])
local latest = tonumber(redis.call('HGET', article, 'latest') or '-1')
local unpublished = tonumber(redis.call('HGET', article, 'unpublished') or '-1')
local revision = tonumber(ARGV[1]) or math.max(latest, 0)  -- '': whatever revision is current
redis.call('SET', ARGV[10], 1, 'EX', tonumber(ARGV[11]))
if ARGV[13] ~= '' then redis.call('HINCRBY', ARGV[12], ARGV[13], 1) end
if revision < latest or revision <= unpublished then return 'superseded' end
if redis.call('EXISTS', delivery) == 1 then return 'exists' end
local pending = redis.call('HGET', article, 'pending')
if pending and pending ~= id then
  redis.call('ZREM', due, pending)
  redis.call('HSET', ARGV[5] .. pending, 'state', 'superseded')
  redis.call('HDEL', ARGV[5] .. pending, 'payload')
  redis.call('EXPIRE', ARGV[5] .. pending, tonumber(ARGV[11]))
end
redis.call('HSET', article, 'latest', revision, 'pending', id)
redis.call('HSET', delivery, 'payload', ARGV[4], 'state', 'pending', 'attempts', 0, 'created_at', now,
           'article', ARGV[6], 'client', ARGV[7], 'revision', revision, 'event', ARGV[8], 'received_at', ARGV[9])
redis.call('ZADD', due, now, id)
return 'scheduled'
"""
_UNPUBLISH = """
local article, due = KEYS[1], KEYS[2]
local revision = tonumber(ARGV[1])
local unpublished = tonumber(redis.call('HGET', article, 'unpublished') or '-1')
if revision > unpublished then redis.call('HSET', article, 'unpublished', revision) end
local latest = tonumber(redis.call('HGET', article, 'latest') or '-1')
if revision > latest then redis.call('HSET', article, 'latest', revision) end
local pending = redis.call('HGET', article, 'pending')
if pending then
  local state = redis.call('HGET', ARGV[2] .. pending, 'state')
  local pending_revision = tonumber(redis.call('HGET', ARGV[2] .. pending, 'revision') or '-1')
  if state == 'pending' and pending_revision <= revision then
    redis.call('ZREM', due, pending)
    redis.call('HSET', ARGV[2] .. pending, 'state', 'cancelled')
    redis.call('HDEL', ARGV[2] .. pending, 'payload')
    redis.call('EXPIRE', ARGV[2] .. pending, tonumber(ARGV[3]))
    redis.call('HDEL', article, 'pending')
    return 1
  end
end
return 0
"""
# Right before a POST (KEYS: delivery, article, post lease, due; ARGV: delivery id, lease in
# ms, hold until): 'ok' when the delivery is still pending, is the article's current delivery,
# is not older than what was delivered, and no other attempt for the article is on the wire;
# the lease is then taken and the schedule holds the delivery until the attempt ends. Else
# 'busy' (another attempt holds the lease: wait for it), 'superseded', or the delivery's state.
_BEGIN_POST = """
local state = redis.call('HGET', KEYS[1], 'state')
if state ~= 'pending' then return state or 'missing' end
local revision = tonumber(redis.call('HGET', KEYS[1], 'revision'))
local delivered = tonumber(redis.call('HGET', KEYS[2], 'delivered') or '-1')
if redis.call('HGET', KEYS[2], 'pending') ~= ARGV[1] or revision < delivered then return 'superseded' end
local holder = redis.call('GET', KEYS[3])
if holder and holder ~= ARGV[1] then return 'busy' end
redis.call('SET', KEYS[3], ARGV[1], 'PX', tonumber(ARGV[2]))
redis.call('ZADD', KEYS[4], 'XX', ARGV[3], ARGV[1])
return 'ok'
"""
_END_POST = """
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 1
"""
# Take up to ARGV[3] deliveries due by ARGV[1], pushing each out by a lease (ARGV[2]) so that no
# other dispatcher takes it meanwhile; if the taker dies, it is due again when the lease ends.
_CLAIM_DUE = """
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[3]))
for _, id in ipairs(ids) do redis.call('ZADD', KEYS[1], ARGV[2], id) end
return ids
"""


_DELIVERED = """
redis.call('HSET', KEYS[1], 'state', 'delivered', 'delivered_at', ARGV[2], 'attempts', ARGV[3])
redis.call('HDEL', KEYS[1], 'payload')
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[7]))
redis.call('ZREM', KEYS[2], ARGV[1])
if redis.call('HGET', KEYS[3], 'pending') == ARGV[1] then redis.call('HDEL', KEYS[3], 'pending') end
local delivered = tonumber(redis.call('HGET', KEYS[3], 'delivered') or '-1')
if tonumber(ARGV[4]) > delivered then redis.call('HSET', KEYS[3], 'delivered', ARGV[4]) end
if redis.call('GET', KEYS[7]) == ARGV[1] then redis.call('DEL', KEYS[7]) end
redis.call('HINCRBY', KEYS[4], 'deliveries_ok', 1)
if ARGV[5] ~= '' then
  redis.call('HINCRBY', KEYS[5], ARGV[5], 1)
  redis.call('HINCRBYFLOAT', KEYS[5], 'sum', ARGV[6])
end
redis.call('HINCRBY', KEYS[6], 'callbacks', 1)
if ARGV[8] ~= '' then redis.call('HINCRBY', KEYS[6], ARGV[8], 1) end
redis.call('EXPIRE', KEYS[6], tonumber(ARGV[9]))
return 1
"""


# Queue a stalled event's message again (KEYS: inflight hash, inflight_at, done key, queue,
# metrics; ARGV: field, the latest time it may have been queued, now, the message with a fresh
# delivery tag): only if nothing finished or requeued it meanwhile.
_REQUEUE = """
local queued_at = redis.call('ZSCORE', KEYS[2], ARGV[1])
if not queued_at or tonumber(queued_at) >= tonumber(ARGV[2]) then return 0 end
if redis.call('EXISTS', KEYS[3]) == 1 then
  redis.call('HDEL', KEYS[1], ARGV[1])
  redis.call('ZREM', KEYS[2], ARGV[1])
  return 0
end
redis.call('LPUSH', KEYS[4], ARGV[4])
redis.call('HSET', KEYS[1], ARGV[1], ARGV[4])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
redis.call('HINCRBY', KEYS[5], 'events_requeued', 1)
return 1
"""


def inflight_field(client_id: str, event_id: str) -> str:
    return json.dumps([client_id, event_id])


def delivery_id(client_id: str, event_id: str) -> str:
    """Stable across retries and redeliveries: the receiver's dedupe key (webhook-id)."""
    return "msg_" + hashlib.sha256(f"{client_id}\x00{event_id}".encode()).hexdigest()[:32]


class Ledger:
    def __init__(self, client: redis.Redis, prefix: str = "autotag", finished_ttl: int = 7 * 24 * 3600):
        self.redis = client
        self.prefix = prefix
        self.finished_ttl = finished_ttl  # how long a finished delivery's record is kept for inspection
        self._schedule = client.register_script(_SCHEDULE)
        self._unpublish = client.register_script(_UNPUBLISH)
        self._claim_due = client.register_script(_CLAIM_DUE)
        self._delivered = client.register_script(_DELIVERED)
        self._requeue = client.register_script(_REQUEUE)
        self._begin_post = client.register_script(_BEGIN_POST)
        self._end_post = client.register_script(_END_POST)

    def key(self, *parts) -> str:
        return ":".join([self.prefix, *map(str, parts)])

    # events
    def claim_event(self, client_id: str, event_id: str, ttl: int) -> bool:
        return bool(self.redis.set(self.key("seen", client_id, event_id), 1, nx=True, ex=ttl))

    def release_event(self, client_id: str, event_id: str) -> None:
        self.redis.delete(self.key("seen", client_id, event_id))

    def start_event(self, client_id: str, event_id: str, ttl: int, received_at: float) -> tuple[bool, int]:
        """(done already, how many times a task has started on it, this one included), in one
        round trip: an event whose task keeps dying with its worker is poison, not a retry. Also
        moves `started_upto` (the latest queueing time of any started event) forward: the queue
        is first in, first out, so an unstarted event queued before it has left the queue."""
        with self.redis.pipeline(transaction=False) as pipe:
            pipe.exists(self.key("done", client_id, event_id))
            pipe.incr(self.key("starts", client_id, event_id))
            pipe.expire(self.key("starts", client_id, event_id), ttl)
            pipe.zadd(self.key("progress"), {"started_upto": received_at}, gt=True)
            done, starts, _, _ = pipe.execute()
        return bool(done), int(starts)

    def started_upto(self) -> float:
        return float(self.redis.zscore(self.key("progress"), "started_upto") or 0.0)

    def mark_event_done(self, client_id: str, event_id: str, ttl: int) -> None:
        self.redis.set(self.key("done", client_id, event_id), 1, ex=ttl)

    def finish_inflight(self, client_id: str, event_id: str) -> None:
        """A worker is done with the event (whatever the outcome): it is no longer in flight."""
        field = inflight_field(client_id, event_id)
        with self.redis.pipeline(transaction=False) as pipe:
            pipe.hdel(self.key("inflight"), field)
            pipe.zrem(self.key("inflight_at"), field)
            pipe.execute()

    def stalled_events(self, queued_before: float, limit: int = 100) -> list[tuple[str, str, bytes]]:
        """(client, event, task message) of events queued before `queued_before` (strictly) and not finished."""
        fields = self.redis.zrangebyscore(self.key("inflight_at"), "-inf", f"({queued_before!r}", start=0, num=limit)
        messages = self.redis.hmget(self.key("inflight"), fields) if fields else []
        return [(*json.loads(field), message) for field, message in zip(fields, messages) if message is not None]

    def requeue_stalled(self, client_id: str, event_id: str, queue: str, message: str, queued_before: float) -> bool:
        return bool(self._requeue(
            keys=[self.key("inflight"), self.key("inflight_at"), self.key("done", client_id, event_id), queue, self.key("metrics")],
            args=[inflight_field(client_id, event_id), queued_before, time.time(), message]))

    def record_failure(self, client_id: str, event_id: str, reason: str, ttl: int) -> None:
        self.redis.set(self.key("failed", client_id, event_id), reason[:2000], ex=ttl)

    def failure(self, client_id: str, event_id: str) -> str | None:
        value = self.redis.get(self.key("failed", client_id, event_id))
        return value.decode() if value else None

    # deliveries
    def schedule(self, client_id: str, event_id: str, article_id, revision: int, payload: dict, received_at: float,
                 due_at: float, done_ttl: int) -> tuple[str, str]:
        """Schedule the delivery of an event's tags and mark the event done, in one atomic step.
        `revision` None: whatever revision is current (a re-tag line that names none). Returns
        (delivery id, 'scheduled' | 'exists' | 'superseded')."""
        message_id = delivery_id(client_id, event_id)
        outcome = self._schedule(
            keys=[self.key("article", client_id, article_id), self.key("delivery", message_id), self.key("due")],
            args=[_revision_arg(revision), message_id, due_at, json.dumps(payload, ensure_ascii=False), self.key("delivery", ""),
                  json.dumps(article_id), client_id, event_id, received_at,
                  self.key("done", client_id, event_id), done_ttl, self.key("metrics"), "tasks_done"],
        )
        return message_id, outcome.decode()

    def schedule_many(self, entries: list[dict], done_ttl: int, counter: str = "tasks_done") -> list[tuple[str, str]]:
        """`schedule` for many deliveries in one round trip (a re-tag chunk's callbacks, a story's
        updates). Each entry: client_id, event_id, article_id, revision, payload, received_at,
        due_at. `counter`: the metric each one counts towards ("" for none: a story update is
        not an event handled)."""
        with self.redis.pipeline(transaction=False) as pipe:
            ids = []
            for e in entries:
                message_id = delivery_id(e["client_id"], e["event_id"])
                ids.append(message_id)
                self._schedule(
                    keys=[self.key("article", e["client_id"], e["article_id"]), self.key("delivery", message_id), self.key("due")],
                    args=[_revision_arg(e["revision"]), message_id, e["due_at"], json.dumps(e["payload"], ensure_ascii=False), self.key("delivery", ""),
                          json.dumps(e["article_id"]), e["client_id"], e["event_id"], e["received_at"],
                          self.key("done", e["client_id"], e["event_id"]), done_ttl, self.key("metrics"), counter],
                    client=pipe,
                )
            outcomes = pipe.execute()
        return [(message_id, outcome.decode()) for message_id, outcome in zip(ids, outcomes)]

    def unpublish(self, client_id: str, article_id, revision: int) -> bool:
        return bool(self._unpublish(keys=[self.key("article", client_id, article_id), self.key("due")], args=[revision, self.key("delivery", ""), self.finished_ttl]))

    def delivery(self, message_id: str) -> dict | None:
        return _record(message_id, self.redis.hgetall(self.key("delivery", message_id)))

    def deliveries(self, message_ids: list[str]) -> list[dict | None]:
        """`delivery` for many, in one round trip."""
        with self.redis.pipeline(transaction=False) as pipe:
            for message_id in message_ids:
                pipe.hgetall(self.key("delivery", message_id))
            return [_record(i, raw) for i, raw in zip(message_ids, pipe.execute())]

    def current_deliveries(self, message_ids: list[str], hold_until: float) -> list[dict]:
        """Of these deliveries, the pending ones each article still waits for, held off the
        schedule until `hold_until`: two round trips for a whole batch."""
        with self.redis.pipeline(transaction=False) as pipe:
            for message_id in message_ids:
                pipe.hgetall(self.key("delivery", message_id))
            records = [r for r in (_record(i, raw) for i, raw in zip(message_ids, pipe.execute())) if r and r["state"] == "pending"]
        with self.redis.pipeline(transaction=False) as pipe:
            for record in records:
                pipe.hget(self.key("article", record["client"], record["article"]), "pending")
                pipe.zadd(self.key("due"), {record["id"]: hold_until}, xx=True)
            answers = pipe.execute()
        current = []
        for record, pending in zip(records, answers[::2]):
            if pending is not None and pending.decode() == record["id"]:
                current.append(record)
            else:
                self.drop(record, "superseded")
                self.count("deliveries_superseded")
        return current

    def is_current(self, record: dict) -> bool:
        """Still the article's pending delivery (not superseded by a newer revision, not cancelled)."""
        pending = self.redis.hget(self.key("article", record["client"], record["article"]), "pending")
        return record.get("state") == "pending" and pending is not None and pending.decode() == record["id"]

    def mark_delivered(self, record: dict, latency: float | None, pipe=None) -> None:
        """Delivered: off the schedule, the article's pending slot cleared (if it still names this
        delivery), its post lease released, counted, and its end-to-end latency observed (None:
        a re-tag's callback, not an event's); one atomic step (queued on `pipe` when given, to
        record a batch in one round trip)."""
        bucket = "" if latency is None else next((str(b) for b in LATENCY_BUCKETS if latency <= b), "+Inf")
        self._delivered(
            keys=[self.key("delivery", record["id"]), self.key("due"), self.key("article", record["client"], record["article"]),
                  self.key("metrics"), self.key("latency"), activity.slot_key(self.prefix), self.post_lease_key(record)],
            args=[record["id"], time.time(), record["attempts"] + 1, record["revision"], bucket, latency or 0, self.finished_ttl,
                  "" if latency is None else activity.latency_field(latency), activity.KEEP_SECONDS],
            client=pipe,
        )

    def post_lease_key(self, record: dict) -> str:
        return self.key("posting", record["client"], record["article"])

    def begin_post(self, record: dict, lease: float) -> str:
        """Take the article's post lease for this delivery's attempt, if it is still the one to
        post: 'ok', 'busy' (another attempt for the article is on the wire), 'superseded', or
        the delivery's state ('delivered', 'cancelled', 'dead', 'missing')."""
        outcome = self._begin_post(
            keys=[self.key("delivery", record["id"]), self.key("article", record["client"], record["article"]),
                  self.post_lease_key(record), self.key("due")],
            args=[record["id"], int(lease * 1000), time.time() + lease])
        return outcome.decode()

    def end_post(self, record: dict, pipe=None) -> None:
        """Release the article's post lease if this delivery holds it."""
        self._end_post(keys=[self.post_lease_key(record)], args=[record["id"]], client=pipe)

    def reschedule(self, record: dict, due_at: float, error: str) -> None:
        with self.redis.pipeline() as pipe:
            pipe.hset(self.key("delivery", record["id"]), mapping={"attempts": record["attempts"] + 1, "last_error": error[:500], "next_at": due_at,
                                                                          "last_attempt_at": time.time()})
            pipe.zadd(self.key("due"), {record["id"]: due_at})
            self.end_post(record, pipe=pipe)
            pipe.execute()

    def kill(self, record: dict, error: str) -> None:
        with self.redis.pipeline() as pipe:
            pipe.hset(self.key("delivery", record["id"]), mapping={"state": "dead", "attempts": record["attempts"] + 1, "last_error": error[:500], "died_at": time.time(),
                                                                          "last_attempt_at": time.time()})
            pipe.zrem(self.key("due"), record["id"])
            pipe.zadd(self.key("dead"), {record["id"]: time.time()})
            self.end_post(record, pipe=pipe)
            pipe.execute()

    def drop(self, record: dict, state: str) -> None:
        """Take a superseded or cancelled delivery off the schedule."""
        with self.redis.pipeline() as pipe:
            pipe.hset(self.key("delivery", record["id"]), "state", state)
            pipe.hdel(self.key("delivery", record["id"]), "payload")
            pipe.expire(self.key("delivery", record["id"]), self.finished_ttl)
            pipe.zrem(self.key("due"), record["id"])
            pipe.execute()

    def hold(self, message_id: str, until: float) -> None:
        """Keep a scheduled delivery from being handed out again before `until`."""
        self.redis.zadd(self.key("due"), {message_id: until}, xx=True)

    def claim_due(self, now: float, lease: float, limit: int = 100) -> list[str]:
        return [i.decode() for i in self._claim_due(keys=[self.key("due")], args=[now, now + lease, limit])]

    def listing(self, which: str, limit: int = 100) -> list[dict]:
        """Deliveries on the schedule ('due', soonest first) or dead ('dead', newest first)."""
        ids = self.redis.zrange(self.key(which), 0, limit - 1, desc=(which == "dead"), withscores=True)
        records = []
        for raw_id, score in ids:
            record = self.delivery(raw_id.decode())
            if record:
                record["score"] = score
                records.append(record)
        return records

    def redeliver(self, message_id: str, now: float) -> bool:
        """Put a dead delivery back on the schedule, due now, with a fresh retry budget."""
        record = self.delivery(message_id)
        if not record or record["state"] != "dead":
            return False
        article = self.key("article", record["client"], record["article"])
        latest = int(self.redis.hget(article, "latest") or -1)
        unpublished = int(self.redis.hget(article, "unpublished") or -1)
        if record["revision"] < latest or record["revision"] <= unpublished:
            return False  # a newer revision or an unpublish has happened since
        with self.redis.pipeline() as pipe:
            pipe.hset(self.key("delivery", message_id), mapping={"state": "pending", "attempts": 0})
            pipe.hset(article, "pending", message_id)
            pipe.zrem(self.key("dead"), message_id)
            pipe.zadd(self.key("due"), {message_id: now})
            pipe.execute()
        return True

    # counters
    def count(self, name: str, amount: int = 1) -> None:
        self.redis.hincrby(self.key("metrics"), name, amount)

    def counters(self) -> tuple[dict[str, int], dict[str, float]]:
        counters = {k.decode(): int(v) for k, v in self.redis.hgetall(self.key("metrics")).items()}
        latency = {k.decode(): float(v) for k, v in self.redis.hgetall(self.key("latency")).items()}
        return counters, latency

    def schedule_size(self) -> tuple[int, int]:
        return self.redis.zcard(self.key("due")), self.redis.zcard(self.key("dead"))


def _revision_arg(revision) -> str:
    return "" if revision is None else str(int(revision))


def _record(message_id: str, raw: dict) -> dict | None:
    if not raw:
        return None
    record = {k.decode(): v.decode() for k, v in raw.items()}
    record["id"] = message_id
    record["attempts"] = int(record.get("attempts", 0))
    record["revision"] = int(record["revision"])
    record["article"] = json.loads(record["article"])
    return record
