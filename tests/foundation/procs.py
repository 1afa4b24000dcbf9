"""Helpers for tests that run `hawker ...` as a real subprocess (the way a user or Docker does)."""
from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp

from tests.waiting import wait_for as wait_until  # noqa: F401 - re-exported for the tests of this folder

REPO = Path(__file__).resolve().parents[2]


def hawker(*args: str, env: dict[str, str] | None = None, cwd: str | os.PathLike[str] | None = None,
           **popen: Any) -> subprocess.Popen[str]:
    """Start `python -m live <args>` (same as the `hawker` console script) with text pipes."""
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    full_env.setdefault("PYTHONPATH", str(REPO))
    return subprocess.Popen([sys.executable, "-m", "live", *args], env=full_env, cwd=cwd or REPO, text=True, **popen)


def run_hawker(*args: str, env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, **(env or {})}
    return subprocess.run([sys.executable, "-m", "live", *args], env=full_env, cwd=REPO, text=True,
                          capture_output=True, timeout=timeout)


def stop(proc: subprocess.Popen[str], sig: int = signal.SIGTERM, timeout: float = 60) -> int:
    """Signal the process (by its pid) and wait for its exit code; kill it if it hangs."""
    if proc.poll() is None:
        proc.send_signal(sig)
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise AssertionError(f"process {proc.pid} did not exit within {timeout:.0f}s of signal {sig}") from None


async def wait_http(url: str, proc: subprocess.Popen[str] | None = None, timeout: float = 90,
                    status: int = 200) -> None:
    """Poll `url` until it answers `status` (the machine is shared: be generous)."""
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as s:
        while True:
            try:
                async with s.get(url) as r:
                    if r.status == status:
                        return
            except aiohttp.ClientError:
                pass
            if proc is not None and proc.poll() is not None:
                raise AssertionError(f"process exited with {proc.returncode} before {url} answered")
            if time.monotonic() > deadline:
                raise AssertionError(f"{url} did not answer {status} within {timeout:.0f}s")
            await asyncio.sleep(0.2)




def port_open(port: int, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False
