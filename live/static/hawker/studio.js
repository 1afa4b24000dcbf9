// The host studio: camera + WHIP publish, products and pins, flash sales, polls, chat moderation and
// a live dashboard. Everything goes over the hub socket except media (WHIP) and orders (REST).
import { applyI18n, errorText, langSwitcher, onLang, t } from "./i18n.js";
import { $, Clock, ask, claims, connect, el, money, newer, onSnapshot, rid, showError } from "./common.js";
import { fetchAnalytics, moneyLine, perMinute, timeChart } from "./charts.js";
import { mountStudioFormats } from "./formats-studio.js";

const errBox = $("#error");
const clock = new Clock();
const S = { snap: null, sales: new Map(), poll: null, chat: [], products: [], pinned: null, an: null, dead: 0, viewers: 0 };
window.hawker = S;
langSwitcher($("#lang"));
applyI18n(document);

// --- sign in -----------------------------------------------------------------------------------
// The link carries the token in its fragment (`/studio#token=...`: never sent to a server, a log or a
// Referer); an old `?token=` link still works (the server redacts it from its access log).
function session() {
  const q = new URLSearchParams(location.search), h = new URLSearchParams(location.hash.slice(1));
  const tok = h.get("token") || q.get("token");
  const bc = h.get("broadcast") || q.get("broadcast") || "";
  if (tok) { sessionStorage.setItem("hawker.host", JSON.stringify({ token: tok, broadcast: bc })); }
  if (tok || h.has("token") || q.has("token")) history.replaceState(null, "", location.pathname);
  try { return JSON.parse(sessionStorage.getItem("hawker.host") || "null"); } catch (_) { return null; }
}
const sess = session();
if (!sess) {
  $("#signin").hidden = false;
  $("#signin").addEventListener("submit", (e) => {
    e.preventDefault();
    sessionStorage.setItem("hawker.host", JSON.stringify({ token: $("#signin-token").value.trim(), broadcast: $("#signin-bc").value.trim() }));
    location.reload();
  });
} else {
  start(sess);
}
$("#signout").addEventListener("click", () => { sessionStorage.removeItem("hawker.host"); location.reload(); });

function start({ token, broadcast }) {
  const me = claims(token) || {};
  const bc = me.bc && me.bc !== "*" ? me.bc : broadcast;
  $("#studio").hidden = false; $("#signout").hidden = false;
  const socket = connect(token, me.bc === "*" ? bc : null);
  const setConn = (s) => { $("#conn").textContent = t(`conn.${s}`); $("#conn").dataset.state = s; };
  setConn("connecting");
  socket.on("connect", () => { setConn("online"); clock.sync(socket); });
  socket.on("disconnect", (reason) => { setConn("offline"); if (reason === "io server disconnect") setTimeout(() => socket.connect(), 500 + Math.random() * 1500); });
  socket.on("connect_error", (err) => {
    setConn("offline");
    const code = err && err.data && err.data.code;
    showError(errBox, code || "NETWORK");
    if (["TOKEN_INVALID", "TOKEN_EXPIRED", "TOKEN_MISSING", "FORBIDDEN", "BROADCAST_NOT_FOUND", "BROADCAST_REQUIRED"].includes(code)) {
      socket.disconnect(); sessionStorage.removeItem("hawker.host"); $("#signin").hidden = false; $("#studio").hidden = true;
      $("#signin").onsubmit = (e) => { e.preventDefault(); sessionStorage.setItem("hawker.host", JSON.stringify({ token: $("#signin-token").value.trim(), broadcast: $("#signin-bc").value.trim() })); location.reload(); };
    }
  });
  const cmd = async (event, payload) => { const ack = await ask(socket, event, payload); if (!ack.ok) showError(errBox, ack.error); return ack; };
  mountStudioFormats({ socket, clock, errBox, broadcast: () => (S.snap && S.snap.broadcast_id) || bc }); // formats-studio.js

  onSnapshot(socket, (snap) => {
    S.snap = snap;
    S.sales = new Map((snap.sales || []).map((s) => [s.id, s]));
    S.poll = snap.poll; S.chat = snap.chat || [];
    S.products = (snap.broadcast && snap.broadcast.products) || [];
    S.pinned = snap.broadcast && snap.broadcast.pinned;
    S.viewers = snap.viewers || 0;
    if (snap.broadcast) $("#title").textContent = `${t("studio.title")} · ${snap.broadcast.title}`;
    const cs = snap.chat_state || {};
    $("#slowmode").value = String(cs.slow_mode || 0); $("#commentbuy").checked = !!cs.comment_buy;
    renderAll();
    if (snap.media) showIngestWarnings(snap.media.live ? snap.media.warnings || [] : []);
    document.body.dataset.ready = "1";
  });
  socket.on("tick", (tick) => {
    for (const m of tick.chat || []) addChat(m);
    if (typeof tick.viewers === "number") S.viewers = tick.viewers;
    for (const [key, val] of Object.entries(tick.levels || {})) {
      if (key.startsWith("stock:")) { const s = S.sales.get(val.sale_id || key.slice(6)); if (s && newer(s.levels, val)) s.levels = val; }
      else if (key.startsWith("poll:") && S.poll && S.poll.id === (val.poll_id || key.slice(5)) && newer(S.poll._lv, val)) { S.poll.tallies = val.tallies; S.poll.total = val.total; S.poll._lv = val; }
    }
    renderLots(); renderPoll(); renderDash();
  });
  socket.on("chat.staff", ({ messages }) => { for (const m of messages || []) addChat(m); });
  socket.on("chat.removed", ({ id }) => { const m = S.chat.find((x) => x.id === id); if (m) m.removed = true; const li = document.getElementById(`m-${id}`); if (li) li.classList.add("removed"); });
  socket.on("chat.slowmode", ({ seconds }) => { $("#slowmode").value = String(seconds); });
  socket.on("chat.commentbuy", ({ enabled }) => { $("#commentbuy").checked = !!enabled; });
  socket.on("product.pinned", ({ product }) => { S.pinned = product && product.id; renderProducts(); });
  socket.on("product.updated", ({ product }) => { const i = S.products.findIndex((p) => p.id === product.id); if (i >= 0) S.products[i] = product; else S.products.push(product); renderProducts(); });
  socket.on("poll.opened", (p) => { S.poll = p; renderPoll(); });
  socket.on("poll.closed", (p) => { if (S.poll && S.poll.id === p.id) { S.poll = p; renderPoll(); } });
  socket.on("sale.scheduled", ({ sale, levels }) => { S.sales.set(sale.id, { ...sale, levels }); renderLots(); });
  for (const ev of ["sale.open", "sale.soldout", "sale.closed"]) {
    socket.on(ev, ({ sale_id, levels }) => { const s = S.sales.get(sale_id); if (s) { if (levels) s.levels = levels; if (ev === "sale.closed") s.state = "closed"; if (ev === "sale.open") s.state = "open"; } renderLots(); });
  }
  socket.on("media.state", (m) => {
    $("#onair").textContent = t(m.state === "stalled" ? "media.stalled.host" : m.live ? "media.live" : "media.offair");
    document.body.dataset.live = m.live ? "1" : "0"; document.body.dataset.media = m.state || (m.live ? "live" : "offline");
    showIngestWarnings(m.live ? m.warnings || [] : []);
  });
  socket.on("broadcast.state", ({ state }) => { if (S.snap && S.snap.broadcast) S.snap.broadcast.state = state; });

  // Encoder settings the server found on the ingest (B_FRAMES, KEYFRAME_INTERVAL_LONG, BITRATE_HIGH):
  // one sentence each, in the page's language, until the host publishes again with fixed settings.
  let ingestWarnings = [];
  function showIngestWarnings(codes) {
    ingestWarnings = codes;
    const ul = $("#ingest-warnings"); ul.innerHTML = "";
    for (const code of codes) ul.appendChild(el("li", { "data-warning": code, text: t(`media.warn.${code}`) }));
    ul.hidden = codes.length === 0;
  }
  onLang(() => showIngestWarnings(ingestWarnings));

  // --- products and pins ----------------------------------------------------------------------
  function renderProducts() {
    const ul = $("#products"); ul.innerHTML = "";
    const sel = $("#sale-product"); const keep = sel.value; sel.innerHTML = "";
    for (const p of S.products) {
      const pinned = S.pinned === p.id;
      ul.appendChild(el("li", { "data-product": p.id },
        el("span", {}, el("b", { text: p.title }), " ", el("span", { class: "hint", text: money(p.price, p.currency) })),
        el("button", { class: `btn small${pinned ? " primary" : ""}`, type: "button", "aria-pressed": String(pinned),
          "aria-label": `${t(pinned ? "products.unpin" : "products.pin")}: ${p.title}`, text: t(pinned ? "products.pinned" : "products.pin"),
          onclick: () => (pinned ? cmd("product.unpin", {}) : cmd("product.pin", { product_id: p.id })) })));
      sel.appendChild(el("option", { value: p.id, text: p.title }));
    }
    if (keep) sel.value = keep;
  }

  // --- sales ----------------------------------------------------------------------------------
  $("#sale-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const f = new FormData(e.target);
    const payload = { product_id: f.get("product_id"), units: +f.get("units"), limit: +f.get("limit"), hold_s: +f.get("hold_s"),
      opens_at: Math.round(clock.now() + 1000 * +f.get("countdown")), request_id: rid() };
    if (f.get("price") !== "") payload.price = +f.get("price");
    if (f.get("replay") === "on") payload.replay = true; // stays buyable in the replay after the show
    const ack = await cmd("sale.schedule", payload);
    if (ack.ok) { S.sales.set(ack.sale.id, { ...ack.sale, levels: ack.levels }); renderLots(); }
  });
  function renderLots() {
    const tb = $("#lots"); tb.innerHTML = "";
    for (const s of [...S.sales.values()].sort((a, b) => (a.created_at || 0) - (b.created_at || 0))) {
      const lv = s.levels || {};
      tb.appendChild(el("tr", { "data-sale": s.id, "data-state": s.state },
        el("td", { text: s.title }), el("td", { class: "available", text: lv.available ?? "" }), el("td", { class: "held", text: lv.held ?? "" }),
        el("td", { class: "sold", text: lv.sold ?? "" }), el("td", { class: "waitlist", text: lv.waitlist ?? "" }),
        el("td", {}, s.state === "closed" ? null : el("button", { class: "btn small", type: "button", "aria-label": `${t("sale.cancel")}: ${s.title}`, text: t("sale.cancel"),
          onclick: async () => { const a = await cmd("sale.cancel", { sale_id: s.id }); if (a.ok) { s.state = "closed"; renderLots(); } } }))));
    }
  }

  // --- polls ----------------------------------------------------------------------------------
  $("#poll-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const f = new FormData(e.target);
    const options = String(f.get("options")).split("\n").map((s) => s.trim()).filter(Boolean);
    const ack = await cmd("poll.create", { question: f.get("question"), options, duration_s: +f.get("duration_s") || 60 });
    if (ack.ok) { S.poll = ack.poll; renderPoll(); e.target.reset(); }
  });
  $("#poll-close").addEventListener("click", () => S.poll && cmd("poll.close", { poll_id: S.poll.id }));
  function renderPoll() {
    const p = S.poll, box = $("#poll-live");
    if (!p) { box.hidden = true; return; }
    box.hidden = false;
    $("#poll-q").textContent = p.question + (p.state === "closed" ? ` (${t("poll.closed")})` : "");
    const total = (p.tallies || []).reduce((a, b) => a + b, 0);
    const bars = $("#poll-bars"); bars.innerHTML = "";
    p.options.forEach((o, i) => {
      const n = (p.tallies || [])[i] || 0, pct = total ? Math.round((100 * n) / total) : 0;
      bars.appendChild(el("div", { class: "poll-opt", role: "meter", "aria-valuemin": "0", "aria-valuemax": "100", "aria-valuenow": String(pct), "aria-label": o, "data-option": i, "data-votes": n },
        el("span", { class: "fill", style: `width:${pct}%` }), el("span", { class: "label", text: o }), el("span", { class: "pct", text: `${n} · ${pct}%` })));
    });
    $("#poll-total").textContent = t("poll.votes", { n: total });
    $("#poll-close").hidden = p.state === "closed";
  }

  // --- chat and moderation --------------------------------------------------------------------
  function chatLine(m) {
    const who = m.name || m.user;
    const staff = m.role === "host" || m.role === "moderator";
    return el("li", { id: `m-${m.id}`, class: `msg ${m.kind || "chat"}${m.removed ? " removed" : ""}`, "data-id": m.id },
      el("b", { text: who }), m.badge ? el("span", { class: "badge", text: m.badge }) : null, " ", el("span", { class: "text", text: m.text }),
      el("span", { class: "mod" },
        el("button", { class: "btn small", type: "button", "aria-label": `${t("chat.delete")}: ${m.text}`, text: t("chat.delete"), onclick: () => cmd("chat.delete", { message_id: m.id }) }),
        staff ? null : el("button", { class: "btn small", type: "button", "aria-label": `${t("chat.timeout")}: ${who}`, text: "⏱", title: t("chat.timeout"), onclick: () => cmd("chat.timeout", { user: m.user, seconds: 300 }) }),
        staff ? null : el("button", { class: "btn small danger", type: "button", "aria-label": `${t("chat.ban")}: ${who}`, text: t("chat.ban"), onclick: () => cmd("chat.ban", { user: m.user }) })));
  }
  function addChat(m) {
    if (document.getElementById(`m-${m.id}`)) return;
    S.chat.push(m);
    const list = $("#chat-list"); list.appendChild(chatLine(m));
    while (list.children.length > 300) list.firstChild.remove();
    list.scrollTop = list.scrollHeight;
  }
  function renderChat() { const list = $("#chat-list"); list.innerHTML = ""; for (const m of S.chat) list.appendChild(chatLine(m)); list.scrollTop = list.scrollHeight; }
  $("#chat-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const text = $("#chat-input").value.trim(); if (!text) return;
    const ack = await cmd("chat.send", { text, request_id: rid() });
    if (ack.ok) { $("#chat-input").value = ""; addChat(ack.message); }
  });
  $("#slowmode").addEventListener("change", () => cmd("chat.slowmode", { seconds: +$("#slowmode").value }));
  $("#commentbuy").addEventListener("change", async () => { const a = await cmd("chat.commentbuy", { enabled: $("#commentbuy").checked }); if (!a.ok) $("#commentbuy").checked = !$("#commentbuy").checked; });

  // --- dashboard: the server's figures (GET /api/broadcasts/<id>/analytics), webhook failures ----
  // Orders, revenue, hearts/min and chat/min are the server's counts (every order of the show, from
  // every node, kept across reloads); viewers come live from the tick.
  const auth = { Authorization: `Bearer ${token}` };
  const dashCharts = setupDashCharts();
  async function pollFigures() {
    const rep = await fetchAnalytics(bc, token);
    if (rep && !rep.error) { S.an = rep; dashCharts.update(rep.minutes || []); showNamesSetting(rep.settings); }
    renderDash();
  }
  async function pollWebhooks() {
    try {
      const r = await fetch(`/api/webhooks/dead-letters?broadcast=${encodeURIComponent(bc)}`, { headers: auth });
      if (r.ok) S.dead = ((await r.json()).dead_letters || []).length;
    } catch (_) { /* ignore */ }
    renderDash();
  }
  setInterval(pollFigures, 2000); setInterval(pollWebhooks, 10000); pollFigures(); pollWebhooks();
  setInterval(renderDash, 1000);
  $("#report-link").href = `/studio/report/${encodeURIComponent(bc)}`;
  // social proof: may the player's "just bought" ticker show buyers' (masked) first names?
  let namesBusy = false;
  function showNamesSetting(settings) { if (settings && !namesBusy) $("#buyer-names").checked = settings.buyer_names !== false; }
  $("#buyer-names").addEventListener("change", async () => {
    namesBusy = true;
    const a = await cmd("proof.names", { enabled: $("#buyer-names").checked });
    if (!a.ok) $("#buyer-names").checked = !$("#buyer-names").checked;
    namesBusy = false;
  });
  socket.on("proof.names", ({ enabled }) => { $("#buyer-names").checked = !!enabled; });
  function setupDashCharts() {
    const viewers = timeChart($("#chart-viewers"), [{ label: t("report.viewers_peak"), value: (r) => r.viewers_peak }], { height: 120, timeLabel: t("report.time"), legend: false });
    const sales = timeChart($("#chart-sales"), [{ label: t("report.orders"), value: (r) => r.orders, bars: true }], { height: 120, timeLabel: t("report.time"), legend: false });
    return { update(rows) { viewers.update(rows); sales.update(rows); } };
  }
  function renderDash() {
    const an = S.an, show = (an && an.show) || {}, now = clock.now();
    $("#d-viewers").textContent = S.viewers;
    $("#d-hearts").textContent = an ? perMinute(an.minutes, "hearts", now) : 0;
    $("#d-chat").textContent = an ? perMinute(an.minutes, "chat", now) : 0;
    $("#d-orders").textContent = show.orders || 0;
    $("#d-revenue").textContent = moneyLine(show.revenue, money);
    $("#d-webhooks").textContent = S.dead;
  }

  // --- camera, preview, WHIP ------------------------------------------------------------------
  let stream = null, pc = null, whipLocation = null;
  async function openCamera() {
    if (stream) stream.getTracks().forEach((tr) => tr.stop());
    const cam = $("#camera").value, mic = $("#mic").value;
    try {
      stream = await navigator.mediaDevices.getUserMedia({
        video: cam ? { deviceId: { exact: cam }, width: 1280, height: 720 } : { width: 1280, height: 720 },
        audio: mic ? { deviceId: { exact: mic } } : true });
    } catch (_) { showError(errBox, "NO_CAMERA"); return null; }
    $("#preview").srcObject = stream;
    if (pc) { // live: swap the tracks without renegotiating
      for (const sender of pc.getSenders()) {
        const tr = stream.getTracks().find((x) => sender.track && x.kind === sender.track.kind);
        if (tr) sender.replaceTrack(tr);
      }
    }
    return stream;
  }
  async function listDevices() {
    const devs = await navigator.mediaDevices.enumerateDevices();
    for (const [sel, kind] of [[$("#camera"), "videoinput"], [$("#mic"), "audioinput"]]) {
      const keep = sel.value; sel.innerHTML = "";
      devs.filter((d) => d.kind === kind).forEach((d, i) => sel.appendChild(el("option", { value: d.deviceId, text: d.label || `${kind} ${i + 1}` })));
      if (keep) sel.value = keep;
    }
  }
  const cameraReady = (async () => { await openCamera(); await listDevices(); })();
  $("#camera").addEventListener("change", openCamera);
  $("#mic").addEventListener("change", openCamera);
  navigator.mediaDevices.addEventListener && navigator.mediaDevices.addEventListener("devicechange", listDevices);

  // Going live again while live (a reload, a dropped connection) is a host takeover: the server
  // replaces the old session at once and the viewers carry on. A reload resumes by itself.
  const liveKey = `hawker.publishing.${bc}`;
  async function goLive() {
    $("#golive").disabled = true; $("#onair").textContent = t("media.starting");
    try {
      if (!stream && !(await openCamera())) throw { code: "NO_CAMERA" };
      if (S.snap && S.snap.broadcast && S.snap.broadcast.state === "scheduled") {
        const a = await cmd("broadcast.start", {}); if (a.ok) S.snap.broadcast.state = "live";
      }
      const ice = await ask(socket, "webrtc.ice", {});
      if (pc) { pc.onconnectionstatechange = null; pc.close(); }
      const mine = pc = new RTCPeerConnection({ iceServers: ice.ok ? ice.ice_servers : [] });
      for (const tr of stream.getTracks()) pc.addTransceiver(tr, { direction: "sendonly", streams: [stream] });
      await pc.setLocalDescription(await pc.createOffer());
      await new Promise((r) => { if (pc.iceGatheringState === "complete") r(); pc.onicegatheringstatechange = () => pc.iceGatheringState === "complete" && r(); setTimeout(r, 5000); });
      const r = await fetch(`/whip/${encodeURIComponent(bc)}`, { method: "POST", headers: { ...auth, "Content-Type": "application/sdp" }, body: pc.localDescription.sdp });
      if (r.status !== 201) { const d = await r.json().catch(() => ({})); throw (d.error || { code: "GENERIC" }); }
      whipLocation = r.headers.get("Location");
      await pc.setRemoteDescription({ type: "answer", sdp: await r.text() });
      pc.onconnectionstatechange = () => { // the connection died under us: publish again (a takeover)
        if (pc === mine && mine.connectionState === "failed") setTimeout(() => pc === mine && goLive(), 1000);
      };
      sessionStorage.setItem(liveKey, "1");
      $("#onair").textContent = t("media.live"); $("#stopvideo").disabled = false; document.body.dataset.publishing = "1";
    } catch (err) {
      showError(errBox, err && err.code ? err : "GENERIC");
      if (pc) { pc.close(); pc = null; }
      $("#golive").disabled = false; $("#onair").textContent = t("media.offair");
    }
  }
  $("#golive").addEventListener("click", goLive);
  if (sessionStorage.getItem(liveKey) === "1") { // this tab was live before a reload: resume
    (async () => { await cameraReady; while (!S.snap) await new Promise((r) => setTimeout(r, 100)); if (stream) goLive(); })();
  }
  async function stopVideo() {
    sessionStorage.removeItem(liveKey);
    if (whipLocation) { await fetch(whipLocation, { method: "DELETE", headers: auth }).catch(() => {}); whipLocation = null; }
    if (pc) { pc.close(); pc = null; }
    $("#golive").disabled = false; $("#stopvideo").disabled = true; $("#onair").textContent = t("media.offair"); document.body.dataset.publishing = "0";
  }
  $("#stopvideo").addEventListener("click", stopVideo);
  $("#endshow").addEventListener("click", async () => { await stopVideo(); await cmd("broadcast.end", {}); });

  function renderAll() { renderProducts(); renderLots(); renderPoll(); renderChat(); renderDash(); }
  onLang(() => { renderAll(); setConn($("#conn").dataset.state || "connecting"); });
}
