"""Media tests need a non-loopback interface: aioice (and Chromium) gather no candidates on lo."""
from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from loadtest.media_clients import lan_ip
from tests.waiting import wait_for  # noqa: F401 - re-exported for the tests of this folder


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


