"""Small helpers the load runs share: a JSON call to the server's REST API (what a merchant's
backend does, over the network), a percentile of measured values, and the CPU and memory a local
process (the server, Redis, a client process) used, read from /proc."""
from __future__ import annotations

import json
import os
import time
import urllib.request
from typing import Any


def http_json(method: str, url: str, token: str, body: Any = None) -> Any:
    """`method url` with a bearer token and a JSON body; the decoded JSON answer (None if empty)."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers={
        "Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.loads(resp.read() or b"null")


def pct(values: list[float], q: float) -> float:
    """The q-quantile (0..1) of `values` by rank; 0.0 when there are none."""
    if not values:
        return 0.0
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))]


def cpu_seconds(pid: int | None) -> float:
    """CPU seconds (user + system) a local process has used, from /proc (Linux), else 0."""
    if pid is None:
        return 0.0
    try:
        with open(f"/proc/{pid}/stat") as f:
            parts = f.read().rsplit(")", 1)[1].split()
        return (int(parts[11]) + int(parts[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return 0.0


class ProcSampler:
    """CPU % since it was made and the largest RSS seen, of one local process (or nothing)."""

    def __init__(self, pid: int | None) -> None:
        self.pid = pid
        self.t0 = time.monotonic()
        self.cpu0 = cpu_seconds(pid)
        self.rss_max = 0.0

    def rss_mb(self) -> float:
        """Look at the RSS now; the largest seen so far, in MiB."""
        if self.pid is None:
            return 0.0
        try:
            with open(f"/proc/{self.pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        self.rss_max = max(self.rss_max, int(line.split()[1]) / 1024)
        except OSError:
            pass
        return self.rss_max

    def cpu_pct(self) -> float:
        dt = time.monotonic() - self.t0
        return 100.0 * (cpu_seconds(self.pid) - self.cpu0) / dt if dt > 0 else 0.0
