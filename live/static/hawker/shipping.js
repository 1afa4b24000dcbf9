// The shipping part of the player's checkout, shown only when the product ships: recipient, phone
// and an address laid out as the country writes it (Korea: postal code, road-name address, detail
// address). The server checks the same rules (checkout/shipping.py) and answers VALIDATION with
// field "shipping.<part>", which is marked on the form.
import { getLang, t } from "./i18n.js";
import { el } from "./common.js";

// part -> [label key, autocomplete]; per country: the parts in order and which are required
const PARTS = {
  name: ["ship.name", "shipping name"], phone: ["ship.phone", "shipping tel"],
  postal_code: ["ship.postal", "shipping postal-code"], region: ["ship.region", "shipping address-level1"],
  city: ["ship.city", "shipping address-level2"], line1: ["ship.line1", "shipping address-line1"],
  line2: ["ship.line2", "shipping address-line2"],
};
const LAYOUTS = {
  KR: { order: ["name", "phone", "postal_code", "line1", "line2"], required: ["postal_code"], labels: { line1: "ship.line1.kr", line2: "ship.line2.kr" }, postal: "\\d{5}" },
  US: { order: ["name", "phone", "line1", "line2", "city", "region", "postal_code"], required: ["city", "region", "postal_code"], labels: { region: "ship.state", postal_code: "ship.zip" }, postal: "\\d{5}(-\\d{4})?" },
  JP: { order: ["name", "phone", "postal_code", "region", "city", "line1", "line2"], required: ["postal_code", "region", "city"], labels: { region: "ship.prefecture" }, postal: "\\d{3}-?\\d{4}" },
  "*": { order: ["name", "phone", "line1", "line2", "city", "region", "postal_code"], required: ["city"], labels: {} },
};
const COUNTRIES = ["KR", "US", "JP", "CA", "GB", "DE", "FR", "AU", "SG", "TW", "CN"];
const REQUIRED_EXTRA = { CA: ["postal_code", "city", "region"], GB: ["postal_code", "city"], DE: ["postal_code", "city"], FR: ["postal_code", "city"],
  AU: ["postal_code", "city", "region"], SG: ["postal_code"], TW: ["postal_code", "city"], CN: ["postal_code", "region", "city"] };

export function shippingForm(form, before, defaultCountry) {
  const box = el("fieldset", { id: "shipping", class: "shipping", hidden: true });
  before.before(box);
  let country = defaultCountry || (getLang() === "ko" ? "KR" : "US");
  let shown = false;
  const values = {};

  function layout() {
    const base = LAYOUTS[country] || LAYOUTS["*"];
    return { ...base, required: REQUIRED_EXTRA[country] || base.required };
  }
  function countryName(c) {
    try { return new Intl.DisplayNames([getLang()], { type: "region" }).of(c); } catch (_) { return c; }
  }
  function render() {
    for (const inp of box.querySelectorAll("input")) values[inp.name.slice(5)] = inp.value; // keep what was typed
    box.innerHTML = "";
    const lay = layout();
    box.appendChild(el("legend", { text: t("ship.title") }));
    const sel = el("select", { name: "ship_country", autocomplete: "shipping country", onchange: (e) => { country = e.target.value; render(); } });
    for (const c of COUNTRIES) sel.appendChild(el("option", { value: c, text: countryName(c) }));
    sel.value = country;
    box.appendChild(el("label", {}, el("span", { text: t("ship.country") }), sel));
    for (const part of lay.order) {
      const req = ["name", "phone", "line1", ...lay.required].includes(part);
      const [key, auto] = PARTS[part];
      const input = el("input", { name: `ship_${part}`, autocomplete: auto, required: shown && req, value: values[part] || "",
        inputmode: part === "phone" ? "tel" : null, type: part === "phone" ? "tel" : "text",
        pattern: part === "postal_code" && lay.postal ? lay.postal : null, "data-part": part });
      box.appendChild(el("label", {}, el("span", { text: t((lay.labels || {})[part] || key) + (req ? "" : ` ${t("ship.optional")}`) }), input));
    }
  }
  render();
  return {
    /** Show the fields when the product ships (their `required` follows). */
    show(ships) { shown = !!ships; box.hidden = !shown; render(); },
    /** The `shipping` object for the payment, or null when the product does not ship. */
    value() {
      if (!shown) return null;
      const out = { country };
      for (const inp of box.querySelectorAll("input")) if (inp.value.trim()) out[inp.dataset.part] = inp.value.trim();
      return out;
    },
    /** Mark the part a VALIDATION answer names ("shipping.postal_code"). */
    invalid(field) {
      for (const inp of box.querySelectorAll("input")) inp.removeAttribute("aria-invalid");
      if (!field || !field.startsWith("shipping.")) return;
      const inp = box.querySelector(`input[data-part='${field.slice(9)}']`);
      if (inp) { inp.setAttribute("aria-invalid", "true"); inp.focus(); }
    },
    relabel: render,
  };
}
