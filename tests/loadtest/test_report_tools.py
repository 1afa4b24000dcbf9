"""The report's pure parts: the generator-saturation verdict and the baseline comparison table."""
from __future__ import annotations

from pathlib import Path

from loadtest import compare, generator, report
from loadtest.audit import Check
from loadtest.generator import GenSample
from loadtest.samples import Sample


def _seconds(process: str, n: int, *, cpu: float = 10.0, lag: float = 1.0, start: int = 0) -> list[GenSample]:
    return [GenSample(process, start + i * 1000, cpu, lag, 0.0) for i in range(n)]


def test_more_than_five_seconds_over_a_limit_is_saturated():
    calm = _seconds("a:1", 30)
    assert generator.verdict(calm + _seconds("b:2", 5, cpu=95.0))["generator_saturated"] is False  # 5 s: not more than 5
    over = generator.verdict(calm + _seconds("b:2", 6, cpu=95.0))
    assert over["generator_saturated"] is True and over["generator_seconds_over_max"] == 6
    lagging = [GenSample("c:3", i * 1000, 20.0, 0.0, 150.0) for i in range(8)]  # the light loop's lag counts too
    assert generator.verdict(lagging)["generator_saturated"] is True


def test_only_the_measured_window_counts():
    ramp = _seconds("a:1", 20, cpu=99.0)  # a busy ramp before the window
    steady = _seconds("a:1", 30, start=20_000)
    assert generator.verdict(ramp + steady, 20_000, 50_000)["generator_saturated"] is False
    assert generator.verdict(ramp + steady)["generator_saturated"] is True


BASE = {"audit_passed": True, "generator_saturated": False, "units_sold": 100, "server_reserve_p99_ms": 40.0,
        "server_tick_lag_p99_ms": 30.0, "client_tick_p99_ms": 200.0, "viewers_joined": 2000}


def test_baseline_table_flags_regressions_and_improvements():
    cur = dict(BASE, units_sold=61, server_reserve_p99_ms=90.0, server_tick_lag_p99_ms=31.0, client_tick_p99_ms=120.0,
               generator_saturated=True)
    rows = {d.figure: d for d in compare.compare(BASE, cur)}
    assert rows["units_sold"].verdict == "regression" and rows["units_sold"].change.startswith("-39.0")
    assert rows["server_reserve_p99_ms"].verdict == "regression"
    assert rows["server_tick_lag_p99_ms"].verdict == "same"  # 1 ms is noise
    assert rows["client_tick_p99_ms"].verdict == "better"
    assert rows["generator_saturated"].verdict == "regression"
    assert rows["audit_passed"].verdict == "same"
    md = "\n".join(compare.markdown(list(rows.values())))
    assert "| server_reserve_p99_ms | 40.0 | 90.0 | +50.0 (+125 %) | 🔴 **regression** |" in md


def _run() -> report.RunData:
    samples = [Sample("join", 1000 + i, 20.0, "OK", f"viewer-{i}") for i in range(5)]
    samples += [Sample("tick_latency", 2000 + i, 10.0 + i, "OK", "viewer-1") for i in range(50)]
    return report.RunData(params={"scenario": "flash"}, samples=samples, stock=[(0, 1, 0, 9)], resources=[(1.0, 5.0, 90.0)],
                          checks=[Check("units sold <= units", True, "ok")], opens_at=1, units=10,
                          levels={"sold": 9}, generator=_seconds("a:1", 10), server={"server_reserve_p99_ms": 80.0})


def test_report_with_a_baseline_shows_the_delta_table(tmp_path: Path):
    base_dir = tmp_path / "before"
    report.write(_run(), base_dir)
    assert compare.load(base_dir)["units_sold"] == 9
    worse = _run()
    worse.levels = {"sold": 4}
    paths = report.write(worse, tmp_path / "after", baseline=compare.load(base_dir))
    md = paths["markdown"].read_text()
    assert "## Against the baseline" in md and "| units_sold | 9 | 4 |" in md and "🔴 **regression**" in md
    assert "<tr class=regression><td>units_sold</td>" in paths["html"].read_text()
    assert "Against the baseline" not in (base_dir / "report.md").read_text()
