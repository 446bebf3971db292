"""`autotag-wagtail-demo --once` on 12 articles: every page ends with exactly the tags `autotag tag`
gives the same article (tag, score, evidence, by), through the whole real path."""

import json
import subprocess
import sys
from pathlib import Path

from wagtail_pages import REPO

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "demo_matches_tag.py"


def test_demo_pages_carry_exactly_the_tags_autotag_tag_gives():
    corpus = sorted((REPO / "models" / "corpus").glob("*.jsonl"))
    result = subprocess.run([sys.executable, str(SCRIPT), "--articles", *map(str, corpus), "--limit", "12", "--spread", "--json"],
                            capture_output=True, text=True, timeout=900)
    assert result.returncode in (0, 1), result.stderr[-3000:]
    report = json.loads(result.stdout)
    assert report["articles"] == 12
    mismatches = [v for v in report["verdicts"] if not v["match"]]
    assert not mismatches, json.dumps(mismatches, indent=1)[:3000]
    assert report["pages_matching"] == 12 and result.returncode == 0
    # the sample is not trivial: it holds topics, several countries and pages without a topic
    assert {t for v in report["verdicts"] for t in v["topics"]} >= {"arms-deals", "sanctions", "ukraine-front"}
    assert any(not v["topics"] for v in report["verdicts"])
