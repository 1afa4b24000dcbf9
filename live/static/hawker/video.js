// Player video: WebRTC negotiated over the socket (webrtc.offer, same path as WHEP), falling back to
// HLS (hls.js, served locally) when the server says mode "hls", answers USE_HLS, or WebRTC fails.
import { ask } from "./common.js";

function gathered(pc, ms = 5000) {
  return new Promise((resolve) => {
    if (pc.iceGatheringState === "complete") return resolve();
    const done = () => { if (pc.iceGatheringState === "complete") resolve(); };
    pc.addEventListener("icegatheringstatechange", done);
    setTimeout(resolve, ms);
  });
}

let hlsLoading = null;
function loadHls() {
  if (window.Hls) return Promise.resolve(window.Hls);
  if (!hlsLoading) {
    hlsLoading = new Promise((resolve, reject) => {
      const s = document.createElement("script");
      s.src = "/static/vendor/hls.min.js";
      s.onload = () => resolve(window.Hls);
      s.onerror = reject;
      document.head.appendChild(s);
    });
  }
  return hlsLoading;
}

// WebRTC unless the node says HLS; a node that does not hold the publish serves WebRTC too when it
// pulls the broadcast from the origin (cascade: true), else only HLS (elsewhere without cascade).
function playsWebrtcHere(media) {
  return media.mode !== "hls" && (!media.elsewhere || media.cascade === true);
}

export class Player {
  constructor(video, socket, onStatus) {
    this.video = video; this.socket = socket; this.onStatus = onStatus;
    this.pc = null; this.hls = null; this.kind = null; this.busy = false;
  }

  async update(media) {
    if (!media || !media.live) { this.stalled = false; this.stop(); this.onStatus("waiting"); return; }
    // "stalled": the host's media stopped (network, a studio reload). Keep the connection: the
    // server holds the viewers and they continue when the host comes back (or it ends the show).
    if (media.state === "stalled") { this.stalled = true; this.onStatus("stalled"); return; }
    if (this.stalled) { this.stalled = false; if (this.kind) this.onStatus(this.kind); }
    if (this.busy) return;
    if (!playsWebrtcHere(media)) {
      if (this.kind !== "hls") await this.playHls(media.hls_url);
      return;
    }
    if (this.kind === "webrtc" && this.pc && ["connected", "connecting", "new"].includes(this.pc.connectionState)) return;
    await this.playWebrtc(media);
  }

  async playWebrtc(media) {
    this.busy = true;
    try {
      this.stop();
      const iceAck = await ask(this.socket, "webrtc.ice", {});
      const pc = new RTCPeerConnection({ iceServers: iceAck.ok ? iceAck.ice_servers : [] });
      this.pc = pc; this.kind = "webrtc";
      pc.addTransceiver("video", { direction: "recvonly" });
      pc.addTransceiver("audio", { direction: "recvonly" });
      const stream = new MediaStream();
      pc.ontrack = (e) => { stream.addTrack(e.track); this.video.srcObject = stream; this.video.play().catch(() => {}); };
      pc.onconnectionstatechange = () => {
        if (pc === this.pc && pc.connectionState === "failed") this.playHls(media.hls_url);
      };
      await pc.setLocalDescription(await pc.createOffer());
      await gathered(pc);
      const ack = await ask(this.socket, "webrtc.offer", { sdp: pc.localDescription.sdp });
      if (!ack.ok) {
        const hls = (ack.error && ack.error.hls_url) || media.hls_url;
        if (ack.error && ack.error.code === "NOT_LIVE") { this.stop(); this.onStatus("waiting"); return; }
        await this.playHls(hls);
        return;
      }
      await pc.setRemoteDescription({ type: "answer", sdp: ack.sdp });
      this.onStatus("webrtc");
    } catch (_) {
      await this.playHls(media.hls_url);
    } finally {
      this.busy = false;
    }
  }

  async playHls(url) {
    this.stop();
    if (!url) { this.onStatus("waiting"); return; }
    this.kind = "hls";
    const v = this.video;
    const gen = (this.gen = (this.gen || 0) + 1);
    try {
      // The playlist answers 404 NO_PLAYLIST until the first segment is written: wait for it.
      for (let i = 0; i < 60; i++) {
        const r = await fetch(url, { cache: "no-store" }).catch(() => null);
        if (gen !== this.gen || this.kind !== "hls") return;
        if (r && r.ok) break;
        this.onStatus("waiting");
        await new Promise((res) => setTimeout(res, 1000));
      }
      const Hls = await loadHls();
      if (Hls && Hls.isSupported()) {
        const hls = new Hls({ liveSyncDurationCount: 2 });
        this.hls = hls;
        hls.loadSource(url);
        hls.attachMedia(v);
        hls.on(Hls.Events.MANIFEST_PARSED, () => v.play().catch(() => {}));
        hls.on(Hls.Events.ERROR, (_e, data) => { // a fatal error: start over in a moment
          if (data.fatal && this.hls === hls) setTimeout(() => { if (this.hls === hls) this.playHls(url); }, 2000);
        });
      } else if (v.canPlayType("application/vnd.apple.mpegurl")) {
        v.src = url; v.play().catch(() => {});
      } else { this.onStatus("failed"); return; }
      this.onStatus("hls");
    } catch (_) { this.onStatus("failed"); }
  }

  stop() {
    this.gen = (this.gen || 0) + 1;
    if (this.pc) { try { this.pc.close(); } catch (_) { /* closed */ } this.pc = null; ask(this.socket, "webrtc.close", {}, 3000); }
    if (this.hls) { this.hls.destroy(); this.hls = null; }
    if (this.video.srcObject) this.video.srcObject = null;
    if (this.kind === "hls") { this.video.removeAttribute("src"); this.video.load(); }
    this.kind = null;
  }
}
