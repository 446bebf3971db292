"""Which workers are alive, for /metrics and the "no worker consuming" alert.

Each worker's parent process stamps its name and the time into one Redis sorted set every few
seconds (from its dispatcher thread) and takes it out when it shuts down; the ingress counts the
stamps younger than ALIVE_WITHIN. A killed worker stops stamping and drops out of the count.
"""

from __future__ import annotations

import time

from .ledger import Ledger

HEARTBEAT_INTERVAL = 5.0  # seconds between a worker's stamps
ALIVE_WITHIN = 30.0  # a worker stamped this recently counts as alive
FORGET_AFTER = 24 * 3600.0  # stamps older than this are removed


def beat(ledger: Ledger, worker: str, now: float | None = None) -> None:
    now = time.time() if now is None else now
    with ledger.redis.pipeline(transaction=False) as pipe:
        pipe.zadd(ledger.key("workers"), {worker: now})
        pipe.zremrangebyscore(ledger.key("workers"), "-inf", now - FORGET_AFTER)
        pipe.execute()


def leave(ledger: Ledger, worker: str) -> None:
    ledger.redis.zrem(ledger.key("workers"), worker)


def alive(ledger: Ledger, now: float | None = None) -> int:
    now = time.time() if now is None else now
    return int(ledger.redis.zcount(ledger.key("workers"), now - ALIVE_WITHIN, "+inf"))
