"""What every load-test user does on its socket: connect with a token, sync the clock, call events.

Runs under Locust (gevent, the sync python-socketio client that Locust's SocketIOUser wraps)."""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import socketio


def now_ms() -> int:
    return int(time.time() * 1000)


@dataclass
class Clock:
    """Offset to the server clock from the best of several `time` samples (smallest round trip)."""

    offset_ms: float = 0.0
    rtt_ms: float = 0.0

    def server_now(self) -> float:
        return time.time() * 1000 + self.offset_ms

    def sync(self, sio: socketio.Client, samples: int = 5, timeout: float = 10) -> Clock:
        best: tuple[float, float] | None = None
        for _ in range(samples):
            t0 = time.time() * 1000
            ack = sio.call("time", {}, timeout=timeout)
            t1 = time.time() * 1000
            if not isinstance(ack, dict) or not ack.get("ok"):
                continue
            rtt = t1 - t0
            offset = ack["now"] - (t0 + rtt / 2)
            if best is None or rtt < best[0]:
                best = (rtt, offset)
        if best is not None:
            self.rtt_ms, self.offset_ms = best
        return self


def error_code(ack: Any) -> str:
    """OK for a success ack, else the server's error code (or a client-side label)."""
    if isinstance(ack, dict):
        if ack.get("ok"):
            return "OK"
        err = ack.get("error")
        if isinstance(err, dict) and err.get("code"):
            return str(err["code"])
    return "BAD_ACK"


def find_sale(snapshot: dict[str, Any], sale_id: str | None) -> dict[str, Any] | None:
    """The sale to buy from a `snapshot`: the named one, else the newest not closed."""
    sales = snapshot.get("sales") or []
    for s in sales:
        if sale_id and s.get("id") == sale_id:
            return s
    open_ones = [s for s in sales if s.get("state") != "closed"]
    return max(open_ones, key=lambda s: s.get("opens_at", 0)) if open_ones and not sale_id else None
