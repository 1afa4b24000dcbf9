"""Waiting for a condition in async tests: poll with a generous timeout, because the machine running
the suite may be shared and loaded. Tests wait for what they assert, never for a fixed time."""
from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any


async def wait_for(cond: Callable[[], Any], timeout: float = 30.0, what: str = "condition",
                   interval: float = 0.02) -> Any:
    """The first truthy value of `cond()`, or AssertionError after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = cond()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        await asyncio.sleep(interval)
