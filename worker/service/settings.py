"""The only reader of the configuration file and the environment: a frozen, typed Settings.

The file is TOML at $AUTOTAG_CONFIG, else autotag.toml in the data directory ($AUTOTAG_DATA_DIR,
else ~/.autotag), where `autotag up` writes its demo one: every command reads the same file
(see README); single values can be overridden by
environment variables (AUTOTAG_REDIS_URL, AUTOTAG_DATA_DIR, AUTOTAG_MODEL, AUTOTAG_HOST,
AUTOTAG_PORT, AUTOTAG_MAX_BODY_BYTES, AUTOTAG_KEY_PREFIX); a client's secrets can be named by
environment variable instead (`token_env`, `callback_secret_env`, `signing_secret_env`), so the
file itself holds none. Everything else receives values as arguments.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import os
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from ..errors import ConfigError
from .redis_connect import is_sentinel, parse_sentinel_url, redact

# Delivery retry schedule: seconds after the first failure, then the gap between tries.
# Roughly exponential to 12 hours; about 36 hours in all before a delivery is dead.
DEFAULT_RETRY_DELAYS = (10, 30, 60, 120, 300, 600, 1200, 1800, 3600, 3600, 7200, 7200, 14400, 14400, 21600, 21600, 43200)


@dataclass(frozen=True)
class Client:
    """A CMS allowed to publish events, and where its tags go."""

    id: str
    token: str
    callback_url: str
    callback_secret: str
    signing_secret: str | None = None
    allow_private_callback: bool = False
    # private networks the callback host may resolve into (a CMS on the newsroom's network),
    # rather than allow_private_callback's anything-goes
    callback_allow_networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()
    # a re-tag posts over this many connections at once per worker process (within the run's
    # rate): a CMS answering in 50 ms takes 20 callbacks/s per connection, so one is not enough
    callback_connections: int = 4
    # versions of one story: one tag set ("shared"), the others' tags as suggestions ("suggest"), or "off"
    story_tags: str = "shared"


@dataclass(frozen=True)
class Settings:
    redis_url: str | None  # None: `autotag up` starts an embedded Redis
    data_dir: Path
    model_dir: Path | None
    clients: tuple[Client, ...]
    host: str = "127.0.0.1"
    port: int = 8080
    max_body_bytes: int = 2 * 1024 * 1024
    retry_delays: tuple[float, ...] = DEFAULT_RETRY_DELAYS
    retry_jitter: float = 0.2  # each delay is stretched or shrunk by up to this share
    callback_timeout: float = 10.0
    # seconds before Redis hands an unacknowledged task to another worker: how long a task held by
    # a worker that died, or whose connection broke (Redis restarted), waits to run again
    visibility_timeout: int = 300
    task_time_limit: int = 120  # hard limit per task; must stay well below the visibility timeout
    signature_tolerance: int = 300  # seconds of clock skew accepted on signed inbound events
    idempotency_ttl: int = 7 * 24 * 3600
    key_prefix: str = "autotag"  # every ledger key starts with it: several deployments can share a Redis
    dispatch_lease: int = 120  # a delivery handed to the queue is not handed out again for this long
    # how long editors' decisions (and the model scores they are judged against) are kept
    feedback_retention_days: int = 180
    # previews (`POST /v1/tag`) tagged at once per ingress process; more get a 429, never a queue
    preview_concurrency: int = 4
    story_window_days: int = 3  # versions of one story are looked for among articles this recent
    # a sentinel:// redis_url: the name the Sentinels monitor the primary by
    redis_master_name: str | None = None
    # an acknowledged write must reach this many replicas (as many as are attached, at most)
    # within replica_ack_timeout seconds, else the ingress answers 503; 0: answer at once
    replica_acks: int = 1
    replica_ack_timeout: float = 1.0

    @property
    def feedback_retention(self) -> int:
        return self.feedback_retention_days * 24 * 3600

    def client(self, client_id: str) -> Client | None:
        return next((c for c in self.clients if c.id == client_id), None)


def default_data_dir(environ: dict | None = None) -> Path:
    """Where `autotag up` keeps its config, Redis files, logs and re-tag runs."""
    environ = os.environ if environ is None else environ
    return Path(environ.get("AUTOTAG_DATA_DIR") or Path.home() / ".autotag")


def default_config_path(environ: dict | None = None) -> Path:
    """$AUTOTAG_CONFIG, else the data directory's autotag.toml (which `autotag up` writes on first run)."""
    environ = os.environ if environ is None else environ
    return Path(environ["AUTOTAG_CONFIG"]) if environ.get("AUTOTAG_CONFIG") else default_data_dir(environ) / "autotag.toml"


def load_settings(path: str | Path | None = None, environ: dict | None = None) -> Settings:
    """Settings from the TOML file (path, else $AUTOTAG_CONFIG, else the data directory's
    autotag.toml when it exists) with environment overrides."""
    environ = os.environ if environ is None else environ
    if not path:
        path = default_config_path(environ)
        if not environ.get("AUTOTAG_CONFIG") and not path.exists():
            path = None  # nothing written yet: defaults and the environment only
    raw: dict = {}
    if path:
        try:
            raw = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise ConfigError(f"config file {path} does not exist") from exc
        except OSError as exc:
            raise ConfigError(unreadable_config(path, exc)) from exc
        except UnicodeDecodeError as exc:
            raise ConfigError(f"config file {path} is not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at offset {exc.start})") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {path} is not valid TOML: {exc}") from exc
    overrides = {
        "redis_url": environ.get("AUTOTAG_REDIS_URL"),
        "data_dir": environ.get("AUTOTAG_DATA_DIR"),
        "model_dir": environ.get("AUTOTAG_MODEL"),
        "host": environ.get("AUTOTAG_HOST"),
        "port": environ.get("AUTOTAG_PORT"),
        "max_body_bytes": environ.get("AUTOTAG_MAX_BODY_BYTES"),
        "key_prefix": environ.get("AUTOTAG_KEY_PREFIX"),
        "redis_master_name": environ.get("AUTOTAG_REDIS_MASTER_NAME"),
    }
    raw.update({key: value for key, value in overrides.items() if value not in (None, "")})
    return _build(raw, source=str(path or "environment"), environ=environ)


def unreadable_config(path, exc: OSError) -> str:
    """One line naming the config path, why it cannot be read, and the fix."""
    if isinstance(exc, IsADirectoryError):
        return (f"config file {path} is a directory, not a TOML file (docker compose makes one when the file it mounts is "
                "missing): remove it and put your config there (deploy/autotag.example.toml is a template)")
    if isinstance(exc, PermissionError):
        return (f"config file {path} cannot be read by this user (uid {os.getuid()}): permission denied; "
                "make it readable to this user (chown or chmod), or run as its owner")
    return f"config file {path} cannot be read: {exc.strerror or exc}; point AUTOTAG_CONFIG (or --config) at a readable TOML file"


def _build(raw: dict, source: str, environ=None) -> Settings:
    known = {"redis_url", "data_dir", "model_dir", "clients", "host", "port", "max_body_bytes", "retry_delays",
             "retry_jitter", "callback_timeout", "visibility_timeout", "task_time_limit", "signature_tolerance",
             "idempotency_ttl", "key_prefix", "dispatch_lease", "feedback_retention_days", "preview_concurrency", "story_window_days",
             "redis_master_name", "replica_acks", "replica_ack_timeout"}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ConfigError(f"{source}: unknown key(s) {', '.join(unknown)}")
    redis_url = raw.get("redis_url") or None
    if redis_url is not None and not isinstance(redis_url, str):
        raise ConfigError(f"{source}: redis_url must be a string")
    if redis_url and urlsplit(redis_url).scheme not in ("redis", "rediss", "unix", "sentinel"):
        raise ConfigError(f"{source}: redis_url must be a redis://, rediss://, unix:// or sentinel:// URL, not {redact(redis_url)!r}")
    _check_sentinel(raw, redis_url, source)
    environ = os.environ if environ is None else environ
    clients = tuple(_client(_secrets_from_environment(entry, i, source, environ), i, source) for i, entry in enumerate(raw.get("clients", [])))
    if len({c.id for c in clients}) != len(clients):
        raise ConfigError(f"{source}: two clients share an id")
    settings = Settings(
        redis_url=redis_url,
        data_dir=Path(raw.get("data_dir") or Path.home() / ".autotag"),
        model_dir=Path(raw["model_dir"]) if raw.get("model_dir") else None,
        clients=clients,
        host=str(raw.get("host", "127.0.0.1")),
        port=_int(raw, "port", 8080, source),
        max_body_bytes=_int(raw, "max_body_bytes", 2 * 1024 * 1024, source),
        retry_delays=tuple(float(d) for d in raw.get("retry_delays", DEFAULT_RETRY_DELAYS)),
        retry_jitter=float(raw.get("retry_jitter", 0.2)),
        callback_timeout=float(raw.get("callback_timeout", 10.0)),
        visibility_timeout=_int(raw, "visibility_timeout", 300, source),
        task_time_limit=_int(raw, "task_time_limit", 120, source),
        signature_tolerance=_int(raw, "signature_tolerance", 300, source),
        idempotency_ttl=_int(raw, "idempotency_ttl", 7 * 24 * 3600, source),
        key_prefix=str(raw.get("key_prefix", "autotag")),
        dispatch_lease=_int(raw, "dispatch_lease", 120, source),
        feedback_retention_days=_int(raw, "feedback_retention_days", 180, source),
        preview_concurrency=_int(raw, "preview_concurrency", 4, source),
        story_window_days=_int(raw, "story_window_days", 3, source),
        redis_master_name=raw.get("redis_master_name") or None,
        replica_acks=_int(raw, "replica_acks", 1, source),
        replica_ack_timeout=_float(raw, "replica_ack_timeout", 1.0, source),
    )
    if settings.task_time_limit >= settings.visibility_timeout:
        raise ConfigError(f"{source}: task_time_limit ({settings.task_time_limit}s) must be below visibility_timeout ({settings.visibility_timeout}s), or a slow task would run twice")
    if settings.feedback_retention_days < 1:
        raise ConfigError(f"{source}: feedback_retention_days must be at least 1")
    if settings.story_window_days < 1:
        raise ConfigError(f"{source}: story_window_days must be at least 1")
    if settings.preview_concurrency < 1:
        raise ConfigError(f"{source}: preview_concurrency must be at least 1")
    if settings.replica_acks < 0:
        raise ConfigError(f"{source}: replica_acks must be 0 (answer without waiting for a replica) or more")
    if not 0 < settings.replica_ack_timeout <= 4:
        raise ConfigError(f"{source}: replica_ack_timeout must be above 0 and at most 4 seconds (a CMS waits for the answer)")
    if not settings.retry_delays or min(settings.retry_delays) <= 0:
        raise ConfigError(f"{source}: retry_delays must be a non-empty list of positive seconds")
    return settings


def _client(entry: object, index: int, source: str) -> Client:
    where = f"{source}: clients[{index}]"
    if not isinstance(entry, dict):
        raise ConfigError(f"{where} must be a table")
    for key in ("id", "token", "callback_url", "callback_secret"):
        if not isinstance(entry.get(key), str) or not entry[key]:
            raise ConfigError(f"{where}: {key!r} is missing or empty")
    if urlsplit(entry["callback_url"]).scheme not in ("http", "https") or not urlsplit(entry["callback_url"]).hostname:
        raise ConfigError(f"{where}: callback_url must be an http(s) URL with a host")
    _check_webhook_secret(entry["callback_secret"], f"{where}: callback_secret")
    signing = entry.get("signing_secret")
    if signing is not None:
        _check_webhook_secret(signing, f"{where}: signing_secret")
    connections = entry.get("callback_connections", 4)
    if not isinstance(connections, int) or isinstance(connections, bool) or not 1 <= connections <= 64:
        raise ConfigError(f"{where}: callback_connections must be an integer from 1 to 64")
    story_tags = entry.get("story_tags", "shared")
    if story_tags not in ("shared", "suggest", "off"):
        raise ConfigError(f"{where}: story_tags must be \"shared\", \"suggest\" or \"off\"")
    networks = _networks(entry.get("callback_allow_networks", []), where)
    extra = sorted(set(entry) - {"id", "token", "callback_url", "callback_secret", "signing_secret", "allow_private_callback",
                                 "callback_connections", "story_tags", "callback_allow_networks"})
    if extra:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(extra)}")
    return Client(
        id=entry["id"],
        token=entry["token"],
        callback_url=entry["callback_url"],
        callback_secret=entry["callback_secret"],
        signing_secret=signing,
        allow_private_callback=bool(entry.get("allow_private_callback", False)),
        callback_allow_networks=networks,
        callback_connections=connections,
        story_tags=story_tags,
    )


MIN_SECRET_BYTES = 16
_MAKE_SECRET = "python3 -c \"import base64, secrets; print('whsec_' + base64.b64encode(secrets.token_bytes(32)).decode())\""


def _check_webhook_secret(value, where: str) -> None:
    """A Standard Webhooks secret is `whsec_` and the base64 of random bytes. A placeholder (the
    template's `whsec_...`), an empty or undecodable one is refused here, at start: the signing
    library would otherwise fail on every delivery."""
    encoded = value.removeprefix("whsec_") if isinstance(value, str) else ""
    try:
        if not isinstance(value, str) or not value.startswith("whsec_") or not re.fullmatch(r"[A-Za-z0-9+/]+={0,2}", encoded):
            raise ValueError
        decoded = base64.b64decode(encoded + "=" * (-len(encoded) % 4))
    except (ValueError, binascii.Error):
        raise ConfigError(f"{where} is not a Standard Webhooks secret (\"whsec_\" and base64, not a placeholder); make one with: "
                          + _MAKE_SECRET) from None
    if len(decoded) < MIN_SECRET_BYTES:
        raise ConfigError(f"{where} is too short: {len(decoded)} bytes after base64, at least {MIN_SECRET_BYTES}; make one with: "
                          + _MAKE_SECRET)


_SECRET_KEYS = ("token", "callback_secret", "signing_secret")


def _secrets_from_environment(entry: object, index: int, source: str, environ) -> object:
    """A client table with each `<secret>_env` key replaced by the value of the variable it
    names: the TOML (a mounted file, a repository) then holds no secret. A named variable that
    is unset or empty stops the start, naming it."""
    if not isinstance(entry, dict):
        return entry
    where = f"{source}: clients[{index}]"
    resolved = dict(entry)
    for key in _SECRET_KEYS:
        name = resolved.pop(f"{key}_env", None)
        if name is None:
            continue
        if not isinstance(name, str) or not name:
            raise ConfigError(f"{where}: {key}_env must name an environment variable")
        if key in entry:
            raise ConfigError(f"{where}: set {key!r} or {key + '_env'!r}, not both")
        value = environ.get(name)
        if not value:
            raise ConfigError(f"{where}: {key}_env names ${name}, which is unset or empty; set it in the environment")
        resolved[key] = value
    return resolved


def _networks(value: object, where: str) -> tuple:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ConfigError(f'{where}: callback_allow_networks must be a list of networks, e.g. ["10.0.0.0/8"]')
    networks = []
    for item in value:
        try:
            networks.append(ipaddress.ip_network(item))
        except ValueError as exc:
            raise ConfigError(f"{where}: callback_allow_networks: {item!r} is not a network ({exc})") from exc
    return tuple(networks)


def _check_sentinel(raw: dict, redis_url: str | None, source: str) -> None:
    """A sentinel:// URL must parse and come with the master's name; a name without one is a slip."""
    name = raw.get("redis_master_name")
    if name is not None and (not isinstance(name, str) or not name.strip()):
        raise ConfigError(f"{source}: redis_master_name must be the name the Sentinels monitor, e.g. \"mymaster\"")
    if not is_sentinel(redis_url):
        if name:
            raise ConfigError(f"{source}: redis_master_name is set but redis_url is not a sentinel:// URL "
                              "(sentinel://host:26379;host:26380;host:26381/0)")
        return
    try:
        parse_sentinel_url(redis_url)
    except ValueError as exc:
        raise ConfigError(f"{source}: redis_url {redact(redis_url)!r} is not a Sentinel URL: {exc}") from None
    if not name:
        raise ConfigError(f"{source}: redis_url is a sentinel:// URL: set redis_master_name (or AUTOTAG_REDIS_MASTER_NAME) "
                          "to the name the Sentinels monitor, e.g. \"mymaster\"")


def _float(raw: dict, key: str, default: float, source: str) -> float:
    value = raw.get(key, default)
    try:
        return float(value)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{source}: {key} must be a number, not {value!r}") from exc


def _int(raw: dict, key: str, default: int, source: str) -> int:
    value = raw.get(key, default)
    try:
        return int(value)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{source}: {key} must be an integer, not {value!r}") from exc
