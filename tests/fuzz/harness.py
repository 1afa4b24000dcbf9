"""Running hypothesis against a server that lives in the test's event loop, and watching its logs.

Hypothesis drives synchronous functions; the server (make_server) runs in pytest-asyncio's loop.
`drive(fn)` runs a hypothesis-decorated `fn` in a worker thread while the loop stays free, and
`Bridge.run(coro)` is how an example's steps run on that loop."""
from __future__ import annotations

import asyncio
import gc
import logging
import os
from collections.abc import Callable, Coroutine
from typing import Any

from hypothesis import HealthCheck, Phase, settings

# CI budget: a few hundred examples in well under a minute on two shared cores. More locally with
# HAWKER_FUZZ_EXAMPLES=5000 (the counts below scale with it).
EXAMPLES = int(os.environ.get("HAWKER_FUZZ_EXAMPLES", "300"))


def fuzz_settings(examples: int) -> settings:
    """No shrinking: an example against a live server can take seconds (an ack that never comes
    waits its timeout), so the first failing frame is reported as drawn."""
    return settings(max_examples=examples, deadline=None, database=None, print_blob=True,
                    phases=(Phase.explicit, Phase.reuse, Phase.generate), suppress_health_check=list(HealthCheck))


class LogTrap(logging.Handler):
    """Every record at ERROR or above, and every record that carries a traceback, from any logger."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.bad: list[str] = []
        self.warnings = 0

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno >= logging.ERROR or record.exc_info:
            self.bad.append(f"{record.levelname} {record.name}: {record.getMessage()[:300]}")
        elif record.levelno == logging.WARNING:
            self.warnings += 1

    def __enter__(self) -> LogTrap:
        root = logging.getLogger()
        self._level = root.level
        root.addHandler(self)
        root.setLevel(logging.INFO)
        return self

    def __exit__(self, *exc: Any) -> None:
        gc.collect()  # surfaces "Task exception was never retrieved" before we stop listening
        root = logging.getLogger()
        root.removeHandler(self)
        root.setLevel(self._level)


class Bridge:
    """Runs coroutines on the server's loop from hypothesis's thread."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop

    def run(self, coro: Coroutine[Any, Any, Any], timeout: float = 120.0) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)


async def drive(fn: Callable[[], None]) -> None:
    """Run a hypothesis test function in a thread; the loop keeps serving meanwhile."""
    await asyncio.to_thread(fn)
