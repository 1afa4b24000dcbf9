"""Cascade (issue 17): WebRTC viewers on a process that does not hold the publish.

Two real nodes in one Redis (like `--workers 2`, or two machines): the host publishes on `origin`,
viewers reach `edge`. Before: the edge answered `503 USE_HLS reason=other_process`. Now it pulls
the broadcast once from the origin's internal listener and forwards it to its own viewers."""
from __future__ import annotations

import asyncio

import aiohttp
import orjson
import pytest

from live.auth import mint
from live.media.internal import PULL_PATH, mint_edge_token
from loadtest.media_clients import Publisher, Viewer, post_sdp
from tests.conftest import TEST_SECRET
from tests.media.conftest import wait_for
from tests.media.test_http import _offer
from tests.redis_proc import free_port

pytestmark = [pytest.mark.media, pytest.mark.slow]


async def _origin_and_edge(make_server, tmp_path, **edge_config):
    shared = str(tmp_path / "shared-media")
    origin = await make_server(media_dir=shared)
    edge = await make_server(media_dir=shared, **edge_config)
    return origin, edge


async def _watching_on_the_edge(make_server, http, token, tmp_path, frames=5):
    """An origin publishing b1 and one viewer on the edge process, `frames` video frames received."""
    origin, edge = await _origin_and_edge(make_server, tmp_path)
    pub = Publisher(origin.url, "b1", token("host", "b1", "h1"))
    await pub.start(http)
    viewer = Viewer(edge.url, "b1", token("viewer", "b1", "v1"))
    assert await viewer.start(http), viewer.error
    await wait_for(lambda: len(viewer.sizes) >= frames, 60, "video on the edge")
    return origin, edge, pub, viewer


def _edge_sessions(server) -> list:
    return [v for v in server.app["node"].media.viewers.values() if v.via == "edge"]


async def test_a_viewer_on_the_non_publishing_process_gets_decodable_video_and_audio(make_server, http, token,
                                                                                     tmp_path):
    origin, edge = await _origin_and_edge(make_server, tmp_path)
    pub = Publisher(origin.url, "b1", token("host", "b1", "h1"), width=320, height=240)
    await pub.start(http)
    await wait_for(lambda: origin.app["node"].media.publishers["b1"].stream.frames_in > 5, 60, "media on the origin")

    async with http.get(f"{edge.url}/api/media/b1") as resp:
        state = await resp.json()
    assert state["live"] and state["elsewhere"] and state["cascade"] and state["mode"] == "webrtc"

    viewers = [Viewer(edge.url, "b1", token("viewer", "b1", f"v{i}")) for i in range(3)]
    started = await asyncio.gather(*(v.start(http) for v in viewers))  # concurrent first viewers
    assert all(started), [v.error for v in viewers]  # before: 503 USE_HLS reason=other_process
    await wait_for(lambda: all(len(v.sizes) >= 10 and v.audio_frames >= 10 for v in viewers), 60,
                   "both edge viewers to decode video and audio")
    for v in viewers:
        assert set(v.sizes) == {(320, 240)}
    # one pull per edge per broadcast, however many viewers the edge has
    assert list(edge.app["node"].media.pulls) == ["b1"]
    assert len(_edge_sessions(origin)) == 1
    assert origin.app["node"].media.viewer_count("b1") == 0  # the pull takes no viewer slot
    assert edge.app["node"].media.viewer_count("b1") == 3

    for v in viewers:
        await v.stop(http)
    assert await pub.stop(http) == 200


async def test_the_origin_ending_the_publish_ends_the_edge_viewers(make_server, http, token, tmp_path):
    origin, edge, pub, viewer = await _watching_on_the_edge(make_server, http, token, tmp_path)

    assert await pub.stop(http) == 200
    await wait_for(viewer.ended.is_set, 30, "the edge viewer's tracks to end")
    await wait_for(lambda: edge.app["node"].media.viewer_count("b1") == 0, 30, "the edge to close its viewer")
    assert "b1" not in edge.app["node"].media.pulls
    status, _, body = await post_sdp(http, f"{edge.url}/whep/b1", await _offer("play"), token("viewer", "b1", "v2"))
    assert status == 404 and '"NOT_LIVE"' in body
    await viewer.stop()


async def test_an_edge_with_no_viewers_drops_its_pull_after_the_linger(make_server, http, token, tmp_path):
    origin, edge = await _origin_and_edge(make_server, tmp_path, media_edge_linger_s=1.0)
    pub = Publisher(origin.url, "b1", token("host", "b1", "h1"))
    await pub.start(http)
    viewer = Viewer(edge.url, "b1", token("viewer", "b1", "v1"))
    assert await viewer.start(http), viewer.error
    await wait_for(lambda: len(viewer.sizes) >= 5, 60, "video on the edge")
    assert len(_edge_sessions(origin)) == 1

    await viewer.stop(http)
    assert "b1" in edge.app["node"].media.pulls  # lingers: a viewer reloading the page finds it open
    await wait_for(lambda: "b1" not in edge.app["node"].media.pulls, 10, "the edge to drop its pull")
    await wait_for(lambda: not _edge_sessions(origin), 10, "the origin to end the edge's session")
    assert "b1" in origin.app["node"].media.publishers  # the publish itself goes on
    assert await pub.stop(http) == 200


async def test_the_internal_pull_needs_an_internal_token_and_skips_viewer_limits(make_server, http, token,
                                                                                   tmp_path):
    """Only Hawker processes may pull: a viewer's or host's token (signed with the same secret) is
    refused at the internal listener, and an internal token is refused at the public doors. The
    pull is not counted against the per-address offer limit meant for viewers."""
    origin, edge = await _origin_and_edge(make_server, tmp_path, media_edge_linger_s=0.2)
    media = origin.app["node"].media
    media.offer_limits.address.rate, media.offer_limits.address.burst = 0.001, 1  # one viewer offer per address
    pub = Publisher(origin.url, "b1", token("host", "b1", "h1"))
    await pub.start(http)
    url = media.edge_url + PULL_PATH.format(broadcast="b1")
    offer = await _offer("play")
    for bad, status, code in [(None, 401, "TOKEN_MISSING"), (token("viewer", "b1", "v1"), 401, "TOKEN_INVALID"),
                              (token("host", "b1", "h1"), 401, "TOKEN_INVALID"),
                              (mint_edge_token("another-secret-0123456789abcdef", "n1", "b1"), 401, "TOKEN_INVALID"),
                              (mint_edge_token(TEST_SECRET, "n1", "other"), 403, "FORBIDDEN")]:
        got, _, body = await post_sdp(http, url, offer, bad)
        assert got == status and f'"{code}"' in body, (bad, got, body)
    assert not _edge_sessions(origin)
    # the public WHEP door does not take an internal token, and has no internal route
    got, _, body = await post_sdp(http, f"{origin.url}/whep/b1", offer, mint_edge_token(TEST_SECRET, "n1", "b1"))
    assert got == 401 and '"TOKEN_INVALID"' in body
    got, _, _ = await post_sdp(http, origin.url + PULL_PATH.format(broadcast="b1"), offer,
                               mint_edge_token(TEST_SECRET, "n1", "b1"))
    assert got in (404, 405)
    with pytest.raises(ValueError):
        mint(TEST_SECRET, sub="x", role="edge", broadcast="b1")  # `hawker token` cannot mint one

    # two pulls in a row (the second after the first lingered out) from the same address
    for i in range(2):
        viewer = Viewer(edge.url, "b1", token("viewer", "b1", f"e{i}"))
        assert await viewer.start(http), viewer.error
        await wait_for(lambda v=viewer: len(v.sizes) >= 3, 60, "video on the edge")
        await viewer.stop(http)
        await wait_for(lambda: "b1" not in edge.app["node"].media.pulls, 10, "the pull to be dropped")
    # ...and a viewer from that address still has its one offer
    direct = Viewer(origin.url, "b1", token("viewer", "b1", "direct"))
    assert await direct.start(http), direct.error
    again = Viewer(origin.url, "b1", token("viewer", "b1", "again"))
    assert not await again.start(http) and again.status == 429  # the limit itself is on
    await direct.stop(http)
    assert await pub.stop(http) == 200


async def test_a_takeover_on_another_process_repoints_the_edge_viewers(make_server, http, token, tmp_path):
    """The host publishes again on a third process: the old origin ends its copy, the edge's
    viewers keep their connections and continue from the new origin."""
    origin, edge = await _origin_and_edge(make_server, tmp_path)
    other = await make_server(media_dir=str(tmp_path / "shared-media"))
    first = Publisher(origin.url, "b1", token("host", "b1", "h1"), width=320, height=240)
    await first.start(http)
    viewer = Viewer(edge.url, "b1", token("viewer", "b1", "v1"))
    assert await viewer.start(http), viewer.error
    await wait_for(lambda: len(viewer.sizes) >= 5, 60, "video from the first origin")
    session_id = viewer.location.rsplit("/", 1)[-1] if viewer.location else ""

    second = Publisher(other.url, "b1", token("host", "b1", "h1"), width=160, height=120)
    await second.start(http)
    await wait_for(lambda: viewer.sizes.count((160, 120)) >= 10, 60, "the edge viewer to play the new origin")
    assert session_id in edge.app["node"].media.viewers and not viewer.ended.is_set()
    pull = edge.app["node"].media.pulls["b1"]
    assert pull.node == other.app["node"].media.claims.node_id
    assert await second.stop(http) == 200
    await wait_for(viewer.ended.is_set, 30, "the viewer to end with the publish")
    await viewer.stop()
    await first.stop(http)


async def test_without_the_cascade_or_with_the_origin_unreachable_the_edge_answers_use_hls(make_server, http, token,
                                                                                          tmp_path, redis):
    origin, edge = await _origin_and_edge(make_server, tmp_path, media_edge_listen="")
    pub = Publisher(origin.url, "b1", token("host", "b1", "h1"))
    await pub.start(http)
    status, _, body = await post_sdp(http, f"{edge.url}/whep/b1", await _offer("play"), token("viewer", "b1", "v1"))
    assert status == 503 and '"USE_HLS"' in body and '"other_process"' in body
    async with http.get(f"{edge.url}/api/media/b1") as resp:
        state = await resp.json()
    assert state["mode"] == "hls" and state["cascade"] is False

    third = await make_server(media_dir=str(tmp_path / "shared-media"))
    key = "hawker:media:publisher:{b1}"
    claim = orjson.loads(await redis.get(key))
    await redis.set(key, orjson.dumps({**claim, "url": f"http://127.0.0.1:{free_port()}"}), px=15_000)
    status, _, body = await post_sdp(http, f"{third.url}/whep/b1", await _offer("play"), token("viewer", "b1", "v2"))
    assert status == 503 and '"USE_HLS"' in body and '"origin_unreachable"' in body
    assert "b1" not in third.app["node"].media.pulls and third.app["node"].media.viewer_count() == 0
    await pub.stop(http)


@pytest.fixture
async def http() -> aiohttp.ClientSession:
    async with aiohttp.ClientSession() as session:
        yield session


async def test_an_origin_that_dies_without_a_goodbye_ends_the_edge_viewers(make_server, http, token, tmp_path,
                                                                            redis):
    """A killed origin says nothing: its Redis claim stops being renewed and expires. The edge
    watches the claim and ends its viewers instead of leaving them on a frozen picture."""
    origin, edge, pub, viewer = await _watching_on_the_edge(make_server, http, token, tmp_path)

    claims = origin.app["node"].media.claims
    for task in claims._renewers.values():
        task.cancel()  # the origin process is gone: nobody renews its claim...
    await redis.delete("hawker:media:publisher:{b1}")  # ...and the TTL runs out
    await wait_for(lambda: edge.app["node"].media.viewer_count("b1") == 0, 15, "the edge to end its viewers")
    await wait_for(viewer.ended.is_set, 15, "the viewer's tracks to end")
    assert "b1" not in edge.app["node"].media.pulls
    await viewer.stop()
    await pub.stop(http)


async def test_hawker_serve_with_two_workers_gives_webrtc_on_the_non_publishing_worker(redis_url, media_ip, token,
                                                                                        tmp_path):
    """The real thing: `hawker serve --workers 2` on one port. The host's publish lands on one
    worker; offers (a new TCP connection each) spread over both, and the worker that does not hold
    the publish answers as an edge with decodable video and audio instead of USE_HLS."""
    import signal

    from tests.foundation.procs import hawker, stop, wait_http

    port = free_port()
    proc = hawker("serve", "--port", str(port), "--workers", "2", "--redis-url", redis_url, "--log-level", "warning",
                  "--media-dir", str(tmp_path / "media"),
                  env={"HAWKER_SECRET": TEST_SECRET, "HAWKER_PAYMENT_PROVIDER": "sandbox",
                       "HAWKER_WEBRTC_OFFER_IP_RATE": "0"})
    url = f"http://127.0.0.1:{port}"
    viewers: list[Viewer] = []
    try:
        await wait_http(url + "/readyz", proc)
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as http:
            pub = Publisher(url, "b1", token("host", "b1", "h1"), width=320, height=240)
            await pub.start(http)
            roles: dict[str, Viewer] = {}
            for i in range(40):  # until both workers answered one
                viewer = Viewer(url, "b1", token("viewer", "b1", f"v{i}"))
                viewers.append(viewer)
                assert await viewer.start(http), viewer.error  # never 503 USE_HLS reason=other_process
                async with http.get(url + "/api/media/b1") as resp:
                    assert (await resp.json())["mode"] == "webrtc"
                roles.setdefault(viewer.role or "", viewer)
                if {"origin", "edge"} <= set(roles):
                    break
            assert {"origin", "edge"} <= set(roles), f"every offer went to one worker: {set(roles)}"
            edge_viewer = roles["edge"]
            await wait_for(lambda: len(edge_viewer.sizes) >= 10 and edge_viewer.audio_frames >= 10, 60,
                           "video and audio on the edge worker")
            assert set(edge_viewer.sizes) == {(320, 240)}
            assert await pub.stop(http) == 200
            await wait_for(edge_viewer.ended.is_set, 30, "the edge worker to end its viewer with the publish")
    finally:
        for v in viewers:
            await v.stop()
        assert stop(proc, signal.SIGTERM, timeout=90) == 0


async def test_a_whip_delete_that_reaches_another_process_ends_the_publish(make_server, http, token, tmp_path):
    """Workers share the port, so OBS's Stop streaming (DELETE on its Location) may reach a process
    that does not hold the publish. Before: 404 SESSION_NOT_FOUND and the show went on. Now that
    process forwards it to the origin (internal listener, internal token)."""
    origin, edge, pub, viewer = await _watching_on_the_edge(make_server, http, token, tmp_path, frames=3)
    assert pub.location
    session = pub.location.rsplit("/", 1)[-1]
    # the internal door refuses anything but an internal token
    internal = origin.app["node"].media.edge_url + f"/internal/media/b1/publish/{session}"
    async with http.delete(internal, headers={"Authorization": f"Bearer {token('host', 'b1', 'h1')}"}) as resp:
        assert resp.status == 401 and "b1" in origin.app["node"].media.publishers
    # a wrong session id through the other process is still 404
    async with http.delete(f"{edge.url}/whip/b1/not-a-session",
                           headers={"Authorization": f"Bearer {token('host', 'b1', 'h1')}"}) as resp:
        assert resp.status == 404
    async with http.delete(f"{edge.url}{pub.location}",
                           headers={"Authorization": f"Bearer {token('host', 'b1', 'h1')}"}) as resp:
        assert resp.status == 200
    assert "b1" not in origin.app["node"].media.publishers
    await wait_for(viewer.ended.is_set, 30, "the edge viewer to end with the publish")
    await viewer.stop()
    pub.location = None
    await pub.stop(http)
