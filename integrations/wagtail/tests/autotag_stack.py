"""The real autotag service for the plugin's tests: a worker and the ingress as subprocesses
(`autotag worker`, `autotag serve`), on the machine's Redis with a key and queue prefix of their
own (cleaned after), or on an embedded redis-server when none answers on 127.0.0.1:6379.
Callbacks go to the Wagtail site under test over HTTP, signed with a secret made for the run."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
from pathlib import Path

import httpx
import redis

from tests.stack import machine_redis_url, new_secret  # the service's own test stack: the same choice of Redis
from worker.service.up import EmbeddedRedis, free_port

REPO = Path(__file__).resolve().parents[3]


class AutotagStack:
    def __init__(self, tmp: Path, callback_url: str, *, retry_delays=(0.3, 0.5, 1.0, 2.0)):
        self.tmp = Path(tmp)
        self.prefix = "wt" + secrets.token_hex(4)
        self.embedded = None
        self.redis_url = machine_redis_url()
        if self.redis_url is None:
            self.embedded = EmbeddedRedis(self.tmp / "redis").start()
            self.redis_url = self.embedded.url
        self.token = secrets.token_urlsafe(16)
        self.callback_secret = new_secret()
        self.signing_secret = new_secret()
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.config = self.tmp / "autotag.toml"
        self.config.write_text("\n".join([
            f'key_prefix = "{self.prefix}"',
            f"retry_delays = {list(retry_delays)}",
            "retry_jitter = 0.0",
            "callback_timeout = 5.0",
            "dispatch_lease = 10",
            "",
            "[[clients]]",
            'id = "wagtail"',
            f'token = "{self.token}"',
            f'signing_secret = "{self.signing_secret}"',
            f'callback_url = "{callback_url}"',
            f'callback_secret = "{self.callback_secret}"',
            "allow_private_callback = true",
            # the tests publish the same few texts on many pages: as the service sees them, those
            # pages are versions of one story; the plugin's tests check each page's own tags
            'story_tags = "off"',
        ]) + "\n")
        self.env = {**os.environ, "AUTOTAG_CONFIG": str(self.config), "AUTOTAG_REDIS_URL": self.redis_url,
                    "AUTOTAG_QUEUE_PREFIX": self.prefix + ".", "AUTOTAG_PORT": str(self.port), "AUTOTAG_DATA_DIR": str(self.tmp)}
        self.env.pop("DJANGO_SETTINGS_MODULE", None)
        self.worker: subprocess.Popen | None = None
        self.ingress: subprocess.Popen | None = None
        self.redis = redis.Redis.from_url(self.redis_url)

    def plugin_settings(self) -> dict:
        """The values the plugin's AUTOTAG setting needs to talk to this service."""
        return {"SERVICE_URL": self.url, "TOKEN": self.token, "CALLBACK_SECRET": self.callback_secret,
                "SIGNING_SECRET": self.signing_secret, "CLIENT_ID": "wagtail"}

    def start(self) -> "AutotagStack":
        log = open(self.tmp / "worker.log", "ab")
        self.worker = subprocess.Popen([sys.executable, "-m", "worker.cli", "worker", "--concurrency", "1", "--loglevel", "INFO"],
                                       env=self.env, cwd=REPO, stdout=log, stderr=log)
        self.start_ingress()
        return self

    def start_ingress(self) -> None:
        self.ingress = subprocess.Popen([sys.executable, "-m", "worker.cli", "serve"], env=self.env, cwd=REPO,
                                        stdout=subprocess.DEVNULL, stderr=open(self.tmp / "ingress.log", "ab"))
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.url + "/readyz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if self.ingress.poll() is not None:
                break
            time.sleep(0.1)
        raise RuntimeError("autotag ingress not ready: " + (self.tmp / "ingress.log").read_text()[-3000:])

    def stop_ingress(self) -> None:
        """The service goes down (as far as the CMS can tell): connections are refused."""
        if self.ingress and self.ingress.poll() is None:
            self.ingress.terminate()
            self.ingress.wait(timeout=20)

    def metric(self, name: str) -> float:
        """One value from the service's GET /metrics."""
        for line in httpx.get(self.url + "/metrics", timeout=5).text.splitlines():
            if line.startswith(name + " ") or line.startswith(name + "{"):
                return float(line.rsplit(" ", 1)[1])
        return 0.0

    def cli(self, *args: str, stdin: str | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
        """Run an `autotag` command against this service's config and Redis."""
        return subprocess.run([sys.executable, "-m", "worker.cli", *args], env=self.env, cwd=REPO, input=stdin,
                              capture_output=True, text=True, timeout=timeout)

    def tag(self, article: dict) -> dict:
        """What `autotag tag` gives for this article (the CLI, in a subprocess)."""
        result = self.cli("tag", "-", stdin=json.dumps(article) + "\n")
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout.splitlines()[0])

    def stop(self) -> None:
        for process in (self.worker, self.ingress):
            if process and process.poll() is None:
                process.terminate()
        for process in (self.worker, self.ingress):
            if process:
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    process.kill()
        for pattern in (f"{self.prefix}*", f"_kombu.binding.{self.prefix}.*"):
            for key in self.redis.scan_iter(pattern):
                self.redis.delete(key)
        if self.embedded:
            self.embedded.stop()
