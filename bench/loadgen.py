"""Open-loop HTTP load generator for POST /v1/events (or /v1/tag, the preview: --endpoint tag),
meant to run in its own process (see bench/load.py, which starts it with `python -m bench.loadgen`).

Requests are due on a clock (request i at start + i/rate) whatever the answers do: each goes
out on an idle keep-alive connection, else on a new one (up to --max-connections), else it
waits for the next connection to come free. Latency runs from the request's due time to the
last byte of its answer, so a slow ingress cannot hide behind a generator that waited for it
(no coordinated omission); `send_lag` says how late the generator itself put requests on the
wire. Raw asyncio protocols, request bytes assembled by concatenation and a minimal response
parser keep the generator at a few per cent of a core at 500 requests/s.

Each request is a valid event with a unique event id and article id ("{run}-{i}"), one of
the texts from --texts (a JSON list of {"title", "body"}) and the bearer token; with
--signing-secret it also carries standard-webhooks signature headers. A preview request is
{"article": ...} with the same fields, answered 200 with the tags. The result is one JSON
object on stdout; `failed` lists the indices of requests not answered 202 "queued" (a
preview: 200 with tags).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import collections
import hashlib
import hmac
import json
import resource
import sys
import time

try:
    import uvloop
except ImportError:  # the plain asyncio loop works, at some more CPU per request
    uvloop = None


class _Connection(asyncio.Protocol):
    def __init__(self, gen: Generator):
        self.gen = gen
        self.transport = None
        self.buffer = b""
        self.current: tuple[int, float] | None = None  # (index, due) of the request in flight
        self.started = 0.0

    def connection_made(self, transport):
        self.transport = transport

    def send(self, index: int, due: float) -> None:
        self.current = (index, due)
        self.started = time.perf_counter()
        self.gen.send_lag.append(self.started - due)
        self.transport.write(self.gen.request(index))

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            return
        head = self.buffer[:end]
        lowered = head.lower()
        at = lowered.find(b"content-length:")
        length = int(lowered[at + 15 :].split(b"\r\n", 1)[0]) if at >= 0 else 0
        if len(self.buffer) < end + 4 + length:
            return
        body = self.buffer[end + 4 : end + 4 + length]
        self.buffer = self.buffer[end + 4 + length :]
        status = int(head[9:12])
        index, due = self.current
        self.current = None
        self.gen.answered(self, index, due, status, body, b"connection: close" in lowered)

    def connection_lost(self, exc) -> None:
        self.gen.lost(self, exc)


class Generator:
    def __init__(self, host: str, port: int, token: str, rate: float, seconds: float, texts: list[dict], run: str, *,
                 signing_secret: str | None = None, max_connections: int = 64, start_connections: int = 8, timeout: float = 10.0,
                 endpoint: str = "events"):
        self.host, self.port, self.rate, self.run = host, port, rate, run
        self.preview = endpoint == "tag"
        self.count = int(rate * seconds)
        self.timeout = timeout
        self.max_connections = max_connections
        self.start_connections = start_connections
        self.secret = base64.b64decode(signing_secret.removeprefix("whsec_")) if signing_secret else None
        self.head = (f"POST /v1/{endpoint} HTTP/1.1\r\nhost: {host}:{port}\r\nauthorization: Bearer {token}\r\n"
                     "content-type: application/json\r\n").encode()
        self.texts = [(json.dumps(t["title"]).encode(), json.dumps(t["body"]).encode()) for t in texts]
        # oldest idle first: every connection stays warm, none reaches the server's keep-alive
        # timeout and is closed just as a request goes out on it
        self.idle: collections.deque[_Connection] = collections.deque()
        self.connections: set[_Connection] = set()
        self.opening = 0
        self.backlog: collections.deque = collections.deque()  # (index, due) waiting for a connection
        self.latencies: list[float] = []
        self.per_second = max(1, int(seconds))
        self.by_second: list[list[float]] = [[] for _ in range(self.per_second)]  # by due time
        self.send_lag: list[float] = []
        self.errors: collections.Counter = collections.Counter()
        self.failed: list[int] = []
        self.outstanding = 0
        self.connections_opened = 0
        self.loop: asyncio.AbstractEventLoop | None = None
        self.done: asyncio.Event | None = None

    def request(self, index: int) -> bytes:
        ident = f"{self.run}-{index}".encode()
        title, body = self.texts[index % len(self.texts)]
        article = b'{"id":"' + ident + b'","revision":1,"title":' + title + b',"body":' + body + b"}"
        if self.preview:
            payload = b'{"article":' + article + b"}"
        else:
            payload = b'{"id":"evt-' + ident + b'","type":"article.published","occurred_at":"2026-11-22T10:00:00Z","article":' + article + b"}"
        extra = b""
        if self.secret:
            stamp = str(int(time.time())).encode()
            signature = base64.b64encode(hmac.new(self.secret, b"msg-" + ident + b"." + stamp + b"." + payload, hashlib.sha256).digest())
            extra = b"webhook-id: msg-" + ident + b"\r\nwebhook-timestamp: " + stamp + b"\r\nwebhook-signature: v1," + signature + b"\r\n"
        return self.head + extra + b"content-length: " + str(len(payload)).encode() + b"\r\n\r\n" + payload

    # outcomes
    def answered(self, conn: _Connection, index: int, due: float, status: int, body: bytes, closing: bool) -> None:
        if (status == 200 and b'"topics"' in body) if self.preview else (status == 202 and b'"queued"' in body):
            self.latencies.append(time.perf_counter() - due)
            self.by_second[index * self.per_second // self.count if self.count else 0].append(self.latencies[-1])
        else:
            self._fail(index, f"status_{status}" if status != 202 else "duplicate")
        self._finish()
        if closing:
            conn.transport.close()
        else:
            self._reuse(conn)

    def lost(self, conn: _Connection, exc) -> None:
        self.connections.discard(conn)
        if conn in self.idle:
            self.idle.remove(conn)
        if conn.current is not None:
            index, _ = conn.current
            conn.current = None
            self._fail(index, "connection_reset" if exc else "connection_closed")
            self._finish()
        self._serve_backlog()

    def _fail(self, index: int, kind: str) -> None:
        self.errors[kind] += 1
        self.failed.append(index)

    def _finish(self) -> None:
        self.outstanding -= 1
        if self.outstanding == 0 and self.done_sending:
            self.done.set()

    # connections
    def _reuse(self, conn: _Connection) -> None:
        if self.backlog:
            conn.send(*self.backlog.popleft())
        else:
            self.idle.append(conn)

    def _serve_backlog(self) -> None:
        while self.backlog and len(self.connections) + self.opening < self.max_connections:
            self.opening += 1
            self.loop.create_task(self._open())

    async def _open(self) -> None:
        try:
            _, conn = await self.loop.create_connection(lambda: _Connection(self), self.host, self.port)
        except OSError:
            self.opening -= 1
            if self.backlog:  # the request that asked for this connection fails
                index, _ = self.backlog.popleft()
                self._fail(index, "connect_error")
                self._finish()
            return
        self.opening -= 1
        self.connections_opened += 1
        self.connections.add(conn)
        self._reuse(conn)

    def _dispatch(self, index: int, due: float) -> None:
        self.outstanding += 1
        if self.idle:
            self.idle.popleft().send(index, due)
        else:
            self.backlog.append((index, due))
            self._serve_backlog()

    async def _watch_timeouts(self) -> None:
        while not self.done.is_set():
            await asyncio.sleep(0.1)
            now = time.perf_counter()
            for conn in list(self.connections):
                if conn.current is not None and now - conn.started > self.timeout:
                    index, _ = conn.current
                    conn.current = None
                    self._fail(index, "timeout")
                    self._finish()
                    conn.transport.abort()
            while self.backlog and now - self.backlog[0][1] > self.timeout:
                index, _ = self.backlog.popleft()
                self._fail(index, "timeout")
                self._finish()

    async def main(self) -> dict:
        self.loop = asyncio.get_running_loop()
        self.done = asyncio.Event()
        self.done_sending = False
        for _ in range(self.start_connections):
            self.opening += 1
            await self._open()
        watcher = self.loop.create_task(self._watch_timeouts())
        start = time.perf_counter() + 0.05
        wall_start = time.time() + 0.05
        index = 0
        while index < self.count:
            now = time.perf_counter()
            while index < self.count and start + index / self.rate <= now:
                self._dispatch(index, start + index / self.rate)
                index += 1
            if index < self.count:
                await asyncio.sleep(max(0.0, start + index / self.rate - time.perf_counter()))
        last_due = time.perf_counter()
        self.done_sending = True
        if self.outstanding:
            await self.done.wait()
        self.done.set()
        finished = time.perf_counter()
        await watcher
        for conn in list(self.connections):
            conn.transport.close()
        return self._summary(start, last_due, finished, wall_start)

    def _summary(self, start: float, last_due: float, finished: float, wall_start: float) -> dict:
        latencies = sorted(self.latencies)
        lag = sorted(self.send_lag)

        def pct(values, q):
            return round(values[min(len(values) - 1, int(len(values) * q))] * 1000, 2) if values else None

        return {
            "requests_sent": self.count,
            "accepted": len(latencies),
            "sending_seconds": round(last_due - start, 3),
            "achieved_rate": round(self.count / max(last_due - start, 1e-9), 1),
            "latency_ms": {"p50": pct(latencies, 0.50), "p90": pct(latencies, 0.90), "p99": pct(latencies, 0.99),
                           "p999": pct(latencies, 0.999), "max": round(latencies[-1] * 1000, 2) if latencies else None},
            "send_lag_ms": {"p50": pct(lag, 0.50), "p99": pct(lag, 0.99), "max": round(lag[-1] * 1000, 2) if lag else None},
            "p99_ms_by_second": [pct(sorted(values), 0.99) for values in self.by_second],
            "errors": dict(self.errors),
            "connections_opened": self.connections_opened,
            "generator_cpu_seconds": round(sum(resource.getrusage(resource.RUSAGE_SELF)[:2]), 2),
            "started_at": wall_start,
            "ended_at": wall_start + (finished - start),
            "failed": sorted(self.failed),
        }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--rate", type=float, default=500)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--texts", required=True, help="JSON file: a list of {title, body}")
    parser.add_argument("--run", required=True, help="prefix of the event and article ids")
    parser.add_argument("--signing-secret", default=None)
    parser.add_argument("--max-connections", type=int, default=64)
    parser.add_argument("--timeout", type=float, default=10.0)
    parser.add_argument("--endpoint", choices=("events", "tag"), default="events", help="tag: previews, answered 200 with the tags")
    args = parser.parse_args(argv)
    with open(args.texts, encoding="utf-8") as stream:
        texts = json.load(stream)
    generator = Generator(args.host, args.port, args.token, args.rate, args.seconds, texts, args.run,
                          signing_secret=args.signing_secret, max_connections=args.max_connections, timeout=args.timeout,
                          endpoint=args.endpoint)
    result = uvloop.run(generator.main()) if uvloop else asyncio.run(generator.main())
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
