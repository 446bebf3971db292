"""Ingress load benchmark: a steady open-loop request rate at POST /v1/events from a second
process on loopback, while the workers tag and call back; then the drain. Starts its own stack
(see tests/stack.py: Redis, worker processes, the ingress, a loopback CMS that verifies every
callback's signature).

    .venv/bin/python bench/load.py [--rate 500] [--seconds 60] [--workers 2] [--signing]
    .venv/bin/python bench/load.py --preview [--rate 50] [--seconds 60]

The generator (bench/loadgen.py, in its own process) sends request i at start + i/rate over
keep-alive connections whatever the answers do, each a valid event with a unique event and
article id and a ~2,000-character news body from the corpus, with the bearer token (and, with
--signing, standard-webhooks signature headers). Latency of the 202 is measured from each
request's due time. Afterwards the bench waits for every accepted event's callback at the CMS
and prints one JSON object: rate asked and achieved, requests sent, p50/p99/max latency, errors
by kind, queue depth at the end of the load, drain seconds after it, callbacks delivered vs
events accepted. Target (the reliability suite's "Load" scenario): zero errors and p99 <= 50 ms
at 500 requests/s for 60 s on two cores, every callback delivered.

With --preview the requests go to POST /v1/tag instead (an editor's "suggest tags": tagged in
the ingress at once, answered 200 with the tags) and there is nothing to drain. Target: p99 <=
25 ms at 50 requests/s for ~2,000-character articles.
"""

from __future__ import annotations

import argparse
import json
import secrets
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.stack import Stack  # noqa: E402
from worker.engine.corpus import load_corpus  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def news_texts(limit: int = 400) -> list[dict]:
    """Corpus articles of 1,800-2,400 characters (about 2,000 on average)."""
    corpus = [a for a in load_corpus(ROOT / "models" / "corpus").articles if 1800 <= len(a.body) <= 2400]
    return [{"title": a.title, "body": a.body} for a in corpus[:limit]]


def run_load(stack: Stack, rate: float, seconds: float, *, drain_timeout: float = 600.0, max_connections: int = 64,
             request_timeout: float = 10.0, preview: bool = False) -> dict:
    """Run the generator in its own process against `stack`, then wait for the drain. Signs
    the events when the stack's client has a signing secret."""
    run = "load" + secrets.token_hex(3)
    texts_file = stack.tmp / f"{run}-texts.json"
    texts_file.write_text(json.dumps(news_texts()), encoding="utf-8")
    command = [sys.executable, "-m", "bench.loadgen", "--port", str(stack.port), "--token=" + stack.token, "--rate", str(rate),
               "--seconds", str(seconds), "--texts", str(texts_file), "--run", run, "--max-connections", str(max_connections),
               "--timeout", str(request_timeout)]
    if stack.signing_secret:
        command += ["--signing-secret", stack.signing_secret]
    if preview:
        command += ["--endpoint", "tag"]
    depth = _QueueSampler(stack).start()
    generator = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=seconds + request_timeout + 120, check=False)
    depth.stop()
    if generator.returncode != 0:
        raise RuntimeError(f"load generator failed ({generator.returncode}): {generator.stderr[-3000:]}")
    load = json.loads(generator.stdout)
    if preview:
        load.pop("failed")
        chars = [len(t["body"]) for t in json.loads(texts_file.read_text())]
        return {"endpoint": "/v1/tag", "rate_asked": rate, "seconds": seconds, "article_chars_mean": round(sum(chars) / len(chars)), **load}
    queue_at_end = stack.queue_length()
    failed = set(load.pop("failed"))
    accepted = {f"{run}-{i}" for i in range(load["requests_sent"]) if i not in failed}
    arrivals = _wait_for_callbacks(stack, run, accepted, drain_timeout)
    delivered = set(arrivals)
    last = max(arrivals.values(), default=load["ended_at"])
    return {
        "rate_asked": rate,
        "seconds": seconds,
        "workers": stack.n_workers,
        "signed": bool(stack.signing_secret),
        **load,
        "events_accepted": len(accepted),
        "queue_depth_peak": depth.peak,
        "queue_depth_at_load_end": queue_at_end,
        "drain_seconds": round(max(0.0, last - load["ended_at"]), 3),
        "callbacks_delivered": len(delivered & accepted),
        "callbacks_missing": len(accepted - delivered),
        "callbacks_unexpected": len(delivered - accepted),
        "cms_bad_signatures": sum(1 for r in list(stack.cms.received) if "error" in r),
    }


class _QueueSampler:
    """The tag queue's depth once a second while the load runs (one LLEN: nothing to the load)."""

    def __init__(self, stack: Stack):
        self.stack, self.peak = stack, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> _QueueSampler:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(1.0):
            self.peak = max(self.peak, self.stack.queue_length())


def _wait_for_callbacks(stack: Stack, run: str, expected: set[str], timeout: float) -> dict[str, float]:
    """Article id -> first verified callback's arrival time, for this run's articles, once every
    expected one arrived (or the timeout passed). Reads only the records new since last look."""
    arrivals: dict[str, float] = {}
    seen = 0
    prefix = run + "-"
    deadline = time.monotonic() + timeout
    while True:
        records = stack.cms.received[seen:]
        seen += len(records)
        for record in records:
            article = (record.get("payload") or {}).get("article", {}).get("id")
            if isinstance(article, str) and article.startswith(prefix) and article not in arrivals:
                arrivals[article] = record["at"]
        if expected <= arrivals.keys() or time.monotonic() > deadline:
            return arrivals
        time.sleep(0.2)


def main() -> None:
    parser = argparse.ArgumentParser(description="Ingress load: a steady request rate, then the drain.")
    parser.add_argument("--rate", type=float, default=500, help="requests per second (default 500)")
    parser.add_argument("--seconds", type=float, default=60, help="how long the load runs (default 60)")
    parser.add_argument("--workers", type=int, default=2, help="worker processes draining meanwhile (default 2)")
    parser.add_argument("--signing", action="store_true", help="the client signs its events (standard webhooks)")
    parser.add_argument("--drain-timeout", type=float, default=600)
    parser.add_argument("--max-connections", type=int, default=64, help="the generator's keep-alive connections at most")
    parser.add_argument("--preview", action="store_true", help="load POST /v1/tag (previews) instead of events")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        stack = Stack(Path(tmp), workers=args.workers, signing=args.signing, loglevel="WARNING").start()
        try:
            result = run_load(stack, args.rate, args.seconds, drain_timeout=args.drain_timeout, max_connections=args.max_connections,
                              preview=args.preview)
        finally:
            stack.stop()
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
