// The post-show report (/studio/report/<id>): the server's analytics as summary figures, a funnel,
// charts over the show (vendored uPlot) and a CSV download. Signs in with the studio's session
// (same origin: sessionStorage "hawker.host") or a `#token=` link.
import { applyI18n, langSwitcher, onLang, t } from "./i18n.js";
import { $, duration, el, money, showError } from "./common.js";
import { fetchAnalytics, moneyLine, timeChart } from "./charts.js";

const errBox = $("#error");
const bc = JSON.parse(document.body.dataset.broadcast || '""');
langSwitcher($("#lang"));
applyI18n(document);

function token() {
  const h = new URLSearchParams(location.hash.slice(1));
  if (h.get("token")) {
    sessionStorage.setItem("hawker.host", JSON.stringify({ token: h.get("token"), broadcast: bc }));
    history.replaceState(null, "", location.pathname);
  }
  try { return (JSON.parse(sessionStorage.getItem("hawker.host") || "null") || {}).token || null; } catch (_) { return null; }
}
const tok = token();
const R = { rep: null, charts: null };
window.hawkerReport = R;

const pct = (x) => (x === null || x === undefined ? "-" : `${(100 * x).toFixed(1)}%`);

function makeCharts() {
  return {
    viewers: timeChart($("#chart-viewers"), [
      { label: t("report.viewers_peak"), value: (r) => r.viewers_peak },
      { label: t("report.viewers_avg"), value: (r) => r.viewers_avg }], { timeLabel: t("report.time") }),
    sales: timeChart($("#chart-sales"), [
      { label: t("report.orders"), value: (r) => r.orders, bars: true },
      { label: t("report.units"), value: (r) => r.units }], { timeLabel: t("report.time") }),
    engagement: timeChart($("#chart-engagement"), [
      { label: t("report.chat"), value: (r) => r.chat },
      { label: t("report.hearts"), value: (r) => r.hearts },
      { label: t("report.votes"), value: (r) => r.votes }], { timeLabel: t("report.time") }),
  };
}

function render() {
  const rep = R.rep; if (!rep) return;
  const s = rep.show;
  $("#r-peak").textContent = s.viewers_peak;
  $("#r-unique").textContent = s.unique_viewers;
  $("#r-watch").textContent = s.avg_watch_s === null ? "-" : duration(s.avg_watch_s * 1000);
  $("#r-conversion").textContent = pct(s.conversion_rate);
  $("#r-orders").textContent = s.orders;
  $("#r-revenue").textContent = moneyLine(s.revenue, money);
  $("#r-aov").textContent = moneyLine(s.average_order_value, money);
  $("#r-refunds").textContent = s.refunds ? `${s.refunds} · ${moneyLine(s.refunded, money)}` : "0";
  const f = s.funnel, top = Math.max(1, f.viewers);
  const funnel = $("#funnel"); funnel.innerHTML = "";
  for (const [key, n] of [["report.viewers", f.viewers], ["report.reservers", f.reservers], ["report.buyers", f.buyers]]) {
    funnel.appendChild(el("div", { class: "step", "data-step": key.split(".")[1], "data-n": n },
      el("span", { class: "fill", style: `width:${Math.round((100 * n) / top)}%` }), el("span", { text: `${t(key)}: ${n}` })));
  }
  const tb = $("#sales"); tb.innerHTML = "";
  for (const x of rep.sales) {
    tb.appendChild(el("tr", { "data-sale": x.sale_id },
      el("td", { text: x.title || x.sale_id }), el("td", { class: "sold", text: `${x.sold} / ${x.units ?? "?"}` }),
      el("td", { text: pct(x.sell_through) }), el("td", { text: x.time_to_sellout_ms ? duration(x.time_to_sellout_ms) : "-" }),
      el("td", { text: `${x.holds.paid} / ${x.holds.expired}` }), el("td", { text: x.viewers_at_open ?? "-" }),
      el("td", { text: pct(x.conversion) }), el("td", { text: moneyLine(x.revenue, money) })));
  }
  $("#empty").hidden = rep.minutes.length > 0;
  if (!R.charts) R.charts = makeCharts();
  for (const c of Object.values(R.charts)) c.update(rep.minutes);
}

async function load() {
  if (!tok) { showError(errBox, "TOKEN_MISSING"); errBox.textContent = t("report.signin"); return; }
  const rep = await fetchAnalytics(bc, tok);
  if (!rep || rep.error) { showError(errBox, (rep && rep.error) || "NETWORK"); return; }
  R.rep = rep;
  $("#report").hidden = false;
  $("#title").textContent = `${t("report.title")} · ${bc}`;
  render();
  document.body.dataset.ready = "1";
}

$("#csv").addEventListener("click", async () => {
  try {
    const r = await fetch(`/api/broadcasts/${encodeURIComponent(bc)}/analytics?format=csv`, { headers: { Authorization: `Bearer ${tok}` } });
    if (!r.ok) { showError(errBox, ((await r.json().catch(() => ({}))).error) || "GENERIC"); return; }
    const url = URL.createObjectURL(await r.blob());
    const a = el("a", { href: url, download: `hawker-${bc}-analytics.csv` });
    document.body.appendChild(a); a.click(); a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10000);
  } catch (_) { showError(errBox, "NETWORK"); }
});

onLang(() => {
  $("#title").textContent = `${t("report.title")} · ${bc}`;
  for (const id of ["#chart-viewers", "#chart-sales", "#chart-engagement"]) $(id).innerHTML = "";
  R.charts = null; render();  // charts again with the labels of the new language
});
load();
