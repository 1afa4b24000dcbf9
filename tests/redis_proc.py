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

    mode = os.environ.get("HAWKER_TEST_REDIS", "system") or "system"
    if mode not in ("system", "embedded"):
        raise RuntimeError(f"HAWKER_TEST_REDIS={mode!r}: use system or embedded")
    return find_binary(prefer=mode)


@dataclass
class RedisProcess:
    """One redis-server on loopback; `restart()` keeps its data folder (AOF survives)."""

    port: int = field(default_factory=free_port)
    dir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="hawker-redis-")))
    appendfsync: str = "everysec"
    binary: str | None = None  # default: find_redis_server()
    proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> "RedisProcess":
        args = [
            self.binary or find_redis_server(), "--port", str(self.port), "--bind", "127.0.0.1",
            "--dir", str(self.dir), "--save", "", "--appendonly", "yes",
            "--appendfsync", self.appendfsync, "--daemonize", "no",
            "--maxclients", "20000", "--loglevel", "warning",
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
