"""`autotag deliveries` and `autotag redeliver` against a real stack: fields named for what they
hold, one timestamp format (ISO 8601 UTC), and `redeliver --all-dead` with nothing dead is a
success a cron job can run."""

import calendar
import json
import re
import subprocess
import sys
import time

import pytest

from .stack import ROOT, Stack

ISO_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    running = Stack(tmp_path_factory.mktemp("deliveries"), retry_delays=(120,)).start()  # a refused callback waits 2 min
    yield running
    running.stop()


def autotag(stack, *args):
    return subprocess.run([sys.executable, "-m", "worker.cli", *args], env=stack.env, cwd=ROOT, capture_output=True, text=True, timeout=60)


def test_redeliver_all_dead_with_nothing_dead_succeeds(stack):
    run = autotag(stack, "redeliver", "--all-dead")
    assert run.returncode == 0, run.stderr
    assert "nothing to redeliver" in run.stdout


def test_deliveries_name_their_times_in_iso_utc(stack):
    stack.cms.respond.update({"d-dead": 404, "d-wait": 503})
    published_at = time.time()
    stack.publish("d-dead", 1)
    stack.publish("d-wait", 1)
    stack.cms.wait_for("d-dead")
    stack.cms.wait_for("d-wait")
    time.sleep(1.0)  # the failures recorded
    run = autotag(stack, "deliveries", "--json")
    assert run.returncode == 0, run.stderr
    rows = {row["article"]: row for row in map(json.loads, run.stdout.splitlines())}
    pending, dead = rows["d-wait"], rows["d-dead"]
    assert pending["list"] == "pending" and dead["list"] == "dead"
    for row in (pending, dead):
        assert "created_at" not in row and "score" not in row
        for name in ("received_at", "last_attempt_at"):
            assert ISO_UTC.match(row[name]), (name, row)
        assert abs(_epoch(row["received_at"]) - published_at) < 10
    assert ISO_UTC.match(pending["due_at"]) and pending["died_at"] is None
    assert 100 < _epoch(pending["due_at"]) - _epoch(pending["last_attempt_at"]) <= 121  # the 120 s retry delay, not the first due time
    assert ISO_UTC.match(dead["died_at"]) and dead["due_at"] is None
    human = autotag(stack, "deliveries").stdout
    assert f"due {pending['due_at']}" in human and f"died {dead['died_at']}" in human

    again = autotag(stack, "redeliver", "--all-dead")
    assert again.returncode == 0 and f"{dead['id']}: scheduled" in again.stdout


def _epoch(iso: str) -> float:
    return calendar.timegm(time.strptime(iso, "%Y-%m-%dT%H:%M:%SZ"))
