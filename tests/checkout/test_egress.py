"""The webhook egress policy (checkout/egress.py): which addresses a webhook may reach, checked at
registration AND at every delivery (DNS rebinding), connecting to the checked address only, no
redirects, and failures recorded as generic codes. Real aiohttp receivers on loopback, real Redis."""
from __future__ import annotations

import asyncio

import pytest
from aiohttp import web

from checkout import WebhookError, Webhooks
from checkout.egress import DELIVERY_FAILED, DESTINATION_REFUSED, EgressPolicy, EgressRefused, classify
from tests.checkout.hooks import SECRET, Receiver, serve
from tests.redis_proc import free_port
from tests.waiting import wait_for as wait_until

PUBLIC_V4 = "93.184.216.34"
PUBLIC_V6 = "2606:4700:4700::1111"


@pytest.mark.parametrize("address, why", [
    ("127.0.0.1", "loopback"), ("127.8.9.10", "loopback"), ("::1", "loopback"),
    ("10.0.0.1", "private"), ("172.16.5.4", "private"), ("192.168.1.1", "private"),
    ("169.254.169.254", "metadata"), ("fd00:ec2::254", "metadata"), ("100.100.100.200", "metadata"),
    ("169.254.1.1", "link-local"), ("fe80::1", "link-local"), ("fe80::1%eth0", "link-local"),
    ("100.64.0.1", "cgnat"), ("100.127.255.254", "cgnat"),
    ("224.0.0.1", "multicast"), ("ff02::1", "multicast"),
    ("0.0.0.0", "unspecified"), ("::", "unspecified"),
    ("240.0.0.1", "reserved"), ("255.255.255.255", "reserved"), ("192.0.2.1", "private"),
    ("fc00::1", "ula"), ("fd12:3456::1", "ula"), ("fec0::1", "site-local"),
    # IPv4 inside IPv6: mapped, compatible, NAT64, 6to4 - each reaches the IPv4 host
    ("::ffff:127.0.0.1", "ipv4-in-ipv6 loopback"), ("::ffff:7f00:1", "ipv4-in-ipv6 loopback"),
    ("::ffff:169.254.169.254", "ipv4-in-ipv6 metadata"), ("::ffff:10.0.0.1", "ipv4-in-ipv6 private"),
    ("::127.0.0.1", "ipv4-in-ipv6 loopback"), ("64:ff9b::a9fe:a9fe", "ipv4-in-ipv6 metadata"),
    ("2002:7f00:1::", "ipv4-in-ipv6 loopback"), ("2002:a00:1::", "ipv4-in-ipv6 private"),
    ("not-an-ip", "invalid"),
])
def test_classifier_refuses_every_non_public_form(address: str, why: str) -> None:
    assert classify(address) == why


@pytest.mark.parametrize("address", [PUBLIC_V4, "8.8.8.8", PUBLIC_V6, "::ffff:8.8.8.8", "2002:808:808::"])
def test_classifier_lets_public_addresses_through(address: str) -> None:
    assert classify(address) is None


def fixed(table: dict[str, list[str]]):
    """A resolver the test controls: host -> addresses (change the dict to play DNS rebinding)."""
    calls: list[str] = []

    async def lookup(host: str, port: int) -> list[str]:
        calls.append(host)
        if host not in table:
            raise OSError("no such host")
        return list(table[host])

    lookup.calls = calls
    return lookup


async def test_url_rules_https_only_and_every_address_checked() -> None:
    dns = {"hooks.shop.example": [PUBLIC_V4], "mixed.shop.example": [PUBLIC_V4, "10.0.0.7"],
           "metadata.shop.example": ["169.254.169.254"], "v6.shop.example": ["::ffff:127.0.0.1"]}
    strict = EgressPolicy.from_settings(False, "", lookup=fixed(dns))
    target = await strict.resolve("https://hooks.shop.example/h")
    assert target.addresses == (PUBLIC_V4,) and target.port == 443
    for url in ["http://hooks.shop.example/h",  # plain http: only for configured development hosts
                "ftp://hooks.shop.example/h", "https://user:pw@hooks.shop.example/h",
                "https://127.0.0.1/h", "https://10.0.0.1/h", "https://169.254.169.254/latest/meta-data/",
                "https://[::ffff:127.0.0.1]/h", "https://[fd00:ec2::254]/h", "https://100.64.0.1/h",
                "https://mixed.shop.example/h",  # one private answer refuses the name
                "https://metadata.shop.example/h", "https://v6.shop.example/h",
                "https://nowhere.shop.example/h"]:  # does not resolve
        with pytest.raises(EgressRefused):
            await strict.resolve(url)
    dev = EgressPolicy.from_settings(True, "localhost, 127.0.0.1", lookup=fixed({"localhost": ["127.0.0.1"]}))
    assert (await dev.resolve("http://localhost:8000/h")).addresses == ("127.0.0.1",)
    with pytest.raises(EgressRefused):
        await dev.resolve("http://hooks.shop.example/h")  # http stays limited to the listed hosts


async def test_a_resolver_that_hangs_is_a_refusal_not_a_stuck_worker() -> None:
    async def slow(host: str, port: int) -> list[str]:
        await asyncio.sleep(30)
        return [PUBLIC_V4]

    policy = EgressPolicy.from_settings(False, "", lookup=slow)
    t0 = asyncio.get_running_loop().time()
    with pytest.raises(EgressRefused):
        await policy.resolve("https://slow.shop.example/h", timeout_s=0.2)
    assert asyncio.get_running_loop().time() - t0 < 5


async def test_registration_refuses_internal_endpoints_with_a_clear_code(redis) -> None:
    wh = Webhooks(redis, consumer="n1", policy=EgressPolicy.from_settings(False, "", lookup=fixed({})))
    for url in ["https://127.0.0.1/h", "https://10.0.0.1/h", "https://169.254.169.254/latest/meta-data/",
                "https://[::ffff:169.254.169.254]/", "http://example.com/h"]:
        with pytest.raises(WebhookError) as err:
            await wh.register("b1", url, SECRET)
        assert err.value.code == "WEBHOOK_URL_REFUSED", url
    assert await wh.endpoints("b1") == []


async def dead_letter(wh: Webhooks, timeout: float = 30.0) -> dict:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        dead = await wh.dead_letters("b1")
        if dead:
            return dead[0]
        assert asyncio.get_running_loop().time() < deadline, "no dead letter"
        await asyncio.sleep(0.05)


async def test_rebinding_at_delivery_is_refused_and_nothing_reaches_the_internal_host(redis) -> None:
    """Registered while the name pointed at a public address; at delivery it points at loopback
    (where a real receiver listens): the delivery is refused, the receiver hears nothing."""
    rec = Receiver()
    runner, port = await serve(rec)
    dns = {"hooks.shop.example": [PUBLIC_V4]}
    policy = EgressPolicy.from_settings(False, "hooks.shop.example", lookup=fixed(dns))
    wh = Webhooks(redis, consumer="n1", policy=policy, max_attempts=2, base_delay_s=0.05, max_delay_s=0.1, poll_ms=50)
    try:
        await wh.register("b1", f"http://hooks.shop.example:{port}/hooks", SECRET)
        dns["hooks.shop.example"] = ["127.0.0.1"]  # the rebinding
        await wh.start()
        try:
            await wh.emit("order.created", "b1", {"order": {"id": "o1"}})
            dead = await dead_letter(wh)
        finally:
            await wh.stop()
    finally:
        await runner.cleanup()
    assert rec.attempts == 0
    assert dead["error"] == DESTINATION_REFUSED and dead["attempt"] == 2
    assert policy.lookup.calls.count("hooks.shop.example") >= 3  # registration + every delivery


async def test_delivery_connects_to_the_checked_address_not_a_second_lookup(redis) -> None:
    """The name exists only in the policy's resolver: if aiohttp looked it up again (system DNS),
    the delivery would fail. It arrives, so the connection went to the address the policy checked."""
    rec = Receiver()
    runner, port = await serve(rec)
    policy = EgressPolicy.from_settings(True, "hooks.invalid", lookup=fixed({"hooks.invalid": ["127.0.0.1"]}))
    wh = Webhooks(redis, consumer="n1", policy=policy, poll_ms=50)
    try:
        await wh.register("b1", f"http://hooks.invalid:{port}/hooks", SECRET)
        await wh.start()
        try:
            await wh.emit("order.created", "b1", {"order": {"id": "o1"}})
            await wait_until(lambda: len(rec.accepted) == 1)
        finally:
            await wh.stop()
    finally:
        await runner.cleanup()
    assert rec.bad_signatures == 0


async def test_redirects_are_not_followed_and_errors_are_generic(redis) -> None:
    """A 307 to an internal URL is not followed (the internal handler is never called); a 503
    with a chatty body, a redirect and a closed port all record the same generic code."""
    rec = Receiver()
    internal_hits: list[str] = []

    async def internal(request: web.Request) -> web.Response:
        internal_hits.append(request.path)
        return web.Response(text="secret admin page")

    async def redirect(request: web.Request) -> web.Response:
        raise web.HTTPTemporaryRedirect(f"http://127.0.0.1:{request.url.port}/admin")

    async def chatty(request: web.Request) -> web.Response:
        return web.Response(status=503, text="redis at 10.1.2.3:6379 refused: internal detail")

    def routes(app: web.Application) -> None:
        app.router.add_post("/admin", internal)
        app.router.add_post("/redirect", redirect)
        app.router.add_post("/chatty", chatty)

    runner, port = await serve(rec, routes)
    closed = free_port()
    policy = EgressPolicy.from_settings(True, "127.0.0.1")
    wh = Webhooks(redis, consumer="n1", policy=policy, max_attempts=1, poll_ms=50)
    try:
        for path in ("redirect", "chatty"):
            await wh.register("b1", f"http://127.0.0.1:{port}/{path}", SECRET, ["order.created"])
        await wh.register("b1", f"http://127.0.0.1:{closed}/hooks", SECRET, ["order.created"])
        await wh.start()
        try:
            await wh.emit("order.created", "b1", {"order": {"id": "o1"}})
            deadline = asyncio.get_running_loop().time() + 30
            while len(dead := await wh.dead_letters("b1")) < 3:
                assert asyncio.get_running_loop().time() < deadline, dead
                await asyncio.sleep(0.05)
        finally:
            await wh.stop()
    finally:
        await runner.cleanup()
    assert internal_hits == []
    assert [d["error"] for d in dead] == [DELIVERY_FAILED] * 3
    assert all("10.1.2.3" not in str(d) and "503" not in str(d) for d in dead)


async def test_the_api_refuses_internal_webhook_urls_with_webhook_url_refused(make_server, token, redis) -> None:
    """A node with the default (strict) policy: a host cannot point webhooks at loopback, private
    or metadata addresses; the answer says why with a code, and nothing is registered."""
    import aiohttp

    srv = await make_server()  # HAWKER_WEBHOOK_ALLOW_PRIVATE unset
    host = {"Authorization": f"Bearer {token('host', 'b1', 'h1')}"}
    async with aiohttp.ClientSession() as http:
        for url in [f"http://127.0.0.1:{srv.config.port}/api/broadcasts", "https://127.0.0.1/h", "https://10.0.0.1/h",
                    "https://169.254.169.254/latest/meta-data/", "https://[::ffff:127.0.0.1]/h", "https://100.64.0.1/"]:
            async with http.post(srv.url + "/api/webhooks", json={"url": url, "secret": SECRET}, headers=host) as r:
                assert r.status == 422, (url, await r.text())
                assert (await r.json())["error"]["code"] == "WEBHOOK_URL_REFUSED"
        async with http.get(srv.url + "/api/webhooks", headers=host) as r:
            assert (await r.json())["webhooks"] == []
