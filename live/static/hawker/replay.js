// The shoppable replay: once the show has ended and its recording is finished (a VOD playlist),
// the player plays it, replays the chat in sync with the video, lists the product pins as chapters
// to jump to, and keeps the product card (and Buy, for sales the host left open) on the product
// pinned at that moment of the show.
//
// Sync: chat messages carry the server time (ms) they were accepted; the playlist's
// #EXT-X-PROGRAM-DATE-TIME says when each segment was recorded. currentTime -> the segment it falls
// in -> its date + the offset into it = the moment of the show on screen; the chat shows what had
// been said by then.
import { t } from "./i18n.js";
import { $, ask, duration, el } from "./common.js";

/** Segments of a media playlist: [{start: s into the media, dur: s, pdt: ms | null}]. */
export function parsePlaylist(text) {
  const segs = [];
  let start = 0, dur = null, pdt = null;
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (line.startsWith("#EXTINF:")) dur = parseFloat(line.slice(8));
    else if (line.startsWith("#EXT-X-PROGRAM-DATE-TIME:")) {
      const iso = line.slice(25).replace(/([+-]\d\d)(\d\d)$/, "$1:$2"); // "+0000" -> "+00:00"
      const ms = Date.parse(iso);
      pdt = Number.isNaN(ms) ? null : ms;
    } else if (line && !line.startsWith("#") && dur !== null) {
      const prev = segs[segs.length - 1];
      if (pdt === null && prev && prev.pdt !== null) pdt = prev.pdt + prev.dur * 1000; // a tag may be missing
      segs.push({ start, dur, pdt });
      start += dur; dur = null; pdt = null;
    }
  }
  return segs;
}

/** The moment of the show (server ms) shown at media time `t` (s). */
export function wallAt(segs, t) {
  if (!segs.length) return null;
  let seg = segs[0];
  for (const s of segs) { if (s.start <= t) seg = s; else break; }
  return seg.pdt === null ? null : seg.pdt + (t - seg.start) * 1000;
}

/** The media time (s) that shows the moment `ms` of the show (clamped to the recording). */
export function mediaTimeOf(segs, ms) {
  if (!segs.length) return 0;
  let seg = segs[0];
  for (const s of segs) { if (s.pdt !== null && s.pdt <= ms) seg = s; else if (s.pdt !== null) break; }
  const last = segs[segs.length - 1];
  const tt = seg.start + Math.max(0, (ms - (seg.pdt ?? ms)) / 1000);
  return Math.min(Math.max(0, tt), last.start + last.dur - 0.1);
}

function loadHls() {
  if (window.Hls) return Promise.resolve(window.Hls);
  return new Promise((resolve, reject) => {
    const s = document.createElement("script");
    s.src = "/static/vendor/hls.min.js"; s.onload = () => resolve(window.Hls); s.onerror = reject;
    document.head.appendChild(s);
  });
}

/** Pages through `chat.history` (oldest first), bounded. */
async function wholeChat(socket, max = 5000) {
  const out = [], seen = new Set();
  let since = 0;
  while (out.length < max) {
    const ack = await ask(socket, "chat.history", { since, count: 1000 });
    if (!ack.ok) break;
    const fresh = (ack.messages || []).filter((m) => !seen.has(m.id));
    for (const m of fresh) { seen.add(m.id); out.push(m); }
    if (!fresh.length || (ack.messages || []).length < 1000) break;
    since = fresh[fresh.length - 1].ts;
  }
  return out.sort((a, b) => a.ts - b.ts);
}

export function shoppableReplay(socket, S, { setPinned, renderChat }) {
  const R = { on: false, segs: [], chat: [], chapters: [], shown: -1, chapter: null, hls: null };
  window.hawkerReplay = R; // for the tests
  const video = $("#video");

  async function start() {
    if (R.on || R.starting) return;
    R.starting = true;
    try {
      const info = await ask(socket, "replay.info", {});
      if (!info.ok || !info.ended || !info.playlist) return;
      const r = await fetch(info.playlist, { cache: "no-store" });
      if (!r.ok) return;
      R.segs = parsePlaylist(await r.text());
      R.chat = await wholeChat(socket);
      R.chapters = info.chapters || [];
      R.on = true;
      document.body.dataset.replay = "1";
      renderChapters();
      await play(info.playlist);
      sync();
    } finally { R.starting = false; }
  }

  async function play(url) {
    const Hls = await loadHls().catch(() => null);
    if (Hls && Hls.isSupported()) {
      R.hls = new Hls();
      R.hls.loadSource(url);
      R.hls.attachMedia(video);
    } else if (video.canPlayType("application/vnd.apple.mpegurl")) {
      video.src = url;
    }
    video.controls = true;
    video.play().catch(() => {});
  }

  function renderChapters() {
    let nav = $("#chapters");
    if (!nav) {
      nav = el("nav", { id: "chapters", class: "chapters", "aria-label": t("replay.chapters") });
      ($(".videobox") || video).after(nav);
    }
    nav.innerHTML = "";
    nav.appendChild(el("span", { class: "replay-badge", text: t("replay.badge") }));
    for (const c of R.chapters) {
      const at = mediaTimeOf(R.segs, c.at);
      nav.appendChild(el("button", { type: "button", class: "btn small chapter", "data-product": c.product_id, "data-t": at.toFixed(2),
        "aria-label": `${t("replay.jump")}: ${c.title}`, text: `${duration(at * 1000)} ${c.title}`,
        onclick: () => { video.currentTime = at; video.play().catch(() => {}); sync(); } }));
    }
  }

  function sync() {
    if (!R.on) return;
    const wall = wallAt(R.segs, video.currentTime || 0);
    if (wall === null) return;
    // the chat as it stood at that moment
    let n = 0;
    while (n < R.chat.length && R.chat[n].ts <= wall) n++;
    if (n !== R.shown) {
      R.shown = n;
      S.chat = R.chat.slice(Math.max(0, n - 200), n).filter((m) => !m.removed);
      renderChat();
    }
    // the product pinned at that moment
    let current = null;
    for (const c of R.chapters) if (c.at <= wall) current = c;
    const id = current ? current.product_id : null;
    if (id !== R.chapter) {
      R.chapter = id;
      const products = (S.snap && S.snap.broadcast && S.snap.broadcast.products) || [];
      const p = products.find((x) => x.id === id);
      if (p) setPinned(p);
    }
    R.wall = wall;
  }

  for (const ev of ["timeupdate", "seeked", "seeking"]) video.addEventListener(ev, sync);
  socket.on("snapshot", (snap) => {
    if (R.on) { R.shown = -1; R.chapter = null; sync(); return; } // a reconnect's snapshot: back to the replay's chat
    if (snap && snap.broadcast && snap.broadcast.state === "ended") start();
  });
  socket.on("broadcast.state", ({ state }) => { if (state === "ended") setTimeout(start, 3000); });
  return R;
}
