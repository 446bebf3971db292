"""`autotag evaluate` names a bad line by number and id, refuses a file without labels, and names
labels the model cannot give, instead of printing figures that mean nothing."""

import json
import subprocess
import sys

from .conftest import ROOT, write_jsonl

LABELED = {"id": "g1", "title": "Treasury sanctions shipping firms", "body": "The Treasury imposed sanctions on six shipping firms.",
           "topics": ["sanctions"], "regions": ["US"]}


def evaluate(bundle, path):
    return subprocess.run([sys.executable, "-m", "worker.cli", "evaluate", "--data", str(path), "--model", str(bundle)],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)


def assert_refused(run, *words):
    assert run.returncode == 2 and "Traceback" not in run.stderr, run.stderr
    assert len(run.stderr.strip().splitlines()) == 1 and run.stderr.startswith("autotag: "), run.stderr
    for word in words:
        assert word in run.stderr, run.stderr


def test_a_line_without_a_body_is_named_by_line_and_id(tiny_bundle, tmp_path):
    path = write_jsonl(tmp_path / "dev.jsonl", [LABELED, {"id": "no-body", "title": "t", "topics": []}])
    assert_refused(evaluate(tiny_bundle, path), "line 2", "'no-body'", "body")


def test_mistyped_labels_are_named_by_line_and_id(tiny_bundle, tmp_path):
    path = write_jsonl(tmp_path / "dev.jsonl", [LABELED, dict(LABELED, id="typed", topics="sanctions")])
    assert_refused(evaluate(tiny_bundle, path), "line 2", "'typed'", "'topics' must be a list of strings")


def test_a_file_with_no_labels_is_refused(tiny_bundle, tmp_path):
    path = write_jsonl(tmp_path / "dev.jsonl", [{k: v for k, v in LABELED.items() if k not in ("topics", "regions")}])
    assert_refused(evaluate(tiny_bundle, path), "holds no labels")


def test_unknown_labels_are_named(tiny_bundle, tmp_path):
    path = write_jsonl(tmp_path / "dev.jsonl", [LABELED, dict(LABELED, id="g2", topics=["arms-deal"], regions=["UK"]),
                                                dict(LABELED, id="g3", topics=["arms-deal"], regions_optional=["ZZ"])])
    assert_refused(evaluate(tiny_bundle, path), "topic 'arms-deal' (lines 2, 3)", "region 'UK' (line 2)", "region 'ZZ' (line 3)",
                   "arms-deals, sanctions, ukraine-front")


def test_good_labels_are_scored(tiny_bundle, tmp_path):
    path = write_jsonl(tmp_path / "dev.jsonl", [LABELED, dict(LABELED, id="g2", regions=["XK"])])
    run = subprocess.run([sys.executable, "-m", "worker.cli", "evaluate", "--data", str(path), "--model", str(tiny_bundle), "--json"],
                         cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["articles"] == 2
