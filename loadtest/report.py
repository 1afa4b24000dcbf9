"""The spike report: Markdown and HTML with the figures, PNG charts, and CSVs of the raw samples."""
from __future__ import annotations

import csv
import html
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from loadtest.audit import Check
from loadtest.samples import Sample, percentile, write_merged


@dataclass
class RunData:
    """Everything one spike run measured."""

    params: dict[str, Any]
    samples: list[Sample]
    stock: list[tuple[int, int, int, int]]  # (server ms, available, held, sold)
    resources: list[tuple[float, float, float]]  # (seconds since start, server CPU %, server RSS MiB)
    checks: list[Check]
    opens_at: int | None = None
    soldout_at: int | None = None
    notes: list[str] = field(default_factory=list)


def figures(run: RunData) -> dict[str, Any]:
    """The headline numbers, also written as the last line of the runner's --json output."""
    by_kind: dict[str, list[Sample]] = {}
    for s in run.samples:
        by_kind.setdefault(s.kind, []).append(s)
    joins = [s for s in by_kind.get("join", []) if s.code == "OK"]
    join_rate = None
    if len(joins) >= 2:
        span = (max(s.at_ms for s in joins) - min(s.at_ms for s in joins)) / 1000
        join_rate = len(joins) / span if span > 0 else None
    out: dict[str, Any] = {
        "viewers_joined": len(joins),
        "join_failures": sum(1 for s in by_kind.get("join", []) if s.code != "OK"),
        "join_rate_per_s": round(join_rate, 1) if join_rate else None,
    }
    for kind, label in (("chat_latency", "chat"), ("reserve", "reserve"), ("pay", "pay"), ("tick_latency", "tick")):
        vals = [s.value_ms for s in by_kind.get(kind, []) if kind != "reserve" or s.code in ("OK", "SOLD_OUT", "LIMIT_REACHED")]
        for p in (50, 95, 99):
            v = percentile(vals, p)
            out[f"{label}_p{p}_ms"] = round(v, 1) if v is not None else None
        out[f"{label}_samples"] = len(vals)
    reserve_codes = Counter(s.code for s in by_kind.get("reserve", []))
    out["reserve_results"] = dict(reserve_codes)
    errors = Counter(s.code for s in run.samples if s.code not in ("OK",))
    out["errors_by_code"] = dict(errors)
    if run.opens_at and run.soldout_at:
        out["time_to_sell_out_ms"] = run.soldout_at - run.opens_at
    else:
        out["time_to_sell_out_ms"] = None
    if run.resources:
        out["server_cpu_max_pct"] = round(max(r[1] for r in run.resources), 1)
        out["server_cpu_avg_pct"] = round(sum(r[1] for r in run.resources) / len(run.resources), 1)
        out["server_rss_max_mib"] = round(max(r[2] for r in run.resources), 1)
    out["audit_passed"] = all(c.ok for c in run.checks)
    return out


def write(run: RunData, folder: Path) -> dict[str, Path]:
    """Write every file of the report into `folder`; return their paths by name."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = {
        "samples": folder / "samples.csv",
        "stock_csv": folder / "stock.csv",
        "resources_csv": folder / "resources.csv",
        "latency_png": folder / "latency.png",
        "stock_png": folder / "stock.png",
        "markdown": folder / "report.md",
        "html": folder / "report.html",
    }
    write_merged(run.samples, paths["samples"])
    with paths["stock_csv"].open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["server_ms", "available", "held", "sold"])
        w.writerows(run.stock)
    with paths["resources_csv"].open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["seconds", "server_cpu_pct", "server_rss_mib"])
        w.writerows(run.resources)
    _charts(run, paths["latency_png"], paths["stock_png"])
    figs = figures(run)
    paths["markdown"].write_text(_markdown(run, figs))
    paths["html"].write_text(_html(run, figs))
    return paths


def _charts(run: RunData, latency_png: Path, stock_png: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 4.5), dpi=100)
    t0 = min((s.at_ms for s in run.samples), default=0)
    for kind, color in (("reserve", "tab:red"), ("chat_latency", "tab:blue"), ("pay", "tab:green"), ("tick_latency", "tab:gray")):
        pts = [((s.at_ms - t0) / 1000, s.value_ms) for s in run.samples if s.kind == kind]
        if pts:
            ax.scatter([p[0] for p in pts], [p[1] for p in pts], s=4, alpha=0.5, color=color, label=kind)
    ax.set_xlabel("seconds since first sample")
    ax.set_ylabel("latency (ms)")
    ax.set_title("Latency over time")
    if ax.has_data():
        ax.legend(loc="upper right", markerscale=3)
    fig.tight_layout()
    fig.savefig(latency_png)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(9, 4.5), dpi=100)
    if run.stock:
        s0 = run.opens_at or run.stock[0][0]
        xs = [(p[0] - s0) / 1000 for p in run.stock]
        ax.step(xs, [p[1] for p in run.stock], where="post", label="available")
        ax.step(xs, [p[2] for p in run.stock], where="post", label="held")
        ax.step(xs, [p[3] for p in run.stock], where="post", label="sold")
        ax.legend(loc="center right")
    ax.set_xlabel("seconds since the sale opened (server clock)")
    ax.set_ylabel("units")
    ax.set_title("Stock over time")
    fig.tight_layout()
    fig.savefig(stock_png)
    plt.close(fig)


def _fmt(v: Any) -> str:
    return "–" if v is None else str(v)


def _rows(figs: dict[str, Any]) -> list[tuple[str, str]]:
    return [
        ("viewers joined", _fmt(figs["viewers_joined"])),
        ("join failures", _fmt(figs["join_failures"])),
        ("join rate (per s)", _fmt(figs["join_rate_per_s"])),
        ("chat latency p50 / p95 / p99 (ms)", f"{_fmt(figs['chat_p50_ms'])} / {_fmt(figs['chat_p95_ms'])} / {_fmt(figs['chat_p99_ms'])}"),
        ("reserve latency p50 / p95 / p99 (ms)",
         f"{_fmt(figs['reserve_p50_ms'])} / {_fmt(figs['reserve_p95_ms'])} / {_fmt(figs['reserve_p99_ms'])}"),
        ("pay latency p50 / p95 / p99 (ms)", f"{_fmt(figs['pay_p50_ms'])} / {_fmt(figs['pay_p95_ms'])} / {_fmt(figs['pay_p99_ms'])}"),
        ("time to sell out (ms)", _fmt(figs["time_to_sell_out_ms"])),
        ("reserve results", ", ".join(f"{k}: {v}" for k, v in sorted(figs["reserve_results"].items())) or "–"),
        ("errors by code", ", ".join(f"{k}: {v}" for k, v in sorted(figs["errors_by_code"].items())) or "none"),
        ("server CPU avg / max (%)", f"{_fmt(figs.get('server_cpu_avg_pct'))} / {_fmt(figs.get('server_cpu_max_pct'))}"),
        ("server memory max (MiB)", _fmt(figs.get("server_rss_max_mib"))),
    ]


def _markdown(run: RunData, figs: dict[str, Any]) -> str:
    verdict = "PASSED" if figs["audit_passed"] else "FAILED"
    lines = [f"# Hawker spike report — audit {verdict}", "", "## Parameters", ""]
    lines += [f"- {k}: {v}" for k, v in run.params.items()]
    lines += ["", "## Figures", "", "| figure | value |", "| --- | --- |"]
    lines += [f"| {k} | {v} |" for k, v in _rows(figs)]
    lines += ["", "## Audit", "", "| check | result | detail |", "| --- | --- | --- |"]
    lines += [f"| {c.name} | {'pass' if c.ok else '**FAIL**'} | {c.detail} |" for c in run.checks]
    lines += ["", "## Charts", "", "![latency](latency.png)", "", "![stock](stock.png)", "",
              "Raw data: `samples.csv` (every measurement), `stock.csv`, `resources.csv`; Locust's own "
              "statistics: `locust_stats.csv`, `locust_stats_history.csv`, `locust_failures.csv`."]
    if run.notes:
        lines += ["", "## Notes", ""] + [f"- {n}" for n in run.notes]
    return "\n".join(lines) + "\n"


def _html(run: RunData, figs: dict[str, Any]) -> str:
    e = html.escape
    verdict = "PASSED" if figs["audit_passed"] else "FAILED"
    rows = "".join(f"<tr><th scope=row>{e(k)}</th><td>{e(v)}</td></tr>" for k, v in _rows(figs))
    checks = "".join(
        f"<tr class={'pass' if c.ok else 'fail'}><td>{e(c.name)}</td><td>{'pass' if c.ok else 'FAIL'}</td><td>{e(c.detail)}</td></tr>"
        for c in run.checks)
    params = "".join(f"<li>{e(str(k))}: {e(str(v))}</li>" for k, v in run.params.items())
    notes = "".join(f"<li>{e(n)}</li>" for n in run.notes)
    return f"""<!doctype html><html lang=en><meta charset=utf-8><title>Hawker spike report</title>
<style>body{{font:15px system-ui,sans-serif;max-width:960px;margin:2em auto;color:#111}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:4px 8px;text-align:left}}.fail{{background:#fdd}}.pass td:nth-child(2){{color:#064}}</style>
<h1>Hawker spike report — audit {verdict}</h1><h2>Parameters</h2><ul>{params}</ul>
<h2>Figures</h2><table>{rows}</table><h2>Audit</h2><table><tr><th>check<th>result<th>detail</tr>{checks}</table>
<h2>Charts</h2><img src=latency.png alt="latency over time"><img src=stock.png alt="stock over time">
{f'<h2>Notes</h2><ul>{notes}</ul>' if notes else ''}</html>
"""
