"""Compare a run with an earlier one (`--baseline DIR`): a table of deltas, regressions flagged, so
a change can be judged by its load test. Pure: both sides are the `figures.json` of a report."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# figure -> which way is better ("lower" / "higher" / "false" / "true")
WATCHED: dict[str, str] = {
    "audit_passed": "true",
    "generator_saturated": "false",
    "units_sold": "higher",
    "sell_through_pct": "higher",
    "time_to_sell_out_ms": "lower",
    "viewers_joined": "higher",
    "join_failures": "lower",
    "server_reserve_p50_ms": "lower",
    "server_reserve_p99_ms": "lower",
    "server_tick_lag_p50_ms": "lower",
    "server_tick_lag_p99_ms": "lower",
    "server_command_p99_ms": "lower",
    "server_join_p99_ms": "lower",
    "server_loop_lag_p99_ms": "lower",
    "client_tick_p50_ms": "lower",
    "client_tick_p99_ms": "lower",
    "reserve_p99_ms": "lower",
    "chat_p99_ms": "lower",
    "server_cpu_avg_pct": "lower",
    "server_rss_max_mib": "lower",
}
REL_TOLERANCE = 0.10  # a latency 10 % worse ...
ABS_TOLERANCE_MS = 5.0  # ... and by more than 5 ms is a regression


@dataclass(frozen=True)
class Delta:
    figure: str
    baseline: Any
    current: Any
    change: str
    verdict: str  # "regression", "better", "same", "n/a"


def load(folder: str | Path) -> dict[str, Any]:
    return json.loads((Path(folder) / "figures.json").read_text())


def _judge(better: str, base: Any, cur: Any, name: str) -> tuple[str, str]:
    if base is None or cur is None:
        return "–", "n/a"
    if better in ("true", "false"):
        good = better == "true"
        if bool(base) == bool(cur):
            return "=", "same"
        return f"{base} -> {cur}", "better" if bool(cur) == good else "regression"
    b, c = float(base), float(cur)
    diff = c - b
    rel = diff / b if b else (0.0 if diff == 0 else float("inf"))
    change = f"{diff:+.1f}" + (f" ({rel * 100:+.0f} %)" if b else "")
    worse = diff > 0 if better == "lower" else diff < 0
    big = abs(rel) > REL_TOLERANCE and (not name.endswith("_ms") or abs(diff) > ABS_TOLERANCE_MS)
    if not big or diff == 0:
        return change, "same"
    return change, "regression" if worse else "better"


def compare(baseline: dict[str, Any], current: dict[str, Any]) -> list[Delta]:
    rows = []
    for name, better in WATCHED.items():
        if name not in baseline and name not in current:
            continue
        base, cur = baseline.get(name), current.get(name)
        change, verdict = _judge(better, base, cur, name)
        rows.append(Delta(name, base, cur, change, verdict))
    return rows


def markdown(rows: list[Delta]) -> list[str]:
    out = ["| figure | baseline | this run | change | verdict |", "| --- | --- | --- | --- | --- |"]
    for r in rows:
        verdict = "🔴 **regression**" if r.verdict == "regression" else ("🟢 better" if r.verdict == "better" else r.verdict)
        out.append(f"| {r.figure} | {r.baseline} | {r.current} | {r.change} | {verdict} |")
    return out


def html_rows(rows: list[Delta]) -> str:
    import html

    e = html.escape
    return "".join(
        f"<tr class={r.verdict}><td>{e(r.figure)}</td><td>{e(str(r.baseline))}</td><td>{e(str(r.current))}</td>"
        f"<td>{e(r.change)}</td><td>{e(r.verdict)}</td></tr>" for r in rows)
