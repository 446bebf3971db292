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


def test_bad_article_lines_are_named_and_the_good_ones_kept(tmp_path):
    """Each bad line gets one JSON error naming its line, id and field; the good lines all go on."""
    from wagtail_autotag.demo.run import read_articles

    path = tmp_path / "articles.jsonl"
    path.write_bytes(b"\n".join([
        b'{"id": "ok-1", "title": "Seoul ships shells", "body": "South Korea sells shells to Poland."}',
        b'{"id": "no-body", "title": "T"}',
        b"not json",
        b'{"id": "ok-1", "title": "Again", "body": "Same id."}',
        b'{"id": "long", "title": "' + b"x" * 300 + b'", "body": "Text."}',
        b'\xff\xfe{"id": "bytes"}',
        b'["a list"]',
        b'{"id": 7, "title": "Numbered", "body": "<p>HTML body.</p>"}',
        b"",
    ]))
    good, errors = read_articles(path)
    assert [a["id"] for a in good] == ["ok-1", 7]
    found = [json.loads(e) for e in errors]
    assert [(e["line"], e["id"], e["field"]) for e in found] == [
        (2, "no-body", "body"), (3, None, "line"), (4, "ok-1", "id"), (5, "long", "title"), (6, None, "line"), (7, None, "line")]
    assert all(e["error"] and e["file"] == str(path) for e in found)


def test_a_plain_text_body_becomes_one_paragraph_per_line_and_html_is_kept():
    """What a rich-text field holds: the cleaner then sees the same lines as in the plain text."""
    from wagtail_autotag.demo.run import body_html

    assert body_html("Seoul & Warsaw sign.\n\nA <second> line.\n") == "<p>Seoul &amp; Warsaw sign.</p><p>A &lt;second&gt; line.</p>"
    assert body_html("<p>Already HTML.</p>") == "<p>Already HTML.</p>"
