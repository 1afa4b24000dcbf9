"""What one node saw since its last flush, gathered in memory: nothing here touches Redis, so
counting a chat line, a heart or a join costs a dict update on the hot path and the whole tick
goes to Redis in one pipeline (`AnalyticsStore.flush`).

Viewers are a step function a node knows exactly (joins and leaves are events), so each node
credits, for every whole second, the most viewers it had during that second; the store sums the
nodes per second (peak per minute = the highest second, average = viewer-seconds / seconds)."""
from __future__ import annotations

from dataclasses import dataclass, field

MAX_BACKFILL_S = 3600  # a node that could not flush for longer credits only the last hour


def minute_of(ms: int) -> int:
    """The epoch minute a server timestamp (ms) falls in: the per-minute bucket."""
    return ms // 60_000


@dataclass
class _Viewers:
    cur: int = 0
    carry: int = 0  # viewers at the end of the last credited second
    last_sec: int | None = None  # last second credited to the store
    secs: dict[int, tuple[int, int]] = field(default_factory=dict)  # second -> (max, count at its end)

    def change(self, delta: int, now_ms: int) -> None:
        s = now_ms // 1000
        if self.last_sec is None:
            self.last_sec = s - 1
            self.carry = self.cur
        s = max(s, self.last_sec + 1)  # never re-open a second already credited
        prev, self.cur = self.cur, max(0, self.cur + delta)
        top, _ = self.secs.get(s, (prev, prev))
        self.secs[s] = (max(top, self.cur), self.cur)

    def credit(self, now_ms: int) -> dict[int, int]:
        """Viewers per whole second since the last credit, up to (not including) the current one."""
        out: dict[int, int] = {}
        if self.last_sec is None:
            return out
        now_s = now_ms // 1000
        start = max(self.last_sec + 1, now_s - MAX_BACKFILL_S)
        for s in [k for k in self.secs if k < start]:  # older than the back-fill window
            self.carry = self.secs.pop(s)[1]
        for s in range(start, now_s):
            got = self.secs.pop(s, None)
            if got is not None:
                val, self.carry = got
            else:
                val = self.carry
            if val:
                out[s] = val
        self.last_sec = max(self.last_sec, now_s - 1)
        return out

    def idle(self) -> bool:
        return self.cur == 0 and self.carry == 0 and not self.secs


@dataclass
class Batch:
    """One broadcast's share of a flush."""

    counts: dict[str, int] = field(default_factory=dict)  # "<minute>:<metric>" -> increment
    viewers: dict[int, set[str]] = field(default_factory=dict)  # minute -> users who joined
    seconds: dict[int, int] = field(default_factory=dict)  # epoch second -> this node's viewers

    def empty(self) -> bool:
        return not (self.counts or self.viewers or self.seconds)


class Tally:
    """Per-broadcast increments since the last drain. Not thread-safe (one event loop)."""

    def __init__(self) -> None:
        self._counts: dict[str, dict[str, int]] = {}
        self._joined: dict[str, dict[int, set[str]]] = {}
        self._viewers: dict[str, _Viewers] = {}
        self._retry_secs: dict[str, dict[int, int]] = {}  # seconds of a failed flush (vsec already in counts)

    def add(self, broadcast: str, metric: str, now_ms: int, n: int = 1) -> None:
        """Count `n` of `metric` (chat, hearts, votes...) in the minute of `now_ms`."""
        if n:
            c = self._counts.setdefault(broadcast, {})
            key = f"{minute_of(now_ms)}:{metric}"
            c[key] = c.get(key, 0) + n

    def joined(self, broadcast: str, user: str, now_ms: int) -> None:
        """A viewer's socket joined: a join, a unique-viewer candidate, one more concurrent viewer."""
        self.add(broadcast, "joins", now_ms)
        self._joined.setdefault(broadcast, {}).setdefault(minute_of(now_ms), set()).add(user)
        self._viewers.setdefault(broadcast, _Viewers()).change(+1, now_ms)

    def left(self, broadcast: str, joined_ms: int, now_ms: int) -> None:
        """A viewer's socket left after watching since `joined_ms`."""
        self.add(broadcast, "leaves", now_ms)
        self.add(broadcast, "watch_ms", now_ms, max(0, now_ms - joined_ms))
        self._viewers.setdefault(broadcast, _Viewers()).change(-1, now_ms)

    def viewers(self, broadcast: str) -> int:
        """This node's viewers of a broadcast now."""
        v = self._viewers.get(broadcast)
        return v.cur if v else 0

    def drain(self, now_ms: int) -> dict[str, Batch]:
        """Everything since the last drain, per broadcast; viewer-seconds up to the current second."""
        out: dict[str, Batch] = {}
        counts, self._counts = self._counts, {}
        joined, self._joined = self._joined, {}
        retry, self._retry_secs = self._retry_secs, {}
        for bc, c in counts.items():
            out.setdefault(bc, Batch()).counts.update(c)
        for bc, j in joined.items():
            out.setdefault(bc, Batch()).viewers.update(j)
        for bc, secs in retry.items():
            if secs:
                out.setdefault(bc, Batch()).seconds.update(secs)
        for bc in list(self._viewers):
            v = self._viewers[bc]
            secs = v.credit(now_ms)
            if secs:
                b = out.setdefault(bc, Batch())
                for s, val in secs.items():
                    b.seconds[s] = b.seconds.get(s, 0) + val
                for s, val in secs.items():
                    key = f"{s // 60}:vsec"
                    b.counts[key] = b.counts.get(key, 0) + val
            if v.idle():
                del self._viewers[bc]
        return {bc: b for bc, b in out.items() if not b.empty()}

    def restore(self, batches: dict[str, Batch]) -> None:
        """Put back a drain whose flush failed, so the next flush carries it (Redis away a moment)."""
        for bc, b in batches.items():
            c = self._counts.setdefault(bc, {})
            for k, n in b.counts.items():
                c[k] = c.get(k, 0) + n
            j = self._joined.setdefault(bc, {})
            for m, users in b.viewers.items():
                j.setdefault(m, set()).update(users)
            r = self._retry_secs.setdefault(bc, {})
            for s, val in b.seconds.items():
                r[s] = r.get(s, 0) + val
