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


@pytest.mark.slow
@pytest.mark.parametrize("args", [["--redis-mode", "cluster", "--shards", "1,3"],
                                  ["--redis-mode", "standalone", "--replicas-ack", "0,1"]])
def test_scale_out_bench_runs_every_size(args: list[str]) -> None:
    """The scale-out mode starts its clusters (1 and 3 masters) or its master + replica, reports
    every run and audits every lot."""
    out = subprocess.run([sys.executable, "-m", "inventory.bench", "--json", "--n", "400", "--lots", "12",
                          "--callers", "16", *args], capture_output=True, text=True, timeout=240)
    assert out.returncode == 0, out.stderr[-2000:]
    runs = json.loads(out.stdout.strip().splitlines()[-1])
    assert len(runs) == 2 and all(r["oversold"] == 0 and r["audit_ok"] and r["per_s"] > 0 for r in runs)
    if args[1] == "cluster":
        assert [r["shards"] for r in runs] == [1, 3]
    else:
        assert [r["replicas_ack"] for r in runs] == [0, 1] and runs[1]["ack_failures"] == 0
