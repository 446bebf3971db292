"""docker-compose.ha.yml, laid over docker-compose.yml, holds what it promises: a primary, a
replica and three Sentinels, and every autotag container configured through them with a URL
our settings accept (the failover itself: tests/reliability/test_failover.py)."""

import yaml

from worker.service.redis_connect import parse_sentinel_url
from worker.service.settings import load_settings

from .conftest import ROOT

BASE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
HA = yaml.safe_load((ROOT / "docker-compose.ha.yml").read_text())


def test_the_ha_variant_adds_a_replica_and_three_sentinels_watching_the_primary():
    services = HA["services"]
    assert {"redis-replica", "sentinel-1", "sentinel-2", "sentinel-3"} <= set(services)
    assert services["redis-replica"]["command"][1:4] == ["--replicaof", "redis", "6379"]
    sentinel_script = HA["x-sentinel"]["command"][-1]
    assert "sentinel monitor autotag redis 6379 2" in sentinel_script and "--sentinel" in sentinel_script
    assert '"sentinel auth-pass autotag $$REDIS_PASSWORD"' in sentinel_script  # double quotes: the shell fills it in
    for name in ("redis", "redis-replica"):
        assert "--masterauth" in services[name]["command"], name  # a demoted primary must sync from the new one


def test_every_autotag_container_goes_through_the_sentinels_with_a_url_the_settings_accept(tmp_path):
    for name in ("check", "ingress", "worker"):
        assert name in BASE["services"]
        environment = HA["services"][name]["environment"]
        url = environment["AUTOTAG_REDIS_URL"].replace("${REDIS_PASSWORD:?set REDIS_PASSWORD in .env}", "0123abcd")
        target = parse_sentinel_url(url)
        assert {host for host, _ in target.sentinels} == {"sentinel-1", "sentinel-2", "sentinel-3"} and target.password == "0123abcd"
        settings = load_settings(environ={
            "AUTOTAG_REDIS_URL": url, "AUTOTAG_REDIS_MASTER_NAME": environment["AUTOTAG_REDIS_MASTER_NAME"],
            "AUTOTAG_DATA_DIR": str(tmp_path)})
        assert settings.redis_master_name == "autotag" and settings.replica_acks == 1
