"""Secrets from the environment: a client's token and whsec_ secrets named by variable
(`token_env`, `callback_secret_env`, `signing_secret_env`), so the mounted TOML holds none; a
named variable that is unset or empty stops the start with one line naming it."""

import subprocess
import sys

import pytest

from worker.errors import ConfigError
from worker.service.settings import load_settings

from .stack import ROOT, new_secret

CLIENT = '[[clients]]\nid = "n"\ncallback_url = "https://cms.example/h"\n'


def test_secrets_come_from_the_variables_the_config_names(tmp_path):
    path = tmp_path / "a.toml"
    path.write_text(CLIENT + 'token_env = "N_TOKEN"\ncallback_secret_env = "N_CALLBACK"\nsigning_secret_env = "N_SIGNING"\n')
    callback, signing = new_secret(), new_secret()
    client = load_settings(path, environ={"N_TOKEN": "tok-123", "N_CALLBACK": callback, "N_SIGNING": signing}).client("n")
    assert (client.token, client.callback_secret, client.signing_secret) == ("tok-123", callback, signing)
    assert "tok-123" not in path.read_text()


@pytest.mark.parametrize("environ", [{}, {"N_TOKEN": ""}], ids=["unset", "empty"])
def test_an_unset_or_empty_variable_is_named(tmp_path, environ):
    path = tmp_path / "a.toml"
    path.write_text(CLIENT + f'token_env = "N_TOKEN"\ncallback_secret = "{new_secret()}"\n')
    with pytest.raises(ConfigError, match=r"clients\[0\]: token_env names \$N_TOKEN, which is unset or empty"):
        load_settings(path, environ=environ)


def test_a_named_variable_still_gets_the_secret_checks(tmp_path):
    path = tmp_path / "a.toml"
    path.write_text(CLIENT + 'token = "t"\ncallback_secret_env = "N_CALLBACK"\n')
    with pytest.raises(ConfigError, match="callback_secret is not a Standard Webhooks secret"):
        load_settings(path, environ={"N_CALLBACK": "not-a-whsec"})


def test_a_secret_both_written_and_named_is_refused(tmp_path):
    path = tmp_path / "a.toml"
    path.write_text(CLIENT + f'token = "t"\ntoken_env = "N_TOKEN"\ncallback_secret = "{new_secret()}"\n')
    with pytest.raises(ConfigError, match="set 'token' or 'token_env', not both"):
        load_settings(path, environ={"N_TOKEN": "x"})


def test_the_worker_refuses_to_start_naming_the_variable(tmp_path):
    """`autotag worker` (as compose runs it) exits 2 with one line, no traceback."""
    path = tmp_path / "a.toml"
    path.write_text('redis_url = "redis://127.0.0.1:6379/0"\n' + CLIENT + f'token_env = "N_TOKEN_UNSET_X"\ncallback_secret = "{new_secret()}"\n')
    env = {"PATH": "/usr/bin:/bin", "AUTOTAG_CONFIG": str(path), "HOME": str(tmp_path)}
    done = subprocess.run([sys.executable, "-m", "worker.cli", "worker"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines() == [
        f"autotag: {path}: clients[0]: token_env names $N_TOKEN_UNSET_X, which is unset or empty; set it in the environment"]
