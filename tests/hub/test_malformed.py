"""Bad input gets a clear error ack and changes nothing; the connection and everyone else carry on."""
from __future__ import annotations

import asyncio

from tests.hub.conftest import wait_for


async def test_wrong_shapes_unknown_events_and_oversized_payloads(server, bc, clients, token, redis):
    c = await clients(server.url, token("viewer", "b1", "u1"))
    other = await clients(server.url, token("viewer", "b1", "u2"))
    await c.snapshot()
    await other.snapshot()
    cases = [
        ("time", "a string", "BAD_PAYLOAD"),
        ("time", [1, 2], "BAD_PAYLOAD"),
        ("time", 42, "BAD_PAYLOAD"),
        ("time", (1, 2), "BAD_PAYLOAD"),  # two arguments
        ("no.such.event", {}, "UNKNOWN_EVENT"),
        ("hearts", {"n": "lots"}, "VALIDATION"),
        ("hearts", {"n": 10_000}, "VALIDATION"),
        ("poll.vote", {"poll_id": 7, "option": 0}, "VALIDATION"),
        ("poll.vote", {"poll_id": "../../x", "option": 0}, "VALIDATION"),
        ("sale.reserve", {"sale_id": None}, "VALIDATION"),
        ("hearts", {"pad": "x" * 20_000}, "PAYLOAD_TOO_LARGE"),
    ]
    keys_before = sorted(await redis.keys("*"))
    for event, payload, code in cases:
        ack = await c.call(event, payload)
        assert ack["ok"] is False and ack["error"]["code"] == code, (event, payload, ack)
        assert ack["error"]["message"]
        await asyncio.sleep(0.06)  # stay under the flood limit: this test is about shapes
    assert c.sio.connected and other.sio.connected
    assert (await c.call("time"))["ok"] and (await other.call("time"))["ok"]
    keys_after = sorted(k for k in await redis.keys("*") if not k.startswith(b"hub:fan:"))
    assert keys_after == sorted(k for k in keys_before if not k.startswith(b"hub:fan:"))


async def test_handler_crash_is_an_internal_error_ack(server, bc, clients, token):
    hub = server.app["node"].hub

    @hub.command("test.boom")
    async def boom(caller, payload):
        raise RuntimeError("bug")

    @hub.command("test.not_a_dict")
    async def wrong(caller, payload):
        return ["not", "a", "dict"]

    try:
        c = await clients(server.url, token("viewer", "b1", "u1"))
        await c.snapshot()
        assert (await c.call("test.boom"))["error"]["code"] == "INTERNAL"
        assert (await c.call("test.not_a_dict"))["error"]["code"] == "INTERNAL"
        assert (await c.call("time"))["ok"] and c.sio.connected
    finally:
        del hub.registry.commands["test.boom"], hub.registry.commands["test.not_a_dict"]


async def test_flood_is_refused_per_socket_and_others_are_unaffected(server, bc, clients, token):
    flooder = await clients(server.url, token("viewer", "b1", "u1"))
    calm = await clients(server.url, token("viewer", "b1", "u2"))
    await flooder.snapshot()
    await calm.snapshot()
    acks = await asyncio.gather(*(flooder.call("hearts", {"n": 1}) for _ in range(150)))
    floods = [a for a in acks if not a["ok"]]
    assert floods and all(a["error"]["code"] == "FLOOD" and a["error"]["retry_after"] >= 1 for a in floods)
    assert sum(1 for a in acks if a["ok"]) >= 40  # the burst allowance went through
    assert (await calm.call("time"))["ok"]  # another socket is not throttled by it
    assert flooder.sio.connected
    retry_ms = max(a["error"]["retry_after"] for a in floods)
    await asyncio.sleep(retry_ms / 1000 + 0.2)
    assert (await flooder.call("time"))["ok"]  # after backing off it is served again
    # hearts that were accepted reach the room, summed in ticks
    await wait_for(lambda: sum((t or {}).get("hearts", 0) for t in calm.of("tick")) >= 40, what="hearts in ticks")
