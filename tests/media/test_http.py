"""WHIP/WHEP HTTP contract: auth, content type, bad SDP, a second publisher, capacity, CORS."""
from __future__ import annotations

import asyncio
import json
import time

import pytest
from aiortc import RTCConfiguration, RTCPeerConnection

from loadtest.media_clients import Publisher, Viewer, post_sdp
from tests.media.conftest import wait_for, watching

pytestmark = pytest.mark.media


async def _offer(kind: str = "publish") -> str:
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    direction = "sendonly" if kind == "publish" else "recvonly"
    pc.addTransceiver("video", direction=direction)
    pc.addTransceiver("audio", direction=direction)
    await pc.setLocalDescription(await pc.createOffer())
    sdp = pc.localDescription.sdp
    await pc.close()
    return sdp


async def _error(resp) -> str:
    assert resp.headers["Content-Type"].startswith("application/json")
    return (await resp.json())["error"]["code"]


async def test_whip_rejects_bad_requests_with_codes(media_server, http, token, media_ip):
    url = f"{media_server.url}/whip/b1"
    offer = await _offer()
    status, _, body = await post_sdp(http, url, offer, None)
    assert status == 401 and '"TOKEN_MISSING"' in body
    status, _, body = await post_sdp(http, url, offer, "not-a-jwt")
    assert status == 401 and '"TOKEN_INVALID"' in body
    status, _, body = await post_sdp(http, url, offer, token("viewer", "b1"))
    assert status == 403 and '"FORBIDDEN"' in body
    status, _, body = await post_sdp(http, url, offer, token("host", "other"))
    assert status == 403 and '"FORBIDDEN"' in body

    headers = {"Authorization": f"Bearer {token('host', 'b1')}", "Content-Type": "application/json"}
    async with http.post(url, data=b"{}", headers=headers) as resp:
        assert resp.status == 415 and await _error(resp) == "UNSUPPORTED_MEDIA_TYPE"
    for garbage in ("hello", "v=0\r\n", "v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\n"):
        status, _, body = await post_sdp(http, url, garbage, token("host", "b1"))
        assert status == 400 and '"INVALID_SDP"' in body, body
    # a viewer's recvonly offer is not a publish
    status, _, body = await post_sdp(http, url, await _offer("play"), token("host", "b1"))
    assert status == 400 and '"INVALID_SDP"' in body
    assert media_server.app["node"].media.publishers == {}


async def test_second_publisher_conflicts_and_delete_needs_the_session(media_server, http, token, media_ip):
    media = media_server.app["node"].media
    pub = Publisher(media_server.url, "b1", token("host", "b1"))
    await pub.start(http)
    assert pub.location and pub.location.startswith("/whip/b1/")
    status, _, body = await post_sdp(http, f"{media_server.url}/whip/b1", await _offer(), token("host", "b1", "h2"))
    assert status == 409 and '"PUBLISH_CONFLICT"' in body

    async with http.patch(media_server.url + pub.location, headers={"Authorization": f"Bearer {token('host', 'b1')}"}) as resp:
        assert resp.status == 405 and await _error(resp) == "TRICKLE_NOT_SUPPORTED"
        assert "DELETE" in resp.headers["Allow"]
    async with http.delete(media_server.url + "/whip/b1/nope", headers={"Authorization": f"Bearer {token('host', 'b1')}"}) as resp:
        assert resp.status == 404 and await _error(resp) == "SESSION_NOT_FOUND"
    async with http.delete(media_server.url + pub.location, headers={"Authorization": f"Bearer {token('viewer', 'b1')}"}) as resp:
        assert resp.status == 403
    assert "b1" in media.publishers
    async with http.get(media_server.url + "/metrics") as resp:
        text = await resp.text()
    assert "hawker_media_publishers" in text and 'hawker_media_sessions_refused_total{code="PUBLISH_CONFLICT"}' in text
    assert await pub.stop(http) == 200
    await wait_for(lambda: "b1" not in media.publishers, 30, "the publish to end")


async def test_whep_not_live_unsupported_and_over_cap(make_server, http, token, media_ip, tmp_path):
    server = await make_server(media_dir=str(tmp_path / "m"), webrtc_viewer_cap=1)
    media = server.app["node"].media
    url = f"{server.url}/whep/b1"
    status, _, body = await post_sdp(http, url, await _offer("play"), token("viewer", "b1"))
    assert status == 404 and '"NOT_LIVE"' in body
    status, _, body = await post_sdp(http, url, await _offer("play"), None)
    assert status == 401

    pub = Publisher(server.url, "b1", token("host", "b1"))
    await pub.start(http)
    first = Viewer(server.url, "b1", token("viewer", "b1", "v1"))
    assert await first.start(http), first.error
    second = Viewer(server.url, "b1", token("viewer", "b1", "v2"))
    assert not await second.start(http)
    assert second.status == 503
    assert second.error and second.error["code"] == "USE_HLS" and second.error["hls_url"] == "/hls/b1/index.m3u8"
    assert media.state("b1")["mode"] == "hls"

    async with http.delete(server.url + first.location, headers={"Authorization": f"Bearer {token('viewer', 'b1', 'v2')}"}) as resp:
        assert resp.status == 404  # another viewer cannot end v1's session
    assert media.viewer_count() == 1
    await first.stop(http)
    await wait_for(lambda: media.viewer_count() == 0, 30, "the first viewer to leave")
    assert media.state("b1")["mode"] == "webrtc"
    await pub.stop(http)


async def test_preflight_and_ice_config(make_server, http, token, media_ip, tmp_path):
    ice = "stun:stun.example.com:3478,turn:alice:s3cret@turn.example.com:3478?transport=udp"
    server = await make_server(media_dir=str(tmp_path / "m"), ice_servers=ice)
    async with http.options(f"{server.url}/whip/b1") as resp:
        assert resp.status == 204
        assert resp.headers["Access-Control-Allow-Origin"] == "*"
        assert "POST" in resp.headers["Access-Control-Allow-Methods"]
        assert resp.headers["Accept-Post"] == "application/sdp"
        links = resp.headers.getall("Link")
        assert any(link.startswith("<stun:stun.example.com:3478>") for link in links)
    async with http.get(f"{server.url}/api/ice") as resp:
        assert resp.status == 401
    async with http.get(f"{server.url}/api/ice", headers={"Authorization": f"Bearer {token('viewer', 'b1')}"}) as resp:
        servers = (await resp.json())["ice_servers"]
    assert servers == [
        {"urls": ["stun:stun.example.com:3478"]},
        {"urls": ["turn:turn.example.com:3478?transport=udp"], "username": "alice", "credential": "s3cret"},
    ]
    async with http.get(f"{server.url}/api/media/b1") as resp:
        state = await resp.json()
    assert state["live"] is False and state["mode"] == "hls" and state["whep_url"] == "/whep/b1"


async def test_a_publisher_that_never_connects_frees_the_broadcast(media_server, http, token, media_ip):
    media = media_server.app["node"].media
    media.connect_timeout_s = 1.0
    status, headers, _ = await post_sdp(http, f"{media_server.url}/whip/b1", await _offer(), token("host", "b1"))
    assert status == 201 and headers["Location"].startswith("/whip/b1/")
    assert "b1" in media.publishers  # the offering peer is gone: ICE never completes
    await wait_for(lambda: "b1" not in media.publishers, 30, "the unconnected publish to be dropped")
    pub = Publisher(media_server.url, "b1", token("host", "b1"))
    await pub.start(http)
    assert await pub.stop(http) == 200


async def test_a_busy_fanout_sends_new_viewers_to_hls_below_the_cap(media_server, http, token, media_ip):
    media = media_server.app["node"].media
    pub, first = await watching(media_server.url, http, token, "v1", 3, "the first viewer's video")
    await wait_for(lambda: media.load.fraction() > 0, 30, "a measured fan-out load")
    media.max_fanout_busy = 0.0  # any measured fan-out work counts as "busy"
    second = Viewer(media_server.url, "b1", token("viewer", "b1", "v2"))
    assert not await second.start(http)
    assert second.status == 503 and second.error and second.error["code"] == "USE_HLS"
    assert second.error["reason"] == "load" and media.state("b1")["mode"] == "hls"
    await first.stop(http)
    await pub.stop(http)


async def test_a_second_process_refuses_a_second_publisher_and_sends_its_viewers_to_hls(make_server, http, token,
                                                                                         media_ip, tmp_path):
    """With the cascade off on b (`media_edge_listen=""`); with it on, b serves WebRTC itself
    (tests/media/test_cascade.py)."""
    shared = str(tmp_path / "shared-media")
    a = await make_server(media_dir=shared)
    b = await make_server(media_dir=shared, media_edge_listen="")
    pub = Publisher(a.url, "b1", token("host", "b1"))
    await pub.start(http)
    status, _, body = await post_sdp(http, f"{b.url}/whip/b1", await _offer(), token("host", "b1", "h2"))
    assert status == 409 and '"PUBLISH_CONFLICT"' in body
    viewer = Viewer(b.url, "b1", token("viewer", "b1", "v1"))
    assert not await viewer.start(http)
    assert viewer.status == 503 and viewer.error and viewer.error["code"] == "USE_HLS"
    assert viewer.error["reason"] == "other_process" and viewer.error["hls_url"] == "/hls/b1/index.m3u8"
    async with http.get(f"{b.url}/api/media/b1") as resp:
        state = await resp.json()
    assert state["live"] is True and state["mode"] == "hls" and state["elsewhere"] is True
    # the HLS files are shared: process b serves the playlist process a writes
    await wait_for(lambda: b.app["node"].media.hls.has_playlist("b1"), 60, "the playlist, seen from process b")

    assert await pub.stop(http) == 200
    viewer = Viewer(b.url, "b1", token("viewer", "b1", "v2"))
    assert not await viewer.start(http)
    assert viewer.status == 404 and viewer.error and viewer.error["code"] == "NOT_LIVE"
    again = Publisher(b.url, "b1", token("host", "b1"))
    await again.start(http)  # the claim was released: process b may take the broadcast now
    assert await again.stop(http) == 200


async def test_one_viewer_cannot_take_every_webrtc_slot(make_server, http, token, media_ip, tmp_path):
    """Issue 13 row 7: with cap 3, one token's offers got 201, 201, 201 and the next viewer got
    503 USE_HLS. A user holds at most 2 sessions per broadcast; a third replaces the oldest."""
    server = await make_server(media_dir=str(tmp_path / "m"), webrtc_viewer_cap=3)
    media = server.app["node"].media
    pub = Publisher(server.url, "b1", token("host", "b1", "h1"))
    await pub.start(http)
    hog = [Viewer(server.url, "b1", token("viewer", "b1", "hog")) for _ in range(3)]
    for v in hog:
        assert await v.start(http), v.error  # a reload or a second tab is never refused...
    ids = [v.location.rsplit("/", 1)[-1] for v in hog]
    assert [s.id for s in media.viewers.values() if s.sub == "hog"] == ids[1:]  # ...it replaced the oldest
    other = Viewer(server.url, "b1", token("viewer", "b1", "someone-else"))
    assert await other.start(http), other.error  # a slot was left for another viewer
    assert media.viewer_count("b1") == 3
    await wait_for(lambda: len(other.sizes) >= 3, 60, "the other viewer's video")
    for v in [*hog, other]:
        await v.stop(http)
    await pub.stop(http)


async def test_whep_offers_are_rate_limited_per_user_and_per_address(media_server, http, token, media_ip):
    """Issue 13 row 7: POST /whep had no rate limit. Past the user's bucket (5 offers, then 1 per
    5 s) an offer gets 429 RATE_LIMITED with Retry-After; other users are unaffected; one address
    cycling through many users meets the per-address bucket (60 offers, then 5 per second)."""
    url = f"{media_server.url}/whep/b1"
    offer = await _offer("play")
    for _ in range(5):
        status, _, body = await post_sdp(http, url, offer, token("viewer", "b1", "eager"))
        assert status == 404 and '"NOT_LIVE"' in body
    status, headers, body = await post_sdp(http, url, offer, token("viewer", "b1", "eager"))
    assert status == 429, body
    error = json.loads(body)["error"]
    assert error["code"] == "RATE_LIMITED" and 1000 <= error["retry_after"] <= 5000
    assert 1 <= int(headers["Retry-After"]) <= 5 and "Retry-After" in headers["Access-Control-Expose-Headers"]
    status, _, body = await post_sdp(http, url, offer, token("viewer", "b1", "calm"))
    assert status == 404 and '"NOT_LIVE"' in body  # another user is not limited by "eager"
    statuses = []
    for i in range(120):  # one address, a fresh user each time: no per-user bucket is ever empty
        status, headers, body = await post_sdp(http, url, offer, token("viewer", "b1", f"sock-{i}"))
        statuses.append(status)
        if status == 429:
            assert json.loads(body)["error"]["code"] == "RATE_LIMITED" and int(headers["Retry-After"]) >= 1
            break
    assert statuses[-1] == 429 and 50 <= len(statuses) <= 100 and set(statuses[:-1]) == {404}, statuses


async def test_an_unanswered_viewer_offer_frees_its_slot_within_the_connect_timeout(make_server, http, token,
                                                                                     media_ip, tmp_path):
    """Issue 13 row 7: an offer whose peer never connects held a WebRTC slot for 30 s. Now the slot
    is free after `webrtc_connect_timeout_s` (10 s by default)."""
    server = await make_server(media_dir=str(tmp_path / "m"), webrtc_viewer_cap=1)
    media = server.app["node"].media
    pub = Publisher(server.url, "b1", token("host", "b1", "h1"))
    await pub.start(http)
    status, _, _ = await post_sdp(http, f"{server.url}/whep/b1", await _offer("play"), token("viewer", "b1", "ghost"))
    assert status == 201  # the offering peer is already closed: ICE never completes
    other = Viewer(server.url, "b1", token("viewer", "b1", "real"))
    assert not await other.start(http) and other.status == 503  # the ghost holds the only slot...
    started = time.monotonic()
    await wait_for(lambda: media.viewer_count("b1") == 0, 20, "the unanswered session to be dropped")
    assert time.monotonic() - started < 14  # ...for the connect timeout (10 s), not 30 s
    other = Viewer(server.url, "b1", token("viewer", "b1", "real"))
    assert await other.start(http), other.error
    await other.stop(http)
    await pub.stop(http)


async def test_concurrent_offers_of_one_user_never_exceed_the_per_user_cap(make_server, http, token, media_ip,
                                                                           tmp_path):
    """Offers racing each other: whatever the interleaving, the user ends with at most its cap of
    sessions, and an offer replaced mid-answer says SESSION_REPLACED (never a codec error or a 500)."""
    server = await make_server(media_dir=str(tmp_path / "m"), webrtc_sessions_per_user=1)
    media = server.app["node"].media
    pub = Publisher(server.url, "b1", token("host", "b1", "h1"))
    await pub.start(http)
    offers = [await _offer("play") for _ in range(4)]
    results = await asyncio.gather(*(post_sdp(http, f"{server.url}/whep/b1", o, token("viewer", "b1", "racer"))
                                     for o in offers))
    for status, _, body in results:
        assert status == 201 or (status == 409 and json.loads(body)["error"]["code"] == "SESSION_REPLACED"), body
    assert [s.sub for s in media.viewers.values()] == ["racer"]
    await pub.stop(http)
