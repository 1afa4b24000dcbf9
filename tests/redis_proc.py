"""A real redis-server process for tests and benchmarks: free port, temp folder, clean stop."""
from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from redislayer.server import free_port, spawn, stop_server, wait_ready

__all__ = ["RedisClusterProcess", "RedisProcess", "RedisSentinelProcess", "client_for", "find_redis_server",
           "free_port", "monitored", "redis_test_mode"]


def find_redis_server() -> str:
    """The server binary the tests run against, chosen by HAWKER_TEST_REDIS:
    unset or 'system': Debian's redis-server (scripts/test.sh installs it when root) when it is
    Redis >= 7, else the `embedded` extra's Valkey; 'embedded': only the embedded Valkey (the second
    pass of scripts/test.sh), failing loudly when it is not installed."""
    from redislayer.server import find_binary

    mode = redis_test_mode()
    return find_binary(prefer="embedded" if mode == "embedded" else "system")


def redis_test_mode() -> str:
    """HAWKER_TEST_REDIS: system (default), embedded (the embedded Valkey), cluster (a real 3-master
    Redis Cluster of the system server, see RedisClusterProcess), sentinel (a master + replica + 3
    sentinels, RedisSentinelProcess: servers the tests start go through the sentinels and wait for
    the replica, HAWKER_REDIS_REPLICAS_ACK=1)."""
    mode = os.environ.get("HAWKER_TEST_REDIS", "system") or "system"
    if mode not in ("system", "embedded", "cluster", "sentinel"):
        raise RuntimeError(f"HAWKER_TEST_REDIS={mode!r}: use system, embedded, cluster or sentinel")
    return mode


@dataclass
class RedisProcess:
    """One redis-server on loopback; `restart()` keeps its data folder (AOF survives)."""

    port: int = field(default_factory=free_port)
    dir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="hawker-redis-")))
    appendfsync: str = "everysec"
    binary: str | None = None  # default: find_redis_server()
    extra_args: list[str] = field(default_factory=list)
    proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisProcess:
        self.proc = spawn(self.binary or find_redis_server(), self.port, self.dir, [
            "--appendonly", "yes", "--appendfsync", self.appendfsync, "--maxclients", "20000", *self.extra_args])
        wait_ready(self.proc, self.port)
        return self

    def stop(self) -> None:
        stop_server(self.proc, wait_s=5)
        self.proc = None

    def kill(self) -> None:
        """Crash it (SIGKILL): what survives is what the AOF had."""
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    def restart(self, crash: bool = False) -> None:
        self.kill() if crash else self.stop()
        self.start()

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


@dataclass
class RedisClusterProcess:
    """A real Redis Cluster on loopback: `masters` redis-server processes with --cluster-enabled
    yes (no replicas), joined by `redis-cli --cluster create`. Same interface as RedisProcess for
    the fixtures (`url`, `cleanup`); restart/kill of the whole cluster is not offered."""

    masters: int = 3
    nodes: list[RedisProcess] = field(default_factory=list)

    @property
    def url(self) -> str:
        return self.nodes[0].url

    def start(self) -> RedisClusterProcess:
        binary = find_redis_server()
        for _ in range(self.masters):
            node = RedisProcess(binary=binary, extra_args=[
                "--cluster-enabled", "yes", "--cluster-port", str(free_port()),
                "--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "5000"])
            self.nodes.append(node.start())
        cli = shutil.which("redis-cli") or shutil.which("valkey-cli") or os.path.join(os.path.dirname(binary), "valkey-cli")
        out = subprocess.run([cli, "--cluster", "create", *[f"127.0.0.1:{n.port}" for n in self.nodes],
                              "--cluster-replicas", "0", "--cluster-yes"], capture_output=True, text=True, timeout=60)
        if out.returncode != 0:
            self.cleanup()
            raise RuntimeError(f"redis-cli --cluster create failed: {out.stdout[-500:]} {out.stderr[-500:]}")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if all(self._state_ok(n.port) for n in self.nodes):
                return self
            time.sleep(0.1)
        self.cleanup()
        raise RuntimeError("the cluster did not reach cluster_state:ok")

    @staticmethod
    def _state_ok(port: int) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
                s.sendall(b"CLUSTER INFO\r\n")
                return b"cluster_state:ok" in s.recv(4096)
        except OSError:
            return False

    def node_ids(self) -> list[str]:
        """Each node's cluster id, in the order of `nodes`."""
        import redis

        out = []
        for n in self.nodes:
            with redis.Redis(port=n.port) as r:
                out.append(r.execute_command("CLUSTER MYID").decode())
        return out

    def owner_of(self, slot: int) -> int:
        """Index in `nodes` of the master that owns `slot`."""
        import redis

        with redis.Redis(port=self.nodes[0].port) as r:
            for start, end, master, *_ in r.execute_command("CLUSTER SLOTS"):
                if start <= slot <= end:
                    return next(i for i, n in enumerate(self.nodes) if n.port == int(master[1]))
        raise LookupError(slot)

    def migrate_slot(self, slot: int, to: int, *, before_s: float = 0.0, between_s: float = 0.0) -> int:
        """Move `slot` to nodes[to] the way `redis-cli --cluster reshard` does, live: IMPORTING on
        the target, MIGRATING on the source, MIGRATE its keys, then SETSLOT NODE everywhere.
        `before_s`: pause with the slot MIGRATING before any key moves; `between_s`: pause with
        every key moved but the slot not yet handed over (clients get ASK). Returns the keys moved."""
        import redis

        ids = self.node_ids()
        src = self.owner_of(slot)
        if src == to:
            raise ValueError("the slot is already there")
        dst_node = self.nodes[to]
        with redis.Redis(port=self.nodes[src].port) as source, redis.Redis(port=dst_node.port) as target:
            target.execute_command("CLUSTER SETSLOT", slot, "IMPORTING", ids[src])
            source.execute_command("CLUSTER SETSLOT", slot, "MIGRATING", ids[to])
            time.sleep(before_s)
            moved = 0
            while True:
                keys = source.execute_command("CLUSTER GETKEYSINSLOT", slot, 100)
                if not keys:
                    break
                source.execute_command("MIGRATE", "127.0.0.1", dst_node.port, "", 0, 5000, "KEYS", *keys)
                moved += len(keys)
            time.sleep(between_s)
            for n in [dst_node, self.nodes[src]] + [x for i, x in enumerate(self.nodes) if i not in (src, to)]:
                with redis.Redis(port=n.port) as r:
                    r.execute_command("CLUSTER SETSLOT", slot, "NODE", ids[to])
        return moved

    def cleanup(self) -> None:
        for node in self.nodes:
            node.cleanup()


@dataclass
class RedisSentinelProcess:
    """A real master, `replicas` replicas and 3 sentinels on loopback (quorum 2, the master declared
    down after `down_after_ms`). `url` is the master's own URL (what plain clients use),
    `sentinel_url` the redis+sentinel URL of HAWKER_REDIS_MODE=sentinel. `kill_master()` crashes
    the master; `wait_failover()` waits until the sentinels name another one."""

    name: str = "hawker"
    replicas: int = 1
    down_after_ms: int = 1000
    master: RedisProcess | None = None
    replica_procs: list[RedisProcess] = field(default_factory=list)
    sentinels: list[RedisProcess] = field(default_factory=list)

    @property
    def url(self) -> str:
        assert self.master is not None
        return self.master.url

    @property
    def sentinel_url(self) -> str:
        return "redis+sentinel://" + ",".join(f"127.0.0.1:{s.port}" for s in self.sentinels) + f"/{self.name}/0"

    def start(self) -> RedisSentinelProcess:
        binary = find_redis_server()
        try:
            self.master = RedisProcess(binary=binary).start()
            for _ in range(self.replicas):
                self.replica_procs.append(RedisProcess(binary=binary, extra_args=[
                    "--replicaof", "127.0.0.1", str(self.master.port)]).start())
            for _ in range(3):
                node = RedisProcess(binary=binary)
                conf = node.dir / "sentinel.conf"
                conf.write_text(
                    f"port {node.port}\nbind 127.0.0.1\ndir {node.dir}\n"
                    f"sentinel monitor {self.name} 127.0.0.1 {self.master.port} 2\n"
                    f"sentinel down-after-milliseconds {self.name} {self.down_after_ms}\n"
                    f"sentinel failover-timeout {self.name} 10000\n"
                    f"sentinel parallel-syncs {self.name} 1\n")
                node.proc = subprocess.Popen([binary, str(conf), "--sentinel"], stdout=subprocess.DEVNULL,
                                             stderr=subprocess.DEVNULL)
                self.sentinels.append(node)
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                if self._linked():
                    return self
                time.sleep(0.1)
            raise RuntimeError("the replicas and sentinels did not come up")
        except BaseException:
            self.cleanup()
            raise

    def _linked(self) -> bool:
        import redis

        try:
            with redis.Redis(port=self.master.port) as m:
                info = m.info("replication")
                online = [k for k, v in info.items() if k.startswith("slave") and isinstance(v, dict)
                          and v.get("state") == "online"]
                if len(online) < self.replicas:  # connected and synced: they confirm writes
                    return False
            for s in self.sentinels:
                with redis.Redis(port=s.port) as r:
                    info = r.execute_command("SENTINEL", "MASTER", self.name)
                    fields = info if isinstance(info, dict) else dict(zip(info[::2], info[1::2]))
                    if int(fields.get(b"num-other-sentinels", 0)) < 2 or int(fields.get(b"num-slaves", 0)) < self.replicas:
                        return False
            return True
        except Exception:  # noqa: BLE001 - not up yet
            return False

    def master_port(self) -> int:
        """The master's port as the sentinels see it now."""
        import redis

        for s in self.sentinels:
            try:
                with redis.Redis(port=s.port) as r:
                    return int(r.execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", self.name)[1])
            except Exception:  # noqa: BLE001 - try the next sentinel
                continue
        raise RuntimeError("no sentinel answered")

    def kill_master(self) -> int:
        """SIGKILL the current master; returns its port."""
        port = self.master_port()
        for proc in [self.master, *self.replica_procs]:
            if proc is not None and proc.port == port:
                proc.kill()
                return port
        raise RuntimeError("the master is not one of ours")

    def wait_failover(self, old_port: int, timeout_s: float = 30.0) -> int:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                port = self.master_port()
                if port != old_port:
                    return port
            except RuntimeError:
                pass
            time.sleep(0.1)
        raise RuntimeError("no failover within the timeout")

    def cleanup(self) -> None:
        for proc in [*self.sentinels, *self.replica_procs, *([self.master] if self.master else [])]:
            proc.cleanup()


def client_for(url: str, **kw: Any) -> Any:
    """An asyncio client for the test server: a RedisCluster under HAWKER_TEST_REDIS=cluster, else
    a plain Redis (keyword arguments go to from_url)."""
    if redis_test_mode() == "cluster":
        from redis.asyncio.cluster import RedisCluster

        return RedisCluster.from_url(url, **kw)
    import redis.asyncio as aioredis

    return aioredis.Redis.from_url(url, **kw)


@asynccontextmanager
async def monitored(url: str) -> AsyncIterator[list[dict[str, Any]]]:
    """Every command the server at `url` runs while the block runs (MONITOR, as redis-py parses
    each line: "command", "client_type", ...). The list fills as commands arrive; MONITOR is on
    before the block starts."""
    import redis.asyncio as aioredis

    seen: list[dict[str, Any]] = []
    client = aioredis.Redis.from_url(url)
    ready = asyncio.Event()

    async def watch() -> None:
        async with client.monitor() as m:
            ready.set()
            async for cmd in m.listen():
                seen.append(cmd)

    task = asyncio.ensure_future(watch())
    try:
        await ready.wait()
        await asyncio.sleep(0.2)
        yield seen
    finally:
        task.cancel()
        await client.aclose()
