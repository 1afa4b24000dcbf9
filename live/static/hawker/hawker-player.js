/* <hawker-player>: the Hawker player as a custom element for merchant sites (a classic script, so a
 * plain <script src> works from any origin). It frames /watch/<broadcast> of the Hawker server and
 * hands it the viewer token the merchant minted, in the URL fragment (never sent to servers/logs).
 *
 *   <script src="https://live.example.com/static/hawker/hawker-player.js"></script>
 *   <hawker-player server="https://live.example.com" broadcast="b1" token="eyJ..." lang="ko"></hawker-player>
 *
 * Attributes: server (default: this script's origin), broadcast (required), token (a viewer JWT;
 * may be set later - the player waits for it), lang ("en" | "ko", default: the browser's).
 */
(function () {
  "use strict";
  var scriptOrigin = (function () {
    try { return new URL(document.currentScript.src).origin; } catch (e) { return location.origin; }
  })();

  class HawkerPlayer extends HTMLElement {
    static get observedAttributes() { return ["server", "broadcast", "token", "lang"]; }

    connectedCallback() {
      if (!this.shadowRoot) {
        var root = this.attachShadow({ mode: "open" });
        root.innerHTML = "<style>:host{display:block;position:relative;width:100%;min-height:640px}" +
          "iframe{border:0;width:100%;height:100%;min-height:inherit;display:block}</style>";
        this._frame = document.createElement("iframe");
        this._frame.setAttribute("allow", "autoplay; fullscreen; picture-in-picture");
        this._frame.setAttribute("title", this.getAttribute("title") || "Live shopping player");
        root.appendChild(this._frame);
        var self = this;
        window.addEventListener("message", function (e) {
          if (e.source !== self._frame.contentWindow || !e.data || e.data.type !== "hawker:need-token") return;
          var tok = self.getAttribute("token");
          if (tok) self._frame.contentWindow.postMessage({ type: "hawker:token", token: tok }, self._origin());
        });
      }
      this._load();
    }

    attributeChangedCallback(name, oldValue, value) {
      if (!this._frame || oldValue === value) return;
      if (name === "token" && this._loaded && value) {
        this._frame.contentWindow.postMessage({ type: "hawker:token", token: value }, this._origin());
        return;
      }
      this._load();
    }

    _origin() { return (this.getAttribute("server") || scriptOrigin).replace(/\/+$/, ""); }

    _load() {
      var bc = this.getAttribute("broadcast");
      if (!bc) return;
      var url = this._origin() + "/watch/" + encodeURIComponent(bc);
      var lang = this.getAttribute("lang");
      if (lang) url += "?lang=" + encodeURIComponent(lang);
      var tok = this.getAttribute("token");
      if (tok) url += "#token=" + encodeURIComponent(tok);
      this._loaded = !!tok;
      this._frame.src = url;
    }
  }

  if (!customElements.get("hawker-player")) customElements.define("hawker-player", HawkerPlayer);
})();
