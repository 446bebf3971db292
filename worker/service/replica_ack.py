"""A write is acknowledged (an event's 202, a feedback's 202, `autotag redeliver`'s answer) only
once it reached a replica, when the primary has replicas: Redis replicates asynchronously, so a
primary that dies right after answering takes its last writes with it unless `WAIT` saw them
on a replica first.

`replica_acks` (default 1) is how many replicas a write must reach; it asks for no more than
are attached to the primary right now (looked up at most once a second), so a single Redis, or
a primary whose only replica is down or was just promoted, answers as before: with no replica
attached there is nothing to wait for, and the write lives on one machine until a replica is
back. A write that did not reach them within `replica_ack_timeout` raises NotReplicated (a
RedisError: the ingress answers 503 and the CMS retries). `replica_acks = 0` turns it off.

The wait is on the connection that wrote (WAIT counts that connection's writes), so a write and
its WAIT go in one pipeline. A duplicate (an id seen before) waits too: its script writes a
counter, and WAIT then covers every earlier write, the first attempt's included, so a 503 whose
write landed is not followed by a "duplicate" 202 for an event that a failover could still lose.
"""

from __future__ import annotations

import time

import redis

REFRESH_SECONDS = 1.0


class NotReplicated(redis.RedisError):
    """The write is on the primary but reached fewer replicas than asked within the timeout."""


class ReplicaAcks:
    def __init__(self, wanted: int, timeout: float):
        self.wanted = wanted
        self.timeout_ms = max(1, int(timeout * 1000))
        self._attached = 0
        self._looked_at = float("-inf")

    def _fresh(self) -> bool:
        return time.monotonic() - self._looked_at < REFRESH_SECONDS

    def _needed_from(self, info: dict) -> int:
        self._attached = sum(1 for key, value in info.items()
                             if key.startswith("slave") and isinstance(value, dict) and value.get("state") == "online")
        self._looked_at = time.monotonic()
        return min(self.wanted, self._attached)

    def needed(self, client: redis.Redis) -> int:
        """How many replicas the next write must reach (0: answer at once)."""
        if self.wanted <= 0:
            return 0
        if self._fresh():
            return min(self.wanted, self._attached)
        return self._needed_from(client.info("replication"))

    async def needed_async(self, client) -> int:
        if self.wanted <= 0:
            return 0
        if self._fresh():
            return min(self.wanted, self._attached)
        return self._needed_from(await client.info("replication"))

    def check(self, acked: int, needed: int, attached_now: int | None = None) -> None:
        """NotReplicated unless the write reached the replicas asked for, or every replica still
        attached (one that went away meanwhile, killed or promoted, is not waited for)."""
        if acked >= needed or (attached_now is not None and acked >= min(self.wanted, attached_now)):
            return
        raise NotReplicated(f"the write reached {acked} of {needed} replica(s) within {self.timeout_ms} ms")

    def run_script(self, client: redis.Redis, script, keys: list, args: list):
        """`script(keys, args)`, answered once it reached the replicas it needs."""
        needed = self.needed(client)
        if not needed:
            return script(keys=keys, args=args)
        with client.pipeline(transaction=False) as pipe:
            script(keys=keys, args=args, client=pipe)
            pipe.execute_command("WAIT", needed, self.timeout_ms)
            result, acked = pipe.execute()
        if acked < needed:  # fewer replicas now?
            self.check(acked, needed, self._needed_from(client.info("replication")))
        return result

    async def run_script_async(self, client, script, keys: list, args: list):
        needed = await self.needed_async(client)
        if not needed:
            return await script(keys=keys, args=args)
        async with client.pipeline(transaction=False) as pipe:
            await script(keys=keys, args=args, client=pipe)
            pipe.execute_command("WAIT", needed, self.timeout_ms)
            result, acked = await pipe.execute()
        if acked < needed:  # fewer replicas now?
            self.check(acked, needed, self._needed_from(await client.info("replication")))
        return result

    def confirm(self, client: redis.Redis, probe_key: str) -> None:
        """After writes made on any connection: a one-key write, then WAIT on its connection.
        Replication keeps the primary's order, so it covers every write made before it."""
        needed = self.needed(client)
        if not needed:
            return
        with client.pipeline(transaction=False) as pipe:
            pipe.incr(probe_key)
            pipe.execute_command("WAIT", needed, self.timeout_ms)
            _, acked = pipe.execute()
        if acked < needed:
            self.check(acked, needed, self._needed_from(client.info("replication")))
