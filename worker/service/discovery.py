"""How every command finds the service: the config and data directory `autotag up` uses, and
what a running `autotag up` publishes there (its embedded Redis' URL, its ingress).

`up` writes `up.json` in the data directory when it has started and removes it when it stops.
A file left by an `up` that was killed is not trusted: it counts only while its process is
alive and its Redis answers. Precedence for Redis: AUTOTAG_REDIS_URL, the config's
`redis_url`, then the running `up`'s.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

import redis

from ..errors import ConfigError
from .redis_connect import connect
from .settings import Settings, default_config_path, load_settings

RUNTIME_FILE = "up.json"


class ServiceNotFound(ConfigError):
    """No Redis configured and no `autotag up` running: the command has nothing to talk to."""


@dataclass(frozen=True)
class Published:
    """What a running `autotag up` tells the other commands."""

    pid: int
    redis_url: str
    ingress_url: str
    config: str
    queue_prefix: str
    logs: dict
    started_at: float
    embedded_redis: bool


@dataclass(frozen=True)
class Service:
    """The settings a command runs with (Redis filled in from a running `up` when it is not
    configured), the queue prefix, and the `up` found, if any."""

    settings: Settings
    config: Path
    queue_prefix: str
    running: Published | None
    doubt: str | None = None  # why an up.json found was not trusted


def runtime_path(data_dir: Path) -> Path:
    return Path(data_dir) / RUNTIME_FILE


def publish(data_dir: Path, published: Published) -> Path:
    """Write up.json atomically (a reader never sees half of it); owner-only, as the config."""
    path = runtime_path(data_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{RUNTIME_FILE}.{os.getpid()}")
    temporary.write_text(json.dumps(dataclasses.asdict(published), indent=2) + "\n", encoding="utf-8")
    temporary.chmod(0o600)
    os.replace(temporary, path)
    return path


def withdraw(data_dir: Path, pid: int) -> None:
    """Remove up.json if it is this process' (a later `up` may have replaced it)."""
    path = runtime_path(data_dir)
    found = _read(path)
    if found is not None and found.pid == pid:
        path.unlink(missing_ok=True)


def find_running(data_dir: Path, master_name: str | None = None) -> tuple[Published | None, str | None]:
    """(the `up` running for this data directory, None) or (None, why a file there was not
    trusted). A file whose process is gone is removed."""
    path = runtime_path(data_dir)
    if not path.exists():
        return None, None
    found = _read(path)
    if found is None:
        return None, f"{path} is unreadable; ignored"
    if not _alive(found.pid):
        path.unlink(missing_ok=True)
        return None, f"a stale {path} from an `autotag up` (pid {found.pid}) that is no longer running was removed"
    try:
        connect(found.redis_url, master_name, socket_connect_timeout=1, socket_timeout=1).ping()
    except (redis.RedisError, OSError, ValueError):
        return None, f"{path} names pid {found.pid}, whose Redis at {found.redis_url} does not answer; ignored"
    return found, None


def locate(environ: dict | None = None, require_redis: bool = True) -> Service:
    """The service a command talks to; with `require_redis`, a ServiceNotFound naming how to
    start one when there is no Redis to talk to."""
    environ = os.environ if environ is None else environ
    config = default_config_path(environ)
    settings = load_settings(environ=environ)
    running, doubt = find_running(settings.data_dir, settings.redis_master_name)
    if running and not environ.get("AUTOTAG_CONFIG") and Path(running.config) != config and Path(running.config).is_file():
        config = Path(running.config)  # `autotag up --config FILE`: the other commands follow it
        settings = load_settings(config, environ)
    if not settings.redis_url and running:
        settings = dataclasses.replace(settings, redis_url=running.redis_url)
    if require_redis and not settings.redis_url:
        raise ServiceNotFound(nothing_running(settings.data_dir, config, doubt))
    prefix = environ.get("AUTOTAG_QUEUE_PREFIX") or (running.queue_prefix if running else "")
    return Service(settings=settings, config=config, queue_prefix=prefix, running=running, doubt=doubt)


def nothing_running(data_dir: Path, config: Path, doubt: str | None = None) -> str:
    return (f"no autotag service is running for {data_dir} and no redis_url is configured"
            + (f" ({doubt})" if doubt else "")
            + f": start it with `autotag up` (in another shell), or set redis_url in {config}")


def _read(path: Path) -> Published | None:
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        return Published(**{f.name: raw[f.name] for f in dataclasses.fields(Published)})
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: alive
    return _not_a_zombie(pid)


def _not_a_zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True  # no /proc: trust kill(0)


def published_now(pid: int, redis_url: str, ingress_url: str, config: Path, queue_prefix: str, logs: dict,
                  embedded_redis: bool) -> Published:
    return Published(pid=pid, redis_url=redis_url, ingress_url=ingress_url, config=str(config), queue_prefix=queue_prefix,
                     logs={name: str(path) for name, path in logs.items()}, started_at=time.time(), embedded_redis=embedded_redis)
