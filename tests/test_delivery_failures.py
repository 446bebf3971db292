"""Deliveries that fail for a reason of our own (not the CMS's) are seen: refused at start when
the config can tell (a placeholder secret), else recorded with their error, counted and dead at
once, never re-sent forever with `tries 0` and no error."""

import json
import secrets
import subprocess
import sys
import time

import redis

from worker.service.ledger import Ledger
from worker.service.pipeline import Runtime, attempt_delivery
from worker.service.settings import Client, Settings

from .stack import ROOT, machine_redis_url


def test_a_worker_with_the_templates_placeholder_secret_refuses_to_start(tmp_path):
    config = tmp_path / "autotag.toml"
    config.write_text('redis_url = "redis://127.0.0.1:6379/0"\n[[clients]]\nid = "newsroom"\ntoken = "t0ken"\n'
                      'callback_url = "https://cms.example/hooks"\ncallback_secret = "whsec_..."\n')
    for command in (["worker"], ["serve"]):
        run = subprocess.run([sys.executable, "-m", "worker.cli", *command], cwd=ROOT, capture_output=True, text=True, timeout=60,
                             env={"PATH": "/usr/bin:/bin", "AUTOTAG_CONFIG": str(config), "HOME": str(tmp_path)})
        assert run.returncode == 2, run.stderr
        assert "clients[0]: callback_secret is not a Standard Webhooks secret" in run.stderr
        assert "Traceback" not in run.stderr


def test_a_delivery_that_cannot_be_signed_is_dead_with_its_error_and_counted(tmp_path):
    """A secret the signing library refuses (here one that bypassed the config check) makes
    the attempt fail before it reaches the CMS: dead at once, its error kept, counted."""
    connection = redis.Redis.from_url(machine_redis_url())
    prefix = "t" + secrets.token_hex(4)
    try:
        client = Client(id="newsroom", token="t", callback_url="http://127.0.0.1:9/hooks", callback_secret="whsec_",
                        allow_private_callback=True)
        settings = Settings(redis_url=machine_redis_url(), data_dir=tmp_path, model_dir=None, clients=(client,), key_prefix=prefix)
        ledger = Ledger(connection, prefix)
        runtime = Runtime(settings=settings, ledger=ledger, load_tagger=lambda: None)
        payload = {"type": "article.tags", "article": {"id": "a1", "revision": 1}}
        message_id, outcome = ledger.schedule("newsroom", "evt-1", "a1", 1, payload, time.time(), time.time(), done_ttl=60)
        assert outcome == "scheduled"

        assert attempt_delivery(runtime, message_id) == "dead"

        record = ledger.delivery(message_id)
        assert record["state"] == "dead" and record["attempts"] == 1
        assert "EmptyWebhookSecretError" in record["last_error"]
        assert connection.zscore(ledger.key("dead"), message_id) is not None
        assert connection.zscore(ledger.key("due"), message_id) is None  # never re-sent unseen
        counters, _ = ledger.counters()
        assert counters["deliveries_dead"] == 1 and counters["deliveries_failed_internal"] == 1
        assert connection.get(ledger.key("posting", "newsroom", "a1")) is None  # its post lease released

        listing = subprocess.run([sys.executable, "-m", "worker.cli", "deliveries", "--dead", "--json"], cwd=ROOT, capture_output=True,
                                 text=True, timeout=60, env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "AUTOTAG_REDIS_URL": machine_redis_url(),
                                                             "AUTOTAG_CONFIG": str(_config(tmp_path, prefix))})
        assert listing.returncode == 0, listing.stderr
        assert "EmptyWebhookSecretError" in listing.stdout
    finally:
        for key in connection.scan_iter(prefix + ":*"):
            connection.delete(key)


def _config(tmp_path, prefix):
    path = tmp_path / "list.toml"
    path.write_text(f'key_prefix = "{prefix}"\n[[clients]]\nid = "newsroom"\ntoken = "t"\ncallback_url = "https://cms.example/h"\n'
                    f'callback_secret = "whsec_MDEyMzQ1Njc4OWFiY2RlZg=="\n')
    return path
