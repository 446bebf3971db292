"""The HTTP API the CMS calls: POST /v1/events, GET /healthz, /readyz, /metrics (Starlette).

An event is answered 202 only once it is in the queue; every refusal is a 4xx whose JSON names
the field; a broker that cannot take the event is a 503, so the CMS retries. Secrets never
reach the logs: a refused token is logged by the first 8 hex digits of its sha256.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import time

import redis
from kombu.exceptions import OperationalError
from standardwebhooks.webhooks import Webhook, WebhookVerificationError
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from .app import TAG_QUEUE
from ..engine.artifacts import default_bundle_path, verify_bundle
from .enqueue import EventQueue
from ..errors import AutotagError, EventError
from .events import parse_event
from .ledger import LATENCY_BUCKETS, Ledger
from .settings import Client, Settings

log = logging.getLogger("autotag.ingress")


def create_ingress(settings: Settings, celery_app, ledger: Ledger, *, demo_inbox: list | None = None) -> Starlette:
    """The ASGI app. `demo_inbox`, when given, adds POST /demo/cms: a stand-in CMS that checks
    the signature and keeps what it receives, for `autotag up`'s first run."""
    queue = celery_app.autotag_queue_prefix + TAG_QUEUE
    bundle = settings.model_dir or default_bundle_path()
    # one atomic Redis script from the event loop (see enqueue.py); send_task in a thread otherwise
    fast_queue = EventQueue.for_app(celery_app, ledger, queue, settings.idempotency_ttl)

    async def post_event(request: Request) -> Response:
        received_at = time.time()
        client = _authenticate(settings, request)
        if client is None:
            await _count(ledger, "events_rejected")
            return _error(401, "missing or unknown bearer token", field="authorization")
        try:
            raw = await _read_limited(request, settings.max_body_bytes)
        except ClientDisconnect:  # the client left mid-body: nothing to queue, no one to answer
            await _count(ledger, "events_rejected")
            return _error(400, "the request body ended before its declared length", field="body")
        if raw is None:
            await _count(ledger, "events_rejected")
            return _error(413, f"request body is over the {settings.max_body_bytes:,}-byte limit", field="body")
        if client.signing_secret and not _signature_ok(client, raw, request, settings.signature_tolerance):
            log.warning("client %s: event refused, bad or stale signature", client.id)
            await _count(ledger, "events_rejected")
            return _error(401, "bad or stale webhook signature", field="webhook-signature")
        try:
            event = parse_event(raw, max_body_bytes=settings.max_body_bytes)
        except EventError as exc:
            await _count(ledger, "events_rejected")
            return _error(exc.status, str(exc), field=exc.field)
        try:
            if fast_queue is not None:
                status = await fast_queue.queue_event(client.id, event, received_at)
            else:
                status = await run_in_threadpool(_queue_once, ledger, celery_app, queue, settings, client.id, event, received_at)
        except (redis.RedisError, OperationalError, OSError) as exc:
            log.error("event %s from %s not queued: broker unavailable (%s)", event.id, client.id, type(exc).__name__)
            if fast_queue is None:  # the script claims and queues atomically: nothing to release
                await run_in_threadpool(_release_quietly, ledger, client.id, event.id)
            return _error(503, "the queue is unavailable; retry later", headers={"retry-after": "5"})
        return JSONResponse({"event_id": event.id, "status": status}, status_code=202)

    async def healthz(_: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(_: Request) -> Response:
        problems = {}
        try:
            await run_in_threadpool(ledger.redis.ping)
        except redis.RedisError as exc:
            problems["broker"] = f"unreachable: {type(exc).__name__}"
        try:
            await run_in_threadpool(verify_bundle, bundle)
        except AutotagError as exc:
            problems["model"] = str(exc)
        if problems:
            return JSONResponse({"status": "not ready", "problems": problems}, status_code=503)
        return JSONResponse({"status": "ready"})

    async def metrics(_: Request) -> Response:
        try:
            text = await run_in_threadpool(render_metrics, ledger, [queue, celery_app.autotag_queue_prefix + "autotag.deliver"])
        except redis.RedisError:
            return PlainTextResponse("# broker unreachable\nautotag_up 0\n", status_code=503)
        return PlainTextResponse(text, media_type="text/plain; version=0.0.4")

    routes = [
        Route("/v1/events", post_event, methods=["POST"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
    ]
    if demo_inbox is not None:
        routes.append(Route("/demo/cms", _demo_cms(settings, demo_inbox), methods=["POST"]))
    return Starlette(routes=routes)


def render_metrics(ledger: Ledger, queues: list[str]) -> str:
    """Prometheus text format from the counters every process keeps in Redis."""
    counters, latency = ledger.counters()
    lines = ["autotag_up 1"]
    for name in ("events_received", "events_rejected", "events_duplicate", "events_unpublished", "tasks_done", "tasks_failed",
                 "deliveries_ok", "deliveries_retried", "deliveries_dead", "deliveries_superseded"):
        lines += [f"# TYPE autotag_{name}_total counter", f"autotag_{name}_total {counters.get(name, 0)}"]
    lines.append("# TYPE autotag_end_to_end_seconds histogram")
    cumulative = 0
    for bound in LATENCY_BUCKETS:
        cumulative += int(latency.get(str(bound), 0))
        lines.append(f'autotag_end_to_end_seconds_bucket{{le="{bound}"}} {cumulative}')
    cumulative += int(latency.get("+Inf", 0))
    lines += [f'autotag_end_to_end_seconds_bucket{{le="+Inf"}} {cumulative}',
              f"autotag_end_to_end_seconds_sum {latency.get('sum', 0.0)}", f"autotag_end_to_end_seconds_count {cumulative}"]
    lines.append("# TYPE autotag_queue_depth gauge")
    for queue in queues:
        lines.append(f'autotag_queue_depth{{queue="{queue}"}} {ledger.redis.llen(queue)}')
    due, dead = ledger.schedule_size()
    lines += ["# TYPE autotag_deliveries_scheduled gauge", f"autotag_deliveries_scheduled {due}",
              "# TYPE autotag_deliveries_dead gauge", f"autotag_deliveries_dead {dead}"]
    return "\n".join(lines) + "\n"


def _authenticate(settings: Settings, request: Request) -> Client | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        return None
    found = None
    for client in settings.clients:  # compare against every client: timing says nothing
        if hmac.compare_digest(client.token.encode(), token.strip().encode()):
            found = client
    named = request.headers.get("x-autotag-client")
    if found is None or (named is not None and named != found.id):
        fingerprint = hashlib.sha256(token.encode()).hexdigest()[:8]
        log.warning("refused token sha256:%s%s", fingerprint, f" naming client {named!r}" if named else "")
        return None
    return found


def _signature_ok(client: Client, raw: bytes, request: Request, tolerance: int) -> bool:
    headers = {name: request.headers.get(name, "") for name in ("webhook-id", "webhook-timestamp", "webhook-signature")}
    try:
        stamp = int(headers["webhook-timestamp"])
    except ValueError:
        return False
    if abs(time.time() - stamp) > tolerance:
        return False
    try:
        Webhook(client.signing_secret).verify(raw, headers, json_parse=False)
    except (WebhookVerificationError, ValueError):
        return False
    return True


async def _read_limited(request: Request, limit: int) -> bytes | None:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        return None
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def _queue_once(ledger: Ledger, celery_app, queue: str, settings: Settings, client_id: str, event, received_at: float) -> str:
    """Queue an event unless its id was seen: 'queued' or 'duplicate'. Blocking: run in a thread."""
    if not ledger.claim_event(client_id, event.id, settings.idempotency_ttl):
        ledger.count("events_duplicate")
        return "duplicate"
    celery_app.send_task("autotag.tag_event", args=[event.to_message(client_id, received_at)], queue=queue)
    ledger.count("events_received")
    return "queued"


def _release_quietly(ledger: Ledger, client_id: str, event_id: str) -> None:
    try:
        ledger.release_event(client_id, event_id)
    except redis.RedisError:
        pass  # the dedupe key expires; a retried event then goes through


async def _count(ledger: Ledger, name: str) -> None:
    try:
        await run_in_threadpool(ledger.count, name)
    except redis.RedisError:
        pass  # metrics never decide an answer


def _error(status: int, message: str, field: str | None = None, headers: dict | None = None) -> JSONResponse:
    body = {"error": message}
    if field:
        body["field"] = field
    return JSONResponse(body, status_code=status, headers=headers)


def _demo_cms(settings: Settings, inbox: list):
    async def receive(request: Request) -> Response:
        raw = await request.body()
        headers = {name: request.headers.get(name, "") for name in ("webhook-id", "webhook-timestamp", "webhook-signature")}
        for client in settings.clients:
            try:
                payload = Webhook(client.callback_secret).verify(raw, headers)
            except (WebhookVerificationError, ValueError):
                continue
            inbox.append(payload)
            log.warning("demo CMS received tags for article %s rev %s: topics %s, regions %s",
                        payload["article"]["id"], payload["article"]["revision"],
                        [t["tag"] for t in payload["topics"]], [r["code"] for r in payload["regions"]])
            return JSONResponse({"ok": True})
        return _error(401, "signature does not verify with any client's callback secret")

    return receive
