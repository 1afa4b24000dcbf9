"""The shoppable replay in a real player (Chromium): after the show, /watch/<b> plays the recording
(an HLS VOD run on disk, as the media part leaves it), the chat replays in sync with the video
(seeking to a message's moment shows it, and not what was said later), the pins are chapters, and a
sale the host left open with `replay: true` is bought through the same hold and checkout."""
from __future__ import annotations

import asyncio
import fractions
import re
from datetime import UTC, datetime
from pathlib import Path

import av
import numpy as np

from live.media.hls import finalize_playlist
from tests.hub.conftest import Client
from tests.pages.conftest import CARD, create_broadcast, fill, new_page, shot, until

SECONDS = 10


def record(run_dir: Path, base_ms: int) -> None:
    """A recording like the media part's: H264 in ~1 s MPEG-TS segments written by FFmpeg's HLS
    muxer with PROGRAM-DATE-TIME; its dates are set to start at `base_ms` (server time), then the
    playlist is finalized (VOD + ENDLIST) as when a publish ends."""
    run_dir.mkdir(parents=True)
    out = av.open(str(run_dir / "index.m3u8"), mode="w", format="hls", options={
        "hls_time": "1", "hls_list_size": "0", "hls_playlist_type": "event", "hls_segment_type": "mpegts",
        "hls_flags": "independent_segments+program_date_time", "hls_segment_filename": str(run_dir / "seg_%05d.ts"),
        "hls_base_url": f"{run_dir.name}/"})
    vs = out.add_stream("libx264", rate=10)
    vs.width, vs.height, vs.pix_fmt = 320, 180, "yuv420p"
    vs.options = {"preset": "ultrafast", "g": "10"}
    for i in range(SECONDS * 10):
        img = np.zeros((180, 320, 3), dtype=np.uint8)
        img[:, :, 0] = (i * 7) % 255
        frame = av.VideoFrame.from_ndarray(img, format="rgb24")
        frame.pts, frame.time_base = i, fractions.Fraction(1, 10)
        for p in vs.encode(frame):
            out.mux(p)
    for p in vs.encode():
        out.mux(p)
    out.close()
    playlist = run_dir / "index.m3u8"
    n = iter(range(10_000))

    def date(_m: re.Match) -> str:
        at = datetime.fromtimestamp((base_ms + 1000 * next(n)) / 1000, tz=UTC)
        return "#EXT-X-PROGRAM-DATE-TIME:" + at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}+0000"

    playlist.write_text(re.sub(r"#EXT-X-PROGRAM-DATE-TIME:\S+", date, playlist.read_text()))
    finalize_playlist(playlist)
    (run_dir.parent / "current").write_text(run_dir.name)


async def _chat_texts(page) -> list[str]:
    return [t.strip() for t in await page.locator("#chat-list li .text").all_text_contents()]


async def _seek(page, t: float) -> None:
    await page.evaluate("""(t) => new Promise((res) => { const v = document.querySelector('#video');
        v.pause(); v.addEventListener('seeked', () => res(), { once: true }); v.currentTime = t; })""", t)


async def test_replay_chat_sync_chapters_and_buy(make_server, browser, token, tmp_path) -> None:
    srv = await make_server(media_dir=str(tmp_path))
    host_tok = token("host", "b1", "h1")
    await create_broadcast(srv.url, host_tok)
    host = await Client().connect(srv.url, host_tok)
    talker = await Client().connect(srv.url, token("viewer", "b1", "talker", name="Minji"))
    try:
        assert (await host.call("broadcast.start", {}))["ok"]
        tote_sale = (await host.call("sale.schedule", {"product_id": "tote", "units": 3, "limit": 1, "replay": True}))["sale"]
        assert tote_sale["replay"] is True
        mug_sale = (await host.call("sale.schedule", {"product_id": "mug", "units": 3, "limit": 1}))["sale"]
        bad = await host.call("sale.schedule", {"product_id": "mug", "units": 1, "replay": "yes"})
        assert bad["error"]["code"] == "VALIDATION" and bad["error"]["field"] == "replay"
        pin1 = await host.call("product.pin", {"product_id": "tote"})
        first = (await talker.call("chat.send", {"text": "love the tote"}))["message"]
        await asyncio.sleep(3.2)
        assert (await host.call("product.pin", {"product_id": "mug"}))["ok"]
        later = (await talker.call("chat.send", {"text": "mug please"}))["message"]
        assert later["ts"] - first["ts"] >= 3000 and pin1["ok"]
        assert (await host.call("broadcast.end", {}))["ok"]
        base = first["ts"] - 1500  # the recording starts 1.5 s before the first message
        record(tmp_path / "hls" / "b1" / "20261201T120000-0a1b2c", base)  # a run id as the HLS writer names them

        page = await new_page(browser)
        await page.goto(f"{srv.url}/watch/b1#token={token('viewer', 'b1', 'late')}")
        await page.wait_for_selector("body[data-replay='1']")
        await page.wait_for_function("document.querySelector('#video').readyState >= 1")
        chapters = page.locator("#chapters button.chapter")
        assert await chapters.count() == 2
        assert [await c.get_attribute("data-product") for c in await chapters.all()] == ["tote", "mug"]

        await _seek(page, 1.6)  # just after the first message
        await until(lambda: _texts_are(page, ["love the tote"]), what="only the first message at 1.6 s")
        await _seek(page, (later["ts"] - base) / 1000 + 0.3)  # just after the second
        await until(lambda: _texts_are(page, ["love the tote", "mug please"]), what="both messages")
        heights = await page.evaluate("[...document.querySelectorAll('#chat-list li')].map((li) => li.getBoundingClientRect().height)")
        assert max(heights) < 60, heights  # a chat line is a line (its kind "chat" once matched the chat panel's rule)
        await shot(page, "player-replay-chat")
        await _seek(page, 0.2)  # back before anything was said
        await until(lambda: _texts_are(page, []), what="an empty chat at the start")

        await page.locator("#chapters button.chapter[data-product='mug']").click()
        await until(lambda: _has(page, "#card-title", "Enamel camp mug"), what="the mug chapter's card")
        t_mug = await page.evaluate("document.querySelector('#video').currentTime")
        assert abs(t_mug - float(await page.locator("#chapters button.chapter[data-product='mug']").get_attribute("data-t"))) < 0.5
        await until(lambda: _has(page, "#card-state", "Sale ended"), what="the mug sale closed with the show")
        await shot(page, "player-replay")

        await page.locator("#chapters button.chapter[data-product='tote']").click()
        await until(lambda: _has(page, "#card-title", "Canvas tote bag"), what="the tote chapter's card")
        await page.wait_for_selector("#buy:not([disabled])")  # left open for the replay
        await page.click("#buy")
        await page.wait_for_selector("#hold:not([hidden])")
        await fill(page, "#checkout", name="Late Viewer", email="late@example.test", **CARD)
        await page.click("#pay")
        await page.wait_for_selector("#confirmation:not([hidden])")
        assert not page.errors, page.errors
        assert mug_sale["id"] != tote_sale["id"]
    finally:
        for c in (host, talker):
            if c.sio.connected:
                await c.sio.disconnect()


async def _texts_are(page, want: list[str]) -> bool:
    return await _chat_texts(page) == want


async def _has(page, sel: str, want: str) -> bool:
    return want in ((await page.locator(sel).text_content()) or "")
