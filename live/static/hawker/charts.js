// Small time-series charts on the vendored uPlot (live/static/vendor/uPlot.iife.min.js, a global
// `uPlot`): the studio's live dashboard and the post-show report draw the server's per-minute figures.
const COLORS = ["#ffb020", "#7cc4ff", "#6ee7a0", "#ff8a8a", "#c9a0ff"];

/** A line/bar chart in `box` for `rows` (objects with `start` ms) and `series` [{label, value(row), bars?}].
 * Returns an object with update(rows) for live redraws. Without uPlot (not loaded) it draws nothing. */
export function timeChart(box, series, { height = 160, title = "", timeLabel = "", legend = true } = {}) {
  // eslint-disable-next-line no-undef
  const U = typeof uPlot === "undefined" ? null : uPlot;
  let plot = null, last = [];
  const data = (rows) => [rows.map((r) => r.start / 1000), ...series.map((s) => rows.map((r) => s.value(r)))];
  const opts = () => ({
    title, width: Math.max(140, box.clientWidth || 320), height,
    cursor: { drag: { x: false, y: false } },
    legend: { show: legend },
    axes: [{ stroke: "#c4cbd4", grid: { stroke: "#2a3039" } }, { stroke: "#c4cbd4", grid: { stroke: "#2a3039" }, size: 56 }],
    series: [timeLabel ? { label: timeLabel } : {}, ...series.map((s, i) => ({
      label: s.label, stroke: COLORS[i % COLORS.length], width: 2,
      fill: s.bars ? COLORS[i % COLORS.length] + "55" : undefined,
      // eslint-disable-next-line no-undef
      paths: s.bars && U && U.paths && U.paths.bars ? U.paths.bars({ size: [0.6, 40] }) : undefined,
      points: { show: true, size: 4 },
    }))],
    // a show of one or two minutes still gets a minutes axis (uPlot would otherwise pad to years)
    scales: { x: { time: true, range: () => xRange(last) },
      y: { range: (u, min, max) => [0, Math.max(1, Math.ceil(max * 1.15))] } },
  });
  const chart = {
    update(rows) {
      last = rows || [];
      box.dataset.points = String(last.length);
      if (!U) return;
      if (!plot) { box.innerHTML = ""; plot = new U(opts(), data(last), box); }
      else plot.setData(data(last));
    },
    resize() { if (plot) plot.setSize({ width: Math.max(140, box.clientWidth || 320), height }); },
    rebuild(newSeries) { if (newSeries) series = newSeries; if (plot) { plot.destroy(); plot = null; } chart.update(last); },
  };
  addEventListener("resize", () => chart.resize());
  return chart;
}

/** The x range (s) for rows of per-minute figures: at least five minutes wide. */
function xRange(rows) {
  if (!rows.length) { const now = Date.now() / 1000; return [now - 300, now]; }
  const lo = rows[0].start / 1000 - 30, hi = rows[rows.length - 1].start / 1000 + 90;
  return [lo, Math.max(hi, lo + 300)];
}

/** A money map {KRW: 12900, USD: 500} as one line ("₩12,900 + $5.00"), "0" when empty. */
export function moneyLine(map, money) {
  const entries = Object.entries(map || {}).filter(([, v]) => v);
  return entries.length ? entries.map(([c, v]) => money(v, c)).join(" + ") : "0";
}

/** The server's analytics for a broadcast (host token); null when it cannot be read now. */
export async function fetchAnalytics(bc, token) {
  try {
    const r = await fetch(`/api/broadcasts/${encodeURIComponent(bc)}/analytics`, { headers: { Authorization: `Bearer ${token}` } });
    if (!r.ok) return { error: ((await r.json().catch(() => ({}))).error) || { code: "GENERIC" }, status: r.status };
    return await r.json();
  } catch (_) { return null; }
}

/** Events in the last 60 s from per-minute buckets: the current minute plus the share of the previous
 * one that still falls in the window (a sliding-window estimate that survives a reload). */
export function perMinute(rows, key, nowMs) {
  if (!rows || !rows.length) return 0;
  const cur = Math.floor(nowMs / 60000);
  const frac = (nowMs % 60000) / 60000;
  const byMin = new Map(rows.map((r) => [r.minute, r[key] || 0]));
  return Math.round((byMin.get(cur) || 0) + (byMin.get(cur - 1) || 0) * (1 - frac));
}
