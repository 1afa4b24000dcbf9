"""Real Chromium: a browser studio publishes over WHIP (fake camera), another tab plays over WHEP.

This is the interop check for the hand-built RTP of the fan-out loop and for the SDP we answer
browsers with (no REMB, one codec, MID + SSRC signalled)."""
from __future__ import annotations

import os

import pytest

from tests.media.conftest import wait_for

pytestmark = [pytest.mark.media, pytest.mark.browser, pytest.mark.slow]

CHROMIUM = os.environ.get("HAWKER_CHROMIUM", "/usr/bin/chromium")
ARGS = [
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
    # real host candidates instead of mDNS names (aioice would have to resolve *.local)
    "--disable-features=WebRtcHideLocalIpsWithMdns",
    "--no-sandbox",
]

PUBLISH_JS = """
async ([url, token, codec]) => {
  const stream = await navigator.mediaDevices.getUserMedia({video: {width: 320, height: 240, frameRate: 30}, audio: true});
  const pc = new RTCPeerConnection();
  const video = pc.addTransceiver(stream.getVideoTracks()[0], {direction: 'sendonly'});
  pc.addTransceiver(stream.getAudioTracks()[0], {direction: 'sendonly'});
  if (codec) {
    const caps = RTCRtpSender.getCapabilities('video').codecs.filter(c => c.mimeType === 'video/' + codec);
    if (!caps.length) return {status: 0, error: 'no ' + codec + ' in this browser'};
    video.setCodecPreferences(caps);
  }
  await pc.setLocalDescription(await pc.createOffer());
  await new Promise(r => { if (pc.iceGatheringState === 'complete') r(); else pc.onicegatheringstatechange = () => pc.iceGatheringState === 'complete' && r(); });
  const resp = await fetch(url, {method: 'POST', headers: {'Content-Type': 'application/sdp', 'Authorization': 'Bearer ' + token}, body: pc.localDescription.sdp});
  if (resp.status !== 201) return {status: resp.status, error: await resp.text()};
  await pc.setRemoteDescription({type: 'answer', sdp: await resp.text()});
  window.pub = pc;
  window.pubLocation = resp.headers.get('Location');
  return {status: resp.status, location: window.pubLocation};
}
"""

PLAY_JS = """
async ([url, token]) => {
  const pc = new RTCPeerConnection();
  pc.addTransceiver('video', {direction: 'recvonly'});
  pc.addTransceiver('audio', {direction: 'recvonly'});
  const v = document.createElement('video');
  v.muted = true; v.autoplay = true; v.playsInline = true;
  document.body.appendChild(v);
  const ms = new MediaStream();
  pc.ontrack = (e) => { ms.addTrack(e.track); v.srcObject = ms; v.play().catch(() => {}); };
  await pc.setLocalDescription(await pc.createOffer());
  await new Promise(r => { if (pc.iceGatheringState === 'complete') r(); else pc.onicegatheringstatechange = () => pc.iceGatheringState === 'complete' && r(); });
  const resp = await fetch(url, {method: 'POST', headers: {'Content-Type': 'application/sdp', 'Authorization': 'Bearer ' + token}, body: pc.localDescription.sdp});
  if (resp.status !== 201) return {status: resp.status, error: await resp.text()};
  await pc.setRemoteDescription({type: 'answer', sdp: await resp.text()});
  window.view = pc; window.videoEl = v;
  return {status: resp.status};
}
"""

STATS_JS = """
async () => {
  const out = {framesDecoded: 0, width: 0, height: 0, audioPackets: 0, state: window.view.connectionState};
  (await window.view.getStats()).forEach(s => {
    if (s.type === 'inbound-rtp' && s.kind === 'video') { out.framesDecoded = s.framesDecoded || 0; out.width = s.frameWidth || 0; out.height = s.frameHeight || 0; out.codec = s.codecId; }
    if (s.type === 'inbound-rtp' && s.kind === 'audio') { out.audioPackets = s.packetsReceived || 0; }
  });
  out.videoWidth = window.videoEl.videoWidth;
  return out;
}
"""


@pytest.fixture
async def browser(media_ip):
    if not os.path.exists(CHROMIUM):
        pytest.skip("no Chromium at " + CHROMIUM)
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        b = await p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield b
        await b.close()


@pytest.mark.parametrize("codec", ["VP8", "H264"])
async def test_chromium_publishes_over_whip_and_another_tab_plays_over_whep(browser, media_server, token, codec):
    media = media_server.app["node"].media
    studio = await browser.new_page()
    await studio.goto(media_server.url + "/healthz")  # a secure (loopback) origin for getUserMedia
    res = await studio.evaluate(PUBLISH_JS, [media_server.url + "/whip/b1", token("host", "b1"), codec])
    if res["status"] == 0:
        pytest.skip(res["error"])
    assert res["status"] == 201, res
    await wait_for(lambda: "b1" in media.publishers and media.publishers["b1"].stream.frames_in > 30, 60,
                   "frames from the browser studio")
    assert media.publishers["b1"].stream.info.video_codec.name == codec

    player = await browser.new_page()
    await player.goto(media_server.url + "/healthz")
    res = await player.evaluate(PLAY_JS, [media_server.url + "/whep/b1", token("viewer", "b1", "v1")])
    assert res["status"] == 201, res

    stats: dict = {}

    async def decoded() -> bool:
        nonlocal stats
        stats = await player.evaluate(STATS_JS)
        return stats["framesDecoded"] >= 30

    import asyncio
    import time

    deadline = time.monotonic() + 60
    while not await decoded():
        assert time.monotonic() < deadline, f"Chromium decoded no video: {stats}"
        await asyncio.sleep(0.5)
    assert stats["width"] > 0 and stats["height"] > 0
    assert stats["audioPackets"] > 0

    # the host stops: DELETE on the WHIP resource ends the viewer's connection too
    status = await studio.evaluate(
        "async ([url, token]) => (await fetch(url + window.pubLocation, {method: 'DELETE', headers: {Authorization: 'Bearer ' + token}})).status",
        [media_server.url, token("host", "b1")])
    assert status == 200
    await wait_for(lambda: media.viewer_count("b1") == 0 and "b1" not in media.publishers, 30, "the broadcast to end")
