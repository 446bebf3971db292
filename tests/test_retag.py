"""Re-tagging an archive in-process: a dry-run diff, editor decisions kept, bad lines skipped,
the callback rate honoured, and an interrupted run resumed without delivering anything twice."""

import json
import os
import signal
import subprocess
import sys
import time

from .conftest import ROOT, write_jsonl
from .stack import CmsStub, new_secret

ARMS = {"title": "Warsaw signs contract for South Korean tanks",
        "body": "Poland signed a contract on Friday for 180 K2 battle tanks from South Korea's Hyundai Rotem. Seoul has become one of "
                "Warsaw's main weapons suppliers, selling tanks, howitzers and fighter jets. Polish officials said the arms deal includes "
                "ammunition and training."}
WEATHER = {"title": "Cold front", "body": "A strong cold front is expected to sweep across New England on Saturday, bringing heavy "
                                          "rain to Boston and Massachusetts, the National Weather Service said."}


def retag(tmp_path, *args, env=None, **kwargs):
    environment = {**os.environ, "AUTOTAG_DATA_DIR": str(tmp_path / "home"), **(env or {})}
    return subprocess.run([sys.executable, "-m", "worker.cli", "retag", *map(str, args)], cwd=ROOT, env=environment,
                          capture_output=True, text=True, timeout=120, **kwargs)


def test_dry_run_reports_the_diff_against_current_tags(tmp_path):
    archive = write_jsonl(tmp_path / "a.jsonl", [
        {"id": "x1", **ARMS, "current_tags": {"topics": ["sanctions"], "regions": ["PL"]}},
        {"id": "x2", **WEATHER, "current_tags": {"topics": [], "regions": ["US"]}},
    ])
    run = retag(tmp_path, archive, "--local", "--dry-run", "--out", tmp_path / "out.jsonl")
    assert run.returncode == 0, run.stderr
    report = json.loads(open(run.stdout.split("report: ")[1].strip()).read())
    assert report["articles"] == 2 and report["changed"] == 1 and report["dry_run"]
    assert report["per_tag"] == {"KR": {"gain": 1, "lose": 0}, "arms-deals": {"gain": 1, "lose": 0}, "sanctions": {"gain": 0, "lose": 1}}
    per_article = [json.loads(line) for line in open(report["per_article"])]
    assert per_article == [{"id": "x1", "line": 1, "changes": {"topics": {"added": ["arms-deals"], "removed": ["sanctions"]},
                                                              "regions": {"added": ["KR"], "removed": []}},
                            "editor_kept": {"topics": {"set": [], "removed": []}, "regions": {"set": [], "removed": []}},
                            "before": {"topics": ["sanctions"], "regions": ["PL"]},
                            "after": {"topics": ["arms-deals"], "regions": ["PL", "KR"]}}]
    assert "arms-deals" in run.stdout and "gain" in run.stdout  # the terminal table
    assert [json.loads(line)["id"] for line in open(tmp_path / "out.jsonl")] == ["x1", "x2"]


def test_editor_decisions_are_kept_and_said(tmp_path):
    archive = write_jsonl(tmp_path / "a.jsonl", [
        {"id": "e1", **ARMS, "current_tags": {"topics": [{"tag": "sanctions", "by": "editor"}], "regions": ["PL", "KR"],
                                              "removed_by_editor": {"topics": ["arms-deals"], "regions": ["KR"]}}},
    ])
    run = retag(tmp_path, archive, "--local", "--no-callback", "--out", tmp_path / "out.jsonl")
    assert run.returncode == 0, run.stderr
    (result,) = [json.loads(line) for line in open(tmp_path / "out.jsonl")]
    assert [t["tag"] for t in result["topics"]] == ["sanctions"] and result["topics"][0]["by"] == "editor"
    assert {r["code"] for r in result["regions"]} == {"PL"}
    assert result["editor_kept"] == {"topics": {"set": ["sanctions"], "removed": ["arms-deals"]}, "regions": {"set": [], "removed": ["KR"]}}
    assert result["changes"]["regions"] == {"added": [], "removed": ["KR"]}


def test_bad_lines_are_reported_with_their_numbers_and_skipped(tmp_path):
    path = tmp_path / "a.jsonl"
    path.write_bytes(b"\n".join([json.dumps({"id": "ok1", **WEATHER}).encode(), b"{broken", b'{"id": "nobody"}',
                                 b'{"id": "bad-utf8", "title": "t", "body": "caf\xe9"}',
                                 json.dumps({"id": "tags", **WEATHER, "current_tags": {"topics": [5]}}).encode(),
                                 json.dumps({"id": "ok2", **ARMS}).encode()]) + b"\n")
    run = retag(tmp_path, path, "--local", "--dry-run")
    assert run.returncode == 1
    errors = [json.loads(line) for line in run.stderr.splitlines() if line.startswith("{")]
    assert [e["line"] for e in errors] == [2, 3, 4, 5]
    assert "2 articles re-tagged" in run.stdout


def _archive(tmp_path, count):
    return write_jsonl(tmp_path / "a.jsonl", [{"id": f"r{i}", "revision": 1, **(ARMS if i % 2 else WEATHER)} for i in range(count)])


def _config(tmp_path, cms):
    path = tmp_path / "autotag.toml"
    path.write_text(f'[[clients]]\nid = "n"\ntoken = "t"\ncallback_url = "{cms.url}"\ncallback_secret = "{cms.secret}"\n'
                    "allow_private_callback = true\n")
    return {"AUTOTAG_CONFIG": str(path)}


def test_callbacks_are_signed_and_paced_to_the_rate(tmp_path):
    cms = CmsStub(new_secret()).start()
    try:
        run = retag(tmp_path, _archive(tmp_path, 10), "--local", "--rate", "20", env=_config(tmp_path, cms))
        assert run.returncode == 0, run.stderr
        assert len(cms.received) == 10 and all("payload" in r for r in cms.received)
        times = [r["at"] for r in cms.received]
        assert times[-1] - times[0] >= 9 / 20 - 0.02  # ten calls at 20/s span at least 0.45 s
        assert cms.received[0]["payload"]["type"] == "article.tags"
    finally:
        cms.stop()


def test_an_interrupted_run_resumes_and_delivers_each_article_once(tmp_path):
    cms = CmsStub(new_secret()).start()
    env = {**os.environ, "AUTOTAG_DATA_DIR": str(tmp_path / "home"), **_config(tmp_path, cms)}
    try:
        process = subprocess.Popen([sys.executable, "-m", "worker.cli", "retag", str(_archive(tmp_path, 24)), "--local", "--rate", "8"],
                                   cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 60
        while len(cms.received) < 6 and time.monotonic() < deadline:
            time.sleep(0.05)
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=30)
        assert process.returncode == 130, stderr
        before = len(cms.received)
        assert 0 < before < 24
        run_id = stderr.split("--resume ")[1].split()[0].rstrip(")")
        status = retag(tmp_path, "--status", run_id, "--json")
        assert json.loads(status.stdout)["finished"] is False
        status = retag(tmp_path, "--status", run_id)
        assert "(local) stopped after line" in status.stdout and f"autotag retag --resume {run_id}" in status.stdout
        resumed = retag(tmp_path, "--resume", run_id, env=_config(tmp_path, cms))
        assert resumed.returncode == 0, resumed.stderr
        ids = [r["payload"]["article"]["id"] for r in cms.received]
        assert sorted(ids) == sorted(f"r{i}" for i in range(24))  # every article, each once
        assert len({r["headers"]["webhook-id"] for r in cms.received}) == 24
    finally:
        cms.stop()


def test_a_retag_gives_versions_of_one_story_one_tag_set(tmp_path):
    from .test_stories import REWRITE, WIRE
    from .test_stories_live import SANCTIONS

    archive = write_jsonl(tmp_path / "a.jsonl", [{"id": "v1", "title": WIRE[0], "body": WIRE[1]}, {"id": "other", **WEATHER},
                                                 {"id": "v2", "title": REWRITE[0], "body": REWRITE[1] + SANCTIONS}])
    for mode, shared in (("shared", True), ("off", False)):
        run = retag(tmp_path, archive, "--local", "--no-callback", "--stories", mode, "--out", tmp_path / f"{mode}.jsonl")
        assert run.returncode == 0, run.stderr
        results = {r["id"]: r for r in map(json.loads, open(tmp_path / f"{mode}.jsonl"))}
        assert results["v1"]["story"] == results["v2"]["story"] != results["other"]["story"]
        topics = {key: {t["tag"] for t in results[key]["topics"]} for key in ("v1", "v2")}
        assert (topics["v1"] == topics["v2"] == {"arms-deals", "sanctions"}) is shared


MALFORMED_CURRENT_TAGS = [{"removed_by_editor": ["US"]}, {"regions": 5}, {"topics": "sanctions"}]


def malformed_archive(tmp_path, prefix):
    """Good lines around the three malformed `current_tags` of the bug report (lines 2, 4, 6)."""
    records = []
    for i, current_tags in enumerate(MALFORMED_CURRENT_TAGS):
        records.append({"id": f"{prefix}ok{i}", "revision": 1, **ARMS, "current_tags": {"topics": ["sanctions"]}})
        records.append({"id": f"{prefix}bad{i}", "revision": 1, **WEATHER, "current_tags": current_tags})
    records.append({"id": f"{prefix}ok3", "revision": 1, **WEATHER})
    return write_jsonl(tmp_path / f"{prefix}.jsonl", records)


def assert_malformed_lines_reported(stderr: str, prefix: str):
    assert "Traceback" not in stderr, stderr
    errors = [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]
    assert [(e["line"], e["id"], e["field"]) for e in errors] == [
        (2, f"{prefix}bad0", "current_tags.removed_by_editor"), (4, f"{prefix}bad1", "current_tags.regions"),
        (6, f"{prefix}bad2", "current_tags.topics")]


def test_a_malformed_current_tags_line_is_skipped_and_the_others_delivered(tmp_path):
    cms = CmsStub(new_secret()).start()
    try:
        run = retag(tmp_path, malformed_archive(tmp_path, "m"), "--local", "--rate", "100", "--out", tmp_path / "out.jsonl",
                    env=_config(tmp_path, cms))
        assert run.returncode == 1, run.stderr  # lines were skipped
        assert_malformed_lines_reported(run.stderr, "m")
        assert sorted(r["payload"]["article"]["id"] for r in cms.received) == ["mok0", "mok1", "mok2", "mok3"]
        assert "3 bad lines skipped" in run.stdout
        assert all(len(t) > 1 for line in open(tmp_path / "out.jsonl") for t in json.loads(line)["changes"]["topics"]["removed"])
    finally:
        cms.stop()
