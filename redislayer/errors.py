"""Which failures are the store's (retry later) and which are bugs.

A transport turns an exception from a Redis call into an answer: `overload_code(exc)` is `BUSY`
when Redis (or the way to it) is too slow right now, `UNAVAILABLE` when it cannot be reached, and
None when the exception is something else (a bug: `INTERNAL`). Both overload codes are safe to
retry with the same request id: every mutating call is idempotent by request id or by state."""
from __future__ import annotations

import asyncio
from dataclasses import dataclass

from redis.exceptions import (
    AskError,
    ClusterDownError,
    MasterDownError,
    ReadOnlyError,
    RedisError,
    TryAgainError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from domain import TABLE, Code

BUSY = Code.BUSY
UNAVAILABLE = Code.UNAVAILABLE

# What a client should wait before retrying, in ms (it adds its own jitter): domain's one table.
RETRY_AFTER_MS = {code: TABLE[code].retry_after_ms or 0 for code in (BUSY, UNAVAILABLE)}


class ReplicaAckTimeout(RedisError):
    """A change was made on the primary but no replica confirmed it within the ack timeout
    (`WAIT`): it could be lost in a failover, so it is not acknowledged. `UNAVAILABLE`: the retry
    with the same request id finds the change (or makes it, if the failover lost it)."""


@dataclass(frozen=True)
class Overload:
    code: Code  # BUSY or UNAVAILABLE
    retry_after_ms: int
    message: str


_MESSAGES = {
    BUSY: "the server is busy; retry shortly with the same request_id",
    UNAVAILABLE: "the server cannot reach its store; retry shortly with the same request_id",
}


def overload_code(exc: BaseException) -> Overload | None:
    """BUSY / UNAVAILABLE for a store failure, None for anything else."""
    code: Code | None = None
    if isinstance(exc, (RedisTimeoutError, asyncio.TimeoutError, TryAgainError, AskError)):  # AskError: + MOVED
        code = BUSY
    elif isinstance(exc, (RedisConnectionError, ReadOnlyError, MasterDownError, ClusterDownError,
                          ReplicaAckTimeout, ConnectionError, OSError)):
        code = UNAVAILABLE
    if code is None:
        return None
    return Overload(code, RETRY_AFTER_MS[code], _MESSAGES[code])
