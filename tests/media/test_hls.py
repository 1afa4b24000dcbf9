"""HLS from the host's stream: live EVENT playlist, segments that decode, VOD replay at the end."""
from __future__ import annotations

import io

import av
import pytest

from loadtest.media_clients import Publisher
from tests.media.conftest import wait_for

pytestmark = [pytest.mark.media, pytest.mark.slow]


async def _get(http, url):
    async with http.get(url) as resp:
        return resp.status, dict(resp.headers), await resp.read()


def _segments(playlist: str) -> list[str]:
    return [line for line in playlist.splitlines() if line and not line.startswith("#")]


def _decode(data: bytes) -> tuple[list[tuple[int, int]], int]:
    sizes, audio = [], 0
    with av.open(io.BytesIO(data), format="mpegts") as container:
        for frame in container.decode(*container.streams):
            if isinstance(frame, av.VideoFrame):
                sizes.append((frame.width, frame.height))
            else:
                audio += 1
    return sizes, audio


@pytest.mark.parametrize("codec", ["VP8", "H264"])
async def test_hls_live_playlist_segments_decode_and_replay_remains(media_server, http, token, codec):
    media = media_server.app["node"].media
    base = media_server.url
    status, _, _ = await _get(http, f"{base}/hls/b1/index.m3u8")
    assert status == 404

    pub = Publisher(base, "b1", token("host", "b1"), width=320, height=240, video_codec=codec)
    await pub.start(http)

    playlist = ""

    async def poll() -> None:
        nonlocal playlist
        status, headers, body = await _get(http, f"{base}/hls/b1/index.m3u8")
        if status == 200:
            assert headers["Content-Type"] == "application/vnd.apple.mpegurl"
            assert "no-cache" in headers["Cache-Control"]
            playlist = body.decode()

    async def two_segments() -> bool:
        await poll()
        return len(_segments(playlist)) >= 2

    import asyncio
    import time

    deadline = time.monotonic() + 60
    while not await two_segments():
        assert time.monotonic() < deadline, f"no two HLS segments in 60 s: {playlist!r}"
        await asyncio.sleep(0.5)
    assert "#EXT-X-PLAYLIST-TYPE:EVENT" in playlist
    assert "#EXT-X-ENDLIST" not in playlist
    assert media.state("b1")["hls_url"] == "/hls/b1/index.m3u8"

    first = _segments(playlist)[0]
    status, headers, data = await _get(http, f"{base}/hls/b1/{first}")
    assert status == 200
    assert headers["Content-Type"] == "video/mp2t"
    assert "immutable" in headers["Cache-Control"]
    sizes, audio = _decode(data)
    assert sizes and set(sizes) == {(320, 240)}
    assert audio > 0

    assert await pub.stop(http) == 200
    await wait_for(lambda: "b1" not in media.publishers, 30, "the publish to end")
    status, headers, body = await _get(http, f"{base}/hls/b1/index.m3u8")
    assert status == 200
    replay = body.decode()
    assert "#EXT-X-ENDLIST" in replay and "#EXT-X-PLAYLIST-TYPE:VOD" in replay
    assert "no-cache" not in headers["Cache-Control"]
    segments = _segments(replay)
    assert len(segments) >= 2
    last = segments[-1]
    status, _, data = await _get(http, f"{base}/hls/b1/{last}")
    assert status == 200
    sizes, _ = _decode(data)
    assert sizes and set(sizes) == {(320, 240)}


async def test_hls_files_outside_a_run_are_not_served(media_server, http):
    for path in ("/hls/b1/..%2F..%2Fetc/passwd.ts", "/hls/b1/run/secret.txt", "/hls/bad%20id/index.m3u8"):
        async with http.get(media_server.url + path) as resp:
            assert resp.status in (400, 404)
            assert (await resp.json())["error"]["code"] in ("NOT_FOUND", "INVALID_BROADCAST")


async def test_hls_names_cannot_leave_the_broadcasts_media_folder(media_server, http, tmp_path):
    """Issue 13 row 1: an encoded '/' in the run or file name (an absolute path, or '..' steps) must
    not reach a file outside `<media_dir>/hls/<broadcast>/<run>/`; every refusal is the same 404."""
    secret = tmp_path / "outside" / "secret.m3u8"
    secret.parent.mkdir()
    secret.write_text("#EXTM3U\n#SECRET\n")
    (tmp_path / "outside" / "secret.ts").write_bytes(b"SECRET-TS")
    run = "20260101T000000-abcdef"
    run_dir = tmp_path / "media" / "hls" / "b1" / run
    (run_dir / "x").mkdir(parents=True)
    (run_dir / "seg_00000.ts").write_bytes(b"\x47" * 188)
    (tmp_path / "media" / "hls" / "b2" / run).mkdir(parents=True)
    (tmp_path / "media" / "hls" / "b2" / run / "seg_00000.ts").write_bytes(b"OTHER-BROADCAST")
    quoted = str(secret).replace("/", "%2F")
    up = "%2F..".join([""] * 8)  # enough '..' steps to reach '/' from anywhere below tmp_path
    probes = [
        f"/hls/b1/{run}/{quoted}",  # an absolute name joined to the run folder wins
        f"/hls/b1/x/{quoted}",
        f"/hls/b1/{run}/x{up}{quoted}",  # x/../../.. from a real run folder
        f"/hls/b1/{run}/x%2F..%2F..%2F..%2Fb2%2F{run}%2Fseg_00000.ts",  # into another broadcast
        f"/hls/b1/{run}%2F..%2F..%2Fb2%2F{run}/seg_00000.ts",
        f"/hls/b1/..%2Fb2%2F{run}/seg_00000.ts",
        f"/hls/b1/{run}/seg_00000.ts%00.ts",
        f"/hls/b1/{run}/.hidden.ts",
        f"/hls/b1/{run}/seg_99999.ts",  # well-formed but absent: the same answer as the probes
        "/hls/..%2Fb2/index.m3u8",
    ]
    for path in probes:
        async with http.get(media_server.url + path) as resp:
            body = await resp.read()
            assert resp.status == 404, (path, resp.status, body[:80])
            assert b"SECRET" not in body and b"OTHER-BROADCAST" not in body
            assert (await resp.json())["error"] == {"code": "NOT_FOUND", "message": "no such HLS file"}, path
    async with http.get(f"{media_server.url}/hls/b1/{run}/seg_00000.ts") as resp:  # the real one still works
        assert resp.status == 200 and await resp.read() == b"\x47" * 188
