"""The real stack for integration tests: Redis, a worker process, the ingress process, and a
loopback HTTP server standing in for the CMS that verifies every callback's signature.

Redis is the machine's on 127.0.0.1:6379 when reachable (each run in its own key and queue
prefix, cleaned up afterwards), else an embedded redis-server on a free port.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import random
import secrets
import subprocess
import sys
import threading
import time
from http import HTTPStatus
from pathlib import Path

import httpx
import redis
from standardwebhooks.webhooks import Webhook

from worker.service.ledger import Ledger
from worker.service.redis_connect import connect
from worker.service.up import EmbeddedRedis, free_port

ROOT = Path(__file__).resolve().parent.parent


def wait_until(condition, timeout: float, what: str, step: float = 0.1):
    """The condition's first truthy value, polled every `step` seconds; a clear failure after `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(step)
    raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")


def new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


class CmsStub:
    """A CMS endpoint on loopback. `respond` maps an article id to a status to answer (default
    200), or to a list of them answered in turn; every request is kept with its verified payload, or its verification error.
    `delay`: seconds a CMS takes before each answer (a slow CMS); `fail_rate`: the share of
    requests answered 500 at random (a flaky one), from a seeded generator.

    A small asyncio HTTP/1.1 server (keep-alive, Content-Length bodies) rather than http.server:
    benchmarks run it on the same two cores as the workers, and http.server's header parsing
    cost more CPU per callback than the worker's own posting did."""

    def __init__(self, secret: str, port: int | None = None):
        self.secret = secret
        self.port = port or free_port()
        self.received: list[dict] = []
        self.respond: dict = {}
        self.default_status = 200
        self.delay = 0.0
        self.fail_rate = 0.0
        self.rng = random.Random(7)
        self._webhook = Webhook(secret)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server = None
        self._transports: set = set()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/tags"

    def start(self) -> "CmsStub":
        ready = threading.Event()
        self._loop = asyncio.new_event_loop()

        async def serve():
            self._server = await self._loop.create_server(lambda: _CmsProtocol(self), "127.0.0.1", self.port, reuse_address=True)
            ready.set()

        threading.Thread(target=self._loop.run_forever, daemon=True, name="cms-stub").start()
        asyncio.run_coroutine_threadsafe(serve(), self._loop).result(timeout=5)
        ready.wait(5)
        return self

    def stop(self) -> None:
        """Stop listening and drop every open connection: callers then see refused connections."""
        if self._loop is None:
            return

        async def shutdown():
            self._server.close()
            for transport in list(self._transports):
                transport.abort()
            await self._server.wait_closed()

        asyncio.run_coroutine_threadsafe(shutdown(), self._loop).result(timeout=5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._loop = None

    def _handle(self, head: bytes, raw: bytes) -> int:
        lines = head.decode("latin-1").split("\r\n")
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        record = {"headers": headers, "raw": raw, "at": time.time()}
        try:
            record["payload"] = self._webhook.verify(raw, headers)
        except Exception as exc:  # a bad signature is a test failure, recorded here
            record["error"] = repr(exc)
        article = (record.get("payload") or {}).get("article", {}).get("id")
        answer = self.respond.get(article, self.default_status)  # a status, (status, extra headers), or a list of them
        if isinstance(answer, list):  # answered in turn, the last one from then on
            answer = answer.pop(0) if len(answer) > 1 else answer[0]
        if self.fail_rate and self.rng.random() < self.fail_rate:
            answer = 500
        record["status"], record["answer_headers"] = answer if isinstance(answer, tuple) else (answer, {})
        self.received.append(record)
        return record["status"], record["answer_headers"]

    def for_article(self, article_id, ok_only: bool = True) -> list[dict]:
        return [r for r in self.received if "payload" in r and r["payload"]["article"]["id"] == article_id]

    def final_revisions(self) -> dict:
        """Per article, the revision of the last callback the CMS accepted (2xx): what it holds."""
        final = {}
        for record in self.received:
            if "payload" in record and 200 <= record["status"] < 300:
                final[record["payload"]["article"]["id"]] = record["payload"]["article"]["revision"]
        return final

    def older_after_newer(self) -> list[tuple]:
        """(article, revision sent, newer revision the CMS already held) for every callback that
        arrived after the CMS had accepted a newer revision of its article: the ordering breach."""
        held, breaches = {}, []
        for record in self.received:
            if "payload" not in record:
                continue
            article, revision = record["payload"]["article"]["id"], record["payload"]["article"]["revision"]
            if revision is not None and held.get(article, -1) > revision:
                breaches.append((article, revision, held[article]))
            if 200 <= record["status"] < 300 and revision is not None:
                held[article] = max(held.get(article, -1), revision)
        return breaches

    def wait_for(self, article_id, count: int = 1, timeout: float = 20.0) -> list[dict]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.for_article(article_id)
            if len(found) >= count:
                return found
            time.sleep(0.05)
        raise AssertionError(f"no {count} callback(s) for {article_id} within {timeout}s; got {len(self.for_article(article_id))}")


class _CmsProtocol(asyncio.Protocol):
    """Parses pipelined keep-alive requests off the stream; answers each with a short JSON."""

    def __init__(self, stub: CmsStub):
        self.stub = stub
        self.buffer = b""

    def connection_made(self, transport):
        self.transport = transport
        self.stub._transports.add(transport)

    def connection_lost(self, exc):
        self.stub._transports.discard(self.transport)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self.buffer[:end]
            length = 0
            for line in head.split(b"\r\n")[1:]:
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:].strip())
            if len(self.buffer) < end + 4 + length:
                return
            raw = self.buffer[end + 4 : end + 4 + length]
            self.buffer = self.buffer[end + 4 + length :]
            status, extra = self.stub._handle(head, raw)
            reason = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else "Status"
            headers = "".join(f"{name}: {value}\r\n" for name, value in extra.items())
            answer = f"HTTP/1.1 {status} {reason}\r\n{headers}content-type: application/json\r\ncontent-length: 2\r\n\r\n{{}}".encode()
            if self.stub.delay:  # a slow CMS: answers in order, each after the delay
                asyncio.get_running_loop().call_later(self.stub.delay, self.transport.write, answer)
            else:
                self.transport.write(answer)


def machine_redis_url() -> str | None:
    try:
        redis.Redis(host="127.0.0.1", port=6379, socket_connect_timeout=0.5).ping()
        return "redis://127.0.0.1:6379/0"
    except redis.RedisError:
        return None


class Stack:
    """Redis + worker + ingress + CMS stub, with a config written for the run."""

    def __init__(self, tmp: Path, *, redis_url: str | None = None, retry_delays=(0.3, 0.3, 0.5, 0.5, 1.0), workers: int = 1,
                 signing: bool = False, loglevel: str = "INFO", own_redis: bool = False, extra_config: str = "",
                 client_config: str = "", redis_master_name: str | None = None):
        """`own_redis`: an embedded redis-server (AOF on) on a free port, for tests that stop or
        restart Redis; the machine's Redis on 6379 is shared and stays up. `extra_config`: TOML
        lines added at the top level of the config; `client_config`: lines added to the client's table;
        `redis_master_name`: the Sentinels' name for the primary, with a sentinel:// `redis_url`."""
        self.loglevel = loglevel
        self.tmp = Path(tmp)
        self.prefix = "t" + secrets.token_hex(4)
        self.embedded = None
        self.redis_url = redis_url or (None if own_redis else machine_redis_url())
        if self.redis_url is None:
            self.embedded = EmbeddedRedis(self.tmp / "redis").start()
            self.redis_url = self.embedded.url
        self.cms = CmsStub(new_secret()).start()
        self.token = secrets.token_urlsafe(16)
        self.signing_secret = new_secret() if signing else None
        self.port = free_port()
        self.config = self.tmp / "autotag.toml"
        lines = [
            f'key_prefix = "{self.prefix}"',
            f"retry_delays = {list(retry_delays)}",
            "retry_jitter = 0.0",
            "callback_timeout = 2.0",
            "dispatch_lease = 10",
            extra_config,
            f'redis_master_name = "{redis_master_name}"' if redis_master_name else "",
            "",
            "[[clients]]",
            'id = "newsroom"',
            f'token = "{self.token}"',
            f'callback_url = "{self.cms.url}"',
            f'callback_secret = "{self.cms.secret}"',
            "allow_private_callback = true",
            client_config,
        ]
        if self.signing_secret:
            lines.append(f'signing_secret = "{self.signing_secret}"')
        self.config.write_text("\n".join(lines) + "\n")
        self.env = {**os.environ, "AUTOTAG_CONFIG": str(self.config), "AUTOTAG_REDIS_URL": self.redis_url,
                    "AUTOTAG_QUEUE_PREFIX": self.prefix + ".", "AUTOTAG_PORT": str(self.port)}
        self.workers: list[subprocess.Popen] = []
        self.ingress: subprocess.Popen | None = None
        self.n_workers = workers
        self.redis = connect(self.redis_url, redis_master_name)  # through Sentinel, the primary of the moment
        self.ledger = Ledger(self.redis, self.prefix)
        self.http = httpx.Client(base_url=f"http://127.0.0.1:{self.port}", timeout=10)

    def start(self) -> "Stack":
        """Workers, ingress, and a probe round trip; a stack that fails to start stops what it
        started, so that no stray worker or ingress outlives the test that wanted it."""
        try:
            for _ in range(self.n_workers):
                self.start_worker()
            self.start_ingress_only()
            self.wait_for_workers()
        except Exception:
            logs = {path.name: path.read_text(errors="replace")[-1500:] for path in sorted(self.tmp.glob("*.log"))}
            self.stop()
            raise RuntimeError("stack did not start; log tails: " + json.dumps(logs, indent=1)) from None
        except BaseException:  # Ctrl-C: stop what started, and stay a KeyboardInterrupt
            self.stop()
            raise
        return self

    def start_ingress_only(self) -> None:
        self.ingress = subprocess.Popen([sys.executable, "-m", "worker.cli", "serve"], env=self.env, cwd=ROOT,
                                        stdout=subprocess.DEVNULL, stderr=open(self.tmp / "ingress.log", "ab"))
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if self.http.get("/readyz").status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        else:
            raise RuntimeError("ingress not ready: " + (self.tmp / "ingress.log").read_text()[-2000:])

    def start_worker(self, concurrency: int = 1) -> subprocess.Popen:
        log = open(self.tmp / f"worker-{len(self.workers)}.log", "ab")
        process = subprocess.Popen([sys.executable, "-m", "worker.cli", "worker", "--concurrency", str(concurrency), "--loglevel", self.loglevel],
                                   env=self.env, cwd=ROOT, stdout=log, stderr=log)
        self.workers.append(process)
        return process

    def wait_for_workers(self, timeout: float = 60.0) -> None:
        """Ready when a probe event round-trips to the CMS stub."""
        probe = f"probe-{secrets.token_hex(3)}"
        self.publish(probe, 1, body="The city council met on Monday to discuss the budget for new parks.")
        deadline = time.monotonic() + timeout
        while not self.cms.for_article(probe):
            exited = [process.returncode for process in self.workers if process.poll() is not None]
            if exited or time.monotonic() > deadline:
                raise RuntimeError(f"no probe callback within {timeout}s" if not exited else f"a worker exited with {exited[0]}")
            time.sleep(0.05)

    def publish(self, article_id, revision: int, *, event_id: str | None = None, body: str | None = None, title: str = "Title",
                type: str = "article.published", headers: dict | None = None) -> httpx.Response:
        event = {"id": event_id or f"evt-{article_id}-{revision}-{secrets.token_hex(3)}", "type": type,
                 "occurred_at": "2026-11-22T10:00:00Z",
                 "article": {"id": article_id, "revision": revision, "title": title, "body": body or "Text."}}
        return self.post_raw(json.dumps(event).encode(), headers=headers)

    def post_raw(self, raw: bytes, *, headers: dict | None = None, token: str | None = None, signed: bool = True,
                 path: str = "/v1/events") -> httpx.Response:
        """POST to the ingress; with a signing secret configured, signed unless `signed=False` or
        the caller brings its own signature headers."""
        all_headers = {"authorization": f"Bearer {token or self.token}", "content-type": "application/json", **(headers or {})}
        if self.signing_secret and signed and "webhook-signature" not in all_headers:
            from worker.service.delivery import sign

            all_headers.update(sign(self.signing_secret, "msg_" + secrets.token_hex(8), raw.decode("utf-8", "replace")))
        return self.http.post(path, content=raw, headers=all_headers)

    def preview(self, article: dict, **kwargs) -> httpx.Response:
        return self.post_raw(json.dumps({"article": article}).encode(), path="/v1/tag", **kwargs)

    def feedback(self, body: dict, **kwargs) -> httpx.Response:
        return self.post_raw(json.dumps(body).encode(), path="/v1/feedback", **kwargs)

    def cli(self, *args, home: Path | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
        """An `autotag` command against this stack's configuration and Redis."""
        env = {**self.env, "AUTOTAG_DATA_DIR": str(home or self.tmp / "home")}
        return subprocess.run([sys.executable, "-m", "worker.cli", *map(str, args)], cwd=ROOT, env=env, capture_output=True,
                              text=True, timeout=timeout)

    def queue_length(self) -> int:
        return self.redis.llen(self.prefix + ".autotag.tag")

    def stop(self) -> None:
        for process in [*self.workers, self.ingress]:
            if process and process.poll() is None:
                process.terminate()
        for process in [*self.workers, self.ingress]:
            if process:
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    process.kill()
        self.cms.stop()
        self.http.close()
        for pattern in (f"{self.prefix}*", f"_kombu.binding.{self.prefix}.*"):  # ours, and kombu's routing sets for our queues
            for key in self.redis.scan_iter(pattern):
                self.redis.delete(key)
        if self.embedded:
            self.embedded.stop()
