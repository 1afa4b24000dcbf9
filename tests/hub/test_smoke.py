async def test_connect_and_snapshot(server, bc, clients, token):
    c = await clients(server.url, token("viewer", "b1", "u1"))
    snap = await c.snapshot()
    assert snap["broadcast"]["id"] == "b1"
    ack = await c.call("time")
    assert ack["ok"] is True
