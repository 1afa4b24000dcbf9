"""Chat overload: past `rate` inbound messages/s in a broadcast, viewers get at most `k` messages per
tick (a sample); the host and moderators still get every message.

The fan-out engine applies it per tick; this module holds the knobs and the two pure pieces it needs:
a per-broadcast inbound rate meter and the choice of which messages a sampled viewer keeps."""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class OverloadPolicy:
    rate: float = 50.0   # inbound messages per second per broadcast that switch sampling on
    k: int = 10          # messages per tick a viewer gets while sampling

    def sampling(self, inbound_per_s: float) -> bool:
        return inbound_per_s > self.rate


class RateMeter:
    """Messages per second over a sliding window of whole seconds (cheap: one counter per second)."""

    def __init__(self, window_s: int = 2) -> None:
        self.window_s = window_s
        self._counts: dict[int, int] = {}

    def add(self, now_ms: int, n: int = 1) -> None:
        sec = now_ms // 1000
        self._counts[sec] = self._counts.get(sec, 0) + n
        if len(self._counts) > self.window_s + 2:
            for old in [s for s in self._counts if s < sec - self.window_s]:
                del self._counts[old]

    def rate(self, now_ms: int) -> float:
        """Average over the last `window_s` complete seconds plus the current one's share."""
        sec = now_ms // 1000
        total = sum(c for s, c in self._counts.items() if sec - self.window_s <= s <= sec)
        span = self.window_s + (now_ms % 1000) / 1000
        return total / span if span else 0.0


def sample(items: Sequence[T], k: int, keep: Callable[[T], bool] = lambda _: False) -> list[T]:
    """At most `k` items in their original order: first every item `keep` says must stay (staff,
    system, questions), then the rest spread evenly over the batch (so one flooder cannot fill it)."""
    if len(items) <= k:
        return list(items)
    must = [i for i, it in enumerate(items) if keep(it)][:k]
    room = k - len(must)
    picked = set(must)
    rest = [i for i in range(len(items)) if i not in picked]
    if room > 0 and rest:
        step = len(rest) / room
        picked.update(rest[int(j * step)] for j in range(room))
    return [items[i] for i in sorted(picked)]


def _always_kept(message: object) -> bool:
    """Staff and system lines survive sampling (a host's announcement must reach every viewer)."""
    if isinstance(message, dict):
        return message.get("role") in ("host", "moderator", "system")
    return getattr(message, "role", None) in ("host", "moderator", "system")


class ChatSampler:
    """What a fan-out engine calls once per broadcast tick with the tick's merged chat batch (all
    nodes' messages): `for_viewers` returns the subset viewer sockets get; staff sockets get the
    whole batch. The engine on every node sees the same inbound stream, so the rate is global."""

    def __init__(self, policy: OverloadPolicy) -> None:
        self.policy = policy
        self._meters: dict[str, RateMeter] = {}

    def inbound_rate(self, broadcast: str, now_ms: int) -> float:
        meter = self._meters.get(broadcast)
        return meter.rate(now_ms) if meter else 0.0

    def for_viewers(self, broadcast: str, batch: Sequence[T], now_ms: int) -> list[T]:
        meter = self._meters.get(broadcast)
        if meter is None:
            meter = self._meters[broadcast] = RateMeter()
        meter.add(now_ms, len(batch))
        if not self.policy.sampling(meter.rate(now_ms)):
            return list(batch)
        return sample(batch, self.policy.k, keep=_always_kept)

    def forget(self, broadcast: str) -> None:
        self._meters.pop(broadcast, None)
