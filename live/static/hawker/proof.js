// Social proof in the player, driven by events the page already gets (nothing new is asked of the
// server): "N sold" on the product card (the stock level's `sold`), the "Jiwoo just bought" ticker
// (the coalesced level `proof`: at most one name per tick), and system chat lines when a sale sells
// out or comes back in stock (level transitions, debounced so a hold that expires and is taken
// again at once does not flap the chat).
import { t } from "./i18n.js";
import { $, el, newer } from "./common.js";

const RESTOCK_SETTLE_MS = 1500;
const TICKER_MS = 5000;

export function socialProof(socket, S, currentSale) {
  const seen = new Map(); // sale id -> "in" | "out" (what the chat last said, or the first state seen)
  const pending = new Map(); // sale id -> timer of a "back in stock" line waiting to settle
  let lastProof = null, tickerTimer = null;

  // the elements, made here so the page's HTML stays the player's own
  const left = $("#card-left");
  const sold = el("span", { id: "card-sold", class: "sold-count" });
  if (left) left.after(" ", sold);
  const ticker = el("p", { id: "ticker", class: "ticker", role: "status", "aria-live": "polite", hidden: true });
  const box = $(".videobox") || document.body;
  box.appendChild(ticker);

  function renderSold() {
    const sale = currentSale();
    const n = sale && sale.levels ? sale.levels.sold : 0;
    sold.textContent = n > 0 ? `· ${t("proof.sold", { n })}` : "";
    sold.dataset.sold = String(n || 0);
  }

  function systemLine(key, sale) {
    const m = { id: `sys-${key}-${sale.id}-${Date.now()}`, kind: "system", user: "", name: "",
      text: t(key, { title: sale.title }), sale_id: sale.id, proof: key };
    S.chat.push(m);
    const list = $("#chat-list");
    if (!list) return;
    list.appendChild(el("li", { id: `m-${m.id}`, class: "msg system", "data-id": m.id, "data-proof": key, "data-sale": sale.id },
      el("span", { class: "text", text: m.text })));
    list.scrollTop = list.scrollHeight;
  }

  function observe(sale) {
    if (!sale || !sale.levels || sale.state === "closed") return;
    const now = sale.levels.available > 0 ? "in" : "out";
    const was = seen.get(sale.id);
    if (was === undefined) { seen.set(sale.id, now); return; } // the state we joined in: nothing to announce
    if (now === "out") {
      clearTimeout(pending.get(sale.id)); pending.delete(sale.id);
      if (was === "in") { seen.set(sale.id, "out"); systemLine("proof.soldout", sale); }
    } else if (was === "out" && !pending.has(sale.id)) {
      pending.set(sale.id, setTimeout(() => {
        pending.delete(sale.id);
        const s = S.sales.get(sale.id);
        if (s && s.levels && s.levels.available > 0 && s.state !== "closed" && seen.get(sale.id) === "out") {
          seen.set(sale.id, "in"); systemLine("proof.restock", s);
        }
      }, RESTOCK_SETTLE_MS));
    }
  }

  function showBought(p) {
    if (lastProof && !newer(lastProof, p)) return;
    lastProof = p;
    const sale = S.sales.get(p.sale_id);
    if (!sale) return;
    ticker.textContent = t("proof.bought", { name: p.name || t("proof.someone"), title: sale.title });
    ticker.dataset.sale = p.sale_id;
    ticker.hidden = false;
    clearTimeout(tickerTimer);
    tickerTimer = setTimeout(() => { ticker.hidden = true; }, TICKER_MS);
  }

  socket.on("tick", (tick) => {
    const levels = tick.levels || {};
    for (const key of Object.keys(levels)) {
      if (key.startsWith("stock:")) observe(S.sales.get(levels[key].sale_id || key.slice(6)));
    }
    if (levels.proof) showBought(levels.proof);
    renderSold();
  });
  socket.on("sale.soldout", ({ sale_id }) => { observe(S.sales.get(sale_id)); renderSold(); });
  socket.on("sale.open", ({ sale_id }) => { const s = S.sales.get(sale_id); if (s && !seen.has(sale_id) && s.levels) seen.set(sale_id, s.levels.available > 0 ? "in" : "out"); renderSold(); });
  socket.on("snapshot", () => { for (const s of S.sales.values()) if (!seen.has(s.id) && s.levels) seen.set(s.id, s.levels.available > 0 ? "in" : "out"); renderSold(); });
  setInterval(renderSold, 1000);
  return { renderSold };
}
