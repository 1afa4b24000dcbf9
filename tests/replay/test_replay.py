"""The shoppable replay on the hub: sales left open with `replay: true` outlive the broadcast and stay
buyable; `replay.info` gives the finished recording and the pins as chapters."""
from __future__ import annotations

from tests.hub.conftest import bc, clients, wait_for  # noqa: F401 - fixtures


async def test_replay_sales_stay_open_and_info_lists_chapters(bc, make_server, clients, token, tmp_path):  # noqa: F811 - the fixture imported above
    srv = await make_server(media_dir=str(tmp_path))
    host = await clients(srv.url, token("host", "b1", "h1"))
    viewer = await clients(srv.url, token("viewer", "b1", "v1"))
    await viewer.snapshot()
    keep = (await host.call("sale.schedule", {"product_id": "p1", "units": 2, "limit": 1, "replay": True}))["sale"]
    live_only = (await host.call("sale.schedule", {"product_id": "p2", "units": 2, "limit": 1}))["sale"]
    assert keep["replay"] is True and live_only["replay"] is False
    for bad in ("yes", 1, None):
        ack = await host.call("sale.schedule", {"product_id": "p1", "units": 1, "replay": bad})
        if bad is None:
            assert ack["ok"] and ack["sale"]["replay"] is False  # null is "not given"
        else:
            assert ack["error"]["code"] == "VALIDATION" and ack["error"]["field"] == "replay", ack
    assert (await host.call("product.pin", {"product_id": "p2"}))["ok"]
    assert (await host.call("product.unpin", {}))["ok"]
    assert (await host.call("product.pin", {"product_id": "p1"}))["ok"]
    assert not (await viewer.call("product.pin", {"product_id": "p1"}))["ok"]  # refused: not a chapter
    info = await viewer.call("replay.info", {})
    assert info["ok"] and info["ended"] is False and info["playlist"] is None
    assert [c["product_id"] for c in info["chapters"]] == ["p2", "p1"]  # an unpin is no chapter
    assert info["chapters"][1]["title"] == "Linen shirt" and info["chapters"][0]["at"] <= info["chapters"][1]["at"]

    assert (await host.call("broadcast.end", {}))["ok"]
    closed = await wait_for(lambda: [e for e in viewer.of("sale.closed") if e["sale_id"] == live_only["id"]], what="close")
    assert closed[0]["reason"] == "broadcast_ended"
    assert not [e for e in viewer.of("sale.closed") if e["sale_id"] == keep["id"]]
    ack = await viewer.call("sale.reserve", {"sale_id": keep["id"], "request_id": "r1"})
    assert ack["ok"], ack  # the replay's Buy: the same hold path
    ack = await viewer.call("sale.reserve", {"sale_id": live_only["id"], "request_id": "r2"})
    assert not ack["ok"]

    info = await viewer.call("replay.info", {})
    assert info["ended"] is True and info["playlist"] is None  # no recording yet
    rid = "20261201T120000-abcdef"  # a run id as the HLS writer names them (the media routes accept no other)
    run = tmp_path / "hls" / "b1" / rid
    run.mkdir(parents=True)
    (run / "index.m3u8").write_text(f"#EXTM3U\n#EXT-X-PLAYLIST-TYPE:EVENT\n#EXTINF:2.0,\n{rid}/seg_00000.ts\n")
    (run.parent / "current").write_text(rid)
    assert (await viewer.call("replay.info", {}))["playlist"] is None  # still being written: not a replay
    (run / "index.m3u8").write_text(f"#EXTM3U\n#EXT-X-PLAYLIST-TYPE:VOD\n#EXTINF:2.0,\n{rid}/seg_00000.ts\n#EXT-X-ENDLIST\n")
    assert (await viewer.call("replay.info", {}))["playlist"] == "/hls/b1/index.m3u8"
