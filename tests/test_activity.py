"""The last hour's events, callbacks and latency percentiles read back from real Redis: windows
count only their own slots, percentiles land within the 10% bucket width, old slots expire."""

import secrets

import pytest
import redis

from worker.service import activity
from worker.service.ledger import Ledger
from worker.service.up import EmbeddedRedis

from .stack import machine_redis_url


@pytest.fixture
def connection(tmp_path):
    embedded = None
    url = machine_redis_url()
    if url is None:
        embedded = EmbeddedRedis(tmp_path / "redis").start()
        url = embedded.url
    client = redis.Redis.from_url(url)
    prefix = "tact" + secrets.token_hex(4)
    yield client, prefix
    for key in client.scan_iter(f"{prefix}*"):
        client.delete(key)
    if embedded:
        embedded.stop()


def test_windows_count_their_own_slots_and_percentiles_fall_within_a_bucket(connection):
    client, prefix = connection
    now = 1_800_000_005.0
    activity.count(client, prefix, "events", 5, now=now)
    activity.count(client, prefix, "events", 7, now=now - 600)  # in the hour, not the minute
    activity.count(client, prefix, "events", 100, now=now - 3700)  # older than the hour
    ledger = Ledger(client, prefix)
    # 98 callbacks at 20 ms and 2 at 900 ms, through the ledger's own delivered script
    for index in range(100):
        record = {"id": f"msg_{index}", "client": "c", "article": f"a{index}", "revision": 1, "attempts": 0}
        ledger.mark_delivered(record, latency=0.02 if index < 98 else 0.9)
    live = activity.summary(client, prefix)
    assert live["last_minute"]["callbacks"] == 100
    assert 20 <= live["last_minute"]["latency_p50_ms"] <= 22 and 900 <= live["last_minute"]["latency_p99_ms"] <= 990
    windows = activity.summary(client, prefix, now=now)
    assert windows["last_minute"]["events"] == 5 and windows["last_hour"]["events"] == 12
    assert windows["last_minute"]["latency_p50_ms"] is None  # no callback at that time
    assert 0 < client.ttl(activity.slot_key(prefix)) <= activity.KEEP_SECONDS
