"""The spike report: Markdown and HTML with the figures, PNG charts, CSVs of the raw samples, and
`figures.json` (what `--baseline` compares against).

The server's own figures (its /metrics histograms) and the clients' are shown apart; when the load
generator was saturated the report says so in its first line, because client-side latencies then
describe the generator, not Hawker."""
from __future__ import annotations

import csv
import html
import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from loadtest import compare, generator
from loadtest.audit import Check
from loadtest.samples import Sample, percentile, write_merged

JOINED = ("OK", "PARTIAL")


@dataclass
class RunData:
    """Everything one spike run measured."""

    params: dict[str, Any]
    samples: list[Sample]
    stock: list[tuple[int, int, int, int]]  # (server ms, available, held, sold)
    resources: list[tuple[float, float, float]]  # (seconds since start, server CPU %, server RSS MiB)
    checks: list[Check]
    opens_at: int | None = None
    soldout_at: int | None = None  # available first reached 0 (server ms)
    notes: list[str] = field(default_factory=list)
    sold_all_at: int | None = None  # every unit sold (server ms, first tick that showed it)
    units: int | None = None
    levels: dict[str, Any] = field(default_factory=dict)  # the lot's levels in the final audit
    generator: list[generator.GenSample] = field(default_factory=list)
    window: tuple[int, int] | None = None  # measured window (wall ms): every user spawned -> run end
    server: dict[str, Any] = field(default_factory=dict)  # serverside.figures()
    server_timeline: list[tuple[float, float | None, float | None]] = field(default_factory=list)
    scenario: str = "flash"
    storm_at: int | None = None
    moderated: int = 0


def _pcts(out: dict[str, Any], label: str, vals: list[float]) -> None:
    for p in (50, 95, 99):
        v = percentile(vals, p)
        out[f"{label}_p{p}_ms"] = round(v, 1) if v is not None else None
    out[f"{label}_samples"] = len(vals)


def figures(run: RunData) -> dict[str, Any]:
    """The headline numbers, also written as figures.json and the last line of `--json` output."""
    by_kind: dict[str, list[Sample]] = {}
    for s in run.samples:
        by_kind.setdefault(s.kind, []).append(s)
    joins = by_kind.get("join", [])
    viewer_joins = [s for s in joins if s.user.startswith("viewer-")]
    ok_joins = [s for s in viewer_joins if s.code in JOINED]
    out: dict[str, Any] = {"scenario": run.scenario}
    sat = generator.verdict(run.generator, *(run.window or (None, None)))
    out["generator_saturated"] = sat["generator_saturated"]
    out["generator_seconds_over_max"] = sat["generator_seconds_over_max"]
    out["generator_processes"] = sat["generator_processes"]
    out["generator_cpu_max_pct"] = sat["generator_cpu_max_pct"]
    out["generator_lag_max_ms"] = sat["generator_lag_max_ms"]
    sold = int(run.levels.get("sold", 0)) if run.levels else 0
    out["units"] = run.units
    out["units_sold"] = sold
    out["sell_through_pct"] = round(100 * sold / run.units, 1) if run.units else None
    out["audit_passed"] = all(c.ok for c in run.checks)
    out["time_to_sell_out_ms"] = run.sold_all_at - run.opens_at if run.opens_at and run.sold_all_at else None
    out["time_to_first_sold_out_ms"] = run.soldout_at - run.opens_at if run.opens_at and run.soldout_at else None
    out["viewers_joined"] = len(ok_joins)
    out["buyers_joined"] = sum(1 for s in joins if not s.user.startswith("viewer-") and s.code == "OK")
    out["join_failures"] = sum(1 for s in joins if s.code not in JOINED)
    out["partial_snapshots"] = sum(1 for s in joins if s.code == "PARTIAL")
    out["join_retries"] = len(by_kind.get("join_retry", []))
    if len(ok_joins) >= 2:
        span_s = (max(s.at_ms for s in ok_joins) - min(s.at_ms for s in ok_joins)) / 1000
        out["viewers_join_span_s"] = round(span_s, 1)
        out["join_rate_per_s"] = round(len(ok_joins) / span_s, 1) if span_s > 0 else None
    else:
        out["viewers_join_span_s"] = out["join_rate_per_s"] = None
    _pcts(out, "join", [s.value_ms for s in ok_joins])
    # server-side first: these are Hawker's own figures whatever the generator did
    out.update(run.server)
    ticks = [s.value_ms for s in by_kind.get("tick_latency", [])
             if run.window is None or run.window[0] <= s.at_ms <= run.window[1]]
    _pcts(out, "client_tick", ticks)
    _pcts(out, "chat", [s.value_ms for s in by_kind.get("chat_latency", []) if s.code == "OK"])
    _pcts(out, "chat_ack", [s.value_ms for s in by_kind.get("chat_ack", []) if s.code == "OK"])
    _pcts(out, "reserve", [s.value_ms for s in by_kind.get("reserve", []) if s.code in ("OK", "SOLD_OUT", "LIMIT_REACHED")])
    _pcts(out, "pay", [s.value_ms for s in by_kind.get("pay", []) if s.code == "OK"])
    out["reserve_results"] = dict(Counter(s.code for s in by_kind.get("reserve", [])))
    out["reserve_retries"] = len(by_kind.get("reserve_retry", []))
    out["retried_codes"] = dict(Counter(s.code for s in by_kind.get("reserve_retry", [])))
    out["orders_seen_by_buyers"] = len(by_kind.get("order", []))
    out["errors_by_code"] = dict(Counter(s.code for s in run.samples if s.code not in ("OK", "PARTIAL", "GRANTED")))
    rejoins = by_kind.get("rejoin", [])
    if run.scenario == "reconnect-storm" or rejoins:
        ok = [s for s in rejoins if s.code in JOINED]
        out["rejoined"] = len(ok)
        out["rejoin_failures"] = len(rejoins) - len(ok)
        out["rejoin_whole_snapshot_pct"] = round(100 * sum(1 for s in ok if s.code == "OK") / len(ok), 1) if ok else None
        span = (max(s.at_ms for s in ok) - min(s.at_ms for s in ok)) / 1000 if len(ok) >= 2 else 0
        out["rejoins_per_s"] = round(len(ok) / span, 1) if span > 0 else None
        _pcts(out, "rejoin", [s.value_ms for s in ok])
    if run.scenario == "chat-storm":
        out["moderation_actions"] = run.moderated
    if run.resources:
        out["server_cpu_max_pct"] = round(max(r[1] for r in run.resources), 1)
        out["server_cpu_avg_pct"] = round(sum(r[1] for r in run.resources) / len(run.resources), 1)
        out["server_rss_max_mib"] = round(max(r[2] for r in run.resources), 1)
        if run.scenario == "soak" and len(run.resources) > 120:
            head, tail = run.resources[:60], run.resources[-60:]
            out["server_rss_drift_mib"] = round(sum(r[2] for r in tail) / 60 - sum(r[2] for r in head) / 60, 1)
    if run.scenario == "soak" and ticks and run.window:
        t = sorted((s.at_ms, s.value_ms) for s in by_kind.get("tick_latency", []) if s.value_ms == s.value_ms)
        first = [v for at, v in t if at < run.window[0] + 300_000]
        last = [v for at, v in t if at > run.window[1] - 300_000]
        p_first, p_last = percentile(first, 99), percentile(last, 99)
        out["client_tick_p99_drift_ms"] = round(p_last - p_first, 1) if p_first is not None and p_last is not None else None
        lags = [row[1] for row in run.server_timeline if row[1] is not None]
        if len(lags) >= 4:
            q = max(1, len(lags) // 6)
            out["server_tick_lag_p99_drift_ms"] = round(sum(lags[-q:]) / q - sum(lags[:q]) / q, 1)
    return out


def write(run: RunData, folder: Path, baseline: dict[str, Any] | None = None) -> dict[str, Path]:
    """Write every file of the report into `folder`; return their paths by name."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = {
        "samples": folder / "samples.csv",
        "stock_csv": folder / "stock.csv",
        "resources_csv": folder / "resources.csv",
        "generator_csv": folder / "generator.csv",
        "server_csv": folder / "server_timeline.csv",
        "latency_png": folder / "latency.png",
        "stock_png": folder / "stock.png",
        "server_png": folder / "server.png",
        "generator_png": folder / "generator.png",
        "figures": folder / "figures.json",
        "markdown": folder / "report.md",
        "html": folder / "report.html",
    }
    write_merged(run.samples, paths["samples"])
    _csv(paths["stock_csv"], ["server_ms", "available", "held", "sold"], run.stock)
    _csv(paths["resources_csv"], ["seconds", "server_cpu_pct", "server_rss_mib"], run.resources)
    _csv(paths["server_csv"], ["epoch_s", "server_tick_lag_p99_ms", "server_reserve_p99_ms"], run.server_timeline)
    generator.write(run.generator, paths["generator_csv"])
    _charts(run, paths)
    figs = figures(run)
    paths["figures"].write_text(json.dumps(figs, indent=1, sort_keys=True))
    deltas = compare.compare(baseline, figs) if baseline else None
    paths["markdown"].write_text(_markdown(run, figs, deltas))
    paths["html"].write_text(_html(run, figs, deltas))
    return paths


def _csv(path: Path, header: list[str], rows: Any) -> None:
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)


def _charts(run: RunData, paths: dict[str, Path]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 4.5), dpi=100)
    t0 = min((s.at_ms for s in run.samples), default=0)
    for kind, color in (("reserve", "tab:red"), ("chat_latency", "tab:blue"), ("pay", "tab:green"),
                        ("tick_latency", "tab:gray"), ("rejoin", "tab:purple")):
        pts = [((s.at_ms - t0) / 1000, s.value_ms) for s in run.samples if s.kind == kind]
        if pts:
            ax.scatter([p[0] for p in pts], [p[1] for p in pts], s=4, alpha=0.5, color=color, label=kind)
    _labels(ax, "seconds since first sample", "latency (ms)",
            "Client-side latency over time (as the load generator measured it)")
    if ax.has_data():
        ax.legend(loc="upper right", markerscale=3)
    _save(plt, fig, paths["latency_png"])

    fig, ax = plt.subplots(figsize=(9, 4.5), dpi=100)
    if run.stock:
        s0 = run.opens_at or run.stock[0][0]
        xs = [(p[0] - s0) / 1000 for p in run.stock]
        ax.step(xs, [p[1] for p in run.stock], where="post", label="available")
        ax.step(xs, [p[2] for p in run.stock], where="post", label="held")
        ax.step(xs, [p[3] for p in run.stock], where="post", label="sold")
        ax.legend(loc="center right")
    _labels(ax, "seconds since the sale opened (server clock)", "units", "Stock over time")
    _save(plt, fig, paths["stock_png"])

    fig, ax = plt.subplots(figsize=(9, 4.5), dpi=100)
    if run.server_timeline:
        e0 = run.server_timeline[0][0]
        for i, (label, color) in enumerate((("tick fan-out lag p99", "tab:gray"), ("reserve p99", "tab:red")), 1):
            line = [(row[0] - e0, float(v)) for row in run.server_timeline if (v := row[i]) is not None]
            if line:
                ax.plot([p[0] for p in line], [p[1] for p in line], marker="o", ms=3, color=color, label=label)
    _labels(ax, "seconds since the first scrape", "ms (server's own histograms, per scrape interval)",
            "Server-side latency (Hawker's /metrics)")
    if ax.has_data():
        ax.legend(loc="upper right")
    if run.resources:
        ax2 = ax.twinx()
        ax2.plot([r[0] for r in run.resources], [r[1] for r in run.resources], color="tab:blue", alpha=0.4, lw=1)
        ax2.set_ylabel("server CPU % (blue)")
    _save(plt, fig, paths["server_png"])

    fig, (a1, a2) = plt.subplots(2, 1, figsize=(9, 5.5), dpi=100, sharex=True)
    g0 = min((g.at_ms for g in run.generator), default=0)
    for proc in sorted({g.process for g in run.generator}):
        secs = [g for g in run.generator if g.process == proc]
        xs = [(g.at_ms - g0) / 1000 for g in secs]
        a1.plot(xs, [g.cpu_pct for g in secs], lw=1, label=proc)
        a2.plot(xs, [max(g.gevent_lag_ms, g.light_lag_ms) for g in secs], lw=1, label=proc)
    a1.axhline(generator.CPU_LIMIT_PCT, color="red", ls="--", lw=1)
    a2.axhline(generator.LAG_LIMIT_MS, color="red", ls="--", lw=1)
    a1.set_ylabel("CPU % of a core")
    a2.set_ylabel("loop lag (ms)")
    a2.set_xlabel("seconds")
    a1.set_title("Load generator processes (red: saturation limits)")
    if a1.has_data():
        a1.legend(loc="upper right", fontsize=7)
    _save(plt, fig, paths["generator_png"])


def _labels(ax: Any, x: str, y: str, title: str) -> None:
    ax.set_xlabel(x)
    ax.set_ylabel(y)
    ax.set_title(title)


def _save(plt: Any, fig: Any, path: Path) -> None:
    """Write one chart and free it (a run draws several; pyplot keeps figures until closed)."""
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _fmt(v: Any) -> str:
    return "–" if v is None else str(v)


def _trio(f: dict[str, Any], label: str, ps: tuple[int, ...] = (50, 95, 99)) -> str:
    return " / ".join(_fmt(f.get(f"{label}_p{p}_ms")) for p in ps)


def _headline(f: dict[str, Any]) -> str:
    if f["generator_saturated"]:
        return (f"**The load generator was saturated** (a generator process was over {generator.CPU_LIMIT_PCT:.0f} % CPU "
                f"or {generator.LAG_LIMIT_MS:.0f} ms loop lag for {f['generator_seconds_over_max']} s of the measured "
                "window): the client-side latencies below describe the generator, not Hawker. Read the server-side "
                "figures, or add generator machines.")
    return ("The load generator kept up (no process over its CPU or loop-lag limit for more than "
            f"{generator.OVER_LIMIT_S} s of the measured window): client-side figures describe what users saw.")


def _sale_rows(f: dict[str, Any]) -> list[tuple[str, str]]:
    return [
        ("units sold / units (sell-through)", f"{_fmt(f['units_sold'])} / {_fmt(f['units'])} ({_fmt(f['sell_through_pct'])} %)"),
        ("time to sell out (ms, open -> last unit sold)", _fmt(f["time_to_sell_out_ms"])),
        ("time to first sold-out (ms, open -> available 0)", _fmt(f["time_to_first_sold_out_ms"])),
        ("reserve results", ", ".join(f"{k}: {v}" for k, v in sorted(f["reserve_results"].items())) or "–"),
        ("reserve retries (BUSY / UNAVAILABLE / timeout)", f"{f['reserve_retries']} " + (
            "(" + ", ".join(f"{k}: {v}" for k, v in sorted(f["retried_codes"].items())) + ")" if f["retried_codes"] else "")),
    ]


def _server_rows(f: dict[str, Any]) -> list[tuple[str, str]]:
    rows = [
        ("reserve p50 / p99 (ms)", _trio(f, "server_reserve", (50, 99))),
        ("reserve after open p50 / p99 (ms)", _trio(f, "server_reserve_after_open", (50, 99))),
        ("tick fan-out lag p50 / p99 (ms)", _trio(f, "server_tick_lag", (50, 99))),
        ("socket command p50 / p99 (ms)", _trio(f, "server_command", (50, 99))),
        ("join (connect -> snapshot) p50 / p99 (ms)", _trio(f, "server_join", (50, 99))),
        ("redis command p50 / p99 (ms)", _trio(f, "server_redis", (50, 99))),
        ("event-loop lag p50 / p99 (ms)", _trio(f, "server_loop_lag", (50, 99))),
        ("BUSY / UNAVAILABLE answers",
         ", ".join(f"{k}: {v}" for k, v in sorted((f.get("server_overload_answers") or {}).items())) or "none"),
        ("CPU avg / max (% of a core)", f"{_fmt(f.get('server_cpu_avg_pct'))} / {_fmt(f.get('server_cpu_max_pct'))}"),
        ("memory max (MiB RSS)", _fmt(f.get("server_rss_max_mib"))),
    ]
    for k in ("server_rss_drift_mib", "server_tick_lag_p99_drift_ms"):
        if k in f:
            rows.append((k.replace("_", " "), _fmt(f[k])))
    return rows


def _client_rows(f: dict[str, Any]) -> list[tuple[str, str]]:
    rows = [
        ("viewers joined (light sockets)", _fmt(f["viewers_joined"])),
        ("buyers joined", _fmt(f["buyers_joined"])),
        ("join failures", _fmt(f["join_failures"])),
        ("join attempts retried (refused, timed out, closed)", _fmt(f.get("join_retries"))),
        ("partial snapshots", _fmt(f["partial_snapshots"])),
        ("viewer joins span (s) / rate (per s)", f"{_fmt(f['viewers_join_span_s'])} / {_fmt(f['join_rate_per_s'])}"),
        ("join p50 / p95 / p99 (ms)", _trio(f, "join")),
        ("tick latency p50 / p95 / p99 (ms, server ts -> viewer, synced clock)", _trio(f, "client_tick")),
        ("chat latency p50 / p95 / p99 (ms, accepted -> own line seen in a tick)", _trio(f, "chat")),
        ("chat.send ack p50 / p95 / p99 (ms)", _trio(f, "chat_ack")),
        ("reserve ack p50 / p95 / p99 (ms, retries included)", _trio(f, "reserve")),
        ("pay ack p50 / p95 / p99 (ms)", _trio(f, "pay")),
        ("errors by code", ", ".join(f"{k}: {v}" for k, v in sorted(f["errors_by_code"].items())) or "none"),
    ]
    if "rejoined" in f:
        rows += [("rejoined / failures", f"{f['rejoined']} / {f['rejoin_failures']}"),
                 ("rejoins per s", _fmt(f.get("rejoins_per_s"))),
                 ("rejoins with a whole snapshot (%)", _fmt(f.get("rejoin_whole_snapshot_pct"))),
                 ("rejoin p50 / p95 / p99 (ms)", _trio(f, "rejoin"))]
    if "client_tick_p99_drift_ms" in f:
        rows.append(("tick p99 drift, last 5 min - first 5 min (ms)", _fmt(f["client_tick_p99_drift_ms"])))
    if "moderation_actions" in f:
        rows.append(("moderation actions (delete + time-out)", _fmt(f["moderation_actions"])))
    return rows


def _generator_rows(f: dict[str, Any]) -> list[tuple[str, str]]:
    return [
        ("saturated", "**yes**" if f["generator_saturated"] else "no"),
        ("processes", _fmt(f["generator_processes"])),
        ("worst CPU (% of a core)", _fmt(f["generator_cpu_max_pct"])),
        ("worst loop lag (ms)", _fmt(f["generator_lag_max_ms"])),
        ("most seconds over a limit (one process)", _fmt(f["generator_seconds_over_max"])),
    ]


def _sections(f: dict[str, Any]) -> list[tuple[str, list[tuple[str, str]]]]:
    client_title = "Client-side (as the load generator measured it" + (
        ": SATURATED, these describe the generator)" if f["generator_saturated"] else ")")
    return [("Sale", _sale_rows(f)), ("Server-side (Hawker's own /metrics, between the first and last scrape)",
                                      _server_rows(f)), (client_title, _client_rows(f)), ("Load generator", _generator_rows(f))]


def _markdown(run: RunData, f: dict[str, Any], deltas: list[compare.Delta] | None) -> str:
    verdict = "PASSED" if f["audit_passed"] else "FAILED"
    lines = [_headline(f), "", f"# Hawker spike report ({run.scenario}) — audit {verdict}", "", "## Parameters", ""]
    lines += [f"- {k}: {v}" for k, v in run.params.items()]
    for title, rows in _sections(f):
        lines += ["", f"## {title}", "", "| figure | value |", "| --- | --- |"]
        lines += [f"| {k} | {v} |" for k, v in rows]
    if deltas is not None:
        lines += ["", "## Against the baseline", ""] + compare.markdown(deltas)
    lines += ["", "## Audit", "", "| check | result | detail |", "| --- | --- | --- |"]
    lines += [f"| {c.name} | {'pass' if c.ok else '**FAIL**'} | {c.detail} |" for c in run.checks]
    lines += ["", "## Charts", "", "![server](server.png)", "", "![latency](latency.png)", "", "![stock](stock.png)", "",
              "![generator](generator.png)", "",
              "Raw data: `samples.csv` (every client measurement), `stock.csv`, `resources.csv`, `server_timeline.csv`, "
              "`generator.csv`, `figures.json`; Locust's own statistics: `locust_stats.csv`, "
              "`locust_stats_history.csv`, `locust_failures.csv`."]
    if run.notes:
        lines += ["", "## Notes", ""] + [f"- {n}" for n in run.notes]
    return "\n".join(lines) + "\n"


def _html(run: RunData, f: dict[str, Any], deltas: list[compare.Delta] | None) -> str:
    e = html.escape
    verdict = "PASSED" if f["audit_passed"] else "FAILED"
    tables = "".join(
        f"<h2>{e(title)}</h2><table>" + "".join(f"<tr><th scope=row>{e(k)}</th><td>{e(v.replace('**', ''))}</td></tr>"
                                               for k, v in rows) + "</table>" for title, rows in _sections(f))
    checks = "".join(
        f"<tr class={'pass' if c.ok else 'fail'}><td>{e(c.name)}</td><td>{'pass' if c.ok else 'FAIL'}</td><td>{e(c.detail)}</td></tr>"
        for c in run.checks)
    params = "".join(f"<li>{e(str(k))}: {e(str(v))}</li>" for k, v in run.params.items())
    notes = "".join(f"<li>{e(n)}</li>" for n in run.notes)
    base = ("<h2>Against the baseline</h2><table><tr><th>figure<th>baseline<th>this run<th>change<th>verdict</tr>"
            + compare.html_rows(deltas) + "</table>") if deltas is not None else ""
    head_cls = "sat" if f["generator_saturated"] else "ok"
    return f"""<!doctype html><html lang=en><meta charset=utf-8><title>Hawker spike report</title>
<style>body{{font:15px system-ui,sans-serif;max-width:960px;margin:2em auto;color:#111}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:4px 8px;text-align:left}}.fail,.regression{{background:#fdd;color:#a00}}
.better{{color:#064}}.pass td:nth-child(2){{color:#064}}p.sat{{background:#fdd;padding:8px}}p.ok{{background:#efe;padding:8px}}
img{{max-width:100%}}</style>
<p class={head_cls}>{e(_headline(f).replace('**', ''))}</p>
<h1>Hawker spike report ({e(run.scenario)}) — audit {verdict}</h1><h2>Parameters</h2><ul>{params}</ul>
{tables}{base}<h2>Audit</h2><table><tr><th>check<th>result<th>detail</tr>{checks}</table>
<h2>Charts</h2><img src=server.png alt="server-side latency"><img src=latency.png alt="client-side latency over time">
<img src=stock.png alt="stock over time"><img src=generator.png alt="load generator CPU and loop lag">
{f'<h2>Notes</h2><ul>{notes}</ul>' if notes else ''}</html>
"""
