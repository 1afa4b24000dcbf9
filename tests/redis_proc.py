"""A real redis-server process for tests and benchmarks: free port, temp folder, clean stop."""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def find_redis_server() -> str:
    """The server binary the tests run against, chosen by HAWKER_TEST_REDIS:
    unset or 'system': Debian's redis-server (scripts/test.sh installs it when root) when it is
    Redis >= 7, else the `embedded` extra's Valkey; 'embedded': only the embedded Valkey (the second
    pass of scripts/test.sh), failing loudly when it is not installed."""
    from live.embedded_redis import find_binary

    mode = redis_test_mode()
    return find_binary(prefer="embedded" if mode == "embedded" else "system")


def redis_test_mode() -> str:
    """HAWKER_TEST_REDIS: system (default), embedded (the embedded Valkey), cluster (a real 3-master
    Redis Cluster of the system server, see RedisClusterProcess)."""
    mode = os.environ.get("HAWKER_TEST_REDIS", "system") or "system"
    if mode not in ("system", "embedded", "cluster"):
        raise RuntimeError(f"HAWKER_TEST_REDIS={mode!r}: use system, embedded or cluster")
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
        args = [
            self.binary or find_redis_server(), "--port", str(self.port), "--bind", "127.0.0.1",
            "--dir", str(self.dir), "--save", "", "--appendonly", "yes",
            "--appendfsync", self.appendfsync, "--daemonize", "no",
            "--maxclients", "20000", "--loglevel", "warning", *self.extra_args,
        ]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(64).startswith(b"+PONG"):
                        return self
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"redis-server did not start on port {self.port}")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
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

    def cleanup(self) -> None:
        for node in self.nodes:
            node.cleanup()


def client_for(url: str, **kw: Any) -> Any:
    """An asyncio client for the test server: a RedisCluster under HAWKER_TEST_REDIS=cluster, else
    a plain Redis (keyword arguments go to from_url)."""
    if redis_test_mode() == "cluster":
        from redis.asyncio.cluster import RedisCluster

        return RedisCluster.from_url(url, **kw)
    import redis.asyncio as aioredis

    return aioredis.Redis.from_url(url, **kw)
