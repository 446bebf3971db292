"""Thin Celery tasks: take the message, call the pipeline, return. Retry only what can succeed
later (Redis unreachable); a bad event fails at once and is recorded by the pipeline.

Each worker process builds one Runtime (ledger, HTTP client, tagger) on first use; the tagger
is loaded in the pool's parent before forking, so children share it. The parent also runs the
dispatcher: a thread that hands deliveries whose retry time has come to the delivery queue.
"""

from __future__ import annotations

import logging
import threading
import time

import redis
from celery import shared_task, signals

from .app import TAG_QUEUE
from .ledger import Ledger
from .liveness import HEARTBEAT_INTERVAL, beat, leave
from .redis_connect import connect
from .replica_ack import NotReplicated
from .pipeline import Runtime, attempt_deliveries, dispatch_due, process_event, requeue_stalled_events
from ..engine.tagging import Tagger

log = logging.getLogger("autotag.tasks")
DISPATCH_INTERVAL = 0.2  # seconds between looks at the schedule (also the grain of callback pacing)
SWEEP_INTERVAL = 10.0  # seconds between looks for events lost on their way to a worker
STALLED_MARGIN = 30.0  # ...that are this far past the visibility timeout
# ReadOnlyError: a demoted primary answering a write during a failover; NotReplicated: a write
# that a replica did not confirm in time. Both succeed once the new primary is found.
TRANSIENT = (redis.ConnectionError, redis.TimeoutError, redis.BusyLoadingError, redis.ReadOnlyError, NotReplicated)
_runtime: Runtime | None = None
_stop_dispatcher = threading.Event()
_worker_name: str | None = None  # this worker's node name (celery@host), stamped for /metrics


def runtime_for(app) -> Runtime:
    global _runtime
    if _runtime is None:
        settings = app.autotag_settings
        client = connect(app.autotag_redis_url, settings.redis_master_name, health_check_interval=30, socket_timeout=10,
                         socket_connect_timeout=5)
        _runtime = Runtime(settings=settings, ledger=Ledger(client, settings.key_prefix, settings.idempotency_ttl), load_tagger=lambda: Tagger.load(settings.model_dir))
    return _runtime


@shared_task(name="autotag.tag_event", bind=True, autoretry_for=TRANSIENT, retry_backoff=True, retry_backoff_max=30, max_retries=None)
def tag_event(self, message: dict) -> str:
    runtime = runtime_for(self.app)
    outcome = process_event(runtime, message, retries=self.request.retries or 0)
    if isinstance(message, dict) and isinstance(message.get("event"), dict):
        runtime.ledger.finish_inflight(str(message.get("client")), str(message["event"].get("id")))
    return outcome


@shared_task(name="autotag.deliver", bind=True, autoretry_for=TRANSIENT, retry_backoff=True, retry_backoff_max=30, max_retries=None)
def deliver(self, message_ids: list[str] | str) -> list[str]:
    return attempt_deliveries(runtime_for(self.app), [message_ids] if isinstance(message_ids, str) else message_ids)


@signals.worker_init.connect
def _load_model_before_fork(sender=None, **_):
    """Load (and verify) the bundle once in the parent: children inherit it, and a tampered or
    mismatched bundle stops the worker at start instead of failing every task."""
    runtime_for(sender.app).tagger


@signals.worker_process_init.connect
def _fresh_connections_after_fork(**_):
    if _runtime is not None:
        _runtime.fresh_connections()


@signals.worker_ready.connect
def _start_dispatcher(sender=None, **_):
    global _worker_name
    app = sender.app
    _worker_name = sender.hostname
    try:
        beat(runtime_for(app).ledger, _worker_name)  # alive from the moment it takes tasks; then every few seconds
    except redis.RedisError:
        pass  # the dispatcher stamps it once Redis answers
    _stop_dispatcher.clear()
    threading.Thread(target=_dispatch_forever, args=(app,), name="autotag-dispatcher", daemon=True).start()


@signals.worker_shutdown.connect
def _stop(**_):
    _stop_dispatcher.set()
    if _runtime is not None and _worker_name:
        try:
            leave(_runtime.ledger, _worker_name)  # at once, rather than when its stamp ages out
        except redis.RedisError:
            pass


def _dispatch_forever(app) -> None:
    settings = app.autotag_settings
    ledger = runtime_for(app).ledger
    send = lambda message_ids: deliver.apply_async(args=[message_ids])  # noqa: E731
    tag_queue = app.autotag_queue_prefix + TAG_QUEUE
    next_sweep = time.monotonic() + SWEEP_INTERVAL
    next_beat = time.monotonic() + HEARTBEAT_INTERVAL
    while not _stop_dispatcher.wait(DISPATCH_INTERVAL):
        try:
            if time.monotonic() >= next_beat and _worker_name:
                next_beat = time.monotonic() + HEARTBEAT_INTERVAL
                beat(ledger, _worker_name)
            dispatch_due(ledger, send, settings.dispatch_lease)
            if time.monotonic() >= next_sweep:
                next_sweep = time.monotonic() + SWEEP_INTERVAL
                # kombu hands a held task out again after the visibility timeout (looked for
                # every 10 s); an event still unfinished well past that was lost in transit
                requeue_stalled_events(ledger, tag_queue, time.time() - settings.visibility_timeout - STALLED_MARGIN)
        except Exception as exc:  # Redis away: keep looking; the worker reconnects by itself
            log.warning("dispatcher: %s", exc)
