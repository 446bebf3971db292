"""`autotag up --demo --once` run twice in one data directory on two different ports: the second
run's demo follows its port (the first run wrote its own port into the demo config), its
callbacks arrive and are printed, and it exits 0; a demo whose callbacks cannot arrive says why
and `--once` exits non-zero."""

import os
import re
import subprocess
import sys

from worker.service.up import free_port

from .conftest import ROOT


def up_demo_once(data_dir, port, timeout=240):
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTOTAG_")}
    env["AUTOTAG_DATA_DIR"] = str(data_dir)
    return subprocess.run([sys.executable, "-m", "worker.cli", "up", "--demo", "--once", "--port", str(port)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)


def test_the_demo_follows_the_port_and_once_fails_without_callbacks(tmp_path):
    first_port, second_port = free_port(), free_port()
    while second_port == first_port:
        second_port = free_port()
    first = up_demo_once(tmp_path, first_port)
    assert first.returncode == 0, first.stdout + first.stderr
    assert first.stdout.count("autotag demo: callback ") == 3
    config = tmp_path / "autotag.toml"
    assert f"http://127.0.0.1:{first_port}/demo/cms" in config.read_text()

    second = up_demo_once(tmp_path, second_port)
    assert second.returncode == 0, second.stdout + second.stderr
    assert f"now names port {second_port} (it named {first_port})" in second.stdout
    assert second.stdout.count("autotag demo: callback ") == 3
    assert f"http://127.0.0.1:{second_port}/demo/cms" in config.read_text()
    assert oct(config.stat().st_mode & 0o777) == "0o600"

    # a config whose callbacks go elsewhere: the demo says so at once and --once exits 1
    config.write_text(re.sub(r'callback_url = ".*"', 'callback_url = "http://127.0.0.1:9/hooks/tags"', config.read_text()))
    third = up_demo_once(tmp_path, second_port, timeout=100)
    assert third.returncode == 1, third.stdout + third.stderr
    assert "no callback can arrive here" in third.stdout and "autotag demo: callback " not in third.stdout
