"""The epoll loop on one native OS thread that runs every light viewer of a process, its timers and its outbox."""
from __future__ import annotations

import collections
import heapq
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

if TYPE_CHECKING:
    from loadtest.lightpool import Viewer
    from loadtest.lightwire import WireSocket


def _original(module: str, name: str) -> Any:
    """The unpatched object even when gevent has monkey-patched the module."""
    try:
        from gevent import monkey

        return monkey.get_original(module, name)
    except ImportError:  # pragma: no cover - gevent is installed with Locust
        return getattr(__import__(module), name)


_start_thread = _original("_thread", "start_new_thread")
_epoll = _original("select", "epoll")
_EPOLLIN, _EPOLLOUT, _EPOLLERR, _EPOLLHUP = 0x001, 0x004, 0x008, 0x010


@dataclass
class Report:
    """One result for the Locust side: a request event and, maybe, a raw sample."""

    request_type: str
    name: str
    ms: float
    code: str = "OK"
    user: str = ""
    sample: str = ""  # samples.KINDS entry to also record as a raw sample ("" = none)


class LightPool:
    """The epoll loop of one process; everything touching a Viewer runs on its thread."""

    def __init__(self, url: str, tick_sample_every: int = 20) -> None:
        u = urlparse(url)
        self.host = u.hostname or "127.0.0.1"
        self.port = u.port or (443 if u.scheme == "https" else 80)
        self.tick_sample_every = max(1, tick_sample_every)
        self.ep = _epoll()
        self.by_fd: dict[int, Viewer] = {}
        self.commands: collections.deque[tuple[Callable[..., None], tuple[Any, ...]]] = collections.deque()
        self.timers: list[tuple[float, int, Callable[..., None], tuple[Any, ...]]] = []
        self._seq = 0
        self.outbox: collections.deque[Any] = collections.deque()
        self.busy_max_ms = 0.0  # longest pass over ready sockets since the last read (loop lag)
        self.stopped = False
        self._notify: Callable[[], None] = lambda: None
        self._r, self._w = os.pipe()
        os.set_blocking(self._r, False)
        os.set_blocking(self._w, False)
        self.ep.register(self._r, _EPOLLIN)

    # called from any thread
    def submit(self, fn: Callable[..., None], *args: Any) -> None:
        self.commands.append((fn, args))
        try:
            os.write(self._w, b"x")
        except BlockingIOError:
            pass

    def start(self, notify: Callable[[], None]) -> None:
        """Run the loop on a native thread; `notify()` (thread-safe) wakes the consumer of `outbox`."""
        self._notify = notify
        _start_thread(self._run, ())

    def stop(self) -> None:
        self.stopped = True
        self.submit(lambda: None)

    def take_busy_max_ms(self) -> float:
        v, self.busy_max_ms = self.busy_max_ms, 0.0
        return v

    # called on the loop thread
    def register(self, v: Viewer, mask: int) -> None:
        self.by_fd[v.fd] = v
        self.ep.register(v.fd, mask)

    def modify(self, v: WireSocket, mask: int) -> None:
        try:
            self.ep.modify(v.fd, mask)
        except OSError:
            pass

    def unregister(self, v: Viewer) -> None:
        self.by_fd.pop(v.fd, None)
        try:
            self.ep.unregister(v.fd)
        except (OSError, ValueError):
            pass

    def at(self, delay_s: float, fn: Callable[..., None], *args: Any) -> None:
        self._seq += 1
        heapq.heappush(self.timers, (time.monotonic() + delay_s, self._seq, fn, args))

    def report(self, r: Report) -> None:
        self.outbox.append(r)

    def call_gevent(self, fn: Callable[..., None], *args: Any) -> None:
        self.outbox.append((fn, args))

    def _run(self) -> None:
        last_notify = 0.0
        while not self.stopped:
            timeout = 0.05
            if self.timers:
                timeout = max(0.0, min(timeout, self.timers[0][0] - time.monotonic()))
            events = self.ep.poll(timeout, 4096)
            t_start = time.perf_counter()
            now_ms = time.time() * 1000
            for fd, ev in events:
                if fd == self._r:
                    try:
                        while os.read(self._r, 4096):
                            pass
                    except BlockingIOError:
                        pass
                    continue
                v = self.by_fd.get(fd)
                if v is None:
                    continue
                try:
                    if ev & _EPOLLOUT:
                        v.writable()
                    if ev & (_EPOLLIN | _EPOLLERR | _EPOLLHUP) and v.sock is not None:
                        v.readable(now_ms)
                except Exception as exc:  # noqa: BLE001 - one broken socket must not stop the others
                    v._fail(f"CLIENT_{type(exc).__name__}")
            while self.commands:
                fn, args = self.commands.popleft()
                try:
                    fn(*args)
                except Exception:  # noqa: BLE001 - a command that raises is dropped; the loop runs every other viewer
                    pass
            now = time.monotonic()
            while self.timers and self.timers[0][0] <= now:
                _due, _seq, fn, args = heapq.heappop(self.timers)
                try:
                    fn(*args)
                except Exception:  # noqa: BLE001 - a timer that raises is dropped; the loop runs every other viewer
                    pass
            busy = (time.perf_counter() - t_start) * 1000
            if busy > self.busy_max_ms:
                self.busy_max_ms = busy
            if self.outbox and (now - last_notify > 0.05 or len(self.outbox) > 2000):
                last_notify = now
                self._notify()
        for v in list(self.by_fd.values()):
            v.close()
