"""Media tests need a non-loopback interface: aioice (and Chromium) gather no candidates on lo."""
from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from loadtest.media_clients import Publisher, Viewer, lan_ip
from tests.waiting import wait_for


@pytest.fixture(scope="session")
def media_ip() -> str:
    ip = lan_ip()
    if ip is None:
        pytest.skip("no non-loopback IPv4 interface: WebRTC ICE cannot gather candidates here")
    return ip


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
async def media_server(make_server, media_ip, tmp_path):
    return await make_server(media_dir=str(tmp_path / "media"))


async def watching(url: str, http: aiohttp.ClientSession, token, sub: str, frames: int, what: str):
    """Broadcast b1 published at `url` and one viewer (`sub`) that has received `frames` video frames."""
    pub = Publisher(url, "b1", token("host", "b1"))
    await pub.start(http)
    viewer = Viewer(url, "b1", token("viewer", "b1", sub))
    assert await viewer.start(http), viewer.error
    await wait_for(lambda: len(viewer.sizes) >= frames, 60, what)
    return pub, viewer
