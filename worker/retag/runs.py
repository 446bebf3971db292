"""A queued re-tag run's state as others read it (`retag --status`, `autotag status`): light
enough to import without the tagging engine. Keys and their meaning: see queued.py.
"""

from __future__ import annotations

import json
import time

from ..service.ledger import Ledger

RUNS_LISTED = 100  # the latest runs are listed under {prefix}:retag_runs, for `autotag status`


def run_keys(ledger: Ledger, run_id: str) -> dict[str, str]:
    return {name: ledger.key("retag", run_id, name) for name in ("meta", "done", "tags", "changes", "results", "chunks", "clock", "settled")}


def list_run(ledger: Ledger, run_id: str, started_at: float) -> None:
    """Add a run to the list `autotag status` shows (the latest RUNS_LISTED are kept)."""
    with ledger.redis.pipeline(transaction=False) as pipe:
        pipe.zadd(ledger.key("retag_runs"), {run_id: started_at})
        pipe.zremrangebyrank(ledger.key("retag_runs"), 0, -RUNS_LISTED - 1)
        pipe.execute()


def recent_runs(ledger: Ledger, limit: int = 10) -> list[dict]:
    """The status of the latest queued runs still kept, newest first."""
    run_ids = [raw.decode() for raw in ledger.redis.zrange(ledger.key("retag_runs"), 0, limit - 1, desc=True)]
    return [status(ledger, run_id) for run_id in run_ids if load_run(ledger, run_id)]


def load_run(ledger: Ledger, run_id: str) -> dict | None:
    meta = {k.decode(): v.decode() for k, v in ledger.redis.hgetall(run_keys(ledger, run_id)["meta"]).items()}
    return meta or None


def status(ledger: Ledger, run_id: str) -> dict:
    keys = run_keys(ledger, run_id)
    meta = load_run(ledger, run_id)
    done = ledger.redis.scard(keys["done"])
    total = int(meta["total_chunks"]) if meta.get("submitted_all") == "1" else None
    return {"run": run_id, "input": meta["input"], "chunks_done": done, "chunks_total": total,
            "articles_done": int(meta.get("articles", 0)), "changed": int(meta.get("changed", 0)),
            "editor_kept": int(meta.get("editor_kept", 0)), "superseded": int(meta.get("superseded", 0)), "bad_lines": int(meta["bad_lines"]) if "bad_lines" in meta else None,
            "started_at": float(meta.get("started_at", 0)), "last_chunk_at": float(meta["updated_at"]) if "updated_at" in meta else None,
            "finished": total is not None and done >= total, "options": json.loads(meta["options"])}


def format_status(run: dict, now: float | None = None) -> str:
    """A queued run's status in words: finished (with its counts), running, or still being
    queued (or interrupted: then it needs --resume)."""
    now = time.time() if now is None else now
    counts = (f"{run['articles_done']:,} articles re-tagged, {run['changed']:,} changed, "
              f"{run['editor_kept']:,} editor decisions kept" + (f", {run['bad_lines']:,} bad lines skipped" if run["bad_lines"] else "")
              + (f", {run['superseded']:,} callbacks not sent (the service has a newer revision)" if run.get("superseded") else ""))
    options = run["options"]
    where = "dry run, nothing delivered" if options.get("dry_run") else (
        "no callbacks" if options.get("no_callback") else f"callbacks to client {options.get('client')} at up to {options.get('rate'):g}/s")
    last = run["last_chunk_at"]
    since = f"last chunk {_ago(now - last)} ago" if last else "no chunk done yet"
    if run["finished"]:
        head = f"finished: {counts} ({run['chunks_done']} of {run['chunks_total']} chunks)"
        since = f"finished {_ago(now - last)} ago" if last else "finished"
    elif run["chunks_total"] is not None:
        head = f"running: {run['chunks_done']} of {run['chunks_total']} chunks done; {counts} so far"
    else:
        head = (f"queueing: {run['chunks_done']} chunks done; {counts} so far (if its `autotag retag` was stopped, "
                f"continue with: autotag retag --resume {run['run']})")
    started = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(run["started_at"]))
    return f"retag run {run['run']} {head}\n  {run['input']}; {where}; started {started}, {since}"


def _ago(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    return f"{seconds // 3600} h"
