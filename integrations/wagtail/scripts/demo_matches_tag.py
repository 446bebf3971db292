"""Does every page the demo publishes carry exactly the tags `autotag tag` gives its article?

    python integrations/wagtail/scripts/demo_matches_tag.py --articles FILE.jsonl... [--limit 12] [--spread] [--json]

Takes the first --limit good articles of FILE (id, title, body; other keys are dropped, so labels
never reach the demo), runs `autotag-wagtail-demo --once` on them in a temporary data directory
(the whole path: Wagtail publish, outbox, the service's queue and worker, the signed callback,
the plugin's tables) and `autotag tag` on the same file, and compares per article the applied
topics and regions and the suggestions: tag, score, evidence and "by". Prints one line per
article and a summary; exit status 0 only when every page matches.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

PLUGIN_DIR = Path(__file__).resolve().parents[1]


def subset(sources: list[Path], limit: int, out: Path, spread: bool = False) -> list[dict]:
    """`limit` articles with a string id, title and body, reduced to those three fields: the first
    ones, or with `spread` ones evenly spaced through the files (topics and countries vary more)."""
    usable = []
    for source in sources:
        for line in source.read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            record = json.loads(line)
            if all(isinstance(record.get(key), str) and record[key].strip() for key in ("id", "title", "body")) and len(record["title"]) <= 255:
                usable.append({"id": record["id"], "title": record["title"], "body": record["body"]})
            if len(usable) == limit and not spread:
                break
    step = max(1, len(usable) // limit) if spread else 1
    chosen = usable[::step][:limit]
    out.write_text("".join(json.dumps(record, ensure_ascii=False) + "\n" for record in chosen), encoding="utf-8")
    return chosen


def tag_view(result: dict) -> dict:
    """The comparable part of a result: per group, tag -> (score, evidence, by)."""
    def topics(items):
        return {t["tag"]: (t["score"], list(t["evidence"]), t["by"]) for t in items}

    def regions(items):
        return {r["code"]: (r["score"], list(r["evidence"]), r["by"], r.get("name", "")) for r in items}

    return {"topics": topics(result["topics"]), "regions": regions(result["regions"]),
            "suggested.topics": topics(result["suggested"]["topics"]), "suggested.regions": regions(result["suggested"]["regions"])}


def compare(demo_lines: list[dict], tag_lines: list[dict]) -> list[dict]:
    """One verdict per article of `autotag tag`'s output."""
    pages = {str(line["article_id"]): line for line in demo_lines}
    verdicts = []
    for expected in tag_lines:
        article_id = str(expected["id"])
        page = pages.get(article_id)
        if page is None:
            verdicts.append({"id": article_id, "match": False, "why": "no page line from the demo"})
            continue
        want, got = tag_view(expected), tag_view(page)
        differences = {group: {"autotag tag": _show(want[group]), "page": _show(got[group])}
                       for group in want if want[group] != got[group]}
        verdicts.append({"id": article_id, "page_id": page["page_id"], "match": not differences, "differences": differences,
                         "topics": sorted(want["topics"]), "regions": sorted(want["regions"]),
                         "suggested": sorted(want["suggested.topics"]) + sorted(want["suggested.regions"])})
    return verdicts


def _show(group: dict) -> dict:
    return {tag: list(value) for tag, value in sorted(group.items())}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--articles", type=Path, required=True, nargs="+", help="one or more JSONL files")
    parser.add_argument("--limit", type=int, default=12)
    parser.add_argument("--spread", action="store_true", help="take articles evenly spaced through the files, not the first ones")
    parser.add_argument("--json", action="store_true", help="print the verdicts as one JSON document")
    parser.add_argument("--timeout", type=float, default=900)
    args = parser.parse_args(argv)
    # neither the caller's Django settings nor its autotag config: the demo brings its own
    env = {key: value for key, value in os.environ.items()
           if not (key.startswith(("AUTOTAG_", "DJANGO_")) and key != "AUTOTAG_MODEL")}
    # the plugin from this checkout, whether or not it is pip-installed (the root test run has it on its path only)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PLUGIN_DIR), env.get("PYTHONPATH")]))
    with tempfile.TemporaryDirectory(prefix="autotag-demo-check-") as tmp:
        articles = Path(tmp) / "articles.jsonl"
        chosen = subset(args.articles, args.limit, articles, args.spread)
        demo = subprocess.run([sys.executable, "-m", "wagtail_autotag.demo.run", "--once", "--articles", str(articles),
                               "--data-dir", str(Path(tmp) / "demo"), "--port", "0"],
                              capture_output=True, text=True, timeout=args.timeout, env=env)
        tagged = subprocess.run([sys.executable, "-m", "worker.cli", "tag", str(articles)], capture_output=True, text=True,
                                timeout=args.timeout, env=env)
    if demo.returncode != 0 or tagged.returncode != 0:
        print(f"demo exit {demo.returncode}, autotag tag exit {tagged.returncode}\n{demo.stderr[-3000:]}\n{tagged.stderr[-2000:]}",
              file=sys.stderr)
        return 2
    verdicts = compare([json.loads(line) for line in demo.stdout.splitlines() if line.strip()],
                       [json.loads(line) for line in tagged.stdout.splitlines() if line.strip()])
    matched = sum(v["match"] for v in verdicts)
    if args.json:
        print(json.dumps({"articles": len(chosen), "pages_matching": matched, "verdicts": verdicts}, ensure_ascii=False, indent=1))
    else:
        for verdict in verdicts:
            shown = f"topics {verdict.get('topics')} regions {verdict.get('regions')} suggested {verdict.get('suggested')}"
            state = "same" if verdict["match"] else f"DIFFERENT {json.dumps(verdict.get('differences') or verdict.get('why'))}"
            print(f"{verdict['id']}: page {verdict.get('page_id')}: {state}: {shown}")
        print(f"{matched}/{len(chosen)} pages carry exactly the tags `autotag tag` gives their article "
              "(topics, regions and suggestions: tag, score, evidence, by)")
    return 0 if matched == len(chosen) == len(verdicts) and chosen else 1


if __name__ == "__main__":
    sys.exit(main())
