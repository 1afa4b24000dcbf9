// The viewer player: video, chat, hearts, polls, the pinned product with its flash sale, checkout.
import { applyI18n, errorText, langSwitcher, onLang, t } from "./i18n.js";
import { $, Clock, ask, claims, connect, duration, el, money, newer, onSnapshot, rid, showError } from "./common.js";
import { Player } from "./video.js";
import { socialProof } from "./proof.js";
import { shippingForm } from "./shipping.js";
import { shoppableReplay } from "./replay.js";
import { mountPlayerFormats } from "./formats-player.js";

const body = document.body;
const broadcast = JSON.parse(body.dataset.broadcast);
const demo = JSON.parse(body.dataset.demo);
const errBox = $("#error");
const clock = new Clock();
const S = { snap: null, sales: new Map(), poll: null, chat: [], hold: null, waitPos: null, order: null, pinned: null, heartsTotal: 0 };
window.hawker = S; // for debugging and the tests

// Who may hand this player a token over postMessage: HAWKER_EMBED_ORIGINS (["*"] = any, demo mode).
const embedOrigins = JSON.parse(body.dataset.embedOrigins || "[]");
const originAllowed = (o) => o === location.origin || embedOrigins.includes("*") || embedOrigins.includes(o);
function parentOrigin() {
  try { if (location.ancestorOrigins && location.ancestorOrigins.length) return location.ancestorOrigins[0]; } catch (_) { /* ignore */ }
  try { if (document.referrer) return new URL(document.referrer).origin; } catch (_) { /* ignore */ }
  return null;
}

/** The token: the URL fragment (`#token=`, never sent to a server), an old `?token=` link, storage,
 * a demo guest token, or - embedded - a `hawker:token` message from an allowed parent origin. */
async function getToken() {
  const params = new URLSearchParams(location.search);
  const key = `hawker.token.${broadcast}`;
  const hash = new URLSearchParams(location.hash.slice(1));
  const fromUrl = hash.get("token") || params.get("token") || "";
  if (hash.has("token") || params.has("token")) { // out of the address bar, history and any later Referer
    params.delete("token");
    const qs = params.toString();
    history.replaceState(null, "", location.pathname + (qs ? `?${qs}` : ""));
  }
  if (fromUrl) { try { sessionStorage.setItem(key, fromUrl); } catch (_) { /* ignore */ } return fromUrl; }
  try { const s = sessionStorage.getItem(key) || localStorage.getItem(key); if (s) { const c = claims(s); if (c && c.exp * 1000 > Date.now() + 60000) return s; } } catch (_) { /* ignore */ }
  if (demo) {
    const r = await fetch(`/api/guest-token?broadcast=${encodeURIComponent(broadcast)}`);
    if (r.ok) { const { token } = await r.json(); try { localStorage.setItem(key, token); } catch (_) { /* ignore */ } return token; }
  }
  // Embedded: the merchant page may hand a token over postMessage - only an allowed origin, only our parent.
  return await new Promise((resolve) => {
    window.addEventListener("message", (e) => {
      if (e.source !== window.parent || !originAllowed(e.origin) || !e.data || e.data.type !== "hawker:token") return;
      if (typeof e.data.token === "string" && e.data.token) resolve(e.data.token);
    });
    if (window.parent === window) { showError(errBox, "TOKEN_MISSING"); return; }
    const parent = parentOrigin();
    const need = { type: "hawker:need-token", broadcast };
    if (parent) {
      if (originAllowed(parent)) window.parent.postMessage(need, parent);
      else showError(errBox, "EMBED_NOT_ALLOWED");
    } else { // the parent's origin is unknown: ask each allowed origin (the browser delivers to the matching one)
      for (const o of embedOrigins) window.parent.postMessage(need, o);
    }
  });
}

const token = await getToken();
const me = claims(token) || {};
langSwitcher($("#lang"));
applyI18n(document);
const socket = connect(token);
mountPlayerFormats({ socket, clock, errBox }); // auctions, giveaways, quizzes (formats-player.js)
const video = new Player($("#video"), socket, (s) => {
  $("#video-status").textContent = s === "waiting" ? t("media.waiting") : s === "stalled" ? t("media.stalled")
    : s === "failed" ? errorText("VIDEO_FAILED") : "";
  $("#video-status").hidden = s === "webrtc" || s === "hls";
  body.dataset.video = s;
});

// --- connection --------------------------------------------------------------------------------
function setConn(state) { const c = $("#conn"); c.textContent = t(`conn.${state}`); c.dataset.state = state; }
setConn("connecting");
socket.on("connect", async () => { setConn("online"); await clock.sync(socket); });
socket.on("disconnect", (reason) => {
  setConn("offline");
  // The server ends a socket's WebRTC session with the socket: negotiate again after the snapshot.
  if (video.kind === "webrtc") { video.pc && video.pc.close(); video.pc = null; video.kind = null; }
  // The server closed us (graceful shutdown sends server.shutdown first): come back by ourselves.
  if (reason === "io server disconnect") setTimeout(() => socket.connect(), 500 + Math.random() * 1500);
});
socket.on("connect_error", (err) => {
  setConn("offline");
  const code = err && err.data && err.data.code;
  if (code) showError(errBox, code);
  if (["TOKEN_INVALID", "TOKEN_EXPIRED", "TOKEN_MISSING"].includes(code)) {
    try { localStorage.removeItem(`hawker.token.${broadcast}`); sessionStorage.removeItem(`hawker.token.${broadcast}`); } catch (_) { /* ignore */ }
  }
});
socket.on("server.shutdown", () => setConn("offline"));

onSnapshot(socket, (snap) => {
  S.snap = snap;
  S.sales = new Map((snap.sales || []).map((s) => [s.id, s]));
  S.poll = snap.poll;
  S.chat = snap.chat || [];
  S.pinned = snap.broadcast && snap.broadcast.pinned_product;
  S.hold = null;
  for (const sale of S.sales.values()) {
    for (const h of sale.my_holds || []) {
      if (h.state === "HELD" || h.state === "PAYING") S.hold = { ...h, sale_id: sale.id };
    }
  }
  if (snap.broadcast) { $("#title").textContent = snap.broadcast.title || t("app.title"); document.title = $("#title").textContent; }
  setTestMode(!(snap.checkout && snap.checkout.livemode === false));
  setViewers(snap.viewers);
  renderAll();
  video.update(snap.media);
  body.dataset.ready = "1";
});

// --- live events -------------------------------------------------------------------------------
socket.on("tick", (tick) => {
  if (tick.chat && tick.chat.length) { for (const m of tick.chat) addChat(m); }
  if (tick.hearts) { S.heartsTotal += tick.hearts; $("#hearts-count").textContent = `❤ ${S.heartsTotal}`; }
  if (tick.viewers !== undefined && tick.viewers !== null) setViewers(tick.viewers);
  for (const [key, val] of Object.entries(tick.levels || {})) {
    if (key.startsWith("stock:")) {
      const sale = S.sales.get(val.sale_id || key.slice(6));
      if (sale && newer(sale.levels, val)) { sale.levels = val; renderCard(); }
    } else if (key.startsWith("poll:") && S.poll && S.poll.id === (val.poll_id || key.slice(5))) {
      if (newer(S.poll._lv, val)) { S.poll.tallies = val.tallies; S.poll.total = val.total; S.poll._lv = val; renderPoll(); }
    }
  }
});
socket.on("chat.removed", ({ id }) => { S.chat = S.chat.filter((m) => m.id !== id); const li = document.getElementById(`m-${id}`); if (li) li.remove(); });
socket.on("chat.banned", () => showError(errBox, "BANNED"));
socket.on("chat.timeout", () => showError(errBox, "MUTED"));
socket.on("product.pinned", ({ product }) => { S.pinned = product; renderCard(); });
socket.on("poll.opened", (p) => { S.poll = p; renderPoll(); });
socket.on("poll.closed", (p) => { if (S.poll && S.poll.id === p.id) { S.poll = p; renderPoll(); } });
socket.on("sale.scheduled", ({ sale, levels }) => { S.sales.set(sale.id, { ...sale, levels, my_holds: [] }); renderCard(); });
socket.on("sale.open", ({ sale_id, levels }) => upd(sale_id, { state: "open", levels }));
socket.on("sale.soldout", ({ sale_id, levels }) => upd(sale_id, { soldout_at: Date.now(), levels }));
socket.on("sale.closed", ({ sale_id, levels }) => upd(sale_id, { state: "closed", levels }));
socket.on("hold.cancelled", ({ sale_id, levels }) => {
  if (S.hold && S.hold.sale_id === sale_id) { S.hold = null; $("#hold").hidden = true; }
  upd(sale_id, { levels }); $("#card-state").textContent = t("hold.cancelled");
});
socket.on("waitlist.cancelled", () => { S.waitPos = null; $("#card-state").textContent = t("waitlist.cancelled"); });
socket.on("hold.granted", ({ sale_id, reservation, levels }) => { S.hold = { ...reservation, sale_id }; S.waitPos = null; upd(sale_id, { levels }); $("#card-state").textContent = t("card.granted"); });
socket.on("media.state", (m) => video.update(m));
socket.on("broadcast.state", ({ state }) => { if (state === "ended") { $("#video-status").textContent = t("media.ended"); $("#video-status").hidden = false; } });
socket.on("broadcast.updated", (b) => { if (b && b.title) $("#title").textContent = b.title; });

/** Payments that move no money (the sandbox) say so, before and during checkout. */
function setTestMode(live) {
  $("#test-mode").hidden = live;
  $("#sandbox-hint").hidden = live;
  document.body.dataset.livemode = live ? "1" : "0";
}
function upd(id, changes) { const s = S.sales.get(id); if (s) { Object.assign(s, changes); renderCard(); } }
function setViewers(n) { if (typeof n === "number") $("#viewers").textContent = t("player.viewers", { n }); }

// --- chat --------------------------------------------------------------------------------------
function chatLine(m) {
  return el("li", { id: `m-${m.id}`, class: `msg ${m.kind || "chat"}`, "data-id": m.id },
    el("b", { text: m.name || m.user }), m.badge ? el("span", { class: "badge", text: m.badge }) : null, " ", el("span", { class: "text", text: m.text }));
}
function addChat(m) {
  if (m.removed || document.getElementById(`m-${m.id}`)) return;
  S.chat.push(m);
  const list = $("#chat-list");
  list.appendChild(chatLine(m));
  while (list.children.length > 200) list.firstChild.remove();
  list.scrollTop = list.scrollHeight;
}
function renderChat() { const list = $("#chat-list"); list.innerHTML = ""; for (const m of S.chat) if (!m.removed) list.appendChild(chatLine(m)); list.scrollTop = list.scrollHeight; }
$("#chat-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const input = $("#chat-input");
  const text = input.value.trim();
  if (!text) return;
  const ack = await ask(socket, "chat.send", { text, request_id: rid() });
  if (!ack.ok) { showError(errBox, ack.error); return; }
  input.value = "";
  addChat(ack.message);
  if (ack.order) {
    if (ack.order.ok) { S.hold = { ...ack.order.reservation, sale_id: ack.order.sale_id }; renderCard(); $("#card-state").textContent = t("chat.order.ok", { n: ack.order.qty }); }
    else showError(errBox, ack.order.error);
  }
});

// --- hearts ------------------------------------------------------------------------------------
$("#heart").addEventListener("click", async () => { const ack = await ask(socket, "hearts", { n: 1 }); if (!ack.ok) showError(errBox, ack.error); });
$("#unmute").addEventListener("click", () => { const v = $("#video"); v.muted = !v.muted; $("#unmute").textContent = t(v.muted ? "media.unmute" : "media.mute"); });

// --- poll --------------------------------------------------------------------------------------
function renderPoll() {
  const p = S.poll, box = $("#poll");
  if (!p) { box.hidden = true; return; }
  box.hidden = false;
  $("#poll-q").textContent = p.question + (p.state === "closed" ? ` (${t("poll.closed")})` : "");
  const total = p.total || (p.tallies || []).reduce((a, b) => a + b, 0);
  const wrap = $("#poll-options"); wrap.innerHTML = "";
  p.options.forEach((o, i) => {
    const n = (p.tallies || [])[i] || 0, pct = total ? Math.round((100 * n) / total) : 0;
    const b = el("button", { type: "button", class: `poll-opt${p.my_vote === i ? " mine" : ""}`, "aria-pressed": String(p.my_vote === i),
      "aria-label": `${t("poll.vote", { o })}: ${pct}%`, disabled: p.state === "closed", "data-option": i,
      onclick: () => vote(i) },
      el("span", { class: "fill", style: `width:${pct}%` }), el("span", { class: "label", text: o }), el("span", { class: "pct", text: `${pct}%` }));
    wrap.appendChild(b);
  });
  $("#poll-total").textContent = t("poll.votes", { n: total });
}
async function vote(i) {
  const ack = await ask(socket, "poll.vote", { poll_id: S.poll.id, option: i });
  if (!ack.ok) { showError(errBox, ack.error); return; }
  S.poll.my_vote = i; S.poll.tallies = ack.tallies; S.poll.total = ack.tallies.reduce((a, b) => a + b, 0); renderPoll();
}

// --- product card, sale, hold, checkout ---------------------------------------------------------
function currentSale() {
  if (S.hold) { const s = S.sales.get(S.hold.sale_id); if (s) return s; }
  const all = [...S.sales.values()].sort((a, b) => (a.created_at || 0) - (b.created_at || 0));
  if (body.dataset.replay === "1" && S.pinned) { // the replay: the card follows the chapter's product, ended sale or not
    const ofPinned = all.filter((s) => s.product_id === S.pinned.id);
    if (ofPinned.length) return ofPinned.find((s) => s.state !== "closed") || ofPinned.at(-1);
  }
  const live = all.filter((s) => s.state !== "closed");
  const pinnedLive = live.filter((s) => S.pinned && s.product_id === S.pinned.id);
  return pinnedLive.at(-1) || live.at(-1) || null;
}
function renderCard() {
  const sale = currentSale(), p = S.pinned, card = $("#buy-card");
  if (!sale && !p) { card.hidden = true; renderHold(); return; }
  card.hidden = false;
  const title = sale ? sale.title : p.title, img = sale ? sale.image_url : p.image_url;
  $("#card-title").textContent = title;
  const imgEl = $("#card-img"); if (img) { imgEl.src = img; imgEl.hidden = false; } else imgEl.hidden = true;
  $("#card-price").textContent = sale ? money(sale.price, sale.currency) : money(p.price, p.currency);
  const lv = sale && sale.levels;
  $("#card-left").textContent = lv ? `· ${t("card.left", { n: lv.available })}` : "";
  card.dataset.saleState = sale ? saleState(sale) : "none";
  tickCard();
  renderHold();
}
function saleState(sale) {
  if (sale.state === "closed") return "closed";
  if (clock.now() < sale.opens_at) return "countdown";
  if (sale.levels && sale.levels.available <= 0) return "soldout";
  return "open";
}
function tickCard() {
  const sale = currentSale();
  const buy = $("#buy"), cd = $("#card-countdown"), st = $("#card-state"), wl = $("#waitlist");
  if (!sale) { buy.hidden = true; cd.textContent = ""; wl.hidden = true; return; }
  const state = saleState(sale);
  $("#buy-card").dataset.saleState = state;
  buy.hidden = !!S.hold || state === "closed" || state === "soldout";
  buy.disabled = state !== "open";
  cd.textContent = state === "countdown" ? t("card.opens", { t: duration(sale.opens_at - clock.now()) }) : "";
  wl.hidden = !(state === "soldout" && !S.hold && S.waitPos === null);
  if (state === "soldout" && !S.hold) st.textContent = S.waitPos ? `${t("card.soldout")} - ${t("card.waitlisted", { n: S.waitPos })}` : t("card.soldout");
  else if (state === "closed") st.textContent = t("card.closed");
  else if (!S.hold && st.textContent === t("card.soldout")) st.textContent = "";
}
function renderHold() {
  const h = S.hold, box = $("#hold");
  if (!h || !["HELD", "PAYING"].includes(h.state)) { box.hidden = true; return; }
  const sale = S.sales.get(h.sale_id);
  box.hidden = false;
  $("#pay").textContent = t("checkout.pay", { p: sale ? money(sale.price * (h.qty || 1), sale.currency) : "" });
  showShipping(sale);
  tickHold();
}
function tickHold() {
  const h = S.hold;
  if (!h || $("#hold").hidden) return;
  const left = h.expires_at - clock.now();
  $("#hold-timer").textContent = t("hold.left", { t: duration(left) });
  $("#hold-timer").dataset.leftMs = String(Math.round(left));
  if (left <= 0) { S.hold = null; $("#hold").hidden = true; $("#card-state").textContent = t("hold.expired"); renderCard(); }
}
setInterval(() => { tickCard(); tickHold(); }, 250);

let buying = null;
$("#buy").addEventListener("click", async () => {
  const sale = currentSale();
  if (!sale || buying) return;
  buying = { request_id: rid() };
  $("#buy").disabled = true;
  try {
    let ack;
    for (let i = 0; i < 5; i++) { // a press a few ms early answers NOT_OPEN: retrying with the same id is safe
      ack = await ask(socket, "sale.reserve", { sale_id: sale.id, qty: 1, request_id: buying.request_id });
      if (ack.ok || !ack.error || ack.error.code !== "NOT_OPEN") break;
      await new Promise((r) => setTimeout(r, 200));
    }
    if (ack.ok) {
      S.hold = { ...ack.reservation, sale_id: sale.id };
      if (ack.levels) sale.levels = ack.levels;
      $("#card-state").textContent = "";
      renderCard();
      $("#checkout input[name=name]").focus();
    } else {
      if (ack.error && ack.error.levels) sale.levels = ack.error.levels;
      if (ack.error && ack.error.code === "SOLD_OUT") { sale.levels = { ...(sale.levels || {}), available: 0 }; }
      showError(errBox, ack.error);
      renderCard();
      $("#card-state").textContent = ack.error && ack.error.code === "SOLD_OUT" ? t("card.soldout") : errorText(ack.error);
    }
  } finally { buying = null; tickCard(); }
});
$("#waitlist").addEventListener("click", async () => {
  const sale = currentSale();
  const ack = await ask(socket, "sale.waitlist", { sale_id: sale.id, qty: 1 });
  if (!ack.ok) { showError(errBox, ack.error); return; }
  S.waitPos = ack.position; tickCard();
});
$("#release").addEventListener("click", async () => {
  const h = S.hold; if (!h) return;
  const ack = await ask(socket, "sale.release", { sale_id: h.sale_id, reservation_id: h.id });
  if (!ack.ok) showError(errBox, ack.error);
  S.hold = null; renderCard();
});
$("#checkout").addEventListener("submit", async (e) => {
  e.preventDefault();
  const h = S.hold; if (!h) return;
  const f = new FormData(e.target);
  const payload = { sale_id: h.sale_id, reservation_id: h.id,
    card: { number: String(f.get("number")).replace(/\s+/g, ""), exp: f.get("exp"), cvc: f.get("cvc") },
    contact: { name: f.get("name"), email: f.get("email") } };
  const ship = shippingUi().value(); if (ship) payload.shipping = ship;
  const pay = $("#pay"); pay.disabled = true; pay.textContent = t("checkout.paying");
  h.payKey = h.payKey || rid();
  try {
    const r = await fetch("/api/checkout", { method: "POST", body: JSON.stringify(payload),
      headers: { "Content-Type": "application/json", Authorization: `Bearer ${token}`, "Idempotency-Key": h.payKey } });
    const data = await r.json().catch(() => ({ error: { code: "GENERIC" } }));
    if (r.ok && data.order) {
      S.order = data.order; S.hold = null;
      if (data.order.livemode === false) setTestMode(false);
      $("#hold").hidden = true;
      const c = $("#confirmation"); c.hidden = false; c.textContent = t("checkout.done", { id: data.order.id }); c.dataset.orderId = data.order.id;
      renderCard();
    } else {
      showError(errBox, data.error);
      shippingUi().invalid(data.error && data.error.field);
      if (data.error && data.error.code && !["PAYMENT_DECLINED", "INSUFFICIENT_FUNDS", "REQUIRES_ACTION", "INVALID_CARD", "VALIDATION", "PAYMENT_TIMEOUT", "IDEMPOTENCY_IN_PROGRESS"].includes(data.error.code)) { S.hold = null; renderCard(); }
      if (data.error && data.error.code !== "PAYMENT_TIMEOUT") h.payKey = null; // a refusal is stored: pay again with a new key
    }
  } catch (_) { showError(errBox, "NETWORK"); }
  finally { pay.disabled = false; renderHold(); }
});

function renderAll() { renderChat(); renderPoll(); renderCard(); }
onLang(() => { renderAll(); setConn($("#conn").dataset.state || "connecting"); });

// --- social proof: "N sold", the "just bought" ticker, sold-out / back-in-stock chat lines (proof.js)
const proof = socialProof(socket, S, currentSale);
onLang(() => proof.renderSold());

// --- shipping: the checkout asks for an address and phone when the product ships (shipping.js) ---
// (function declarations: hoisted, so renderHold may call them whenever the first snapshot lands)
function shippingUi(sale) {
  const countryOf = { KRW: "KR", USD: "US", JPY: "JP", GBP: "GB", CAD: "CA", AUD: "AU", SGD: "SG", TWD: "TW", CNY: "CN" };
  if (!shippingUi.ui) shippingUi.ui = shippingForm($("#checkout"), $("#pay"), sale && countryOf[sale.currency]);
  return shippingUi.ui;
}
function showShipping(sale) {
  const products = (S.snap && S.snap.broadcast && S.snap.broadcast.products) || [];
  const p = sale && products.find((x) => x.id === sale.product_id);
  const ships = !!(p && p.ships);
  const ui = shippingUi(sale);
  if (ui.shown !== ships) { ui.shown = ships; ui.show(ships); }
}
onLang(() => shippingUi().relabel());

// --- the shoppable replay: after the show, the recording with its chat in sync, pins as chapters (replay.js)
shoppableReplay(socket, S, { setPinned: (p) => { S.pinned = p; renderCard(); }, renderChat });
