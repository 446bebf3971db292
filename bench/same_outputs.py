"""Whether a change to the engine left its outputs alone: every output of the tagger (cleaned
text, country mentions, tags with stories in batches, tags and signatures one by one, all
scores) on the corpus, the held-out candidates and, when given, real articles, written to a
file by one version and compared by another. For speed work, whose outputs must not move.

    .venv/bin/python bench/same_outputs.py write /tmp/before.json [--data ../shared/eval/dev.jsonl]
    ... change the engine ...
    .venv/bin/python bench/same_outputs.py compare /tmp/before.json [--data ../shared/eval/dev.jsonl]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from worker.engine.tagging import ArticleInput, Tagger, _bounded  # noqa: E402
from worker.engine.text import clean_article  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
BATCH = 256


def articles(extra: list[Path]) -> list[ArticleInput]:
    paths = sorted((ROOT / "models" / "corpus").glob("*.jsonl")) + sorted((ROOT / "models" / "candidates").glob("*.jsonl")) + extra
    found = []
    for path in paths:
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                record = json.loads(line)
                found.append(ArticleInput(str(record.get("id")), record.get("title") or "", record.get("body") or ""))
    return [article for article in found if article.body.strip()]


def outputs(tagger: Tagger, inputs: list[ArticleInput]) -> dict[str, list]:
    out: dict[str, list] = {"clean": [], "mentions": [], "batch": [], "scores": [], "signatures": [], "one_by_one": []}
    for article in inputs:
        cleaned = _bounded(clean_article(article.title, article.body))
        out["clean"].append([cleaned.title, list(cleaned.paragraphs)])
        out["mentions"].append([list(mention) for mention in tagger.matcher.find(cleaned.text)])
    for i in range(0, len(inputs), BATCH):
        batch = inputs[i : i + BATCH]
        out["batch"] += tagger.tag_many(batch, stories="shared")
        out["scores"] += tagger.scores(batch)
        out["signatures"] += [signature.as_json() for signature in tagger.tag_signed(batch)[1]]
    for article in inputs[::7]:
        results, signatures = tagger.tag_signed([article])
        out["one_by_one"].append([results, [signature.as_json() for signature in signatures]])
    return json.loads(json.dumps(out))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("action", choices=("write", "compare"))
    parser.add_argument("file", type=Path)
    parser.add_argument("--data", type=Path, action="append", default=[], help="JSONL articles to add (id, title, body)")
    args = parser.parse_args()
    found = outputs(Tagger.load(), articles(args.data))
    if args.action == "write":
        args.file.write_text(json.dumps(found))
        print(", ".join(f"{key}: {len(values)}" for key, values in found.items()))
        return
    before = json.loads(args.file.read_text())
    differing = 0
    for key, values in before.items():
        changed = [i for i, (old, new) in enumerate(zip(values, found[key])) if old != new]
        if len(values) != len(found[key]) or changed:
            differing += 1
            print(f"{key}: {len(changed)} of {len(values)} differ (first: {changed[:5]})")
        else:
            print(f"{key}: all {len(values)} identical")
    sys.exit(1 if differing else 0)


if __name__ == "__main__":
    main()
