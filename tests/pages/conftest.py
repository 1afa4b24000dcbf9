"""Browser fixtures: Playwright (async API, in the test's event loop) driving Debian's Chromium with
a fake camera and microphone. Never `playwright install`: the system browser is the one we test."""
from __future__ import annotations

import asyncio
import os
import socket
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

CHROMIUM = os.environ.get("HAWKER_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream",
        # real host ICE candidates instead of mDNS names (aioice would have to resolve *.local)
        "--disable-features=WebRtcHideLocalIpsWithMdns"]
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"
PHONE = {"width": 390, "height": 844}
CARD = {"number": "4242 4242 4242 4242", "exp": "12/39", "cvc": "123"}  # the sandbox's success card
DESKTOP = {"width": 1366, "height": 900}

PRODUCTS = [
    {"id": "tote", "title": "Canvas tote bag", "price": 19000, "currency": "KRW", "image_url": "/static/demo/tote.svg"},
    {"id": "mug", "title": "Enamel camp mug", "price": 12000, "currency": "KRW", "image_url": "/static/demo/mug.svg"},
]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/pages/" in str(item.fspath).replace(os.sep, "/"):
            item.add_marker(pytest.mark.browser)


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"no Chromium at {CHROMIUM}")
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        b = await p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield b
        finally:
            try:  # a browser that will not close must not hang the run
                await asyncio.wait_for(b.close(), 30)
            except TimeoutError:
                print("pages: Chromium did not close within 30 s", flush=True)


async def new_page(browser: Any, viewport: dict[str, int] = DESKTOP, locale: str = "en-US") -> Any:
    """A fresh context (own storage, so its own guest identity) and page; console errors are kept."""
    ctx = await browser.new_context(viewport=viewport, locale=locale, permissions=["camera", "microphone"])
    page = await ctx.new_page()
    page.errors = []
    page.logs = []
    page.on("pageerror", lambda e: page.errors.append(str(e)))
    page.on("console", lambda m: page.logs.append(f"{m.type}: {m.text}"))
    page.set_default_timeout(30_000)
    return page


async def create_broadcast(url: str, host_token: str, bc: str = "b1") -> dict[str, Any]:
    async with aiohttp.ClientSession() as s:
        async with s.post(f"{url}/api/broadcasts", json={"id": bc, "title": "Friday drop", "products": PRODUCTS},
                          headers={"Authorization": f"Bearer {host_token}"}) as r:
            assert r.status == 201, await r.text()
            return await r.json()


async def open_studio(browser: Any, base: str, host_token: str, viewport: dict[str, int] = DESKTOP,
                      locale: str = "en-US") -> Any:
    """A fresh page on the host's studio, returned once the page says it is ready."""
    page = await new_page(browser, viewport, locale)
    await page.goto(f"{base}/studio#token={host_token}")
    await page.wait_for_selector("body[data-ready='1']")
    return page


async def open_player(browser: Any, base: str, viewer_token: str, viewport: dict[str, int] = DESKTOP,
                      locale: str = "en-US", broadcast: str = "b1") -> Any:
    """A fresh page on the viewer's player of `broadcast`, returned once the page says it is ready."""
    page = await new_page(browser, viewport, locale)
    await page.goto(f"{base}/watch/{broadcast}#token={viewer_token}")
    await page.wait_for_selector("body[data-ready='1']")
    return page


async def start_show(make_server: Callable[..., Any], token: Callable[..., str], **config: Any) -> tuple[Any, str]:
    """A node (`config` changes its settings) with broadcast b1 of PRODUCTS, and its host's token."""
    srv = await make_server(**config)
    host = token("host", "b1", "h1")
    await create_broadcast(srv.url, host)
    return srv, host


async def fill(page: Any, form: str, **fields: str) -> None:
    """Type each value into the input or textarea of `form` named like its keyword."""
    for name, value in fields.items():
        await page.fill(f"{form} :is(input, textarea)[name={name}]", value)


async def serve_merchant(box: dict[str, str]) -> tuple[Any, str]:
    """A merchant page at /shop on its own origin (http://localhost:<port>, returned with the runner
    to clean up); its HTML is box["html"], which may be set after the origin is known."""
    from aiohttp import web

    app = web.Application()

    async def shop(_request: web.Request) -> web.Response:
        return web.Response(text=box["html"], content_type="text/html")

    app.router.add_get("/shop", shop)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "localhost", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    return runner, f"http://localhost:{port}"


async def until(cond: Callable[[], Any], timeout: float = 30.0, what: str = "condition") -> Any:
    """Poll an async or sync condition with a generous timeout (the machine is shared and loaded)."""
    deadline = time.monotonic() + timeout
    while True:
        value = cond()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        await asyncio.sleep(0.2)


async def shot(page: Any, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    await page.screenshot(path=str(path), full_page=True)
    return path


def lan_ip() -> str | None:
    """The machine's non-loopback IPv4 address (WebRTC: aioice skips 127.0.0.1)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.connect(("192.0.2.1", 9))  # TEST-NET: nothing is sent
        ip = s.getsockname()[0]
    except OSError:
        return None
    finally:
        s.close()
    return None if ip.startswith("127.") else ip
