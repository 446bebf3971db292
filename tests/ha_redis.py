"""A Redis primary, its replica and three Sentinels on free loopback ports, as real processes
(`redis-server`, and `redis-server --sentinel`), for the failover tests. Each server keeps an
append-only file in its own directory so that a killed one can be started again on its files;
the machine's Redis on 6379 is never touched."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import redis

from worker.service.up import free_port, redis_server_binary

from .stack import wait_until

MASTER_NAME = "autotag"


def server_binary() -> str:
    """The machine's redis-server (7.x) when there is one, else the embedded one."""
    return shutil.which("redis-server") or redis_server_binary()


class Server:
    """One redis-server process (a data node or a Sentinel) that can be killed and started again."""

    def __init__(self, name: str, directory: Path, port: int, arguments: list[str], config: str | None = None):
        self.name, self.dir, self.port, self.arguments, self.config = name, directory, port, arguments, config
        self.process: subprocess.Popen | None = None
        self.dir.mkdir(parents=True, exist_ok=True)

    def start(self) -> "Server":
        command = [server_binary()]
        if self.config is not None:  # a Sentinel rewrites its config file: it must be a file of its own
            config_file = self.dir / "sentinel.conf"
            if not config_file.exists():
                config_file.write_text(self.config)
            command += [str(config_file), "--sentinel"]
        command += ["--bind", "127.0.0.1", "--port", str(self.port), "--dir", str(self.dir), "--logfile", str(self.dir / "redis.log"),
                    "--daemonize", "no", *self.arguments]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited at start: " + (self.dir / "redis.log").read_text(errors="replace")[-1500:])
            try:
                self.client().ping()
                return self
            except redis.RedisError:
                time.sleep(0.05)
        raise RuntimeError(f"{self.name} did not answer on port {self.port}")

    def client(self) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=2, socket_connect_timeout=1)

    def kill(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


class HaRedis:
    """`HaRedis(tmp).start()`: a primary, a replica, three Sentinels (quorum 2, a primary is down
    after `down_after_ms` without an answer); `url` is the sentinel:// URL the service is given."""

    def __init__(self, tmp: Path, down_after_ms: int = 1000):
        data = ["--appendonly", "yes", "--appendfsync", "everysec", "--save", "", "--maxmemory-policy", "noeviction",
                "--repl-diskless-sync", "yes", "--repl-diskless-sync-delay", "0"]
        first, second = free_port(), free_port()
        self.nodes = [Server("redis-a", tmp / "redis-a", first, data),
                      Server("redis-b", tmp / "redis-b", second, [*data, "--replicaof", "127.0.0.1", str(first)])]
        self.sentinels = []
        for index in range(3):
            config = (f"sentinel monitor {MASTER_NAME} 127.0.0.1 {first} 2\n"
                      f"sentinel down-after-milliseconds {MASTER_NAME} {down_after_ms}\n"
                      f"sentinel failover-timeout {MASTER_NAME} 10000\n"
                      f"sentinel parallel-syncs {MASTER_NAME} 1\n")
            self.sentinels.append(Server(f"sentinel-{index}", tmp / f"sentinel-{index}", free_port(), [], config=config))

    @property
    def url(self) -> str:
        return "sentinel://" + ";".join(f"127.0.0.1:{s.port}" for s in self.sentinels) + "/0"

    def start(self) -> "HaRedis":
        try:
            for server in [*self.nodes, *self.sentinels]:
                server.start()
            self.wait_until(lambda: self.replica_online(self.primary()), 20, "the replica to sync")
            self.wait_until(self._sentinels_agree, 30, "the Sentinels to find each other and the replica")
        except BaseException:
            self.stop()
            raise
        return self

    def _sentinels_agree(self) -> bool:
        for sentinel in self.sentinels:
            try:
                master = sentinel.client().sentinel_master(MASTER_NAME)
            except redis.RedisError:
                return False
            if master.get("num-other-sentinels", 0) < 2 or master.get("num-slaves", 0) < 1:
                return False
        return True

    def primary_port(self) -> int | None:
        """The port the Sentinels name as primary now (the first that answers)."""
        for sentinel in self.sentinels:
            try:
                host, port = sentinel.client().sentinel_get_master_addr_by_name(MASTER_NAME)
                return int(port)
            except (redis.RedisError, TypeError):
                continue
        return None

    def primary(self) -> Server:
        port = self.primary_port()
        return next(node for node in self.nodes if node.port == port)

    def replica(self) -> Server:
        port = self.primary_port()
        return next(node for node in self.nodes if node.port != port)

    @staticmethod
    def replica_online(primary: Server) -> bool:
        try:
            info = primary.client().info("replication")
        except redis.RedisError:
            return False
        return info.get("role") == "master" and any(isinstance(v, dict) and v.get("state") == "online"
                                                      for k, v in info.items() if k.startswith("slave"))

    wait_until = staticmethod(wait_until)

    def stop(self) -> None:
        for server in [*self.sentinels, *self.nodes]:
            server.stop()
