"""Video signalling over the hub with a real Socket.IO client: `webrtc.offer` is the WHEP code
path, `media.state` arrives as an urgent event, the join snapshot carries `media`."""
from __future__ import annotations

import asyncio

import pytest
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription

from loadtest.media_clients import Publisher, post_sdp
from shop.broadcasts import BroadcastStore
from tests.hub.conftest import Client
from tests.media.conftest import wait_for

pytestmark = pytest.mark.media


async def _viewer_offer() -> tuple[RTCPeerConnection, str]:
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    pc.addTransceiver("video", direction="recvonly")
    pc.addTransceiver("audio", direction="recvonly")
    await pc.setLocalDescription(await pc.createOffer())
    return pc, pc.localDescription.sdp


async def test_webrtc_offer_over_the_socket_plays_and_media_state_is_urgent(media_server, http, token, redis):
    media = media_server.app["node"].media
    await BroadcastStore(redis).ensure("b1", title="Show", host="h1")
    client = Client()
    await client.connect(media_server.url, token("viewer", "b1", "v1"))
    try:
        snapshot = await client.snapshot()
        assert snapshot["media"]["live"] is False and snapshot["media"]["mode"] == "hls"

        assert await client.call("webrtc.ice", {}) == {"ok": True, "ice_servers": []}
        pc, offer = await _viewer_offer()
        ack = await client.call("webrtc.offer", {"sdp": offer})
        assert ack["ok"] is False and ack["error"]["code"] == "NOT_LIVE"
        ack = await client.call("webrtc.offer", {"sdp": "garbage"})
        assert ack["ok"] is False and ack["error"]["code"] == "INVALID_SDP"
        ack = await client.call("webrtc.offer", {})
        assert ack["ok"] is False and ack["error"]["code"] == "VALIDATION"

        pub = Publisher(media_server.url, "b1", token("host", "b1", "h1"))
        await pub.start(http)
        up = await wait_for(lambda: [d for d in client.of("media.state") if d["live"]], 30, "media.state: live")
        assert up[0]["mode"] == "webrtc" and up[0]["codec"] == "VP8" and up[0]["hls_url"] == "/hls/b1/index.m3u8"

        ack = await client.call("webrtc.offer", {"sdp": offer}, timeout=30)
        assert ack["ok"] is True, ack
        assert ack["sdp"].startswith("v=0") and ack["session_id"] in media.viewers
        assert media.viewers[ack["session_id"]].via == "hub"
        frames = 0

        @pc.on("track")
        def _on_track(track) -> None:
            async def consume() -> None:
                nonlocal frames
                while True:
                    frame = await track.recv()
                    if track.kind == "video" and (frame.width, frame.height) == (320, 240):
                        frames += 1

            asyncio.ensure_future(consume())

        await pc.setRemoteDescription(RTCSessionDescription(sdp=ack["sdp"], type="answer"))
        await wait_for(lambda: frames >= 5, 60, "video over the socket-negotiated connection")

        assert await client.call("webrtc.close", {}) == {"ok": True, "closed": True}
        await wait_for(lambda: media.viewer_count("b1") == 0, 30, "the hub session to close")
        await pc.close()

        # a socket that leaves ends its WebRTC session too
        pc2, offer2 = await _viewer_offer()
        ack = await client.call("webrtc.offer", {"sdp": offer2}, timeout=30)
        assert ack["ok"] is True and media.viewer_count("b1") == 1
        await client.sio.disconnect()
        await wait_for(lambda: media.viewer_count("b1") == 0, 30, "the session of the departed socket to end")
        await pc2.close()

        watcher = Client()
        await watcher.connect(media_server.url, token("viewer", "b1", "v2"))
        await watcher.snapshot()
        await pub.stop(http)
        await wait_for(lambda: [d for d in watcher.of("media.state") if not d["live"]], 30, "media.state: down")
        await watcher.sio.disconnect()
    finally:
        if client.sio.connected:
            await client.sio.disconnect()


async def test_webrtc_offer_over_the_socket_shares_the_whep_rate_limit(media_server, http, token, redis):
    """Issue 13 row 7, socket door: the same per-user bucket as POST /whep (one bucket for both
    doors and all of a user's sockets), refused with ack error RATE_LIMITED and retry_after ms."""
    await BroadcastStore(redis).ensure("b1", title="Show", host="h1")
    pc, offer = await _viewer_offer()
    await pc.close()
    status, _, _ = await post_sdp(http, f"{media_server.url}/whep/b1", offer, token("viewer", "b1", "v1"))
    assert status == 404  # one of v1's five offers went over HTTP
    sockets = [Client(), Client()]
    try:
        for c in sockets:
            await c.connect(media_server.url, token("viewer", "b1", "v1"))
            await c.snapshot()
        codes = []
        for i in range(5):  # alternating sockets: a new socket is no way around the limit
            ack = await sockets[i % 2].call("webrtc.offer", {"sdp": offer})
            codes.append(ack["error"]["code"])
        assert codes == ["NOT_LIVE"] * 4 + ["RATE_LIMITED"], codes
        assert 1000 <= ack["error"]["retry_after"] <= 5000
        other = Client()
        await other.connect(media_server.url, token("viewer", "b1", "v2"))
        await other.snapshot()
        ack = await other.call("webrtc.offer", {"sdp": offer})
        assert ack["error"]["code"] == "NOT_LIVE"  # v2 has its own bucket
        await other.sio.disconnect()
    finally:
        for c in sockets:
            if c.sio.connected:
                await c.sio.disconnect()


async def test_the_per_user_session_cap_holds_across_sockets(media_server, http, token, redis):
    """Issue 13 row 7, socket door: three sockets of one user each offer; the user keeps 2 sessions
    (the oldest is replaced), so one user cannot hold a slot per socket."""
    media = media_server.app["node"].media
    await BroadcastStore(redis).ensure("b1", title="Show", host="h1")
    pub = Publisher(media_server.url, "b1", token("host", "b1", "h1"))
    await pub.start(http)
    sockets = [Client() for _ in range(3)]
    pcs = []
    try:
        ids = []
        for c in sockets:
            await c.connect(media_server.url, token("viewer", "b1", "v1"))
            await c.snapshot()
            pc, offer = await _viewer_offer()
            pcs.append(pc)
            ack = await c.call("webrtc.offer", {"sdp": offer}, timeout=30)
            assert ack["ok"] is True, ack
            ids.append(ack["session_id"])
        assert sorted(s.id for s in media.viewers.values() if s.sub == "v1") == sorted(ids[1:])
    finally:
        for c in sockets:
            if c.sio.connected:
                await c.sio.disconnect()
        for pc in pcs:
            await pc.close()
        await pub.stop(http)
