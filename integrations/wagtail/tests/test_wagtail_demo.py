"""The demo (`autotag-wagtail-demo --once`) on the shipped samples: every page ends with exactly
the tags `autotag tag` gives the same article. Starts its own service and site in subprocesses."""

import subprocess
import sys
from pathlib import Path

import pytest

from wagtail_pages import REPO

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "compare_demo.py"


def test_demo_pages_carry_exactly_the_tags_autotag_tag_gives():
    result = subprocess.run([sys.executable, str(SCRIPT), "--articles", str(REPO / "examples" / "articles.jsonl")],
                            capture_output=True, text=True, timeout=900, cwd=REPO)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3/3 pages carry exactly the tags" in result.stdout


def test_demo_reports_bad_lines_and_publishes_the_rest(tmp_path):
    """A bad line is named on stderr and skipped; the good one is still published and tagged."""
    from wagtail_autotag.demo.run import read_articles

    articles = tmp_path / "a.jsonl"
    articles.write_text('{"id": "ok", "title": "T", "body": "Text"}\n{"id": "no-body", "title": "T"}\nnot json\n')
    good, errors = read_articles(articles)
    assert [a["id"] for a in good] == ["ok"]
    assert errors == ["line 2: 'body' is missing or not a non-empty string", "line 3: malformed JSON (Expecting value)"]
