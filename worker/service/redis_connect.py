"""Every Redis connection the service makes, from one `redis_url`: a plain Redis
(`redis://`, `rediss://`, `unix://`) or a Redis behind Sentinel
(`sentinel://host:26379;host:26380;host:26381/0`, with `redis_master_name` in the config).

Through Sentinel a connection asks the Sentinels for the current primary each time it
(re)connects, and a primary that was demoted (it answers writes with READONLY) is dropped and
looked up again, so every client here follows a failover by itself. The Celery broker gets the
same Sentinels in kombu's spelling (`broker_url` and `broker_transport_options` below).
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

import redis
import redis.asyncio
import redis.asyncio.sentinel
import redis.sentinel

SENTINEL_PORT = 26379


@dataclass(frozen=True)
class SentinelTarget:
    """The Sentinels to ask, and what to say to the primary they name."""

    sentinels: tuple[tuple[str, int], ...]
    db: int = 0
    username: str | None = None
    password: str | None = None


def is_sentinel(url: str | None) -> bool:
    return bool(url) and url.lower().startswith("sentinel://")


def parse_sentinel_url(url: str) -> SentinelTarget:
    """`sentinel://[user:password@]host[:port];[sentinel://]host[:port]...[/db]`: the Sentinels
    separated by `;`, each optionally with kombu's `sentinel://` prefix; the credentials (the
    primary's, not the Sentinels') and the database may be on any one of them. ValueError names
    what is wrong."""
    sentinels, dbs, credentials = [], set(), set()
    for part in url.split(";"):
        part = part.strip()
        if not part:
            continue
        if "://" not in part:
            part = "sentinel://" + part
        pieces = urlsplit(part)
        if pieces.scheme.lower() != "sentinel":
            raise ValueError(f"{part!r} is not a sentinel:// address (host:port)")
        try:
            port = pieces.port or SENTINEL_PORT
        except ValueError:
            raise ValueError(f"{part!r} has a port that is not a number from 1 to 65535") from None
        if not pieces.hostname:
            raise ValueError(f"{part!r} names no host")
        sentinels.append((pieces.hostname, port))
        path = pieces.path.strip("/")
        if path:
            if not path.isdigit():
                raise ValueError(f"{part!r}: the database after '/' must be a number, not {path!r}")
            dbs.add(int(path))
        if pieces.username or pieces.password:
            credentials.add((unquote(pieces.username) if pieces.username else None, unquote(pieces.password) if pieces.password else None))
    if not sentinels:
        raise ValueError("it names no Sentinel (sentinel://host:26379;host:26380/0)")
    if len(dbs) > 1:
        raise ValueError(f"it names more than one database ({sorted(dbs)})")
    if len(credentials) > 1:
        raise ValueError("its Sentinels carry different credentials; give the primary's password once")
    username, password = credentials.pop() if credentials else (None, None)
    return SentinelTarget(tuple(sentinels), dbs.pop() if dbs else 0, username, password)


def connect(url: str, master_name: str | None = None, **options) -> redis.Redis:
    """A client for `url` (the Sentinels' current primary for a sentinel:// URL); `options` are
    redis-py connection options (socket_timeout, health_check_interval, ...)."""
    if not is_sentinel(url):
        return redis.Redis.from_url(url, **options)
    target = parse_sentinel_url(url)
    sentinel = redis.sentinel.Sentinel(list(target.sentinels), sentinel_kwargs=_sentinel_options(options),
                                       **_primary_options(target, options))
    return sentinel.master_for(_master(master_name), redis_class=redis.Redis)


def connect_async(url: str, master_name: str | None = None, **options) -> redis.asyncio.Redis:
    """The asyncio client for `url`, as `connect`. `max_connections` bounds the pool."""
    if not is_sentinel(url):
        max_connections = options.pop("max_connections", None)
        pool = redis.asyncio.BlockingConnectionPool.from_url(url, max_connections=max_connections or 64, timeout=5, **options)
        return redis.asyncio.Redis(connection_pool=pool)
    target = parse_sentinel_url(url)
    sentinel = redis.asyncio.sentinel.Sentinel(list(target.sentinels), sentinel_kwargs=_sentinel_options(options),
                                               **_primary_options(target, options))
    return sentinel.master_for(_master(master_name), redis_class=redis.asyncio.Redis)


def broker_url(url: str) -> str:
    """The URL Celery (kombu) is given: a sentinel URL respelled as kombu reads it, every
    Sentinel with its own `sentinel://` and the credentials and database on each."""
    if not is_sentinel(url):
        return url
    target = parse_sentinel_url(url)
    auth = ""
    if target.username or target.password:
        from urllib.parse import quote

        auth = f"{quote(target.username or '', safe='')}:{quote(target.password or '', safe='')}@"
    return ";".join(f"sentinel://{auth}{host}:{port}/{target.db}" for host, port in target.sentinels)


def broker_transport_options(url: str, master_name: str | None) -> dict:
    """What kombu's Sentinel transport needs beside the URL: the master's name."""
    return {"master_name": _master(master_name)} if is_sentinel(url) else {}


def same_redis(url_a: str, url_b: str) -> bool:
    """Whether two URLs reach the same Redis database (the same Sentinels and db, or the same
    host, port or socket and db)."""
    if is_sentinel(url_a) or is_sentinel(url_b):
        if not (is_sentinel(url_a) and is_sentinel(url_b)):
            return False
        a, b = parse_sentinel_url(url_a), parse_sentinel_url(url_b)
        return set(a.sentinels) == set(b.sentinels) and a.db == b.db
    where = ("host", "port", "path", "db", "username")
    try:
        kwargs_a = redis.connection.parse_url(url_a)
        kwargs_b = redis.connection.parse_url(url_b)
    except ValueError:
        return False
    return all(kwargs_a.get(key) == kwargs_b.get(key) for key in where)


def redact(url: str | None) -> str | None:
    """The URL without its password, for logs and `autotag status`."""
    if not url:
        return url
    parts = []
    for part in url.split(";"):
        scheme, sep, rest = part.rpartition("://")
        userinfo, at, host = rest.rpartition("@")
        if at and ":" in userinfo:
            rest = userinfo.split(":", 1)[0] + ":***@" + host
        parts.append(f"{scheme}{sep}{rest}")
    return ";".join(parts)


def _master(master_name: str | None) -> str:
    if not master_name:
        raise ValueError('a sentinel:// redis_url needs redis_master_name: the name the Sentinels monitor (e.g. "mymaster")')
    return master_name


def _primary_options(target: SentinelTarget, options: dict) -> dict:
    primary = {"db": target.db, **options}
    if target.username:
        primary["username"] = target.username
    if target.password:
        primary["password"] = target.password
    return primary


def _sentinel_options(options: dict) -> dict:
    """The Sentinels answer quickly or not at all: the same socket timeouts, no password."""
    return {key: options[key] for key in ("socket_timeout", "socket_connect_timeout") if key in options} or {"socket_timeout": 2.0,
                                                                                                          "socket_connect_timeout": 2.0}


def connect_configured(settings, **options) -> redis.Redis:
    """A client for the configured Redis (`settings.redis_url`, through Sentinel when it says so)."""
    return connect(settings.redis_url, settings.redis_master_name, **options)
