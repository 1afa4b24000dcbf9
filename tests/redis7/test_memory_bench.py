"""The memory benchmark runs end to end on a real server and reports what it promises (the figures
themselves live in docs/scaling.md, not in asserts; only that compaction shrinks a sale is)."""
from __future__ import annotations

import json
import subprocess
import sys


def test_memory_bench_json() -> None:
    out = subprocess.run([sys.executable, "-m", "live.memory_bench", "--json", "--sales", "2", "--units", "10",
                          "--viewers", "60"], capture_output=True, text=True, timeout=240)
    assert out.returncode == 0, out.stderr[-2000:]
    f = json.loads(out.stdout.strip().splitlines()[-1])
    assert f["orders"] == 16 and f["released"] == 4 and f["refused"] == 100
    assert 0 < f["bytes_per_sale_after"] < f["bytes_per_sale_before"] / 2
    assert f["bytes_per_order"] > 0 and f["orders_per_gib"] == int(2**30 / f["bytes_per_order"])
    assert f["by_class_after"]["order"] == f["by_class_before"]["order"]  # compaction leaves orders alone
