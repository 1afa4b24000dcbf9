"""Video signalling through the hub's command registry: `webrtc.offer` is the WHEP code path."""
from __future__ import annotations

import json

import pytest
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription

from live.hub.hub import Hub
from live.hub.registry import Caller
from live.media.signalling import register
from loadtest.media_clients import Publisher
from tests.media.conftest import wait_for

pytestmark = pytest.mark.media


class UrgentLog:
    """The fan-out's `urgent(broadcast, event, data)` entry point, recording what would be sent."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str, dict]] = []

    async def urgent(self, broadcast: str, event: str, data: dict) -> None:
        self.sent.append((broadcast, event, json.loads(json.dumps(data))))


@pytest.fixture
async def hub_and_media(media_server):  # type: ignore[no-untyped-def]
    app = media_server.app
    media = app["media"]
    hub = app["services"].parts.get("hub")
    if hub is None:  # the app has no hub yet: build the real Hub class around the app's sio/redis
        hub = Hub(sio=app["sio"], redis=app["redis"], fanout=UrgentLog(), secret=media_server.config.secret)
        register(hub, app["services"], media)
    return hub, media


async def _viewer_offer() -> tuple[RTCPeerConnection, str]:
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    pc.addTransceiver("video", direction="recvonly")
    pc.addTransceiver("audio", direction="recvonly")
    await pc.setLocalDescription(await pc.createOffer())
    return pc, pc.localDescription.sdp


async def test_webrtc_offer_over_the_hub_plays_and_media_state_is_urgent(hub_and_media, media_server, http, token):
    hub, media = hub_and_media
    caller = Caller(sid="sid-1", user="v1", name="V", role="viewer", broadcast="b1")
    hub._callers[caller.sid] = caller  # the socket has joined b1

    pc, offer = await _viewer_offer()
    ack = await hub.registry.dispatch(caller, "webrtc.offer", ({"sdp": offer},))
    assert ack["ok"] is False and ack["error"]["code"] == "NOT_LIVE"
    ack = await hub.registry.dispatch(caller, "webrtc.offer", ({"sdp": "garbage"},))
    assert ack["ok"] is False and ack["error"]["code"] == "INVALID_SDP"
    ack = await hub.registry.dispatch(caller, "webrtc.offer", ({},))
    assert ack["ok"] is False and ack["error"]["code"] == "VALIDATION"

    pub = Publisher(media_server.url, "b1", token("host", "b1"))
    await pub.start(http)
    fanout = hub.fanout
    if isinstance(fanout, UrgentLog):
        await wait_for(lambda: any(e == "media.state" and d["live"] for _, e, d in fanout.sent), 30, "media.state live")
        state = next(d for _, e, d in fanout.sent if e == "media.state" and d["live"])
        assert state["mode"] == "webrtc" and state["hls_url"] == "/hls/b1/index.m3u8" and state["codec"] == "VP8"

    ack = await hub.registry.dispatch(caller, "webrtc.offer", ({"sdp": offer},))
    assert ack["ok"] is True, ack
    assert ack["sdp"].startswith("v=0") and ack["session_id"]
    frames = 0

    @pc.on("track")
    def _on_track(track) -> None:  # type: ignore[no-untyped-def]
        async def consume() -> None:
            nonlocal frames
            while True:
                frame = await track.recv()
                if track.kind == "video":
                    assert (frame.width, frame.height) == (320, 240)
                    frames += 1

        import asyncio

        asyncio.ensure_future(consume())

    await pc.setRemoteDescription(RTCSessionDescription(sdp=ack["sdp"], type="answer"))
    await wait_for(lambda: frames >= 5, 60, "video over the hub-negotiated connection")
    assert media.viewers[ack["session_id"]].via == "hub"

    snapshot = await hub.registry.snapshot(caller)
    assert snapshot["media"]["live"] is True and snapshot["media"]["webrtc_viewers"] == 1

    close = await hub.registry.dispatch(caller, "webrtc.close", ({},))
    assert close == {"ok": True, "closed": True}
    await wait_for(lambda: media.viewer_count("b1") == 0, 30, "the hub session to close")
    await pc.close()

    await pub.stop(http)
    if isinstance(fanout, UrgentLog):
        await wait_for(lambda: any(e == "media.state" and not d["live"] for _, e, d in fanout.sent), 30,
                       "media.state down")
    hub._callers.pop(caller.sid, None)
