"""How a buyer presses Buy: a refused `BUSY` / `UNAVAILABLE` or an ack that never came is retried
with the same `request_id` (so a reserve the server did make is answered again, never made twice),
after the server's `retry_after` with exponential backoff and jitter, until a final answer or the
deadline. Transport-agnostic: `call(event, payload, timeout)` returns the ack (or raises)."""
from __future__ import annotations

import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from loadtest.client import error_code

RETRYABLE = frozenset({"BUSY", "UNAVAILABLE", "TIMEOUT"})
FINAL_STOP = frozenset({"LIMIT_REACHED", "CLOSED", "SALE_NOT_FOUND", "FORBIDDEN", "VALIDATION"})


@dataclass
class Attempt:
    code: str
    request_id: str
    ms: float


@dataclass
class ReserveOutcome:
    ack: Any
    code: str
    attempts: list[Attempt] = field(default_factory=list)

    @property
    def retries(self) -> int:
        return len(self.attempts) - 1


def backoff_ms(retry_after_ms: float | None, attempt: int, cap_ms: float = 5000) -> float:
    """The server's retry_after (250 ms when it gave none), doubled per attempt, capped, plus up to
    100 % jitter so a crowd told BUSY together does not come back together."""
    base = min(cap_ms, (retry_after_ms or 250) * (2 ** min(attempt, 5)))
    return base + random.random() * base


def reserve(call: Callable[[str, dict[str, Any], float], Any], sale_id: str, qty: int, deadline: float,
            *, request_id: str | None = None, timeout_s: float = 10.0,
            sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.monotonic) -> ReserveOutcome:
    """One press of Buy, retried until a final answer or `deadline` (clock() seconds)."""
    rid = request_id or uuid.uuid4().hex[:24]
    payload = {"sale_id": sale_id, "qty": qty, "request_id": rid}
    out = ReserveOutcome(None, "NONE")
    attempt = 0
    while True:
        t0 = time.perf_counter()
        try:
            ack = call("sale.reserve", payload, timeout_s)
            code = error_code(ack)
        except Exception as exc:  # noqa: BLE001 - a lost ack is a result, retried like BUSY
            ack, code = None, "TIMEOUT" if "imeout" in type(exc).__name__ else f"CLIENT_{type(exc).__name__}"
        out.attempts.append(Attempt(code, rid, (time.perf_counter() - t0) * 1000))
        out.ack, out.code = ack, code
        if code not in RETRYABLE:
            return out
        retry_after = (ack or {}).get("error", {}).get("retry_after") if isinstance(ack, dict) else None
        wait_s = backoff_ms(retry_after, attempt) / 1000
        if clock() + wait_s > deadline:
            return out
        sleep(wait_s)
        attempt += 1
