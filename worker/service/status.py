"""`autotag status`: the running service on one screen, for a newsroom engineer at a glance.

Everything comes from what the service already keeps: Redis itself (reachable, memory), the
workers' answers to Celery's `active_queues` broadcast (alive, which queues), the queue lists,
the ledger (events in flight, the delivery schedule, dead letters), activity.py's last hour,
and the re-tag runs' state. Something is down, and `ok` false, when Redis does not answer,
no worker consumes the tag queue, a queue with work waiting has no consumer, or the ingress
that `autotag up` published does not answer.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from urllib.parse import urlsplit, urlunsplit

import redis

from . import activity
from .app import DELIVER_QUEUE, RETAG_QUEUE, TAG_QUEUE
from .redis_connect import connect_configured, is_sentinel, redact

QUEUES = (TAG_QUEUE, RETAG_QUEUE, DELIVER_QUEUE)


def collect(service, timeout: float = 1.0, now: float | None = None, retag_runs=None) -> dict:
    """The status report as a dict (what `--json` prints). `retag_runs(ledger, limit)`: the
    latest re-tag runs' status (the retag layer's, handed down: service does not import it)."""
    from .ledger import Ledger

    now = time.time() if now is None else now
    settings = service.settings
    running = service.running
    report: dict = {"ok": True, "problems": [], "at": now, "data_dir": str(settings.data_dir), "config": str(service.config),
                    "up": None, "ingress": None, "redis": {"url": _redact(settings.redis_url), "reachable": False}}
    if running:
        report["up"] = {"pid": running.pid, "started_at": running.started_at, "logs": running.logs}
        report["ingress"] = _ingress(running.ingress_url, timeout)
        if not report["ingress"]["ready"]:
            report["problems"].append(f"the ingress at {running.ingress_url} is not ready: {report['ingress']['detail']}")
    connection = connect_configured(settings, socket_connect_timeout=timeout, socket_timeout=max(timeout, 2.0))
    try:
        memory = connection.info("memory")
    except (redis.RedisError, OSError) as exc:
        report["redis"]["error"] = f"{type(exc).__name__}: {exc}"
        report["problems"].append(f"Redis at {_redact(settings.redis_url)} does not answer ({type(exc).__name__})")
        report["ok"] = False
        return report
    report["redis"].update(reachable=True, used_memory=memory.get("used_memory"), used_memory_human=memory.get("used_memory_human"),
                           maxmemory=memory.get("maxmemory") or None)
    ledger = Ledger(connection, settings.key_prefix)
    queues = {name: service.queue_prefix + name for name in QUEUES}
    report["workers"] = _workers(settings, service.queue_prefix, set(queues.values()), timeout)
    report["queues"] = {name: connection.llen(key) for name, key in queues.items()}
    oldest = connection.zrange(ledger.key("inflight_at"), 0, 0, withscores=True)
    report["events_in_flight"] = {"count": connection.hlen(ledger.key("inflight")),
                                  "oldest_seconds": round(now - oldest[0][1], 1) if oldest else None}
    scheduled, dead = ledger.schedule_size()
    report["deliveries"] = {"scheduled": scheduled, "due_now": connection.zcount(ledger.key("due"), "-inf", now), "dead": dead}
    report["activity"] = activity.summary(connection, settings.key_prefix, now)
    report["retag_runs"] = _retag_runs(retag_runs(ledger, limit=5)) if retag_runs else []
    consumed = {queue for node in report["workers"]["nodes"] for queue in node["queues"]}
    if queues[TAG_QUEUE] not in consumed:
        report["problems"].append(f"no worker consumes {queues[TAG_QUEUE]}: start one (`autotag up`, or `autotag worker`)")
    for name, key in queues.items():
        if name != TAG_QUEUE and report["queues"][name] and key not in consumed:
            report["problems"].append(f"{report['queues'][name]} tasks wait in {key} and no worker consumes it")
    report["ok"] = not report["problems"]
    return report


def _workers(settings, queue_prefix: str, ours: set[str], timeout: float) -> dict:
    """Workers that answer Celery's broadcast within `timeout` and consume one of our queues
    (a shared Redis may carry other deployments' workers, under other queue prefixes)."""
    from .app import create_app

    app = create_app(settings, queue_prefix=queue_prefix)
    try:
        answers = app.control.inspect(timeout=timeout).active_queues() or {}
    except Exception as exc:  # the broadcast itself failed (Redis went away meanwhile): nobody answered
        return {"alive": 0, "nodes": [], "error": f"{type(exc).__name__}: {exc}"}
    finally:
        app.pool.force_close_all()
    nodes = []
    for name, consumed in sorted(answers.items()):
        queues = sorted(q["name"] for q in consumed or [] if isinstance(q, dict) and "name" in q)
        if ours & set(queues):
            nodes.append({"name": name, "queues": queues})
    return {"alive": len(nodes), "nodes": nodes}


def _ingress(url: str, timeout: float) -> dict:
    try:
        with urllib.request.urlopen(url + "/readyz", timeout=max(timeout, 2.0)) as answer:
            body = json.loads(answer.read() or b"{}")
            return {"url": url, "ready": True, "model_version": body.get("model_version"), "detail": "ready"}
    except urllib.error.HTTPError as exc:
        try:
            detail = json.loads(exc.read() or b"{}").get("problems") or exc.reason
        except ValueError:
            detail = exc.reason
        return {"url": url, "ready": False, "detail": f"{exc.code} {detail}"}
    except (OSError, ValueError) as exc:
        return {"url": url, "ready": False, "detail": f"does not answer ({getattr(exc, 'reason', exc)})"}


def _retag_runs(runs: list[dict]) -> list[dict]:
    return [{key: run[key] for key in ("run", "finished", "chunks_done", "chunks_total", "articles_done", "changed", "bad_lines",
                                       "started_at", "last_chunk_at", "input")}
            for run in runs]


def _redact(url: str | None) -> str | None:
    if not url or is_sentinel(url):
        return redact(url)
    parts = urlsplit(url)
    if parts.password:
        netloc = f"{parts.username or ''}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
        return urlunsplit(parts._replace(netloc=netloc))
    return url


def format_status(report: dict) -> str:
    """The report as a screen of text; its last line says OK or what is down."""
    at = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(report["at"]))
    lines = [f"autotag status at {at}  (data {report['data_dir']}, config {report['config']})"]
    if report["up"]:
        up = report["up"]
        lines.append(f"  service    autotag up, pid {up['pid']}, running for {_duration(report['at'] - up['started_at'])}; "
                     f"logs {', '.join(up['logs'].values())}")
    if report["ingress"]:
        ingress = report["ingress"]
        state = f"ready (model {ingress['model_version']})" if ingress["ready"] else f"NOT READY: {ingress['detail']}"
        lines.append(f"  ingress    {ingress['url']}  {state}")
    redis_ = report["redis"]
    if not redis_["reachable"]:
        lines.append(f"  redis      {redis_['url']}  DOES NOT ANSWER: {redis_.get('error')}")
        return "\n".join(lines + [_verdict(report)])
    limit = f"of {_bytes(redis_['maxmemory'])}" if redis_["maxmemory"] else "(no limit set)"
    lines.append(f"  redis      {redis_['url']}  answers; {_bytes(redis_['used_memory'])} used {limit}")
    workers = report["workers"]
    names = "; ".join(f"{node['name']} ({', '.join(node['queues'])})" for node in workers["nodes"])
    lines.append(f"  workers    {workers['alive']} answering" + (f": {names}" if names else ""))
    queues = ", ".join(f"{name.split('.')[-1]} {depth:,}" for name, depth in report["queues"].items())
    flight = report["events_in_flight"]
    oldest = f" (oldest {_duration(flight['oldest_seconds'])})" if flight["oldest_seconds"] is not None else ""
    lines.append(f"  queues     {queues} waiting; {flight['count']:,} events in flight{oldest}")
    deliveries = report["deliveries"]
    lines.append(f"  callbacks  {deliveries['scheduled']:,} scheduled ({deliveries['due_now']:,} due now), {deliveries['dead']:,} dead"
                 + ("  (autotag deliveries --dead)" if deliveries["dead"] else ""))
    for label, key in (("last minute", "last_minute"), ("last hour", "last_hour")):
        window = report["activity"][key]
        latency = (f"; publish to callback p50 {_ms(window['latency_p50_ms'])}, p99 {_ms(window['latency_p99_ms'])}"
                   if window["latency_p50_ms"] is not None else "")
        lines.append(f"  {'traffic' if key == 'last_minute' else '':<10} {label + ':':<13}{window['events']:,} events, "
                     f"{window['callbacks']:,} callbacks{latency}")
    if report["retag_runs"]:
        for index, run in enumerate(report["retag_runs"]):
            lines.append(f"  {'retag' if index == 0 else '':<10} {_run_line(run, report['at'])}")
    else:
        lines.append("  retag      no queued runs")
    return "\n".join(lines + [_verdict(report)])


def _run_line(run: dict, now: float) -> str:
    total = run["chunks_total"]
    if run["finished"]:
        state = f"finished {_duration(now - (run['last_chunk_at'] or run['started_at']))} ago"
    elif total is not None:
        state = f"running, {run['chunks_done']} of {total} chunks"
    else:
        state = f"queueing, {run['chunks_done']} chunks done"
    return f"{run['run']}  {state}: {run['articles_done']:,} articles, {run['changed']:,} changed"


def _ms(milliseconds: float) -> str:
    return f"{milliseconds:.1f} ms" if milliseconds < 100 else f"{milliseconds:,.0f} ms"


def _verdict(report: dict) -> str:
    return "OK" if report["ok"] else "DOWN: " + "; ".join(report["problems"])


def _duration(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    if seconds < 172800:
        return f"{seconds // 3600} h"
    return f"{seconds // 86400} days"


def _bytes(count: int | None) -> str:
    if count is None:
        return "?"
    for unit in ("B", "KB", "MB", "GB"):
        if count < 1024 or unit == "GB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    return f"{count:.1f} GB"
