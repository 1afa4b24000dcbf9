"""Light viewers in a process of their own, beside a Locust process.

The light pool (loadtest/lightpool.py) first ran on a native thread inside the Locust process.
Python threads share one GIL: every `recv` of the viewer loop releases it, and while Locust's
gevent thread was busy (hundreds of full buyer clients decoding every tick) each re-acquire waited
for the switch interval. With a thousand sockets ready at once a pass over them took 100-250 ms
of wall clock at 25-50 % CPU, which the saturation rule rightly called a generator lag. Here the
pool runs in a child process (`python -m loadtest.lightproc URL TICK_SAMPLE`) and talks to its
Locust process over stdin/stdout, one JSON array per line:

    parent -> child   ["start", user, token, codec] | ["chat", user, text] | ["hearts", user, n]
                      ["close", user] | ["storm", user, at_server_ms, back_after_s]
    child -> parent   ["R", [[request_type, name, ms, code, user, sample], ...]]   (reports)
                      ["j", user, ok, code]                                        (a first join ended)
                      ["b", busy_max_ms]                                           (twice a second)

The child is a generator process of its own: the Locust side samples its CPU and loop lag and the
saturation verdict judges it like any other (loadtest/generator.py)."""
from __future__ import annotations

import collections
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from loadtest.lightpool import LightPool, Report, Viewer

FLUSH_S = 0.02  # commands (joins, hearts, chat lines) are written to the child at most this often
ROOT = str(Path(__file__).resolve().parent.parent)  # so `-m loadtest.lightproc` imports this checkout


class LightProcess:
    """The parent's handle on one child pool. Runs under gevent (Locust): `gevent_spawn` starts the
    reader; `notify()` is called when reports arrived in `outbox`."""

    def __init__(self, url: str, tick_sample_every: int, popen: Callable[..., Any] = subprocess.Popen) -> None:
        env = {**os.environ, "PYTHONPATH": ROOT + os.pathsep + os.environ.get("PYTHONPATH", "")}
        self.proc = popen([sys.executable, "-m", "loadtest.lightproc", url, str(tick_sample_every)],
                          stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)
        self.outbox: collections.deque[Any] = collections.deque()
        self._joined: dict[str, Callable[[bool, str], None]] = {}
        self._busy = 0.0
        self._notify: Callable[[], None] = lambda: None
        self._buf = bytearray()  # commands not yet written (one write per FLUSH_S, not one per command)
        self._sleep: Callable[[float], None] | None = None

    @property
    def pid(self) -> int:
        return int(self.proc.pid)

    def start(self, notify: Callable[[], None], spawn: Callable[..., Any], sleep: Callable[[float], None]) -> None:
        self._notify = notify
        self._sleep = sleep
        spawn(self._read)
        spawn(self._flusher)

    def _flusher(self) -> None:
        assert self._sleep is not None
        while self.proc.poll() is None:
            self._sleep(FLUSH_S)
            self.flush()

    def flush(self) -> None:
        if not self._buf:
            return
        data, self._buf = bytes(self._buf), bytearray()
        try:
            self.proc.stdin.write(data)
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError, ValueError):
            pass

    def _read(self) -> None:
        out = self.proc.stdout
        for line in out:
            try:
                msg = orjson.loads(line)
            except orjson.JSONDecodeError:
                continue
            kind = msg[0]
            if kind == "R":
                self.outbox.extend(Report(*r) for r in msg[1])
                self._notify()
            elif kind == "j":
                cb = self._joined.pop(msg[1], None)
                if cb is not None:
                    cb(bool(msg[2]), str(msg[3]))
            elif kind == "b":
                self._busy = max(self._busy, float(msg[1]))

    def take_busy_max_ms(self) -> float:
        v, self._busy = self._busy, 0.0
        return v

    def _send(self, *cmd: Any) -> None:
        self._buf += orjson.dumps(list(cmd)) + b"\n"
        if self._sleep is None or len(self._buf) > 65536:
            self.flush()

    def start_viewer(self, user: str, token: str, codec: str, on_joined: Callable[[bool, str], None]) -> None:
        self._joined[user] = on_joined
        self._send("start", user, token, codec)

    def chat(self, user: str, text: str) -> None:
        self._send("chat", user, text)

    def hearts(self, user: str, n: int) -> None:
        self._send("hearts", user, n)

    def close(self, user: str) -> None:
        self._send("close", user)

    def storm(self, user: str, at_server_ms: int, back_after_s: float) -> None:
        self._send("storm", user, at_server_ms, back_after_s)

    def stop(self) -> None:
        self.flush()
        try:
            self.proc.stdin.close()
        except OSError:
            pass


def _joined(emit: Callable[[Any], None], user: str) -> Callable[[bool, str], None]:
    """A viewer's first join result, reported to the Locust process as `["j", user, ok, code]`."""
    def joined(ok: bool, code: str) -> None:
        emit(["j", user, ok, code])
    return joined


def _child(url: str, tick_sample_every: int) -> None:
    pool = LightPool(url, tick_sample_every)
    viewers: dict[str, Viewer] = {}
    wake = threading.Event()
    lock = threading.Lock()
    stdout = sys.stdout.buffer

    def emit(obj: Any) -> None:
        with lock:
            try:
                stdout.write(orjson.dumps(obj) + b"\n")
                stdout.flush()
            except (BrokenPipeError, OSError, ValueError):  # the Locust process is gone: so are we
                pool.stop()

    def writer() -> None:
        last_busy = 0.0
        while not pool.stopped:
            wake.wait(0.25)
            wake.clear()
            batch = []
            while pool.outbox:
                item = pool.outbox.popleft()
                if isinstance(item, Report):
                    batch.append([item.request_type, item.name, item.ms, item.code, item.user, item.sample])
                else:
                    fn, args = item
                    fn(*args)
            if batch:
                emit(["R", batch])
            now = time.monotonic()
            if now - last_busy >= 0.5:
                last_busy = now
                emit(["b", round(pool.take_busy_max_ms(), 1)])

    pool.start(wake.set)
    threading.Thread(target=writer, daemon=True).start()

    def storm(v: Viewer, at_ms: float, after_s: float) -> None:
        pool.at(max(0.0, (at_ms - (time.time() * 1000 + v.offset_ms)) / 1000), v.drop_and_rejoin, after_s)

    for line in sys.stdin.buffer:
        try:
            cmd = orjson.loads(line)
        except orjson.JSONDecodeError:
            continue
        op, user = cmd[0], cmd[1]
        if op == "start":
            viewer = viewers[user] = Viewer(pool, user, cmd[2], cmd[3], on_joined=_joined(emit, user))
            pool.submit(viewer.start)
            continue
        v = viewers.get(user)
        if v is None:
            continue
        if op == "chat":
            pool.submit(v.chat, cmd[2])
        elif op == "hearts":
            pool.submit(v.hearts, int(cmd[2]))
        elif op == "close":
            viewers.pop(user, None)
            pool.submit(v.close)
        elif op == "storm":
            pool.submit(storm, v, float(cmd[2]), float(cmd[3]))
    pool.stop()  # stdin closed: the Locust process is done (or gone)
    time.sleep(0.5)


if __name__ == "__main__":
    _child(sys.argv[1], int(sys.argv[2]))
