"""`autotag up --demo` and a second shell that shares only AUTOTAG_DATA_DIR: every command finds
the service by itself, `status` reads it at a glance, a queued re-tag runs to its end, and
Ctrl-C stops everything in order without an error line; with nothing running, every command
says so in one line."""

import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest
import redis

from worker.service.up import free_port

from .conftest import ROOT, write_jsonl

NOTHING_RUNNING = "no autotag service is running"


def shell(data_dir):
    """A second shell's environment: the data directory and nothing else of autotag's."""
    return {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", str(data_dir)), "AUTOTAG_DATA_DIR": str(data_dir)}


def autotag(data_dir, *args, timeout: float = 180):
    return subprocess.run([sys.executable, "-m", "worker.cli", *map(str, args)], cwd=ROOT, env=shell(data_dir),
                          capture_output=True, text=True, timeout=timeout)


def descendants(pid: int) -> list[int]:
    found = []
    for child in subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split():
        found += [int(child), *descendants(int(child))]
    return found


def stop_all(up: subprocess.Popen) -> None:
    """Teardown of a test that failed half-way: no worker or Redis may outlive it."""
    if up.poll() is None:
        left = descendants(up.pid)
        os.killpg(up.pid, signal.SIGINT)
        try:
            up.wait(timeout=60)
        except subprocess.TimeoutExpired:
            for pid in [up.pid, *left]:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            up.wait()


def test_a_second_shell_runs_every_command_against_the_service_up_started(tmp_path):
    data = tmp_path / "data"
    port = free_port()
    log = tmp_path / "up.out"
    # a session of its own, as a terminal's foreground job: the test's Ctrl-C reaches its whole group
    up = subprocess.Popen([sys.executable, "-m", "worker.cli", "up", "--demo", "--port", str(port)], cwd=ROOT, env=shell(data),
                          stdout=open(log, "wb"), stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 150
        while log.read_text().count("autotag demo: callback") < 3:
            assert up.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        published = json.loads((data / "up.json").read_text())
        assert published["pid"] == up.pid and published["ingress_url"] == f"http://127.0.0.1:{port}"

        run = autotag(data, "status", "--json")
        assert run.returncode == 0, run.stdout + run.stderr
        report = json.loads(run.stdout)
        assert report["ok"] and report["redis"]["reachable"] and report["ingress"]["ready"], report
        assert report["workers"]["alive"] == 1 and "autotag.tag" in report["workers"]["nodes"][0]["queues"]
        assert set(report["queues"]) == {"autotag.tag", "autotag.retag", "autotag.deliver"}
        hour = report["activity"]["last_hour"]
        assert hour["events"] == 3 and hour["callbacks"] == 3 and 0 < hour["latency_p50_ms"] <= hour["latency_p99_ms"]
        assert report["deliveries"] == {"scheduled": 0, "due_now": 0, "dead": 0}

        export = write_jsonl(tmp_path / "export.jsonl", [
            {**json.loads(line), "id": f"e2e-{i}", "revision": 1}
            for i, line in enumerate((ROOT / "examples" / "articles.jsonl").read_text().splitlines())])
        run = autotag(data, "retag", "--client", "demo", export)
        assert run.returncode == 0, run.stderr
        run_id = run.stderr.split("--status ")[1].split(";")[0].strip()
        run = autotag(data, "retag", "--status", run_id)
        assert run.returncode == 0, run.stderr
        assert run.stdout.startswith(f"retag run {run_id} finished: 3 articles re-tagged"), run.stdout
        run = autotag(data, "retag", "--resume", run_id)  # nothing left to do: it says so and delivers nothing twice
        assert run.returncode == 0 and "3 articles re-tagged" in run.stdout, run.stderr
        deadline = time.monotonic() + 30
        while log.read_text().count("for article e2e-") < 3:  # the demo CMS prints the re-tag's callbacks
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)

        run = autotag(data, "status")
        assert run.returncode == 0 and run.stdout.rstrip().endswith("OK"), run.stdout
        assert f"{run_id}  finished" in run.stdout and "1 answering" in run.stdout
        run = autotag(data, "deliveries")
        assert run.returncode == 0 and run.stderr == "", run.stderr
        run = autotag(data, "redeliver", "msg_0123456789abcdef")  # reaches the ledger, which does not know it
        assert run.returncode == 1 and "not dead, unknown" in run.stderr, run.stderr
        run = autotag(data, "feedback", "report")
        assert run.returncode == 0, run.stderr
        run = autotag(data, "up", "--port", free_port())
        assert run.returncode == 2 and "already running" in run.stderr and "Traceback" not in run.stderr, run.stderr

        redis_url = published["redis_url"]
        os.killpg(up.pid, signal.SIGINT)  # Ctrl-C in the terminal: `up` and anything still in its group
        assert up.wait(timeout=60) == 0
    finally:
        stop_all(up)
    output = log.read_text()
    assert "autotag is up" in output and "autotag: stopped" in output.splitlines()[-1]
    for noise in ("Error", "Traceback", "celery@", "SecurityWarning", "superuser", "-------------- "):
        assert noise not in output, output
    assert "Warm shutdown" in (data / "worker.log").read_text()  # the worker stopped by itself, before Redis
    assert not (data / "up.json").exists()
    with pytest.raises(redis.ConnectionError):
        redis.Redis.from_url(redis_url, socket_connect_timeout=1).ping()
    run = autotag(data, "deliveries")
    assert run.returncode == 2 and NOTHING_RUNNING in run.stderr


@pytest.mark.parametrize("command", [
    ["status"], ["deliveries"], ["deliveries", "--dead"], ["redeliver", "--all-dead"], ["feedback", "report"],
    ["retag", "--client", "demo", "EXPORT"], ["retag", "--status", "0123abcd"], ["retag", "--resume", "0123abcd"],
])
def test_with_nothing_running_every_command_says_so_in_one_line(tmp_path, command):
    export = write_jsonl(tmp_path / "export.jsonl", [{"id": "a", "title": "t", "body": "Text."}])
    run = autotag(tmp_path / "empty", *[export if part == "EXPORT" else part for part in command])
    assert run.returncode == 2, run.stdout + run.stderr
    assert len(run.stderr.splitlines()) == 1 and NOTHING_RUNNING in run.stderr and "`autotag up`" in run.stderr, run.stderr
    assert run.stdout == ""


def test_status_json_with_nothing_running_is_json_and_fails(tmp_path):
    run = autotag(tmp_path, "status", "--json")
    assert run.returncode == 1
    report = json.loads(run.stdout)
    assert report["ok"] is False and NOTHING_RUNNING in report["problems"][0]


def test_a_file_left_by_a_killed_up_is_not_trusted(tmp_path):
    gone = subprocess.Popen(["true"])
    gone.wait()
    stale = {"pid": gone.pid, "redis_url": f"redis://127.0.0.1:{free_port()}/0", "ingress_url": "http://127.0.0.1:1",
             "config": str(tmp_path / "autotag.toml"), "queue_prefix": "", "logs": {}, "started_at": 0, "embedded_redis": True}
    (tmp_path / "up.json").write_text(json.dumps(stale))
    run = autotag(tmp_path, "deliveries")
    assert run.returncode == 2 and NOTHING_RUNNING in run.stderr and "stale" in run.stderr, run.stderr
    assert not (tmp_path / "up.json").exists()
    # a live process (this one) whose Redis does not answer: ignored, and left for its owner
    (tmp_path / "up.json").write_text(json.dumps({**stale, "pid": os.getpid()}))
    run = autotag(tmp_path, "retag", "--status", "0123abcd")
    assert run.returncode == 2 and NOTHING_RUNNING in run.stderr and "does not answer" in run.stderr, run.stderr
    assert (tmp_path / "up.json").exists()


def test_up_names_a_port_in_use_and_starts_nothing(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        run = autotag(tmp_path, "up", "--port", port, timeout=60)
    assert run.returncode == 2, run.stdout + run.stderr
    assert run.stderr.splitlines() == [run.stderr.strip()] and f"port {port} on 127.0.0.1 is in use" in run.stderr
    assert not (tmp_path / "up.json").exists() and not (tmp_path / "redis").exists()
