"""One redis_url for every connection: a sentinel:// URL is parsed, checked at start with one
line naming what is wrong, respelled for kombu, and a Redis without replicas answers as before
(no WAIT). The failover itself is tests/reliability/test_failover.py."""

import os
import subprocess
import sys

import pytest
import redis

from worker.errors import ConfigError
from worker.service.app import create_app
from worker.service.redis_connect import broker_url, connect, parse_sentinel_url, redact, same_redis
from worker.service.replica_ack import NotReplicated, ReplicaAcks
from worker.service.settings import load_settings

from .conftest import ROOT
from .stack import machine_redis_url


def settings_from(tmp_path, text: str):
    path = tmp_path / "autotag.toml"
    path.write_text(text)
    return load_settings(path, environ={})


def test_a_sentinel_url_in_both_spellings_names_the_same_sentinels():
    short = parse_sentinel_url("sentinel://:s3cret@10.0.0.1:26379;10.0.0.2:26380;10.0.0.3/2")
    kombu = parse_sentinel_url("sentinel://:s3cret@10.0.0.1:26379/2;sentinel://:s3cret@10.0.0.2:26380/2;sentinel://10.0.0.3/2")
    assert short == kombu
    assert short.sentinels == (("10.0.0.1", 26379), ("10.0.0.2", 26380), ("10.0.0.3", 26379)) and short.db == 2
    assert short.password == "s3cret"
    assert broker_url("sentinel://:s3cret@a:1;b:2/2") == "sentinel://:s3cret@a:1/2;sentinel://:s3cret@b:2/2"
    assert same_redis("sentinel://a:1;b:2/0", "sentinel://b:2;sentinel://a:1/0") and not same_redis("sentinel://a:1/0", "sentinel://a:1/1")
    assert redact("sentinel://:s3cret@a:1;b:2/0") == "sentinel://:***@a:1;b:2/0"


def test_the_celery_app_gets_kombus_sentinel_transport_and_the_master_name(tmp_path):
    settings = settings_from(tmp_path, 'redis_url = "sentinel://127.0.0.1:26379;127.0.0.1:26380/0"\nredis_master_name = "autotag"\n')
    app = create_app(settings)
    assert app.conf.broker_url == "sentinel://127.0.0.1:26379/0;sentinel://127.0.0.1:26380/0"
    assert app.conf.broker_transport_options["master_name"] == "autotag"
    assert app.conf.broker_transport_options["visibility_timeout"] == settings.visibility_timeout


@pytest.mark.parametrize("text, words", [
    ('redis_url = "sentinel://127.0.0.1:26379/0"\n', ["redis_master_name", "mymaster"]),
    ('redis_url = "sentinel://127.0.0.1:26379/zero"\nredis_master_name = "m"\n', ["database", "zero"]),
    ('redis_url = "sentinel://127.0.0.1:port/0"\nredis_master_name = "m"\n', ["port"]),
    ('redis_url = "redis://127.0.0.1:6379/0"\nredis_master_name = "m"\n', ["not a sentinel:// URL"]),
    ('replica_acks = -1\n', ["replica_acks"]),
    ('replica_ack_timeout = 30\n', ["replica_ack_timeout", "4 seconds"]),
    ('replica_ack_timeout = "soon"\n', ["replica_ack_timeout", "number"]),
])
def test_a_bad_sentinel_or_replica_setting_is_refused_naming_it(tmp_path, text, words):
    with pytest.raises(ConfigError) as caught:
        settings_from(tmp_path, text)
    for word in words:
        assert word in str(caught.value)


def test_a_command_given_a_sentinel_url_without_the_master_name_says_so_in_one_line(tmp_path):
    config = tmp_path / "autotag.toml"
    config.write_text('redis_url = "sentinel://:pw@127.0.0.1:26379/0"\n')
    env = {**os.environ, "AUTOTAG_CONFIG": str(config), "AUTOTAG_DATA_DIR": str(tmp_path / "home")}
    env.pop("AUTOTAG_REDIS_URL", None)
    run = subprocess.run([sys.executable, "-m", "worker.cli", "deliveries"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert run.returncode == 2 and "Traceback" not in run.stderr and len(run.stderr.strip().splitlines()) == 1, run.stderr
    assert "redis_master_name" in run.stderr and "pw" not in run.stderr.replace("AUTOTAG", "")


def test_a_redis_without_replicas_answers_at_once_and_the_factory_gives_a_plain_client():
    url = machine_redis_url()
    assert url, "the machine's Redis on 6379 is part of this workplace"
    client = connect(url)
    assert isinstance(client, redis.Redis) and client.ping()
    acks = ReplicaAcks(1, 0.2)
    assert acks.needed(client) == 0  # no replica attached: no WAIT, no 503
    script = client.register_script("return redis.call('INCR', KEYS[1])")
    key = "test-replica-ack:" + os.urandom(4).hex()
    try:
        assert acks.run_script(client, script, [key], []) == 1
        acks.confirm(client, key)
    finally:
        client.delete(key)


def test_a_write_no_attached_replica_confirmed_is_not_replicated():
    acks = ReplicaAcks(1, 0.2)
    with pytest.raises(NotReplicated):
        acks.check(acked=0, needed=1, attached_now=1)
    acks.check(acked=0, needed=1, attached_now=0)  # the replica went away meanwhile: nothing left to wait for
    assert issubclass(NotReplicated, redis.RedisError)  # the ingress answers 503 for it, as for any Redis error
