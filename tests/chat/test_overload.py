"""Chat overload: the sampler the fan-out engine applies per tick (viewers sampled, staff complete)."""
from __future__ import annotations

from chat.overload import ChatSampler, OverloadPolicy, RateMeter, sample
from tests.chat.conftest import wait_for


def line(i: int, role: str = "viewer") -> dict:
    return {"id": f"1-{i}", "user": f"u{i}", "role": role, "text": f"m{i}", "kind": "chat"}


def test_rate_meter_counts_a_sliding_window() -> None:
    m = RateMeter(window_s=2)
    for t in range(0, 3000, 100):  # 10 messages per second for 3 s
        m.add(t)
    assert 8 <= m.rate(2999) <= 11
    assert m.rate(10_000) == 0


def test_sample_keeps_order_and_must_keep_items() -> None:
    items = [line(i) for i in range(100)]
    items[50] = line(50, "host")
    items[77] = line(77, "system")
    got = sample(items, 10, keep=lambda m: m["role"] != "viewer")
    assert len(got) == 10
    assert items[50] in got and items[77] in got
    assert got == sorted(got, key=lambda m: int(m["id"].split("-")[1]))
    assert sample(items[:5], 10) == items[:5]


def test_sampler_switches_on_above_the_rate_only() -> None:
    s = ChatSampler(OverloadPolicy(rate=20, k=3))
    calm = [line(i) for i in range(2)]
    for tick in range(20):  # 2 per 100 ms tick = 20/s: at the threshold, not above
        assert s.for_viewers("b1", calm, 1_000_000 + tick * 100) == calm
    busy = [line(i) for i in range(10)]
    host = line(99, "host")
    out = []
    for tick in range(20):  # 11 per tick = 110/s
        out = s.for_viewers("b1", busy + [host], 2_000_000 + tick * 100)
    assert len(out) == 3 and host in out
    assert s.for_viewers("b2", busy, 2_000_000) == busy  # per broadcast


def staff_view(c) -> list[str]:
    """What a host/moderator page shows: tick lines plus `chat.staff` lines, merged by id."""
    lines = {m["id"]: m for m in c.chat_lines()}
    for extra in c.of("chat.staff"):
        lines.update({m["id"]: m for m in extra["messages"]})
    return sorted(lines, key=lambda i: tuple(int(x) for x in i.split("-")))


async def test_viewers_sampled_while_staff_get_everything(make_server, clients, token, bc) -> None:
    a = await make_server(chat_overload_rate=2.0, chat_overload_k=2, chat_rate=1000.0, chat_burst=1000)
    b = await make_server(chat_overload_rate=2.0, chat_overload_k=2, chat_rate=1000.0, chat_burst=1000)
    host = await clients(a.url, token("host", bc, "h1"))
    mod = await clients(b.url, token("moderator", bc, "m1"))
    viewers = [await clients(a.url, token("viewer", bc, "v0")), await clients(b.url, token("viewer", bc, "v9"))]
    senders = [await clients(a.url, token("viewer", bc, "v1")), await clients(b.url, token("viewer", bc, "v2"))]
    sent = []

    async def burst(tag: str, n: int) -> None:
        for k in range(n):
            for i, c in enumerate(senders):
                ack = await c.call("chat.send", {"text": f"{tag} {i} {k}"})
                assert ack["ok"], ack
                sent.append(ack["message"]["id"])

    await burst("warm-up", 5)
    await burst("flood", 15)
    announcement = (await host.call("chat.send", {"text": "Sale starts now!"}))["message"]["id"]
    sent.append(announcement)
    for staff in (host, mod):
        await wait_for(lambda staff=staff: len(staff_view(staff)) >= len(sent), what="every line for staff")
        assert staff_view(staff) == sent
    for v in viewers:
        await wait_for(lambda v=v: announcement in [m["id"] for m in v.chat_lines()], what="the host's line")
        got = [m["id"] for m in v.chat_lines()]
        assert len(got) < len(sent) and set(got) <= set(sent)
        assert not v.of("chat.staff")  # viewers never get the staff relay
