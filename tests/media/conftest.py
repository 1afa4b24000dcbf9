"""Media tests need a non-loopback interface: aioice (and Chromium) gather no candidates on lo."""
from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest

from loadtest.media_clients import lan_ip


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
async def media_server(make_server, media_ip, tmp_path):  # type: ignore[no-untyped-def]
    return await make_server(media_dir=str(tmp_path / "media"))


async def wait_for(cond: Callable[[], Any], timeout: float = 30.0, what: str = "condition") -> Any:
    """Poll a condition with a generous timeout (the machine is shared and loaded); its value."""
    deadline = time.monotonic() + timeout
    while True:
        value = cond()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        await asyncio.sleep(0.1)
