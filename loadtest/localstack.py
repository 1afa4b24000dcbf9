"""A redis-server and `hawker serve` started as separate processes for one load-test run.

Load tests reach the server over the network only: the server is started with its CLI
(`python -m live serve`) and nothing of the server's code is imported here. Redis is the binary
`redislayer.server.find_binary` picks (the Redis library the demo and the tests use too): the first
`redis-server` (then `valkey-server`) on PATH that is Redis >= 7, else the embedded Valkey; a
virtualenv's older redis-server ahead of the system's is passed over, not started."""
from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from redislayer.server import find_binary, free_port


class LocalStack:
    """`with LocalStack(...) as stack:` -> stack.url, stack.secret, stack.pid (the server's)."""

    def __init__(self, *, env: dict[str, str] | None = None, ready_timeout_s: float = 60.0) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="hawker-load-"))
        self.secret = secrets.token_hex(24)
        self.redis_port = free_port()
        self.redis_url = f"redis://127.0.0.1:{self.redis_port}/0"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.extra_env = env or {}
        self.ready_timeout_s = ready_timeout_s
        self.redis_binary: str | None = None  # found at start()
        self.redis: subprocess.Popen[bytes] | None = None
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def __enter__(self) -> LocalStack:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        try:
            self.redis_binary = find_binary()
        except RuntimeError as exc:
            raise RuntimeError(f"{exc} (or pass --url to test a running server)") from None
        self.start_redis()
        env = {**os.environ, "HAWKER_SECRET": self.secret, "HAWKER_REDIS_URL": self.redis_url,
               "HAWKER_PORT": str(self.port), "HAWKER_HOST": "127.0.0.1", "HAWKER_LOG_LEVEL": "warning",
               "HAWKER_DATA_DIR": str(self.dir), "HAWKER_PAYMENT_PROVIDER": "sandbox", **self.extra_env}
        self.log_path = self.dir / "server.log"
        log = self.log_path.open("wb")
        self.proc = subprocess.Popen([sys.executable, "-m", "live", "serve"], env=env, stdout=log,
                                     stderr=subprocess.STDOUT)
        deadline = time.monotonic() + self.ready_timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the server exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(self.url + "/readyz", timeout=1) as resp:
                    if resp.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"the server was not ready within {self.ready_timeout_s:.0f} s:\n{self.log_tail()}")

    def log_tail(self, n: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    def stop_redis(self) -> None:
        """Stop Redis (an outage); `start_redis()` brings it back on the same port."""
        if self.redis is not None and self.redis.poll() is None:
            self.redis.terminate()
            self.redis.wait(10)

    def start_redis(self) -> None:
        assert self.redis_binary is not None, "start() picks the binary"
        self.redis = subprocess.Popen(
            [self.redis_binary, "--port", str(self.redis_port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "yes", "--dir", str(self.dir)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.redis is not None and self.redis.poll() is None:
            self.redis.terminate()
            try:
                self.redis.wait(10)
            except subprocess.TimeoutExpired:
                self.redis.kill()
        shutil.rmtree(self.dir, ignore_errors=True)
