// The player's live formats: the auction card (bid, max bid, timer, outbid, win and pay), the
// giveaway card (enter, commitment, the revealed draw) and the quiz results. Mounted by watch.js
// with its socket; builds its own DOM after the poll card so the page's HTML stays as it is.
import "./formats-strings.js";
import { onLang, t } from "./i18n.js";
import { $, ask, duration, el, money, newer, onSnapshot, rid, showError } from "./common.js";
import { toMinor } from "./formats-strings.js";

export function mountPlayerFormats({ socket, clock, errBox }) {
  const F = { auctions: new Map(), note: "", hold: null, paid: null, giveaway: null, entry: null, gwNote: "", quiz: null, quizOpen: null };
  window.hawkerFormats = F; // for debugging and the tests
  const anchor = $("#poll") || $("#confirmation");

  // ---- DOM ------------------------------------------------------------------------------------
  const auction = el("section", { id: "auction", class: "card", hidden: true, "aria-labelledby": "auction-title" },
    el("h2", { id: "auction-title" }),
    el("p", {}, el("span", { id: "auction-high-label" }), " ", el("strong", { id: "auction-high" }), " ",
      el("span", { id: "auction-leader", class: "pill" }), " ", el("span", { id: "auction-bids", class: "hint" })),
    el("p", { id: "auction-timer", class: "countdown", role: "timer" }),
    el("p", { id: "auction-state", class: "state", "aria-live": "polite" }),
    el("button", { id: "auction-bid", class: "btn primary", type: "button" }),
    el("form", { id: "auction-max-form", class: "row" },
      el("label", { class: "grow" }, el("span", { id: "auction-max-label" }), el("input", { name: "max", inputmode: "decimal", required: true })),
      el("button", { id: "auction-max-btn", class: "btn", type: "submit" })),
    el("form", { id: "auction-pay", hidden: true, autocomplete: "on" },
      ...["name", "email", "number", "exp", "cvc"].map((n) => el("label", {}, el("span", { "data-k": `checkout.${n === "number" ? "card" : n}` }),
        el("input", { name: n, required: true, ...(n === "email" ? { type: "email" } : {}) }))),
      el("button", { id: "auction-pay-btn", class: "btn primary", type: "submit" })),
    el("p", { id: "auction-paid", class: "card ok", role: "status", hidden: true }));
  const giveaway = el("section", { id: "giveaway", class: "card", hidden: true, "aria-labelledby": "giveaway-title" },
    el("h2", { id: "giveaway-title" }),
    el("p", { id: "giveaway-entries", class: "hint" }),
    el("p", { id: "giveaway-how", class: "hint" }),
    el("button", { id: "giveaway-enter", class: "btn primary", type: "button" }),
    el("p", { id: "giveaway-state", class: "state", "aria-live": "polite" }),
    el("p", { class: "hint" }, el("span", { id: "giveaway-commit-label" }), " ", el("code", { id: "giveaway-commit", style: "word-break:break-all" })),
    el("p", { class: "hint", id: "giveaway-seed-row", hidden: true }, el("span", { id: "giveaway-seed-label" }), " ", el("code", { id: "giveaway-seed", style: "word-break:break-all" })));
  const quiz = el("section", { id: "quiz", class: "card", hidden: true, "aria-labelledby": "quiz-title" },
    el("h2", { id: "quiz-title" }), el("p", { id: "quiz-answer" }), el("p", { id: "quiz-right", class: "hint" }),
    el("ol", { id: "quiz-ranking" }), el("h3", { id: "quiz-board-title" }), el("ol", { id: "quiz-board" }), el("p", { id: "quiz-me", class: "hint" }));
  anchor.after(auction, giveaway, quiz);

  // ---- auctions ---------------------------------------------------------------------------------
  const current = () => {
    const all = [...F.auctions.values()].filter((a) => a.state !== "cancelled");
    return all.find((a) => a.state === "live") || all.find((a) => a.state === "scheduled") || all[all.length - 1] || null;
  };
  const put = (a) => { const old = F.auctions.get(a.auction_id) || {}; F.auctions.set(a.auction_id, { ...old, ...a }); renderAuction(); };

  function renderAuction() {
    const a = current();
    auction.hidden = !a;
    if (!a) return;
    auction.dataset.auction = a.auction_id; auction.dataset.state = a.state;
    $("#auction-title").textContent = `${t("auction.title")} · ${a.title || ""}`;
    $("#auction-high-label").textContent = t("auction.high");
    $("#auction-high").textContent = money(a.high || a.start_price, a.currency);
    $("#auction-leader").textContent = a.leader || "";
    $("#auction-bids").textContent = t("auction.bids", { n: a.bids || 0 });
    const live = a.state === "live" && a.ends_at > clock.now();
    const bid = $("#auction-bid");
    bid.textContent = t("auction.bid", { p: money(a.min_next || a.start_price, a.currency) });
    bid.disabled = !live || !!a.leading;
    bid.hidden = a.state !== "live";
    $("#auction-max-label").textContent = t("auction.max");
    $("#auction-max-btn").textContent = t("auction.setmax");
    $("#auction-max-form").hidden = !(live || a.state === "scheduled");
    const st = $("#auction-state");
    if (a.state === "closed" || (a.result && a.state !== "live")) {
      st.textContent = a.result === "sold" ? t("auction.sold", { w: a.winner || "", p: money(a.price, a.currency) })
        : t(a.result === "reserve_not_met" ? "auction.reserve" : "auction.nobids");
    } else if (a.state === "scheduled") {
      st.textContent = a.my_prebid ? t("auction.prebid", { p: money(a.my_prebid, a.currency) }) : t("auction.soon");
    } else {
      st.textContent = a.leading ? t("auction.leading") : F.note;
    }
    st.dataset.leading = a.leading ? "1" : "0";
    const h = F.hold && F.hold.auction_id === a.auction_id ? F.hold : null;
    $("#auction-pay").hidden = !h || !!F.paid;
    if (h && !F.paid) {
      st.textContent = t(h.second_chance ? "auction.second" : "auction.won", { p: money(h.price, h.currency) });
      for (const lab of auction.querySelectorAll("[data-k]")) lab.textContent = t(lab.dataset.k);
      $("#auction-pay-btn").textContent = t("auction.pay", { p: money(h.price, h.currency) });
    }
    const paid = $("#auction-paid");
    paid.hidden = !F.paid;
    if (F.paid) paid.textContent = t("auction.paid", { id: F.paid.id });
    tickAuction();
  }
  function tickAuction() {
    const a = current();
    const timer = $("#auction-timer");
    if (!a || a.state !== "live" || !a.ends_at) { timer.textContent = ""; timer.dataset.leftMs = "0"; return; }
    const left = Math.max(0, a.ends_at - clock.now());
    timer.dataset.leftMs = String(Math.round(left)); timer.dataset.endsAt = String(a.ends_at);
    timer.textContent = t("auction.ends", { t: duration(left) });
    if (left <= 0) $("#auction-bid").disabled = true;
  }
  setInterval(tickAuction, 250);

  async function answer(a, ack) {
    if (ack.ok) {
      put({ auction_id: a.auction_id, high: ack.high, bids: ack.bids, min_next: ack.min_next, leading: ack.leading,
        ends_at: ack.ends_at || a.ends_at, v: Math.max(a.v || 0, ack.v), ...(ack.kind === "pre" ? { my_prebid: ack.max } : {}) });
      F.note = ack.leading ? "" : t("auction.behind"); renderAuction();
    } else {
      if (ack.error && ack.error.code === "BID_TOO_LOW" && ack.error.min) put({ auction_id: a.auction_id, min_next: ack.error.min });
      if (ack.error && ack.error.code === "OWN_HIGH_BID") put({ auction_id: a.auction_id, leading: true });
      showError(errBox, ack.error);
    }
  }
  $("#auction-bid").addEventListener("click", async () => {
    const a = current(); if (!a) return;
    const btn = $("#auction-bid"); btn.disabled = true;
    try { await answer(a, await ask(socket, "auction.bid", { auction_id: a.auction_id, next: true, request_id: rid() })); }
    finally { renderAuction(); }
  });
  $("#auction-max-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const a = current(); if (!a) return;
    const max = toMinor(new FormData(e.target).get("max"), a.currency);
    if (!(max > 0)) { showError(errBox, "VALIDATION"); return; }
    await answer(a, await ask(socket, "auction.max_bid", { auction_id: a.auction_id, max, request_id: rid() }));
  });
  $("#auction-pay").addEventListener("submit", async (e) => {
    e.preventDefault();
    const h = F.hold; if (!h) return;
    const f = new FormData(e.target);
    h.payKey = h.payKey || rid();
    const btn = $("#auction-pay-btn"); btn.disabled = true; btn.textContent = t("checkout.paying");
    const ack = await ask(socket, "checkout.pay", { sale_id: h.sale_id, reservation_id: h.reservation_id, idempotency_key: h.payKey,
      card: { number: String(f.get("number")).replace(/\s+/g, ""), exp: f.get("exp"), cvc: f.get("cvc") },
      contact: { name: f.get("name"), email: f.get("email") } });
    btn.disabled = false;
    if (ack.ok && ack.order) { F.paid = ack.order; } else { showError(errBox, ack.error); if (ack.error && ack.error.code !== "PAYMENT_TIMEOUT") h.payKey = null; }
    renderAuction();
  });

  socket.on("auction.created", ({ auction: a }) => put(a));
  socket.on("auction.started", ({ auction: a }) => put(a));
  socket.on("auction.cancelled", ({ auction_id }) => put({ auction_id, state: "cancelled" }));
  socket.on("auction.extended", ({ auction_id, ends_at, v }) => {
    const a = F.auctions.get(auction_id);
    if (a && ends_at > (a.ends_at || 0)) { put({ auction_id, ends_at, v: Math.max(a.v || 0, v) }); F.note = t("auction.extended"); renderAuction(); }
  });
  socket.on("auction.outbid", ({ auction_id, high, min_next, v }) => {
    const a = F.auctions.get(auction_id) || {};
    put({ auction_id, leading: false, ...(v >= (a.v || 0) ? { high, min_next, v } : {}) });
    F.note = t("auction.outbid"); renderAuction();
    $("#auction-state").dataset.outbid = "1";
  });
  socket.on("auction.won", (w) => { put({ auction_id: w.auction_id, state: "closed", result: w.result, price: w.price, winner: w.winner, leading: false }); });
  socket.on("auction.hold", (h) => { F.hold = h; F.paid = null; renderAuction(); });
  socket.on("tick", (tick) => {
    for (const [key, val] of Object.entries(tick.levels || {})) {
      if (key.startsWith("auction:")) {
        const a = F.auctions.get(val.auction_id);
        if (a && newer({ v: a.v }, val)) put(val); // `leading` stays: the private auction.outbid ends it
      } else if (key.startsWith("giveaway:") && F.giveaway && F.giveaway.giveaway_id === val.giveaway_id) {
        F.giveaway.entries = val.entries; renderGiveaway();
      }
    }
  });

  // ---- giveaways --------------------------------------------------------------------------------
  function renderGiveaway() {
    const g = F.giveaway;
    giveaway.hidden = !g || g.state === "cancelled";
    if (!g) return;
    giveaway.dataset.state = g.state; giveaway.dataset.giveaway = g.giveaway_id;
    $("#giveaway-title").textContent = `${t("giveaway.title")} · ${g.title}`;
    $("#giveaway-entries").textContent = t("giveaway.entries", { n: g.entries || 0 });
    $("#giveaway-how").textContent = [g.keyword ? t("giveaway.keyword", { k: g.keyword }) : "", g.must_watch ? t("giveaway.watching") : ""].filter(Boolean).join(" · ");
    const enter = $("#giveaway-enter");
    enter.textContent = F.entry ? t("giveaway.entered") : t("giveaway.enter");
    enter.disabled = g.state !== "open" || !!F.entry;
    enter.hidden = g.state !== "open";
    $("#giveaway-commit-label").textContent = t("giveaway.commitment");
    $("#giveaway-commit").textContent = g.commitment;
    const seedRow = $("#giveaway-seed-row");
    seedRow.hidden = !g.seed;
    $("#giveaway-seed-label").textContent = t("giveaway.seed");
    $("#giveaway-seed").textContent = g.seed || "";
    const st = $("#giveaway-state");
    st.textContent = g.state === "drawn" ? (F.gwWon ? t("giveaway.won") : g.winner ? t("giveaway.winner", { w: g.winner }) : t("giveaway.none")) : F.gwNote;
  }
  $("#giveaway-enter").addEventListener("click", async () => {
    const g = F.giveaway; if (!g) return;
    const ack = await ask(socket, "giveaway.enter", { giveaway_id: g.giveaway_id });
    if (!ack.ok) { showError(errBox, ack.error); return; }
    F.entry = ack.entry; g.entries = ack.entries; F.gwNote = t("giveaway.entered"); renderGiveaway();
  });
  socket.on("giveaway.opened", (g) => { F.giveaway = g; F.entry = null; F.gwWon = false; F.gwNote = ""; renderGiveaway(); });
  socket.on("giveaway.entered", (e) => { if (F.giveaway && F.giveaway.giveaway_id === e.giveaway_id) { F.entry = e.entry; F.gwNote = t("giveaway.entered"); renderGiveaway(); } });
  socket.on("giveaway.drawn", (g) => { F.giveaway = g; renderGiveaway(); });
  socket.on("giveaway.won", (g) => { F.giveaway = g; F.gwWon = true; renderGiveaway(); });
  socket.on("giveaway.cancelled", () => { if (F.giveaway) F.giveaway.state = "cancelled"; renderGiveaway(); });

  // ---- quizzes ------------------------------------------------------------------------------------
  function renderQuiz() {
    const open = F.quizOpen, q = F.quiz;
    quiz.hidden = !open && !(q && q.last);
    if (quiz.hidden) return;
    $("#quiz-title").textContent = t("quiz.title");
    if (open) {
      quiz.dataset.state = "open";
      $("#quiz-answer").textContent = t("quiz.hint");
      for (const id of ["#quiz-right", "#quiz-me"]) $(id).textContent = "";
      $("#quiz-ranking").innerHTML = ""; $("#quiz-board").innerHTML = ""; $("#quiz-board-title").textContent = "";
      return;
    }
    const last = q.last;
    quiz.dataset.state = "closed";
    $("#quiz-answer").textContent = t("quiz.answer", { o: (last.options && last.options[last.correct]) || `#${last.correct + 1}` });
    $("#quiz-right").textContent = t("quiz.right", { n: last.right, m: last.answered });
    const rk = $("#quiz-ranking"); rk.innerHTML = "";
    for (const r of last.ranking || []) rk.appendChild(el("li", { text: `${r.name} · ${t("quiz.ms", { s: (r.ms / 1000).toFixed(1) })}` }));
    $("#quiz-board-title").textContent = t("quiz.board");
    const bd = $("#quiz-board"); bd.innerHTML = "";
    for (const r of q.leaderboard || []) bd.appendChild(el("li", { text: `${r.name} · ${r.correct}` }));
    $("#quiz-me").textContent = q.me ? t("quiz.me", { r: q.me.rank, c: q.me.correct }) : "";
  }
  socket.on("poll.opened", (p) => { F.quizOpen = p.quiz ? p : null; renderQuiz(); });
  socket.on("poll.closed", (p) => {
    if (F.quizOpen && F.quizOpen.id === p.id) F.quizOpen = null;
    if (p.results) { F.quiz = { ...(F.quiz || {}), last: { ...p.results, options: p.options }, leaderboard: p.results.leaderboard }; }
    renderQuiz();
  });

  onSnapshot(socket, (snap) => {
    F.auctions = new Map((snap.auctions || []).map((a) => [a.auction_id, a]));
    F.hold = null;
    for (const a of snap.auctions || []) if (a.my_hold) F.hold = a.my_hold;
    F.giveaway = snap.giveaway || null;
    F.entry = snap.giveaway ? snap.giveaway.my_entry : null;
    F.quiz = snap.quiz || null;
    F.quizOpen = snap.poll && snap.poll.quiz && snap.poll.state === "open" ? snap.poll : null;
    renderAuction(); renderGiveaway(); renderQuiz();
  });
  onLang(() => { renderAuction(); renderGiveaway(); renderQuiz(); });
}
