"""Rate limits on WebRTC viewer offers (WHEP and the socket's `webrtc.offer` share them).

An offer is the most expensive thing a viewer can ask for: a peer connection, ICE gathering, a
DTLS handshake and a slot of the process's WebRTC cap. Each user (`sub`) and each client address
gets a token bucket; an offer past it is refused with `429 RATE_LIMITED` and the wait in ms.
The buckets live in this process, like the WebRTC slots they protect, and are bounded in number."""
from __future__ import annotations

import math
import time
from collections import OrderedDict
from dataclasses import dataclass

from domain import Code, DomainError

MAX_KEYS = 50_000  # buckets kept per limiter; the least recently used go first (a full bucket is no loss)


class TokenBucket:
    """`rate` tokens per second up to `burst`, per key. `take(key)` -> 0 or the seconds to wait."""

    def __init__(self, rate: float, burst: int, max_keys: int = MAX_KEYS) -> None:
        self.rate = rate
        self.burst = burst
        self.max_keys = max_keys
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # key -> (tokens, at)

    @property
    def enabled(self) -> bool:
        return self.rate > 0 and self.burst > 0

    def take(self, key: str, now: float | None = None) -> float:
        if not self.enabled:
            return 0.0
        now = time.monotonic() if now is None else now
        tokens, at = self._buckets.pop(key, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - at) * self.rate)
        if tokens >= 1.0:
            self._buckets[key] = (tokens - 1.0, now)
            wait = 0.0
        else:
            self._buckets[key] = (tokens, now)
            wait = (1.0 - tokens) / self.rate
        while len(self._buckets) > self.max_keys:
            self._buckets.popitem(last=False)
        return wait


@dataclass
class OfferLimits:
    """Per-user and per-address buckets for viewer offers. A rate of 0 turns one off."""

    user: TokenBucket
    address: TokenBucket

    @classmethod
    def of(cls, user_rate: float, user_burst: int, ip_rate: float, ip_burst: int) -> OfferLimits:
        return cls(TokenBucket(user_rate, user_burst), TokenBucket(ip_rate, ip_burst))

    def check(self, sub: str, address: str | None) -> None:
        """Raise `429 RATE_LIMITED` (`retry_after` ms) when this offer is over either limit."""
        wait = self.user.take(sub)
        if address:
            wait = max(wait, self.address.take(address))
        if wait > 0:
            raise DomainError(Code.RATE_LIMITED, "too many WebRTC offers; wait and retry",
                              retry_after=max(1, math.ceil(wait * 1000)))
