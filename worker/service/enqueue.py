"""The ingress' way onto the tag queue: dedupe, queue and count an event in one Redis round
trip, from the event loop.

`celery_app.send_task` from a thread pool cost the ingress about a millisecond of CPU per event
(a thread hop, a kombu producer and a new Redis client per publish, three round trips with the
dedupe claim and the counter), which at a few hundred events/s took a core that the workers
need. Here Celery itself builds the task message (`amqp.as_task_v2`, kombu's JSON serializer),
wrapped in the envelope kombu's Redis transport pushes (base64 body, delivery info for the
anonymous exchange, priority 0: the queue's own list), and one Lua script claims the event id
(SET NX EX), pushes the message (LPUSH) and counts it, atomically: the event is in the queue
before the 202, and a failed script leaves neither the claim nor the message behind.

Used only when the broker is a Redis and the ledger's keys live in that same Redis (every
deployment this project makes); otherwise the ingress keeps `send_task`.
"""

from __future__ import annotations

import base64
import uuid

import redis
import redis.asyncio
from celery.utils.nodenames import anon_nodename
from kombu.serialization import dumps as serialize
from kombu.utils.json import dumps as json_dumps
from redis.asyncio.retry import Retry
from redis.backoff import ConstantBackoff

from . import activity
from .ledger import Ledger, inflight_field
from .redis_connect import connect_async, is_sentinel, same_redis
from .replica_ack import ReplicaAcks

TASK_NAME = "autotag.tag_event"

# KEYS: seen key, queue list, metrics hash, inflight hash, inflight_at, activity slot; ARGV:
# dedupe ttl, the message, the event's in-flight field, now, the activity slot's lifetime
_CLAIM_AND_QUEUE = """
if redis.call('SET', KEYS[1], 1, 'NX', 'EX', tonumber(ARGV[1])) then
  redis.call('LPUSH', KEYS[2], ARGV[2])
  redis.call('HSET', KEYS[4], ARGV[3], ARGV[2])
  redis.call('ZADD', KEYS[5], ARGV[4], ARGV[3])
  redis.call('HINCRBY', KEYS[3], 'events_received', 1)
  redis.call('HINCRBY', KEYS[6], 'events', 1)
  redis.call('EXPIRE', KEYS[6], tonumber(ARGV[5]))
  return 1
end
redis.call('HINCRBY', KEYS[3], 'events_duplicate', 1)
return 0
"""


class EventQueue:
    """`await queue_event(client_id, event, received_at)` -> 'queued' | 'duplicate'; raises a
    redis.RedisError (or OSError) when Redis cannot take it."""

    def __init__(self, celery_app, ledger: Ledger, queue: str, idempotency_ttl: int, acks: ReplicaAcks | None = None):
        self.app = celery_app
        self.ledger = ledger
        self.queue = queue
        self.ttl = idempotency_ttl
        self.url = _redis_url(celery_app)
        self.master_name = celery_app.autotag_settings.redis_master_name if hasattr(celery_app, "autotag_settings") else None
        self.acks = acks or ReplicaAcks(0, 1.0)
        self._client: redis.asyncio.Redis | None = None
        self._script = None
        self._reply_to: str | None = None
        self._origin: str | None = None

    @classmethod
    def for_app(cls, celery_app, ledger: Ledger, queue: str, idempotency_ttl: int, ledger_url: str | None = None,
                acks: ReplicaAcks | None = None) -> EventQueue | None:
        """None unless the broker is the Redis holding the ledger (then keep send_task).
        `ledger_url`: the URL the ledger was made from (needed for a sentinel:// one)."""
        url = _redis_url(celery_app)
        if not url.startswith(("redis://", "rediss://", "unix://", "sentinel://")) or celery_app.conf.task_serializer != "json":
            return None
        conf = celery_app.conf
        if conf.task_compression or conf.task_protocol != 2 or conf.task_default_delivery_mode not in ("persistent", 2):
            return None
        if (conf.broker_transport_options or {}).get("global_keyprefix"):  # kombu would prefix the queue's key
            return None
        if ledger_url is not None:
            return cls(celery_app, ledger, queue, idempotency_ttl, acks) if same_redis(url, ledger_url) else None
        if is_sentinel(url):
            return None
        try:
            broker = redis.Redis.from_url(url).connection_pool.connection_kwargs
        except ValueError:
            return None
        ledger_kwargs = ledger.redis.connection_pool.connection_kwargs
        where = ("host", "port", "path", "db", "username")
        if any(broker.get(key) != ledger_kwargs.get(key) for key in where):
            return None
        return cls(celery_app, ledger, queue, idempotency_ttl, acks)

    def _connect(self) -> None:
        # made on first use, inside the server's event loop. A refused connection is retried
        # twice 0.2 s apart (as Celery's publish policy did), then the ingress answers 503; at
        # most 64 connections (the thread pool's 40 bounded them before), a request waiting
        # over 5 s for one is a 503 too. Through Sentinel, each new connection asks for the
        # current primary, so a failover costs the requests in flight a 503 and nothing more
        self._client = connect_async(self.url, self.master_name, max_connections=64, socket_connect_timeout=2,
                                     socket_timeout=5 + self.acks.timeout_ms / 1000,
                                     retry=Retry(ConstantBackoff(0.2), 2, supported_errors=(redis.ConnectionError,)))
        self._script = self._client.register_script(_CLAIM_AND_QUEUE)
        self._reply_to = self.app.thread_oid
        self._origin = anon_nodename()  # what as_task_v2 would compute per message

    def message(self, client_id: str, event, received_at: float) -> str:
        """The task message exactly as `send_task(TASK_NAME, args=[...], queue=...)` would push it."""
        task_id = str(uuid.uuid4())
        headers, properties, body, _ = self.app.amqp.as_task_v2(
            task_id, TASK_NAME, args=[event.to_message(client_id, received_at)], reply_to=self._reply_to,
            origin=self._origin, create_sent_event=False, ignore_result=None)  # send_task's for a task this process has not imported
        content_type, content_encoding, data = serialize(body, serializer="json")
        properties.update(delivery_mode=2, delivery_info={"exchange": "", "routing_key": self.queue}, priority=0,
                          body_encoding="base64", delivery_tag=str(uuid.uuid4()))
        return json_dumps({"body": base64.b64encode(data.encode("utf-8")).decode("ascii"), "content-encoding": content_encoding,
                           "content-type": content_type, "headers": headers, "properties": properties})

    async def queue_event(self, client_id: str, event, received_at: float) -> str:
        if self._client is None:
            self._connect()
        message = self.message(client_id, event, received_at)
        keys = [self.ledger.key("seen", client_id, event.id), self.queue, self.ledger.key("metrics"),
                self.ledger.key("inflight"), self.ledger.key("inflight_at"), activity.slot_key(self.ledger.prefix, received_at)]
        # answered once a replica has it (when the primary has replicas): see replica_ack.py
        queued = await self.acks.run_script_async(self._client, self._script, keys, [self.ttl, message, inflight_field(client_id, event.id),
                                                                                    received_at, activity.KEEP_SECONDS])
        return "queued" if queued else "duplicate"

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose(close_connection_pool=True)
            self._client = None


def _redis_url(celery_app) -> str:
    """The Redis URL as configured (the broker URL is kombu's spelling of a sentinel:// one)."""
    return getattr(celery_app, "autotag_redis_url", None) or celery_app.conf.broker_url or ""
