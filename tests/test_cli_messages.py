"""What the CLI says: argument errors instead of tracebacks, help and defaults for every option,
a real re-tag told in the past tense, an unknown client named, and where `serve` listens."""

import argparse
import os
import subprocess
import sys
import queue
import threading

import pytest

from worker.cli import _parser
from worker.service.up import free_port

from .conftest import ROOT, write_jsonl
from .stack import CmsStub, EmbeddedRedis, machine_redis_url, new_secret
from .test_retag import ARMS, WEATHER, retag


def autotag(*args, env=None):
    return subprocess.run([sys.executable, "-m", "worker.cli", *args], cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env={**os.environ, **(env or {})})


@pytest.mark.parametrize("option", ["--articles", "--repeats"])
def test_bench_refuses_zero_as_an_argument_error(option):
    run = autotag("bench", option, "0")
    assert run.returncode == 2 and "Traceback" not in run.stderr, run.stderr
    assert run.stderr.startswith("usage: autotag bench") and f"argument {option}: must be at least 1, not 0" in run.stderr


def _subcommands(parser, name="autotag"):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub_name, sub in action.choices.items():
                yield f"{name} {sub_name}", sub
                yield from _subcommands(sub, f"{name} {sub_name}")


def test_every_option_of_every_subcommand_has_help():
    missing = [(name, action.option_strings or action.dest) for name, sub in _subcommands(_parser()) for action in sub._actions
               if not isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)) and not action.help]
    assert missing == []


@pytest.mark.parametrize("command, shown", [(["bench"], "(default: 2000)"), (["retag"], "(default: 20.0)"),
                                             (["up"], "(default: 8080)"), (["deliveries"], "(default: 50)"),
                                             (["tag"], "(default: shared)")])
def test_help_shows_the_defaults(command, shown):
    run = autotag(*command, "--help")
    assert run.returncode == 0 and shown in " ".join(run.stdout.split()), run.stdout


def _two_clients(tmp_path, cms):
    path = tmp_path / "autotag.toml"
    path.write_text("".join(f'[[clients]]\nid = "{name}"\ntoken = "t{name}"\ncallback_url = "{cms.url}"\n'
                            f'callback_secret = "{cms.secret}"\nallow_private_callback = true\n' for name in ("a", "b")))
    return {"AUTOTAG_CONFIG": str(path)}


def test_a_real_retag_says_what_it_did_and_an_unknown_client_is_named(tmp_path):
    cms = CmsStub(new_secret()).start()
    try:
        export = write_jsonl(tmp_path / "a.jsonl", [{"id": "p1", **ARMS, "current_tags": {"topics": ["sanctions"]}}, {"id": "p2", **WEATHER}])
        unknown = retag(tmp_path, export, "--local", "--client", "nobody", env=_two_clients(tmp_path, cms))
        assert unknown.returncode == 2 and unknown.stderr.strip() == "autotag: unknown client 'nobody' (configured: a, b); pass --client with one of them"
        real = retag(tmp_path, export, "--local", "--client", "b", "--rate", "100", env=_two_clients(tmp_path, cms))
        assert real.returncode == 0, real.stderr
        assert len(cms.received) == 2
        assert "would change" not in real.stdout and "2 articles re-tagged and sent to the CMS, 2 changed," in real.stdout
        dry = retag(tmp_path, export, "--local", "--dry-run")
        assert "2 articles re-tagged, 2 would change," in dry.stdout
    finally:
        cms.stop()


def test_serve_says_where_it_listens(tmp_path):
    embedded = None
    redis_url = machine_redis_url()
    if redis_url is None:
        embedded = EmbeddedRedis(tmp_path / "redis").start()
        redis_url = embedded.url
    port = free_port()
    config = tmp_path / "autotag.toml"
    config.write_text(f'key_prefix = "serve{port}"\n')
    env = {**os.environ, "AUTOTAG_CONFIG": str(config), "AUTOTAG_REDIS_URL": redis_url, "AUTOTAG_PORT": str(port)}
    server = subprocess.Popen([sys.executable, "-m", "worker.cli", "serve"], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    try:
        lines = queue.Queue()
        threading.Thread(target=lambda: lines.put(server.stdout.readline()), daemon=True).start()
        line = lines.get(timeout=60)  # an ingress that says nothing fails here instead of hanging
        assert line.startswith(f"autotag: ingress listening on http://127.0.0.1:{port}"), (line, server.poll())
    finally:
        server.terminate()
        server.wait(timeout=30)
        server.stdout.close()
        server.stderr.close()
        if embedded:
            embedded.stop()
