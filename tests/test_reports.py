"""The HTML reports: `autotag evaluate --html` and a re-tag dry run's report.html are one
self-contained file each (no resource fetched from anywhere, every figure a PNG inside the
page), mark the bundle's thresholds and list the tags in the order the issue asks for."""

import base64
import io
import json
import re
from collections import Counter

import pytest
from PIL import Image

from worker.cli import main
from worker.retag.export import Summary, format_summary

from .conftest import PER_FILE, ROOT, write_jsonl
from .test_retag import ARMS, WEATHER, retag

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def assert_self_contained(page: str) -> list[Image.Image]:
    """No external resource of any kind; returns the embedded images, each a PNG that decodes."""
    assert not re.search(r"""(?:src|href|srcset|action|poster|data)\s*=\s*["']?\s*(?:https?:)?//""", page, re.I), "an external resource"
    assert not re.search(r"url\(\s*['\"]?(?:https?:)?//|@import", page, re.I), "an external resource in the styles"
    assert "<script" not in page.lower() and "<link" not in page.lower() and "<iframe" not in page.lower()
    sources = re.findall(r"<img\b[^>]*\bsrc=\"([^\"]*)\"", page)
    assert sources and all(src.startswith("data:image/png;base64,") for src in sources), [s[:40] for s in sources]
    images = []
    for src in sources:
        raw = base64.b64decode(src.split(",", 1)[1], validate=True)
        assert raw.startswith(PNG_SIGNATURE)
        Image.open(io.BytesIO(raw)).verify()  # the whole file checks out, not just its header
        image = Image.open(io.BytesIO(raw))
        assert image.format == "PNG" and image.width >= 400 and image.height >= 150
        images.append(image)
    return images


@pytest.fixture(scope="module")
def held_out(tmp_path_factory):
    """Corpus articles the tiny bundle was not trained on: it makes mistakes on some of them."""
    records = []
    for file in sorted((ROOT / "models" / "corpus").glob("*.jsonl")):
        records += [json.loads(line) for line in file.read_text(encoding="utf-8").splitlines()[PER_FILE : PER_FILE + 5]]
    return write_jsonl(tmp_path_factory.mktemp("held-out") / "held_out.jsonl", records)


def test_evaluate_html_is_self_contained_with_the_thresholds_and_the_worst_errors(tiny_bundle, held_out, tmp_path, capsys):
    """Curves, per-tag and per-country figures as embedded PNGs; the manifest's accept and review
    thresholds beside each tag; every worst error listed with its evidence."""
    page_path = tmp_path / "evaluation.html"
    assert main(["evaluate", "--data", str(held_out), "--model", str(tiny_bundle), "--json", "--worst", "6", "--html", str(page_path)]) == 0
    report = json.loads(capsys.readouterr().out)
    page = page_path.read_text(encoding="utf-8")
    images = assert_self_contained(page)
    assert len(images) == 3  # threshold curves, per tag, countries
    thresholds = json.loads((tiny_bundle / "manifest.json").read_text())["thresholds"]
    for label, chosen in thresholds["topics"].items():
        figures = report["topics"]["per_label"][label]
        assert (f"<td>topic {label}</td><td class=n>{chosen['accept']:.3f}</td><td class=n>{chosen['review']:.3f}</td>"
                f"<td class=n>{figures['precision']:.3f}</td><td class=n>{figures['recall']:.3f}</td>") in page
    assert f"<td>regions (micro)</td><td class=n>{thresholds['regions']['accept']:.3f}</td>" in page
    assert report["worst_errors"], "the held-out articles should give the tiny bundle some errors"
    errors_section = page.split("<h2>Worst errors</h2>", 1)[1]
    for error in report["worst_errors"]:
        assert f"<b>{error['id']}</b>" in errors_section
        for tag in error["topics_false_positive"]:
            assert f"topic <b>{tag}</b>: given, not labelled" in errors_section
    assert "evidence: " in errors_section


def test_evaluate_html_into_a_missing_directory_is_one_clear_line_before_any_work(tiny_bundle, held_out, tmp_path, capsys):
    assert main(["evaluate", "--data", str(held_out), "--model", str(tiny_bundle), "--html", str(tmp_path / "nowhere" / "r.html")]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.startswith("autotag: cannot write the HTML report to") and captured.err.count("\n") == 1


def test_dry_run_table_lists_topics_first_then_countries_by_name_most_changed_first():
    """Codes sort CH < KR < SE < ZA; the names editors read sort South Africa < South Korea <
    Sweden < Switzerland, and the table must follow the names."""
    summary = Summary(articles=9, changed=9, gains=Counter({"KR": 2, "ZA": 2, "CH": 1, "SE": 1, "arms-deals": 1, "PL": 3}),
                      losses=Counter({"sanctions": 3}))
    rows = format_summary(summary).splitlines()[3:]
    shown = [re.split(r"\s{2,}", row.strip())[0] for row in rows]
    assert shown == ["sanctions", "arms-deals", "Poland (PL)", "South Africa (ZA)", "South Korea (KR)", "Sweden (SE)", "Switzerland (CH)"]


def test_dry_run_writes_a_self_contained_report_html_beside_report_json(tmp_path):
    archive = write_jsonl(tmp_path / "a.jsonl", [
        {"id": "x1", **ARMS, "current_tags": {"topics": ["sanctions"], "regions": ["PL", "ZA"]}},
        {"id": "x2", **WEATHER, "current_tags": {"topics": [], "regions": ["US"]}},
    ])
    run = retag(tmp_path, archive, "--local", "--dry-run")
    assert run.returncode == 0, run.stderr
    report_json = run.stdout.split("report: ")[1].split()[0]
    page_path = tmp_path / "home" / "retag" / json.loads(open(report_json).read())["run"] / "report.html"
    assert f"with charts: {page_path}" in run.stdout
    page = page_path.read_text(encoding="utf-8")
    assert len(assert_self_contained(page)) == 1
    listing = re.findall(r"<tr><td>([^<]+)</td><td class=n>(\d+)</td><td class=n>(\d+)</td></tr>", page)
    assert listing == [("arms-deals", "1", "0"), ("sanctions", "0", "1"), ("South Africa (ZA)", "0", "1"), ("South Korea (KR)", "1", "0")]
    sample = page.split("Changed articles", 1)[1]
    row = re.search(r"<tr><td>x1</td>.*?</tr>", sample).group(0)
    before, after = re.findall(r"<td>(.*?)</td>", row)[1:]
    assert "<b>sanctions</b>" in before and "Poland (PL)" in before and "<b>South Africa (ZA)</b>" in before
    assert "<b>arms-deals</b>" in after and "<b>South Korea (KR)</b>" in after and "Poland (PL)" in after and "sanctions" not in after
    assert "<td>x2</td>" not in sample  # unchanged articles are not in the sample


def test_the_curves_count_a_never_scored_positive_as_missed_at_every_threshold():
    import numpy as np

    from worker.engine.evaluation_report import GRID, precision_recall_curve

    precision, recall = precision_recall_curve(np.array([0.9, 0.6, 0.3]), np.array([True, False, True]), never_scored=1)
    at = {float(t): i for i, t in enumerate(GRID)}
    assert (precision[at[0.5]], recall[at[0.5]]) == (0.5, 1 / 3)
    assert (precision[at[0.2]], recall[at[0.2]]) == (2 / 3, 2 / 3)
    assert np.isnan(precision[at[0.95]]) and recall[at[0.95]] == 0.0


def test_evaluate_html_without_any_country_is_still_a_page(tiny_bundle, tmp_path, capsys):
    """A labelled file in which no country is labelled or tagged (an empty file is refused: it
    holds no labels) still gives a page, which says so."""
    quiet = tmp_path / "quiet.jsonl"
    quiet.write_text(json.dumps({"id": "q1", "title": "Council meets", "body": "The town council met on Tuesday to discuss road repairs.",
                                 "topics": [], "regions": []}) + "\n")
    assert main(["evaluate", "--data", str(quiet), "--model", str(tiny_bundle), "--html", str(tmp_path / "r.html")]) == 0
    page = (tmp_path / "r.html").read_text(encoding="utf-8")
    assert len(assert_self_contained(page)) >= 2 and "No country was labelled or tagged." in page
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    assert main(["evaluate", "--data", str(empty), "--model", str(tiny_bundle), "--html", str(tmp_path / "e.html")]) == 2
    assert not (tmp_path / "e.html").exists()
