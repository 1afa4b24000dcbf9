// The studio's live formats: create / start / cancel auctions and follow their bids, open and draw
// a verifiable giveaway, launch a quiz and see its results. Mounted by studio.js with its socket;
// builds its own section so the page's HTML stays as it is.
import "./formats-strings.js";
import { onLang, t } from "./i18n.js";
import { $, ask, duration, el, money, newer, onSnapshot, rid, showError } from "./common.js";
import { toMinor } from "./formats-strings.js";

export function mountStudioFormats({ socket, clock, errBox, broadcast }) {
  const F = { auctions: new Map(), products: [], giveaway: null, quiz: null };
  window.hawkerFormats = F;
  const cmd = async (event, payload) => { const ack = await ask(socket, event, payload); if (!ack.ok) showError(errBox, ack.error); return ack; };
  const field = (name, key, attrs = {}) => el("label", {}, el("span", { "data-k": key }), el("input", { name, ...attrs }));

  const section = el("section", { id: "formats", "aria-labelledby": "h-auction" },
    el("h2", { id: "h-auction", "data-k": "auction.title" }),
    el("form", { id: "auction-form" },
      el("label", {}, el("span", { "data-k": "sale.product" }), el("select", { id: "auction-product", name: "product_id" })),
      field("start_price", "auction.start_price", { required: true, inputmode: "decimal", value: "1" }),
      field("duration_s", "auction.duration", { type: "number", min: "5", max: "3600", value: "30" }),
      field("counter_s", "auction.counter", { type: "number", min: "0", max: "60", value: "10" }),
      field("reserve", "auction.reserve_price", { inputmode: "decimal" }),
      el("label", {}, el("input", { name: "sudden_death", type: "checkbox", style: "width:auto;min-height:0" }), " ", el("span", { "data-k": "auction.sudden", style: "display:inline" })),
      el("button", { class: "btn primary", type: "submit", "data-k": "auction.create" })),
    el("ul", { id: "auctions", class: "plain" }),
    el("h2", { id: "h-giveaway", "data-k": "giveaway.title" }),
    el("form", { id: "giveaway-form" },
      field("title", "giveaway.name", { required: true, maxlength: "100" }),
      field("keyword", "giveaway.kw", { maxlength: "30" }),
      el("label", {}, el("input", { name: "must_watch", type: "checkbox", style: "width:auto;min-height:0" }), " ", el("span", { "data-k": "giveaway.mustwatch", style: "display:inline" })),
      el("button", { class: "btn primary", type: "submit", "data-k": "giveaway.open" })),
    el("div", { id: "giveaway-live", class: "card", hidden: true },
      el("h3", { id: "giveaway-live-title" }), el("p", { id: "giveaway-live-entries", class: "hint" }),
      el("p", { class: "hint" }, el("span", { "data-k": "giveaway.commitment" }), " ", el("code", { id: "giveaway-live-commit", style: "word-break:break-all" })),
      el("p", { id: "giveaway-live-winner", class: "state" }),
      el("p", { class: "hint", id: "giveaway-live-seed-row", hidden: true }, el("span", { "data-k": "giveaway.seed" }), " ", el("code", { id: "giveaway-live-seed", style: "word-break:break-all" })),
      el("p", { class: "hint", id: "giveaway-live-verify", hidden: true }),
      el("button", { id: "giveaway-draw", class: "btn primary", type: "button", "data-k": "giveaway.draw" }), " ",
      el("button", { id: "giveaway-cancel", class: "btn", type: "button", "data-k": "giveaway.cancel" })),
    el("h2", { id: "h-quiz", "data-k": "quiz.title" }),
    el("form", { id: "quiz-form" },
      el("label", {}, el("span", { "data-k": "poll.question" }), el("input", { name: "question", required: true, maxlength: "200" })),
      el("label", {}, el("span", { "data-k": "poll.options" }), el("textarea", { name: "options", rows: "3", required: true })),
      field("correct", "quiz.correct", { type: "number", min: "1", max: "6", value: "1", required: true }),
      field("duration_s", "poll.duration", { type: "number", min: "5", value: "30" }),
      el("button", { class: "btn primary", type: "submit", "data-k": "quiz.create" })),
    el("div", { id: "quiz-results", class: "card", hidden: true },
      el("p", { id: "quiz-results-answer" }), el("p", { id: "quiz-results-right", class: "hint" }), el("ol", { id: "quiz-results-ranking" })));
  ($("#studio") || document.body).appendChild(section);
  const words = () => { for (const n of section.querySelectorAll("[data-k]")) n.textContent = t(n.dataset.k); };

  // ---- auctions -------------------------------------------------------------------------------
  const put = (a) => { F.auctions.set(a.auction_id, { ...(F.auctions.get(a.auction_id) || {}), ...a }); renderAuctions(); };
  function renderProducts() {
    const sel = $("#auction-product"); const keep = sel.value; sel.innerHTML = "";
    for (const p of F.products) sel.appendChild(el("option", { value: p.id, text: p.title }));
    if (keep) sel.value = keep;
  }
  function renderAuctions() {
    const ul = $("#auctions"); ul.innerHTML = "";
    for (const a of F.auctions.values()) {
      const result = a.state === "closed" ? (a.result === "sold" ? t("auction.sold", { w: a.winner || "", p: money(a.price, a.currency) })
        : t(a.result === "reserve_not_met" ? "auction.reserve" : "auction.nobids")) : a.state === "cancelled" ? t("auction.cancelled") : "";
      ul.appendChild(el("li", { "data-auction": a.auction_id, "data-state": a.state, class: "card" },
        el("b", { text: a.title || a.sku }), " ",
        el("span", { class: "high", text: money(a.high || a.start_price, a.currency) }), " ",
        el("span", { class: "pill leader", text: a.leader || "" }), " ",
        el("span", { class: "hint bids", text: t("auction.bids", { n: a.bids || 0 }) }), " ",
        el("span", { class: "countdown timer", role: "timer" }),
        el("p", { class: "state result", text: result }),
        a.state === "scheduled" ? el("button", { class: "btn small primary start", type: "button", text: t("auction.start"),
          onclick: async () => { const ack = await cmd("auction.start", { auction_id: a.auction_id }); if (ack.ok) put(ack.auction); } }) : null,
        a.state === "scheduled" ? el("button", { class: "btn small cancel", type: "button", text: t("auction.cancel"),
          onclick: async () => { const ack = await cmd("auction.cancel", { auction_id: a.auction_id }); if (ack.ok) put({ auction_id: a.auction_id, state: "cancelled" }); } }) : null));
    }
    tick();
  }
  function tick() {
    for (const li of document.querySelectorAll("#auctions li[data-auction]")) {
      const a = F.auctions.get(li.dataset.auction);
      const tm = li.querySelector(".timer");
      if (!a || a.state !== "live" || !a.ends_at) { tm.textContent = ""; continue; }
      const left = Math.max(0, a.ends_at - clock.now());
      tm.textContent = t("auction.ends", { t: duration(left) }); tm.dataset.leftMs = String(Math.round(left));
    }
  }
  setInterval(tick, 250);
  $("#auction-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const f = new FormData(e.target);
    const product = F.products.find((p) => p.id === f.get("product_id"));
    const cur = product ? product.currency : "USD";
    const payload = { product_id: f.get("product_id"), start_price: toMinor(f.get("start_price"), cur),
      duration_s: +f.get("duration_s"), counter_s: +f.get("counter_s"), sudden_death: f.get("sudden_death") === "on", request_id: rid() };
    if (f.get("reserve")) payload.reserve = toMinor(f.get("reserve"), cur);
    const ack = await cmd("auction.create", payload);
    if (ack.ok) put(ack.auction);
  });
  socket.on("auction.created", ({ auction: a }) => put(a));
  socket.on("auction.started", ({ auction: a }) => put(a));
  socket.on("auction.cancelled", ({ auction_id }) => put({ auction_id, state: "cancelled" }));
  socket.on("auction.extended", ({ auction_id, ends_at }) => { const a = F.auctions.get(auction_id); if (a && ends_at > (a.ends_at || 0)) put({ auction_id, ends_at }); });
  socket.on("auction.won", (w) => put({ auction_id: w.auction_id, state: "closed", result: w.result, price: w.price, winner: w.winner }));
  socket.on("tick", (tk) => {
    for (const [key, val] of Object.entries(tk.levels || {})) {
      if (key.startsWith("auction:")) { const a = F.auctions.get(val.auction_id); if (a && newer({ v: a.v }, val)) put(val); }
      if (key.startsWith("giveaway:") && F.giveaway && F.giveaway.giveaway_id === val.giveaway_id) { F.giveaway.entries = val.entries; renderGiveaway(); }
    }
  });

  // ---- giveaways ------------------------------------------------------------------------------
  function renderGiveaway() {
    const g = F.giveaway, box = $("#giveaway-live");
    box.hidden = !g || g.state === "cancelled";
    $("#giveaway-form").hidden = !!g && g.state === "open";
    if (!g) return;
    box.dataset.state = g.state; box.dataset.giveaway = g.giveaway_id;
    $("#giveaway-live-title").textContent = g.title;
    $("#giveaway-live-entries").textContent = t("giveaway.entries", { n: g.entries || 0 });
    $("#giveaway-live-commit").textContent = g.commitment;
    $("#giveaway-draw").hidden = g.state !== "open"; $("#giveaway-cancel").hidden = g.state !== "open";
    $("#giveaway-live-winner").textContent = g.state === "drawn" ? (g.winner ? t("giveaway.winner", { w: g.winner }) : t("giveaway.none")) : "";
    $("#giveaway-live-seed-row").hidden = !g.seed;
    $("#giveaway-live-seed").textContent = g.seed || "";
    const v = $("#giveaway-live-verify");
    v.hidden = g.state !== "drawn";
    v.textContent = `${t("giveaway.verify")} hawker giveaway verify --url ${location.origin} --broadcast ${broadcast()} --giveaway ${g.giveaway_id} --token <viewer token>`;
  }
  $("#giveaway-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const f = new FormData(e.target);
    const payload = { title: f.get("title"), must_watch: f.get("must_watch") === "on" };
    if (f.get("keyword")) payload.keyword = f.get("keyword");
    const ack = await cmd("giveaway.open", payload);
    if (ack.ok) { F.giveaway = ack.giveaway; renderGiveaway(); }
  });
  $("#giveaway-draw").addEventListener("click", async () => {
    const ack = await cmd("giveaway.draw", { giveaway_id: F.giveaway.giveaway_id });
    if (ack.ok) { F.giveaway = ack.giveaway; renderGiveaway(); }
  });
  $("#giveaway-cancel").addEventListener("click", async () => {
    const ack = await cmd("giveaway.cancel", { giveaway_id: F.giveaway.giveaway_id });
    if (ack.ok) { F.giveaway.state = "cancelled"; renderGiveaway(); $("#giveaway-form").hidden = false; }
  });
  socket.on("giveaway.opened", (g) => { F.giveaway = g; renderGiveaway(); });
  socket.on("giveaway.drawn", (g) => { F.giveaway = g; renderGiveaway(); });

  // ---- quizzes ---------------------------------------------------------------------------------
  $("#quiz-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const f = new FormData(e.target);
    const options = String(f.get("options")).split("\n").map((s) => s.trim()).filter(Boolean);
    const ack = await cmd("poll.create", { question: f.get("question"), options, correct: +f.get("correct") - 1, duration_s: +f.get("duration_s") });
    if (ack.ok) { F.quiz = null; $("#quiz-results").hidden = true; }
  });
  socket.on("poll.closed", (p) => {
    if (!p.results) return;
    F.quiz = p;
    $("#quiz-results").hidden = false;
    $("#quiz-results-answer").textContent = t("quiz.answer", { o: p.options[p.correct] });
    $("#quiz-results-right").textContent = t("quiz.right", { n: p.results.right, m: p.results.answered });
    const ol = $("#quiz-results-ranking"); ol.innerHTML = "";
    for (const r of p.results.ranking || []) ol.appendChild(el("li", { text: `${r.name} · ${t("quiz.ms", { s: (r.ms / 1000).toFixed(1) })}` }));
  });

  onSnapshot(socket, (snap) => {
    F.products = (snap.broadcast && snap.broadcast.products) || [];
    F.auctions = new Map((snap.auctions || []).map((a) => [a.auction_id, a]));
    F.giveaway = snap.giveaway || null;
    words(); renderProducts(); renderAuctions(); renderGiveaway();
  });
  socket.on("product.updated", ({ product }) => { const i = F.products.findIndex((p) => p.id === product.id); if (i >= 0) F.products[i] = product; else F.products.push(product); renderProducts(); });
  onLang(() => { words(); renderAuctions(); renderGiveaway(); });
  words();
}
