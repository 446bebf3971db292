"""Re-tag benchmark: 20,000 articles of ~2,000 characters through Redis and two worker
processes with callbacks to a loopback CMS, against `autotag retag --local` on the same input
with the same callbacks (start-up included in both).

The archive is generated (never committed) by sampling and shuffling paragraphs of the
training corpus, seeded, into articles of about 2,000 characters.

    .venv/bin/python bench/retag.py [--articles 20000] [--rate 5000]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.stack import CmsStub, Stack, new_secret  # noqa: E402
from worker.engine.corpus import load_corpus  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def make_archive(path: Path, count: int, seed: int = 7) -> float:
    rng = random.Random(seed)
    paragraphs = [p for a in load_corpus(ROOT / "models" / "corpus").articles for p in a.body.split("\n\n") if len(p) > 80]
    titles = [a.title for a in load_corpus(ROOT / "models" / "corpus").articles]
    total = 0
    with open(path, "w", encoding="utf-8") as out:
        for i in range(count):
            body = []
            while sum(len(p) for p in body) < 1900:
                body.append(rng.choice(paragraphs))
            text = "\n\n".join(body)
            total += len(text)
            out.write(json.dumps({"id": f"b{i}", "revision": 1, "title": rng.choice(titles), "body": text,
                                  "current_tags": {"topics": [], "regions": []}}) + "\n")
    return total / count


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--articles", type=int, default=20000)
    parser.add_argument("--rate", type=float, default=5000, help="callback rate limit for the queued run")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        archive = tmp / "archive.jsonl"
        mean_chars = make_archive(archive, args.articles)
        print(f"archive: {args.articles} articles, mean body {mean_chars:.0f} characters", flush=True)

        # in-process on the same input, with the same signed callbacks to a loopback CMS
        cms = CmsStub(new_secret()).start()
        config = tmp / "local.toml"
        config.write_text(f'[[clients]]\nid = "n"\ntoken = "t"\ncallback_url = "{cms.url}"\ncallback_secret = "{cms.secret}"\n'
                          "allow_private_callback = true\n")
        env = {**os.environ, "AUTOTAG_DATA_DIR": str(tmp / "local-home"), "AUTOTAG_CONFIG": str(config)}
        env.pop("AUTOTAG_REDIS_URL", None)
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "worker.cli", "retag", str(archive), "--local", "--rate", str(args.rate)],
                       cwd=ROOT, env=env, check=True, capture_output=True)
        local_rate = args.articles / (time.perf_counter() - started)
        cms.stop()
        print(f"local (one process, no broker, {len(cms.received)} callbacks): {local_rate:.0f} articles/s", flush=True)

        (tmp / "stack").mkdir()
        stack = Stack(tmp / "stack", workers=2, loglevel="WARNING").start()
        try:
            env = {**stack.env, "AUTOTAG_DATA_DIR": str(tmp / "queued-home")}
            before = len(stack.cms.received)
            started = time.perf_counter()
            subprocess.run([sys.executable, "-m", "worker.cli", "retag", str(archive), "--rate", str(args.rate)], cwd=ROOT, env=env,
                           check=True, capture_output=True)
            tagged = time.perf_counter() - started
            deadline = time.monotonic() + 1200
            while len(stack.cms.received) - before < args.articles and time.monotonic() < deadline:
                time.sleep(0.2)
            delivered = len(stack.cms.received) - before
            elapsed = time.perf_counter() - started
            queued_rate = args.articles / tagged
            print(json.dumps({
                "queued_tagging_articles_per_s": round(queued_rate),
                "queued_per_worker_process_per_s": round(queued_rate / 2),
                "per_worker_share_of_local": round(queued_rate / 2 / local_rate, 2),
                "callbacks_delivered": delivered,
                "end_to_end_with_callbacks_per_s": round(delivered / elapsed),
                "local_articles_per_s": round(local_rate),
            }), flush=True)
        finally:
            stack.stop()


if __name__ == "__main__":
    main()
