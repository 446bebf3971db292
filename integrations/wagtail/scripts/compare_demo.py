"""Run `autotag-wagtail-demo --once` on a JSONL file and check that every page carries exactly the
tags `autotag tag` gives the same article: the same topics, regions and suggestions, with the
same scores. Prints one line per article and a summary; exits 1 on any difference.

    python integrations/wagtail/scripts/compare_demo.py --articles FILE.jsonl
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from worker.service.up import free_port


def tag_set(result: dict) -> dict:
    pick = lambda items, key: sorted((item[key], round(item["score"], 4) if item.get("score") is not None else None) for item in items)
    return {"topics": pick(result["topics"], "tag"), "regions": pick(result["regions"], "code"),
            "suggested.topics": pick(result["suggested"]["topics"], "tag"), "suggested.regions": pick(result["suggested"]["regions"], "code")}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--articles", type=Path, required=True)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="autotag-wagtail-compare-") as data_dir:
        demo = subprocess.run([sys.executable, "-m", "wagtail_autotag.demo.run", "--once", "--articles", str(args.articles),
                               "--data-dir", data_dir, "--port", str(free_port()), "--service-port", str(free_port())],
                              capture_output=True, text=True, timeout=900)
    if demo.returncode != 0:
        print(demo.stdout, demo.stderr, sep="\n", file=sys.stderr)
        print(f"compare_demo: the demo exited {demo.returncode}", file=sys.stderr)
        return 1
    pages = {line["article_id"]: line for line in map(json.loads, demo.stdout.splitlines())}
    tagged = subprocess.run([sys.executable, "-m", "worker.cli", "tag", str(args.articles)], capture_output=True, text=True, timeout=600)
    expected = {line["id"]: line for line in map(json.loads, tagged.stdout.splitlines())}
    same = 0
    for article_id, result in expected.items():
        page = pages.get(article_id)
        if page is None:
            print(f"MISSING {article_id}: no page line from the demo")
            continue
        if tag_set(page) == tag_set(result):
            same += 1
            summary = ", ".join(t["tag"] for t in result["topics"]) or "-"
            print(f"same    {article_id} (page {page['page_id']}): topics {summary}; regions "
                  f"{', '.join(r['code'] for r in result['regions']) or '-'}; suggested "
                  f"{', '.join([t['tag'] for t in result['suggested']['topics']] + [r['code'] for r in result['suggested']['regions']]) or '-'}")
        else:
            print(f"DIFFERS {article_id} (page {page['page_id']}): page {tag_set(page)} vs autotag tag {tag_set(result)}")
    print(f"{same}/{len(expected)} pages carry exactly the tags (and scores) `autotag tag` gives their article")
    return 0 if same == len(expected) == len(pages) else 1


if __name__ == "__main__":
    sys.exit(main())
