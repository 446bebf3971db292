"""Pipeline benchmark: publish -> signed callback latency at a steady rate, and sustained
events/s with two worker processes. Starts its own stack (see tests/stack.py) on loopback.

    .venv/bin/python bench/pipeline.py [--rate 20] [--seconds 60] [--burst 3000]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.stack import Stack  # noqa: E402
from worker.engine.corpus import load_corpus  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def articles(count: int) -> list[dict]:
    corpus = [a for a in load_corpus(ROOT / "models" / "corpus").articles if 1500 <= len(a.body) <= 2600]
    return [{"title": corpus[i % len(corpus)].title, "body": corpus[i % len(corpus)].body} for i in range(count)]


def event(article_id: str, text: dict) -> bytes:
    return json.dumps({"id": "evt-" + article_id, "type": "article.published", "occurred_at": "2026-11-22T10:00:00Z",
                       "article": {"id": article_id, "revision": 1, **text}}).encode()


def latency_run(stack: Stack, rate: float, seconds: float) -> dict:
    texts = articles(int(rate * seconds))
    sent: dict[str, float] = {}
    errors = 0
    client = httpx.Client(base_url=f"http://127.0.0.1:{stack.port}", timeout=10,
                          headers={"authorization": f"Bearer {stack.token}", "content-type": "application/json"})
    start = time.perf_counter()
    for i, text in enumerate(texts):
        due = start + i / rate
        time.sleep(max(0.0, due - time.perf_counter()))
        article_id = f"lat-{i}"
        sent[article_id] = time.time()
        if client.post("/v1/events", content=event(article_id, text)).status_code != 202:
            errors += 1
    _wait_all(stack, sent)
    arrived = {}  # the first callback per article: its publish (a story update for it may follow later)
    for record in publish_callbacks(stack):
        arrived.setdefault(record["payload"]["article"]["id"], record["at"])
    latencies = sorted((arrived[a] - t) * 1000 for a, t in sent.items() if a in arrived)
    return {"events": len(sent), "rate_per_s": rate, "errors": errors, "delivered": len(latencies),
            "p50_ms": round(statistics.median(latencies), 1), "p99_ms": round(latencies[int(len(latencies) * 0.99) - 1], 1),
            "max_ms": round(latencies[-1], 1), "story_update_callbacks": story_updates(stack, "lat-")}


def publish_callbacks(stack: Stack) -> list[dict]:
    """Verified callbacks sent for a publish, in arrival order (not the story updates that a
    later version of an article's story sends for it: those are counted apart)."""
    return [r for r in stack.cms.received if "payload" in r and r["payload"].get("reason", "publish") != "story"]


def story_updates(stack: Stack, prefix: str) -> int:
    return sum(1 for r in stack.cms.received
               if "payload" in r and r["payload"].get("reason") == "story" and r["payload"]["article"]["id"].startswith(prefix))


def burst_run(stack: Stack, count: int) -> dict:
    texts = articles(count)
    sent: dict[str, float] = {}
    lock = threading.Lock()
    client = httpx.Client(base_url=f"http://127.0.0.1:{stack.port}", timeout=30, limits=httpx.Limits(max_connections=16),
                          headers={"authorization": f"Bearer {stack.token}", "content-type": "application/json"})

    def send(i):
        article_id = f"burst-{i}"
        with lock:
            sent[article_id] = time.time()
        return client.post("/v1/events", content=event(article_id, texts[i])).status_code

    start = time.perf_counter()
    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(send, range(count)))
    queued = time.perf_counter() - start
    _wait_all(stack, sent, timeout=600)
    elapsed = time.perf_counter() - start
    delivered = sum(1 for r in publish_callbacks(stack) if r["payload"]["article"]["id"].startswith("burst-"))
    return {"events": count, "accepted": statuses.count(202), "delivered": delivered, "ingress_per_s": round(count / queued, 1),
            "end_to_end_per_s": round(delivered / elapsed, 1), "seconds": round(elapsed, 1),
            "story_update_callbacks": story_updates(stack, "burst-")}


def drain_run(stack: Stack, count: int) -> dict:
    """Queue `count` events with the workers stopped, then start two and time the drain: the
    workers' own rate, without the load generator and the ingress competing for the cores."""
    texts = articles(count)
    client = httpx.Client(base_url=f"http://127.0.0.1:{stack.port}", timeout=30,
                          headers={"authorization": f"Bearer {stack.token}", "content-type": "application/json"})
    sent = {}
    for i in range(count):
        sent[f"drain-{i}"] = time.time()
        client.post("/v1/events", content=event(f"drain-{i}", texts[i]))
    start = time.perf_counter()
    for _ in range(2):  # two workers of one pool process each (measured faster than one of two)
        stack.start_worker()
    _wait_all(stack, sent, timeout=600)
    elapsed = time.perf_counter() - start  # includes the workers' start-up (model load), ~2 s
    arrivals = sorted(r["at"] for r in publish_callbacks(stack) if r["payload"]["article"]["id"].startswith("drain-"))
    steady = (len(arrivals) - 1) / (arrivals[-1] - arrivals[0])  # first callback to last: start-up excluded
    return {"events": count, "delivered": len(arrivals), "seconds_including_startup": round(elapsed, 1),
            "drain_per_s_including_startup": round(len(arrivals) / elapsed, 1), "drain_per_s_steady": round(steady, 1),
            "story_update_callbacks": story_updates(stack, "drain-")}


def _wait_all(stack: Stack, sent: dict, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = {r["payload"]["article"]["id"] for r in stack.cms.received if "payload" in r}
        if all(a in got for a in sent):
            return
        time.sleep(0.2)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rate", type=float, default=20)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--burst", type=int, default=3000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "one").mkdir()
        stack = Stack(Path(tmp) / "one", workers=1, loglevel="WARNING").start()
        try:
            print("latency, one worker process:", json.dumps(latency_run(stack, args.rate, args.seconds)), flush=True)
        finally:
            stack.stop()
        (Path(tmp) / "two").mkdir()
        stack = Stack(Path(tmp) / "two", workers=2, loglevel="WARNING").start()
        try:
            print("throughput, two worker processes, publishing meanwhile:", json.dumps(burst_run(stack, args.burst)), flush=True)
        finally:
            stack.stop()
        (Path(tmp) / "drain").mkdir()
        stack = Stack(Path(tmp) / "drain", workers=0, loglevel="WARNING")
        try:
            stack.start_ingress_only()
            print("throughput, two worker processes draining a queue:", json.dumps(drain_run(stack, args.burst)), flush=True)
        finally:
            stack.stop()


if __name__ == "__main__":
    main()
