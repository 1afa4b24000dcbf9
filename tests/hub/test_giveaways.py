"""Giveaways over real sockets: the commitment at open, entries by button and chat keyword (one per
user), "must be watching", the draw revealing the seed, and the draw verified with the CLI."""
from __future__ import annotations

import asyncio
import hashlib
import json
import sys

import aiohttp

from shop.giveaways import draw_index, entry_of, verify
from tests.hub.conftest import host_and_viewers, wait_for


def test_the_formula_is_the_documented_one():
    seed = "ab" * 32
    entries = sorted(entry_of("g1", u) for u in ("ann", "ben", "cat"))
    expected = int(hashlib.sha256((seed + "\n" + "\n".join(entries)).encode()).hexdigest(), 16) % 3
    assert draw_index(seed, entries) == expected
    assert entry_of("g1", "ann") == hashlib.sha256(b"g1:ann").hexdigest()[:16]
    record = {"seed": seed, "commitment": hashlib.sha256(seed.encode()).hexdigest(), "entries": entries,
              "winner_entry": entries[expected]}
    assert verify(record) == []
    assert verify({**record, "winner_entry": entries[(expected + 1) % 3]})
    assert verify({**record, "seed": "cd" * 32})
    assert verify({**record, "entries": entries[::-1]}) or entries == entries[::-1]


async def test_a_giveaway_drawn_and_verified_with_the_cli(bc, server, clients, token, tmp_path):
    host, (ann, ben, cat) = await host_and_viewers(server, clients, token, 3)
    opened = await host.call("giveaway.open", {"title": "Free hat", "keyword": "#hat"})
    assert opened["ok"], opened
    g = opened["giveaway"]
    gid, commitment = g["giveaway_id"], g["commitment"]
    assert g["seed"] is None and len(commitment) == 64
    heard = (await wait_for(lambda: ann.of("giveaway.opened"), what="giveaway.opened"))[0]
    assert heard["commitment"] == commitment and heard["seed"] is None
    first = await ann.call("giveaway.enter", {"giveaway_id": gid})
    assert first["ok"] and first["entered"] and first["entry"] == entry_of(gid, "v0")
    again = await ann.call("giveaway.enter", {"giveaway_id": gid})
    assert again["ok"] and not again["entered"] and again["entries"] == 1  # one entry per user
    assert (await host.call("giveaway.enter", {"giveaway_id": gid}))["error"]["code"] == "FORBIDDEN"
    assert (await ben.call("chat.send", {"text": "I want the #HAT please"}))["ok"]  # the chat keyword
    await wait_for(lambda: ben.of("giveaway.entered"), what="giveaway.entered")
    assert (await cat.call("chat.send", {"text": "hats are nice"}))["ok"]  # no keyword: no entry
    assert (await host.call("giveaway.open", {"title": "Another"}))["error"]["code"] == "GIVEAWAY_ACTIVE"
    drawn = await host.call("giveaway.draw", {"giveaway_id": gid})
    assert drawn["ok"], drawn
    d = drawn["giveaway"]
    assert hashlib.sha256(d["seed"].encode()).hexdigest() == commitment and d["eligible"] == 2
    assert (await wait_for(lambda: cat.of("giveaway.drawn"), what="giveaway.drawn"))[0]["seed"] == d["seed"]
    winners = [c for c in (ann, ben) if c.of("giveaway.won")] or [
        c for c in (ann, ben) if await _won(c)]
    assert len(winners) == 1 and not cat.of("giveaway.won")
    late = await cat.call("giveaway.enter", {"giveaway_id": gid})
    assert late["error"]["code"] == "GIVEAWAY_CLOSED"
    assert (await host.call("giveaway.draw", {"giveaway_id": gid}))["giveaway"]["seed"] == d["seed"]  # once
    viewer_token = token("viewer", "b1", "v2")
    async with aiohttp.ClientSession() as http:
        url = f"{server.url}/api/broadcasts/b1/giveaways/{gid}"
        async with http.get(url, headers={"Authorization": f"Bearer {viewer_token}"}) as resp:
            record = await resp.json()
        assert sorted(record["entries"]) == record["entries"] == sorted([entry_of(gid, "v0"), entry_of(gid, "v1")])
        async with http.get(f"{server.url}/api/broadcasts/b2/giveaways/{gid}",
                            headers={"Authorization": f"Bearer {viewer_token}"}) as resp:
            assert resp.status == 404
    # the CLI runs in its own process (the server answers in this test's event loop meanwhile)
    code, out = await _cli("giveaway", "verify", "--url", server.url, "--broadcast", "b1", "--giveaway", gid,
                           "--token", viewer_token)
    assert code == 0 and out.startswith("OK"), out
    forged = tmp_path / "forged.json"
    other = next(e for e in record["entries"] if e != record["winner_entry"])
    forged.write_text(json.dumps({**record, "winner_entry": other}))
    code, out = await _cli("giveaway", "verify", str(forged))
    assert code == 1 and "FAILED" in out


async def _cli(*args: str) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "live", *args, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.STDOUT)
    out, _ = await asyncio.wait_for(proc.communicate(), 60)
    return proc.returncode or 0, out.decode()


async def _won(c) -> bool:
    try:
        await wait_for(lambda: c.of("giveaway.won"), timeout=2, what="giveaway.won")
        return True
    except AssertionError:
        return False


async def test_must_be_watching_leaves_out_who_left(bc, server, clients, token, redis):
    host, (ann, ben) = await host_and_viewers(server, clients, token, n=2)
    gid = (await host.call("giveaway.open", {"title": "Watchers only", "must_watch": True}))["giveaway"]["giveaway_id"]
    assert (await ann.call("giveaway.enter", {"giveaway_id": gid}))["entered"]
    assert (await ben.call("giveaway.enter", {"giveaway_id": gid}))["entered"]
    await ben.sio.disconnect()
    present = "hub:{b1}:present"
    for _ in range(400):  # the server hears the disconnect on its own time
        if not await redis.hexists(present, "v1"):
            break
        await asyncio.sleep(0.05)
    assert await redis.hexists(present, "v0") and not await redis.hexists(present, "v1")
    drawn = (await host.call("giveaway.draw", {"giveaway_id": gid}))["giveaway"]
    assert drawn["eligible"] == 1 and drawn["winner_entry"] == entry_of(gid, "v0")
    assert drawn["entries"] == 2  # both entered; only the one still watching could win


async def test_bad_giveaway_input_is_refused(bc, server, clients, token):
    host, (ann,) = await host_and_viewers(server, clients, token, n=1)
    for bad in ({}, {"title": ""}, {"title": "x", "keyword": "two words"}, {"title": "x", "must_watch": "yes"},
                {"title": "x", "extra": 1}):
        r = await host.call("giveaway.open", bad)
        assert r["error"]["code"] == "VALIDATION", (bad, r)
    assert (await ann.call("giveaway.open", {"title": "x"}))["error"]["code"] == "FORBIDDEN"
    assert (await ann.call("giveaway.enter", {"giveaway_id": "nope"}))["error"]["code"] == "GIVEAWAY_NOT_FOUND"
    assert (await ann.call("giveaway.enter", {"giveaway_id": "../x"}))["error"]["code"] == "VALIDATION"


def test_the_verify_command_reads_a_file_and_says_why(tmp_path, capsys):
    from live.cli import main

    seed = "0f" * 32
    entries = sorted(entry_of("g9", u) for u in ("a", "b", "c", "d"))
    record = {"seed": seed, "commitment": hashlib.sha256(seed.encode()).hexdigest(), "entries": entries,
              "winner_entry": entries[draw_index(seed, entries)]}
    good = tmp_path / "good.json"
    good.write_text(json.dumps(record))
    assert main(["giveaway", "verify", str(good)]) == 0
    assert "OK" in capsys.readouterr().out
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({**record, "commitment": "0" * 64}))
    assert main(["giveaway", "verify", str(bad)]) == 1
    assert "commitment" in capsys.readouterr().out
    assert main(["giveaway", "verify"]) == 2  # nothing to check
    assert main(["giveaway", "verify", str(tmp_path / "missing.json")]) == 2
    (tmp_path / "open.json").write_text(json.dumps({"commitment": record["commitment"], "seed": None}))
    assert main(["giveaway", "verify", str(tmp_path / "open.json")]) == 1  # not drawn yet: nothing verifies
