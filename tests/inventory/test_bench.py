"""The benchmark script runs end to end and reports what it promises (figures are not asserted:
performance lives in the script's output, not in tests)."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("redis-benchmark") is None, reason="redis-benchmark not installed")
def test_bench_json_line() -> None:
    out = subprocess.run([sys.executable, "-m", "inventory.bench", "--json", "--n", "300", "--rounds", "1",
                          "--callers", "16"], capture_output=True, text=True, timeout=240)
    assert out.returncode == 0, out.stderr[-2000:]
    figures = json.loads(out.stdout.strip().splitlines()[-1])
    for key in ("api_per_s", "raw_per_s", "ratio", "p99_ms", "oversold"):
        assert key in figures
    assert figures["oversold"] == 0 and figures["audit_ok"] is True and figures["refused"] == 0
    assert figures["api_per_s"] > 0 and figures["raw_per_s"] > 0
