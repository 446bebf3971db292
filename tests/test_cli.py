"""`autotag tag` reports each bad line with its number and id, tags every good line, and exits non-zero."""

import json
import subprocess
import sys

import pytest

from .conftest import EDITOR_ARCHIVE, ROOT, write_jsonl

GOOD = {"id": "g1", "title": "Treasury sanctions shipping firms", "body": "The Treasury imposed sanctions on six shipping firms in Dubai accused of moving Iranian oil."}


def autotag(*args, stdin: bytes | None = None):
    return subprocess.run([sys.executable, "-m", "worker.cli", *args], input=stdin, capture_output=True, cwd=ROOT, timeout=120)


def test_good_lines_give_one_result_each(tiny_bundle, tmp_path):
    second = dict(GOOD, id=2, title="Kharkiv shelled", body="<p>Russian troops shelled Kharkiv overnight.</p>")
    run = autotag("tag", str(write_jsonl(tmp_path / "in.jsonl", [GOOD, second])), "--model", str(tiny_bundle))
    assert run.returncode == 0, run.stderr
    results = [json.loads(line) for line in run.stdout.splitlines()]
    assert [r["id"] for r in results] == ["g1", 2]
    for result in results:
        assert set(result) == {"id", "model_version", "topics", "regions", "suggested", "story"}
        assert result["story"]["versions"] == 1 and result["story"]["id"].startswith("st-")  # two different stories
        assert set(result["suggested"]) == {"topics", "regions"}
        for tag in result["topics"]:
            assert set(tag) == {"tag", "score", "evidence", "by"} and 0 <= tag["score"] <= 1 and tag["by"] == "model"
        for region in result["regions"]:
            assert set(region) == {"code", "name", "score", "evidence", "by"} and region["evidence"]


def test_bad_lines_are_reported_and_the_rest_still_run(tiny_bundle):
    lines = [
        json.dumps(GOOD).encode(),
        b"{this is not json",
        json.dumps({"title": "no id", "body": "text"}).encode(),
        json.dumps({"id": "no-body", "title": "t"}).encode(),
        json.dumps({"id": "empty", "title": "t", "body": "   "}).encode(),
        b'{"id": "latin1", "title": "t", "body": "caf\xe9 in Paris"}',
        json.dumps({"id": "huge", "title": "t", "body": "word " * 1_000_000}).encode(),
        json.dumps(["an", "array"]).encode(),
        b'{"id": "surrogate", "title": "t", "body": "Kyiv \\ud800 was hit"}',
        json.dumps(dict(GOOD, id="last")).encode(),
    ]
    run = autotag("tag", "-", "--model", str(tiny_bundle), stdin=b"\n".join(lines) + b"\n")
    assert run.returncode == 1
    assert [json.loads(line)["id"] for line in run.stdout.splitlines()] == ["g1", "last"]
    errors = {e["line"]: e for e in map(json.loads, run.stderr.decode().splitlines())}
    assert sorted(errors) == [2, 3, 4, 5, 6, 7, 8, 9]
    assert "malformed JSON" in errors[2]["error"]
    assert errors[3]["field"] == "id"
    assert errors[4]["field"] == "body" and errors[4]["id"] == "no-body"
    assert "empty" in errors[5]["error"]
    assert "UTF-8" in errors[6]["error"]
    assert "limit" in errors[7]["error"] or "longer than" in errors[7]["error"]
    assert "object" in errors[8]["error"]
    assert "surrogate" in errors[9]["error"] and errors[9]["id"] == "surrogate"


def test_body_limit_is_configurable(tiny_bundle):
    record = json.dumps(dict(GOOD, body="x " * 2000)).encode()
    run = autotag("tag", "-", "--model", str(tiny_bundle), "--max-body-bytes", "1000", stdin=record)
    assert run.returncode == 1 and "1,000-byte limit" in run.stderr.decode()


def test_a_missing_input_file_or_bundle_is_one_clear_line(tiny_bundle, tmp_path):
    run = autotag("tag", str(tmp_path / "absent.jsonl"), "--model", str(tiny_bundle))
    assert run.returncode == 2 and run.stderr.decode().startswith("autotag: cannot read")
    run = autotag("tag", "-", "--model", str(tmp_path / "no-bundle"), stdin=b"")
    assert run.returncode == 2 and "autotag train" in run.stderr.decode()


def test_evaluate_prints_metrics_as_json(tiny_bundle, tiny_corpus):
    run = autotag("evaluate", "--data", str(tiny_corpus), "--model", str(tiny_bundle), "--json")
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout)
    assert report["articles"] > 100
    assert set(report["topics"]["per_label"]) == {"arms-deals", "sanctions", "ukraine-front"}
    assert 0 < report["regions"]["micro"]["f1"] <= 1


def test_train_with_an_archive_prints_both_trainings_side_by_side(tiny_corpus, tmp_path):
    out = tmp_path / "bundle"
    run = autotag("train", "--corpus", str(tiny_corpus), "--archive", str(EDITOR_ARCHIVE), "--out", str(out), "--folds", "3")
    assert run.returncode == 1, run.stderr  # bundle written, but lines were skipped
    stderr = run.stderr.decode().splitlines()
    assert [json.loads(line)["line"] for line in stderr if line.startswith("{")] == [13, 22, 30]
    assert any("warning" in line and "climate (2)" in line for line in stderr)
    stdout = run.stdout.decode()
    assert "archive: 24 articles with editor decisions from 27 good lines" in stdout
    assert "topics 12 set / 11 removed" in stdout and "training twice" in stdout
    lines = stdout.splitlines()
    title = next(i for i, line in enumerate(lines) if line.startswith("cross-validated figures"))
    assert lines[title + 1].split() == ["corpus", "alone", "corpus", "+", "archive"]
    blocks = lines[title + 2:]
    assert [line for line in blocks if not line.startswith(" ")] == ["arms-deals", "sanctions", "ukraine-front", "regions"]
    for name in ("corpus rows", "archive rows"):
        rows = [line for line in blocks if line.strip().startswith(name)]
        assert len(rows) == 4 and all(line.count("F1 ") == 2 for line in rows), rows
    assert all(line.count("accept ") == 2 for line in blocks if "thresholds" in line)
    assert json.loads((out / "manifest.json").read_text())["archive"]["articles"] == 24


def test_train_refuses_an_unreadable_archive(tiny_corpus, tmp_path):
    run = autotag("train", "--corpus", str(tiny_corpus), "--archive", str(tmp_path / "absent.jsonl"), "--out", str(tmp_path / "b"))
    assert run.returncode == 2 and run.stderr.decode().startswith("autotag: cannot read")
    assert not (tmp_path / "b").exists()


@pytest.mark.parametrize("command", ["tag", "evaluate", "train", "bench"])
def test_every_command_has_help(command):
    run = autotag(command, "--help")
    assert run.returncode == 0 and b"usage: autotag" in run.stdout
