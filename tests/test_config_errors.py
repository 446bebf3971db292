"""A config path that cannot be read (a directory, as docker compose makes when the mounted file
is missing; a file this user may not read; a path through a file) is one line naming the path
and the fix, exit 2, from every command that reads the config: never a traceback."""

import os
import subprocess
import sys

import pytest

from .conftest import ROOT, write_jsonl

COMMANDS = {
    "serve": ["serve"],
    "worker": ["worker"],
    "up": ["up", "--port", "1"],  # never reached: the config is read first
    "retag": ["retag", "EXPORT", "--local", "--dry-run"],
    "deliveries": ["deliveries"],
    "redeliver": ["redeliver", "--all-dead"],
    "feedback": ["feedback", "report"],
}


def autotag(tmp_path, config, command, run_as: list[str] = ()):
    export = write_jsonl(tmp_path / "export.jsonl", [{"id": "a", "title": "t", "body": "b"}])
    argv = [str(export) if part == "EXPORT" else part for part in COMMANDS[command]]
    env = {**os.environ, "AUTOTAG_CONFIG": str(config), "AUTOTAG_DATA_DIR": str(tmp_path / "home"),
           "AUTOTAG_REDIS_URL": "redis://127.0.0.1:6379/0"}
    return subprocess.run([*run_as, sys.executable, "-m", "worker.cli", *argv], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=60)


def assert_one_clear_line(run, *words):
    assert run.returncode == 2, run.stderr
    assert "Traceback" not in run.stderr and len(run.stderr.strip().splitlines()) == 1, run.stderr
    assert run.stderr.startswith("autotag: config file ")
    for word in words:
        assert word in run.stderr, run.stderr


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_a_config_path_that_is_a_directory_is_one_clear_error(tmp_path, command):
    config = tmp_path / "autotag.toml"
    config.mkdir()  # what `docker compose up` leaves when deploy/autotag.toml is missing
    assert_one_clear_line(autotag(tmp_path, config, command), str(config), "is a directory", "autotag.example.toml")


def test_a_config_path_through_a_file_is_one_clear_error(tmp_path):
    (tmp_path / "deploy").write_text("not a directory")
    config = tmp_path / "deploy" / "autotag.toml"
    assert_one_clear_line(autotag(tmp_path, config, "deliveries"), str(config), "Not a directory", "AUTOTAG_CONFIG")


@pytest.mark.parametrize("command", ["deliveries", "up"])
def test_a_config_file_this_user_may_not_read_is_one_clear_error(tmp_path, command):
    """The real PermissionError: a chmod 600 file owned by another user. Tests run as root, whose
    CAP_DAC_OVERRIDE reads any file, so the command then runs as root without it (util-linux's
    setpriv drops it from the bounding set; Debian always has setpriv): the kernel then checks the
    file's owner and mode as for anyone. As any other user, the file's mode 000 denies its owner."""
    config = tmp_path / "autotag.toml"
    config.write_text('redis_url = "redis://127.0.0.1:6379/0"\n')
    if os.geteuid() == 0:
        os.chown(config, 65534, 65534)  # nobody's
        config.chmod(0o600)
        run_as = ["setpriv", "--bounding-set=-dac_override,-dac_read_search"]
    else:
        config.chmod(0)
        run_as = []
    assert_one_clear_line(autotag(tmp_path, config, command, run_as), str(config), "permission denied", "chmod")
