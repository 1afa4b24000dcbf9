"""The light viewers on a real server: they join (snapshot, clock sync) in both codecs, time ticks
against the server's clock, come back after a drop (reconnect storm), and retry a refused join."""
from __future__ import annotations

import threading
import time
from collections.abc import Callable

import requests

from loadtest.lightclient import mint
from loadtest.lightpool import LightPool, Report, Viewer
from loadtest.localstack import LocalStack


def _broadcast(stack: LocalStack) -> None:
    host = mint(stack.secret, sub="h", role="host", broadcast="b1")
    r = requests.post(stack.url + "/api/broadcasts", headers={"Authorization": f"Bearer {host}"}, timeout=10,
                      json={"id": "b1", "title": "t"})
    assert r.status_code == 201, r.text


def _reports(pool: LightPool, into: list[Report]) -> None:
    while pool.outbox:
        item = pool.outbox.popleft()
        if isinstance(item, Report):
            into.append(item)
        else:
            fn, args = item
            fn(*args)


def _wait(pool: LightPool, got: list[Report], cond, timeout: float = 30.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        _reports(pool, got)
        if cond():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out; reports: {[(r.name, r.code) for r in got][-20:]}")


def test_light_viewers_join_time_ticks_and_come_back_after_a_drop():
    with LocalStack(env={"HAWKER_TICK_MS": "100"}) as stack:
        _broadcast(stack)
        pool = LightPool(stack.url, tick_sample_every=1)
        pool.start(lambda: None)
        joined: list[tuple[str, bool, str]] = []
        viewers = [Viewer(pool, f"viewer-{i}", mint(stack.secret, sub=f"viewer-{i}", role="viewer", broadcast="b1"),
                          "msgpack" if i % 2 else "json", on_joined=lambda ok, code, i=i: joined.append((f"v{i}", ok, code)))
                   for i in range(20)]
        got: list[Report] = []
        try:
            for v in viewers:
                pool.submit(v.start)
            _wait(pool, got, lambda: len(joined) == 20)
            assert all(ok for _, ok, _ in joined), joined
            assert all(v.state == "live" for v in viewers)
            for v in viewers:  # hearts make news, news makes ticks
                pool.submit(v.hearts, 2)
            pool.submit(viewers[0].chat, "hello from a light viewer")
            _wait(pool, got, lambda: sum(r.name == "tick latency" for r in got) >= 20
                  and any(r.name == "chat latency" for r in got))
            ticks = [r.ms for r in got if r.name == "tick latency"]
            assert all(-200 < ms < 5000 for ms in ticks), ticks  # server ts against a synced clock
            assert {r.code for r in got if r.name == "hearts"} == {"OK"}
            for v in viewers:  # as after a node restart: every socket drops, each comes back within 2 s
                pool.submit(v.drop_and_rejoin, 2.0 * (hash(v.user_id) % 100) / 100)
            _wait(pool, got, lambda: sum(r.name == "rejoin" for r in got) == 20)
            assert {r.code for r in got if r.name == "rejoin"} == {"OK"}
            assert all(v.state == "live" for v in viewers)
        finally:
            pool.stop()


def test_a_refused_join_is_retried_until_it_gets_in():
    """Redis away: the server refuses the connect (UNAVAILABLE); the viewer retries with backoff
    and gets in once Redis is back."""
    with LocalStack() as stack:
        _broadcast(stack)
        time.sleep(1.5)  # the broadcast reaches the append-only file (fsync every second)
        pool = LightPool(stack.url)
        pool.start(lambda: None)
        result: list[tuple[bool, str]] = []
        v = Viewer(pool, "viewer-x", mint(stack.secret, sub="viewer-x", role="viewer", broadcast="b1"),
                   on_joined=lambda ok, code: result.append((ok, code)))
        got: list[Report] = []
        stack.stop_redis()
        back = threading.Timer(3.0, stack.start_redis)
        back.start()
        try:
            pool.submit(v.start)
            _wait(pool, got, lambda: bool(result), timeout=70)
        finally:
            back.join()
            pool.stop()
        retries = [r.code for r in got if r.name == "join retry"]
        assert retries and set(retries) <= {"REFUSED_UNAVAILABLE", "REFUSED_BUSY"}, [(r.name, r.code) for r in got]
        assert result and result[0][0] is True, (result, retries)


def test_light_viewers_in_a_child_process_join_chat_and_report_back():
    """The Locust side's handle (loadtest/lightproc.py): commands over the child's stdin, reports,
    join results and the child's loop lag back over its stdout; closing stdin ends the child."""
    from loadtest.lightproc import LightProcess

    with LocalStack(env={"HAWKER_TICK_MS": "100"}) as stack:
        _broadcast(stack)
        child = LightProcess(stack.url, 1)
        wake = threading.Event()

        def spawn(fn, *args):  # noqa: ANN001, ANN202 - gevent.spawn's shape, on a thread
            threading.Thread(target=fn, args=args, daemon=True).start()

        child.start(wake.set, spawn, time.sleep)
        joined: dict[str, tuple[bool, str]] = {}
        got: list[Report] = []

        def wait(cond: Callable[[], bool], timeout: float = 30.0) -> None:
            end = time.monotonic() + timeout
            while time.monotonic() < end:
                while child.outbox:
                    got.append(child.outbox.popleft())
                if cond():
                    return
                wake.wait(0.1)
                wake.clear()
            raise AssertionError(f"timed out; reports: {[(r.name, r.code) for r in got][-20:]}")

        try:
            for i in range(10):
                user = f"viewer-{i}"
                child.start_viewer(user, mint(stack.secret, sub=user, role="viewer", broadcast="b1"),
                                   "msgpack" if i % 2 else "json",
                                   on_joined=lambda ok, code, user=user: joined.__setitem__(user, (ok, code)))
            wait(lambda: len(joined) == 10)
            assert all(ok for ok, _ in joined.values()), joined
            assert sorted(r.user for r in got if r.name == "join" and r.code == "OK") == sorted(joined)
            for i in range(10):
                child.hearts(f"viewer-{i}", 1)
            child.chat("viewer-0", "hello from the child")
            wait(lambda: any(r.name == "chat latency" for r in got) and sum(r.name == "tick latency" for r in got) >= 10)
            time.sleep(0.6)
            assert child.take_busy_max_ms() >= 0.0
            assert child.proc.poll() is None
        finally:
            child.stop()
        assert child.proc.wait(10) == 0  # stdin closed: the child closed its sockets and ended
