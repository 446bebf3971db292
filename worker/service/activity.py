"""The last hour of events and callbacks in Redis, for `autotag status`: what /metrics' totals
cannot say (how many in the last minute, how fast lately).

Per 10-second slot one small hash, `{prefix}:activity:{slot start}`, expiring after an hour
and a minute: `events` (queued by the ingress), `callbacks` (delivered), and one `lat:{i}`
counter per latency bucket of the callbacks delivered then. Buckets grow by 10% from 0.1 ms,
so a percentile read back is within 10% of the truth, and a slot holds at most a few dozen
fields: memory stays bounded (about 360 small hashes) whatever the traffic. Writers add one
HINCRBY and one EXPIRE to a round trip they already make.
"""

from __future__ import annotations

import math
import time

SLOT_SECONDS = 10
KEEP_SECONDS = 3600 + 60  # an hour's slots, plus the one being written
_FLOOR_MS = 0.1
_GROWTH = 1.1


def slot_key(prefix: str, now: float | None = None) -> str:
    """The hash that counts what happens at `now`."""
    now = time.time() if now is None else now
    return f"{prefix}:activity:{int(now // SLOT_SECONDS) * SLOT_SECONDS}"


def latency_field(seconds: float) -> str:
    """The bucket a latency falls in: `lat:{i}` covers up to 0.1 ms x 1.1^i."""
    milliseconds = max(seconds * 1000.0, _FLOOR_MS)
    return f"lat:{max(0, math.ceil(math.log(milliseconds / _FLOOR_MS, _GROWTH) - 1e-9))}"


def bucket_ms(field: str) -> float:
    return _FLOOR_MS * _GROWTH ** int(field.split(":", 1)[1])


def count(client, prefix: str, name: str, amount: int = 1, now: float | None = None) -> None:
    """Count `amount` events or callbacks now (for writers outside the Lua scripts)."""
    key = slot_key(prefix, now)
    with client.pipeline(transaction=False) as pipe:
        pipe.hincrby(key, name, amount)
        pipe.expire(key, KEEP_SECONDS)
        pipe.execute()


def summary(client, prefix: str, now: float | None = None) -> dict:
    """Events, callbacks and callback latency p50/p99 (ms) over the last minute and hour."""
    now = time.time() if now is None else now
    current = int(now // SLOT_SECONDS) * SLOT_SECONDS
    starts = [current - SLOT_SECONDS * back for back in range(3600 // SLOT_SECONDS)]
    with client.pipeline(transaction=False) as pipe:
        for start in starts:
            pipe.hgetall(f"{prefix}:activity:{start}")
        slots = pipe.execute()
    windows = {}
    for name, seconds in (("last_minute", 60), ("last_hour", 3600)):
        totals: dict[str, int] = {}
        for raw in slots[: seconds // SLOT_SECONDS]:
            for field, value in raw.items():
                key = field.decode()
                totals[key] = totals.get(key, 0) + int(value)
        histogram = sorted((bucket_ms(k), n) for k, n in totals.items() if k.startswith("lat:"))
        windows[name] = {"events": totals.get("events", 0), "callbacks": totals.get("callbacks", 0),
                         "latency_p50_ms": _percentile(histogram, 0.50), "latency_p99_ms": _percentile(histogram, 0.99)}
    return windows


def _percentile(histogram: list[tuple[float, int]], share: float) -> float | None:
    """The bucket bound below which `share` of the observations fall (None: none observed)."""
    total = sum(n for _, n in histogram)
    if not total:
        return None
    seen = 0
    for bound, n in histogram:
        seen += n
        if seen >= share * total:
            return round(bound, 2)
    return round(histogram[-1][0], 2)
