"""Re-tagging through the queue: chunks fan out to a real worker on real Redis, callbacks are
paced and delivered once per article, and a run survives a killed worker and a resume."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from .conftest import ROOT, write_jsonl
from .stack import Stack
from .test_retag import ARMS, WEATHER


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    running = Stack(tmp_path_factory.mktemp("retag-stack")).start()
    yield running
    running.stop()


def retag(stack, tmp_path, *args, **kwargs):
    env = {**stack.env, "AUTOTAG_DATA_DIR": str(tmp_path / "home")}
    return subprocess.run([sys.executable, "-m", "worker.cli", "retag", *map(str, args)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300, **kwargs)


def archive(tmp_path, prefix, count, current=None):
    return write_jsonl(tmp_path / f"{prefix}.jsonl", [
        {"id": f"{prefix}{i}", "revision": 1, **(ARMS if i % 2 else WEATHER), **({"current_tags": current} if current else {})}
        for i in range(count)])


def test_a_queued_dry_run_reports_without_delivering(stack, tmp_path):
    path = archive(tmp_path, "dq", 450, current={"topics": ["sanctions"], "regions": []})
    before = len(stack.cms.received)
    run = retag(stack, tmp_path, path, "--dry-run", "--out", tmp_path / "out.jsonl")
    assert run.returncode == 0, run.stderr
    report = json.loads(open(run.stdout.split("report: ")[1].strip()).read())
    assert report["articles"] == 450 and report["changed"] == 450
    assert report["per_tag"]["sanctions"] == {"gain": 0, "lose": 450}
    assert report["per_tag"]["arms-deals"] == {"gain": 225, "lose": 0}
    assert len(open(tmp_path / "out.jsonl").readlines()) == 450
    assert len(stack.cms.received) == before


def test_queued_callbacks_are_delivered_once_each_at_the_rate(stack, tmp_path):
    path = archive(tmp_path, "cq", 60)
    run = retag(stack, tmp_path, path, "--rate", "40")
    assert run.returncode == 0, run.stderr
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and len([r for r in stack.cms.received if str(r.get("payload", {}).get("article", {}).get("id", "")).startswith("cq")]) < 60:
        time.sleep(0.1)
    calls = [r for r in stack.cms.received if str(r["payload"]["article"]["id"]).startswith("cq")]
    assert sorted(c["payload"]["article"]["id"] for c in calls) == sorted(f"cq{i}" for i in range(60))
    times = sorted(c["at"] for c in calls)
    assert times[-1] - times[0] >= 59 / 40 - 0.3  # sixty callbacks at 40/s take about 1.5 s


def test_a_killed_worker_and_a_resume_deliver_every_article_once(stack, tmp_path):
    path = archive(tmp_path, "kq", 1000)
    env = {**stack.env, "AUTOTAG_DATA_DIR": str(tmp_path / "home")}
    producer = subprocess.Popen([sys.executable, "-m", "worker.cli", "retag", str(path), "--rate", "400"], cwd=ROOT, env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    # kill the worker (parent and pool child) while chunks are being tagged
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not any(str(r.get("payload", {}).get("article", {}).get("id", "")).startswith("kq") for r in stack.cms.received):
        time.sleep(0.05)
    victim = stack.workers[0]
    children = subprocess.run(["pgrep", "-P", str(victim.pid)], capture_output=True, text=True).stdout.split()
    for pid in children:
        os.kill(int(pid), signal.SIGKILL)
    victim.kill()
    victim.wait()
    producer.send_signal(signal.SIGINT)
    _, stderr = producer.communicate(timeout=60)
    run_id = stderr.split("--status ")[1].split(";")[0].strip()
    stack.start_worker()
    resumed = retag(stack, tmp_path, "--resume", run_id)
    assert resumed.returncode == 0, resumed.stderr
    verified = lambda: [r for r in stack.cms.received if "payload" in r]  # noqa: E731
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and len({r["payload"]["article"]["id"] for r in verified() if str(r["payload"]["article"]["id"]).startswith("kq")}) < 1000:
        time.sleep(0.2)
    # a POST cut off by the SIGKILL reaches the CMS truncated and fails verification; nothing else may
    for record in stack.cms.received:
        if "payload" not in record:
            assert len(record["raw"]) < int(record["headers"].get("content-length", 0)), record["error"]
    calls = [r for r in verified() if str(r["payload"]["article"]["id"]).startswith("kq")]
    ids = [c["payload"]["article"]["id"] for c in calls]
    assert len(set(ids)) == 1000
    # a callback in flight when the worker died may come again, with the same webhook-id: at
    # most one per connection the chunk was posting over
    assert len({c["headers"]["webhook-id"] for c in calls}) == 1000
    assert len(ids) - 1000 <= 4
    status = json.loads(retag(stack, tmp_path, "--status", run_id, "--json").stdout)
    assert status["finished"] and status["articles_done"] == 1000


def test_callbacks_the_cms_refuses_go_to_the_durable_schedule(stack, tmp_path):
    """A 503 is retried from the ledger's schedule until it arrives; a 404 ends in the dead
    letters; every other article arrives once, and the run still finishes."""
    path = archive(tmp_path, "fq", 120)
    stack.cms.respond.update({"fq7": [503, 200], "fq55": 404})  # fq7: the CMS recovers after the first refusal
    try:
        run = retag(stack, tmp_path, path, "--rate", "1000")
        assert run.returncode == 0, run.stderr
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and len(stack.cms.for_article("fq7")) < 2:
            time.sleep(0.1)
        attempts = stack.cms.for_article("fq7")
        assert [a["status"] for a in attempts] == [503, 200]
        assert len({a["headers"]["webhook-id"] for a in attempts}) == 1
        dead = [r for r in stack.ledger.listing("dead") if r["article"] == "fq55"]
        assert len(dead) == 1 and "404" in dead[0]["last_error"]
        ok = [r for r in stack.cms.received if "payload" in r and str(r["payload"]["article"]["id"]).startswith("fq") and r["status"] == 200]
        assert sorted(r["payload"]["article"]["id"] for r in ok) == sorted(f"fq{i}" for i in range(120) if i != 55)
    finally:
        stack.cms.respond.pop("fq7", None)
        stack.cms.respond.pop("fq55", None)


def test_a_malformed_current_tags_line_is_skipped_and_the_others_delivered(stack, tmp_path):
    from .test_retag import assert_malformed_lines_reported, malformed_archive

    run = retag(stack, tmp_path, malformed_archive(tmp_path, "mq"), "--rate", "100")
    assert run.returncode == 1, run.stderr  # lines were skipped
    assert_malformed_lines_reported(run.stderr, "mq")
    deadline = time.monotonic() + 30
    delivered = lambda: sorted(r["payload"]["article"]["id"] for r in stack.cms.received  # noqa: E731
                               if "payload" in r and str(r["payload"]["article"]["id"]).startswith("mq"))
    while time.monotonic() < deadline and len(delivered()) < 4:
        time.sleep(0.1)
    assert delivered() == ["mqok0", "mqok1", "mqok2", "mqok3"]
    assert "3 bad lines skipped" in run.stdout
