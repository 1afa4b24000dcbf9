// Shared by the studio and the player: the socket, the server clock, acks, money and small DOM helpers.
import { errorText, getLang } from "./i18n.js";

export const $ = (sel, root = document) => root.querySelector(sel);

export function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") e.className = v;
    else if (k === "text") e.textContent = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children) if (c !== null && c !== undefined) e.append(c);
  return e;
}

/** The claims of a JWT (not verified here: the server does that). */
export function claims(token) {
  try {
    const b = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    return JSON.parse(decodeURIComponent(escape(atob(b + "===".slice((b.length + 3) % 4)))));
  } catch (_) { return null; }
}

/** Socket.IO with the msgpack parser (the server's default codec); reconnects by itself. */
export function connect(token, broadcast) {
  const auth = { token };
  if (broadcast) auth.broadcast = broadcast;
  // eslint-disable-next-line no-undef
  return io(location.origin, { auth, transports: ["websocket"], reconnectionDelayMax: 3000 });
}

async function askOnce(socket, event, payload, timeoutMs) {
  try {
    const ack = await socket.timeout(timeoutMs).emitWithAck(event, payload);
    return ack || { ok: false, error: { code: "GENERIC" } };
  } catch (_) {
    return { ok: false, error: { code: socket.connected ? "TIMEOUT" : "NETWORK" } };
  }
}

/** Codes that mean "the server could not serve this now": safe to send again (same request_id). */
export const RETRYABLE = new Set(["BUSY", "UNAVAILABLE"]);
/** Events that change nothing, so retrying them needs no request_id. */
const READ_ONLY = new Set(["time", "snapshot", "chat.history", "qa.list"]);

/** A wait before retry `attempt` (0-based): the server's retry_after, doubled each time, with
 * full jitter on top so a crowd told BUSY at once does not come back at once. */
export function backoffMs(retryAfter, attempt) {
  const base = Math.max(100, Number(retryAfter) || 250) * 2 ** attempt;
  return Math.min(8000, base + Math.random() * base);
}

/** emit with an ack; resolves to the ack object, or {ok:false,error:{code}} on timeout/disconnect.
 * BUSY / UNAVAILABLE answers are retried (up to `retries` times, backoff with jitter) when that is
 * safe: the payload carries a request_id, or the event changes nothing. */
export async function ask(socket, event, payload = {}, timeoutMs = 15000, retries = 4) {
  const safe = READ_ONLY.has(event) || (payload && typeof payload.request_id === "string");
  let ack = await askOnce(socket, event, payload, timeoutMs);
  for (let i = 0; safe && i < retries && !ack.ok && RETRYABLE.has(ack.error && ack.error.code); i++) {
    await new Promise((r) => setTimeout(r, backoffMs(ack.error.retry_after, i)));
    ack = await askOnce(socket, event, payload, timeoutMs);
  }
  return ack;
}

/** Join snapshots: `apply(snap)` for each. A snapshot the server could not make whole names its
 * missing parts in `partial`: those keep their last known value, and the whole snapshot is asked
 * for again after `retry_after` (so a buyer never loses sight of their hold). */
export function onSnapshot(socket, apply) {
  let last = null;
  let timer = null;
  const take = (snap) => {
    const merged = { ...snap };
    for (const name of snap.partial || []) {
      if (last && last[name] !== undefined && last[name] !== null) merged[name] = last[name];
    }
    last = merged;
    apply(merged);
    clearTimeout(timer);
    if (snap.partial && snap.partial.length) {
      let attempt = 0;
      const again = async () => {
        const ack = await ask(socket, "snapshot", {});
        if (ack.ok && ack.snapshot) take(ack.snapshot);
        else if (attempt++ < 6) timer = setTimeout(again, backoffMs(snap.retry_after, attempt));
      };
      timer = setTimeout(again, backoffMs(snap.retry_after, 0));
    }
  };
  socket.on("snapshot", take);
}

/** Server clock: offset from the best (smallest round trip) of N `time` samples. */
export class Clock {
  constructor() { this.offset = 0; this.rtt = Infinity; }
  now() { return Date.now() + this.offset; }
  async sync(socket, samples = 5) {
    let best = null;
    for (let i = 0; i < samples; i++) {
      const t0 = Date.now();
      const ack = await ask(socket, "time", {}, 5000);
      const t1 = Date.now();
      if (!ack.ok) continue;
      const rtt = t1 - t0;
      if (!best || rtt < best.rtt) best = { rtt, offset: ack.now - (t0 + t1) / 2 };
    }
    if (best) { this.offset = best.offset; this.rtt = best.rtt; }
    return this.offset;
  }
}

export function money(amount, currency) {
  const digits = { KRW: 0, JPY: 0 }[currency] ?? 2;
  try {
    return new Intl.NumberFormat(getLang() === "ko" ? "ko-KR" : "en-US", { style: "currency", currency })
      .format(amount / 10 ** digits);
  } catch (_) { return `${amount} ${currency}`; }
}

export function duration(ms) {
  const s = Math.max(0, Math.ceil(ms / 1000));
  const m = Math.floor(s / 60);
  return `${m}:${String(s % 60).padStart(2, "0")}`;
}

export function rid() {
  return (crypto.randomUUID ? crypto.randomUUID() : String(Math.random()).slice(2)).replace(/[^A-Za-z0-9_-]/g, "");
}

/** A polite live region that shows an error code as a sentence (never the raw code). */
export function showError(box, err) {
  box.textContent = errorText(err);
  box.hidden = false;
  box.dataset.code = (err && err.code) || (typeof err === "string" ? err : "GENERIC");
  clearTimeout(box._timer);
  box._timer = setTimeout(() => { box.hidden = true; }, 8000);
}

/** Keep the value with the highest `v` per key (batches from several nodes arrive in any order). */
export function newer(prev, next) {
  return !prev || prev.v === undefined || next.v === undefined || next.v >= prev.v;
}

/** Events per minute over a sliding 60 s window. */
export class Rate {
  constructor() { this.events = []; }
  add(n, now = Date.now()) { if (n > 0) this.events.push([now, n]); }
  perMin(now = Date.now()) {
    while (this.events.length && this.events[0][0] < now - 60000) this.events.shift();
    return this.events.reduce((a, [, n]) => a + n, 0);
  }
}
