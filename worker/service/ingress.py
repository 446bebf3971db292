"""The HTTP API the CMS calls (Starlette): POST /v1/events (publish), /v1/tag (preview a draft's
tags now), /v1/feedback (editors' decisions); GET /healthz, /readyz, /metrics.

An event is answered 202 only once it is in the queue, a feedback once it is stored; every
refusal is a 4xx whose JSON names the field; a Redis that cannot take the request is a 503, so
the CMS retries. Secrets never
reach the logs: a refused token is logged by the first 8 hex digits of its sha256.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import logging
import threading
import time
from typing import Callable

import redis
from kombu.exceptions import OperationalError
from standardwebhooks.webhooks import Webhook, WebhookVerificationError
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from ..engine.artifacts import default_bundle_path, verify_bundle
from ..engine.decisions import apply_decisions
from ..engine.tagging import Tagger, country_names, parse_article
from ..errors import AutotagError, EventError
from . import activity
from .app import TAG_QUEUE
from .decision_store import DecisionStore
from .enqueue import EventQueue
from .events import parse_event, parse_preview
from .feedback import MAX_FEEDBACK_BYTES, parse_feedback
from .ledger import LATENCY_BUCKETS, Ledger
from .liveness import alive
from .redis_connect import is_sentinel
from .replica_ack import ReplicaAcks
from .settings import Client, Settings
from .story_index import StoryIndex

log = logging.getLogger("autotag.ingress")


def create_ingress(settings: Settings, celery_app, ledger: Ledger, *, demo_inbox: list | None = None,
                   load_tagger: Callable[[], Tagger] | None = None) -> Starlette:
    """The ASGI app. `demo_inbox`, when given, adds POST /demo/cms: a stand-in CMS that checks
    the signature and keeps what it receives, for `autotag up`'s first run. The model bundle is
    loaded (and verified) once, in the background as the process starts, for previews and for
    the feedback's topic labels."""
    queue = celery_app.autotag_queue_prefix + TAG_QUEUE
    bundle = settings.model_dir or default_bundle_path()
    # one atomic Redis script from the event loop (see enqueue.py); send_task in a thread otherwise
    # events and feedback are answered 202 once a replica has them, when the primary has replicas
    acks = ReplicaAcks(settings.replica_acks, settings.replica_ack_timeout)
    fast_queue = EventQueue.for_app(celery_app, ledger, queue, settings.idempotency_ttl,
                                    ledger_url=settings.redis_url if is_sentinel(settings.redis_url) else None, acks=acks)
    decisions = DecisionStore(ledger.redis, settings.key_prefix, settings.feedback_retention, acks=acks)
    stories = StoryIndex(ledger.redis, settings.key_prefix, settings.story_window_days)
    model = _Model(load_tagger or (lambda: Tagger.load(settings.model_dir)))
    previews = {"running": 0}

    async def authorised_body(request: Request, limit: int, counter: str, client: Client | None = None) -> tuple[Client | None, bytes | Response]:
        """The client and the raw body, or the 4xx that refuses them (token, size, signature)."""
        client = client or _authenticate(settings, request)
        if client is None:
            await _count(ledger, counter)
            return None, _no_token()
        try:
            raw = await _read_limited(request, limit)
        except ClientDisconnect:  # the client left mid-body: nothing to do, no one to answer
            await _count(ledger, counter)
            return None, _error(400, "the request body ended before its declared length", field="body")
        if raw is None:
            await _count(ledger, counter)
            return None, _error(413, f"request body is over the {limit:,}-byte limit", field="body")
        if client.signing_secret and not _signature_ok(client, raw, request, settings.signature_tolerance):
            log.warning("client %s: request to %s refused, bad or stale signature", client.id, request.url.path)
            await _count(ledger, counter)
            return None, _error(401, "bad or stale webhook signature", field="webhook-signature")
        return client, raw

    async def post_event(request: Request) -> Response:
        received_at = time.time()
        client, raw = await authorised_body(request, settings.max_body_bytes, "events_rejected")
        if client is None:
            return raw
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

    async def post_tag(request: Request) -> Response:
        """A preview: the article tagged at once (no queue), as `autotag tag` prints it, with the
        editors' remembered decisions applied. At most `preview_concurrency` at a time."""
        client = _authenticate(settings, request)  # before a slot: a stranger never holds one
        if client is None:
            await _count(ledger, "previews_rejected")
            return _no_token()
        if previews["running"] >= settings.preview_concurrency:
            await _count(ledger, "previews_refused")
            return _error(429, "too many previews at once; retry shortly", headers={"retry-after": "1"})
        previews["running"] += 1
        try:
            client, raw = await authorised_body(request, settings.max_body_bytes, "previews_rejected", client)
            if client is None:
                return raw
            try:
                article = parse_preview(raw, max_body_bytes=settings.max_body_bytes)
            except EventError as exc:
                await _count(ledger, "previews_rejected")
                return _error(exc.status, str(exc), field=exc.field)
            if model.tagger is None:
                return _model_unavailable(model)
            try:
                result = await run_in_threadpool(_preview, model.tagger, decisions, stories, settings, client.id, article)
            except redis.RedisError as exc:
                log.error("preview for %s: Redis unavailable (%s)", client.id, type(exc).__name__)
                return _error(503, "the service's store is unavailable; retry later", headers={"retry-after": "5"})
            await _count(ledger, "previews")
            return JSONResponse(result)
        finally:
            previews["running"] -= 1

    async def post_feedback(request: Request) -> Response:
        """Editors' decisions: 202 once stored in Redis; the same feedback id is stored once."""
        client, raw = await authorised_body(request, MAX_FEEDBACK_BYTES, "feedback_rejected")
        if client is None:
            return raw
        if model.tagger is None:
            return _model_unavailable(model)
        try:
            feedback = parse_feedback(raw, topics=model.tagger.labels, regions=country_names())
        except EventError as exc:
            await _count(ledger, "feedback_rejected")
            return _error(exc.status, str(exc), field=exc.field)
        try:
            stored = await run_in_threadpool(decisions.record, client.id, feedback)
        except redis.RedisError as exc:
            log.error("feedback %s from %s not stored: Redis unavailable (%s)", feedback.id, client.id, type(exc).__name__)
            return _error(503, "the store is unavailable; retry later", headers={"retry-after": "5"})
        return JSONResponse({"feedback_id": feedback.id, "status": "stored" if stored else "duplicate",
                             "decisions": len(feedback.decisions)}, status_code=202)

    async def healthz(_: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readiness_problems() -> dict:
        problems = {}
        try:
            await run_in_threadpool(ledger.redis.ping)
        except redis.RedisError as exc:
            problems["broker"] = f"unreachable: {type(exc).__name__}"
        try:
            await run_in_threadpool(verify_bundle, bundle)
        except AutotagError as exc:
            problems["model"] = str(exc)
        if model.tagger is None and "model" not in problems:
            problems["model"] = model.error or "loading"
        return problems

    async def readyz(_: Request) -> Response:
        problems = await readiness_problems()
        if problems:
            return JSONResponse({"status": "not ready", "problems": problems}, status_code=503)
        return JSONResponse({"status": "ready", "model_version": model.tagger.model_version})

    async def metrics(_: Request) -> Response:
        try:
            ready = not await readiness_problems()
            text = await run_in_threadpool(render_metrics, ledger, [queue, celery_app.autotag_queue_prefix + "autotag.deliver"], decisions,
                                           ready)
        except redis.RedisError:
            return PlainTextResponse("# broker unreachable\nautotag_up 0\n", status_code=503)
        return PlainTextResponse(text, media_type="text/plain; version=0.0.4")

    @contextlib.asynccontextmanager
    async def lifespan(_app):
        model.start_loading()
        yield

    routes = [
        Route("/v1/events", post_event, methods=["POST"]),
        Route("/v1/tag", post_tag, methods=["POST"]),
        Route("/v1/feedback", post_feedback, methods=["POST"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
    ]
    if demo_inbox is not None:
        routes.append(Route("/demo/cms", _demo_cms(settings, demo_inbox), methods=["POST"]))
    return Starlette(routes=routes, lifespan=lifespan)


class _Model:
    """The ingress' one Tagger, loaded and verified in a background thread at start."""

    def __init__(self, load: Callable[[], Tagger]):
        self.load = load
        self.tagger: Tagger | None = None
        self.error: str | None = None
        self._started = False

    def start_loading(self) -> None:
        if not self._started:
            self._started = True
            threading.Thread(target=self._load, name="autotag-model-load", daemon=True).start()

    def _load(self) -> None:
        try:
            self.tagger = self.load()
        except AutotagError as exc:
            self.error = str(exc)
            log.error("model not loaded: %s; previews and feedback answer 503", exc)


def _model_unavailable(model: _Model) -> Response:
    if model.error:
        return _error(503, f"the model bundle could not be loaded: {model.error}")
    return _error(503, "the model is still loading; retry shortly", headers={"retry-after": "1"})


def _preview(tagger: Tagger, decisions: DecisionStore, stories: StoryIndex, settings: Settings, client_id: str, article) -> dict:
    """Tag one article now, with its story's tags if recent versions are known (the index is
    only read: a draft joins no story); remember the model's result and apply the editors'
    decisions."""
    parsed = parse_article({"id": article.id, "title": article.title, "body": article.body, "url": article.url},
                           max_body_bytes=settings.max_body_bytes)
    (result,), (signature,) = tagger.tag_signed([parsed])
    placed = stories.place(client_id, article.id, article.revision, signature, result, write=False)
    client = settings.client(client_id)
    story = tagger.harmonise([v.result for v in placed.versions], placed.story_id, client.story_tags)[0]
    (remembered,) = decisions.exchange(client_id, [(article.id, article.revision, result)])
    return apply_decisions(story, remembered)[0]


def render_metrics(ledger: Ledger, queues: list[str], decisions: DecisionStore, ready: bool | None = None) -> str:
    """Prometheus text format from the counters every process keeps in Redis; `ready`: what
    /readyz would answer, for the readiness alert."""
    counters, latency = ledger.counters()
    lines = ["autotag_up 1"]
    if ready is not None:
        lines += ["# TYPE autotag_ready gauge", f"autotag_ready {int(ready)}"]
    lines += ["# TYPE autotag_workers_alive gauge", f"autotag_workers_alive {alive(ledger)}"]
    for name in ("events_received", "events_rejected", "events_duplicate", "events_unpublished", "tasks_done", "tasks_failed",
                 "deliveries_ok", "deliveries_retried", "deliveries_dead", "deliveries_superseded", "previews", "previews_rejected",
                 "previews_refused", "feedback_received", "feedback_duplicate", "feedback_rejected"):
        lines += [f"# TYPE autotag_{name}_total counter", f"autotag_{name}_total {counters.get(name, 0)}"]
    lines.append("# TYPE autotag_feedback_decisions_total counter")
    for (kind, tag, decision), count in sorted(decisions.decision_counts().items()):
        lines.append(f'autotag_feedback_decisions_total{{kind="{kind}",tag="{tag}",decision="{decision}"}} {count}')
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
    activity.count(ledger.redis, ledger.prefix, "events")
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


def _no_token() -> JSONResponse:
    return _error(401, "missing or unknown bearer token", field="authorization")


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
