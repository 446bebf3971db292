"""Instructions per article, counted by callgrind: a speed figure that does not drift with a
shared machine's load, for comparing two versions of the engine.

Each figure is the difference between a run that tags N of the bench's articles and one that
tags none (both load the bundle and warm up alike), divided by N; the hash seed is fixed so that
dictionaries behave alike in both. Needs valgrind (Debian's package). About five minutes.

    .venv/bin/python bench/instructions.py [--articles 256] [--checkout DIR]

`--checkout` counts another checkout of the project (a `git worktree` of an older commit) with
this virtual environment, so two versions are counted by the same interpreter and packages.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
_RUN = """
import sys
from pathlib import Path
from worker.engine.corpus import load_corpus
from worker.engine.tagging import ArticleInput, Tagger
mode, count = sys.argv[1], int(sys.argv[2])
tagger = Tagger.load()
articles = [ArticleInput(a.id, a.title, a.body) for a in load_corpus(Path("models/corpus")).articles
            if 1800 <= len(a.title) + len(a.body) <= 2800]
tagger.tag_many(articles[:50], stories="shared")
for article in articles[:20]:
    tagger.tag_signed([article])
work = articles[100 : 100 + count]
if mode == "batch":
    for i in range(0, len(work), 256):
        tagger.tag_many(work[i : i + 256], stories="shared")
else:
    for article in work:
        tagger.tag_signed([article])
"""


def instructions(checkout: Path, mode: str, count: int) -> int:
    env = dict(os.environ, PYTHONHASHSEED="0", PYTHONPATH=str(checkout))
    done = subprocess.run(
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable, "-c", _RUN, mode, str(count)],
        cwd=checkout, env=env, capture_output=True, text=True, check=True,
    )
    found = re.search(r"Collected : (\d+)", done.stderr)
    if not found:
        raise SystemExit(f"callgrind printed no count:\n{done.stderr[-2000:]}")
    return int(found.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--articles", type=int, default=256)
    parser.add_argument("--checkout", type=Path, default=ROOT)
    args = parser.parse_args()
    checkout = args.checkout.resolve()
    base = instructions(checkout, "batch", 0)
    for mode, label in (("one", "one by one"), ("batch", "in batches of 256")):
        per_article = (instructions(checkout, mode, args.articles) - base) / args.articles
        print(f"{label:<20}{per_article / 1000:,.0f}k instructions per article")


if __name__ == "__main__":
    main()
