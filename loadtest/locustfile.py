"""Locust users for a live sale: light viewers (thousands per process) who watch, read ticks, chat
and send hearts; buyers on full Socket.IO clients who press Buy at the server-clock instant, retry
BUSY/UNAVAILABLE with the same request id and keep trying until sold out or the window ends; and a
host who runs a scripted show (interactive runs).

Interactive:  locust -f loadtest/locustfile.py --host http://127.0.0.1:8080
Headless:     python -m loadtest.spike (starts everything, runs the sale, audits, writes a report)
Distributed:  the spike runner with --expect-workers N is the master; on each other machine
              locust -f loadtest/locustfile.py --worker --master-host <runner> (see docs/loadtesting.md)

Settings come from the environment (the spike runner sets them; workers on other machines need the
same HAWKER_LT_SECRET, the rest reaches them from the master):
  HAWKER_LT_SECRET      token secret of the server under test (tokens are minted like a merchant does)
  HAWKER_LT_BROADCAST   broadcast id (default "loadtest")
  HAWKER_LT_SALE        sale id to buy from (default: the newest open or scheduled sale in the snapshot)
  HAWKER_LT_OUT         folder for raw samples, written by the master (default "loadtest-out/samples")
  HAWKER_LT_ABANDON     share of buyers who hold and never pay, so holds expire (default 0.2)
  HAWKER_LT_QTY         units a buyer asks for (default 1)
  HAWKER_LT_CODEC       msgpack (default, what the player uses), json, or mixed
  HAWKER_LT_SCENARIO    flash (default), chat-storm, reconnect-storm or soak
  HAWKER_LT_WINDOW_END  server ms after which buyers stop trying (default: opens_at + 60 s)
  HAWKER_LT_STORM_AT    server ms at which every light viewer drops (reconnect-storm)
  HAWKER_LT_TICK_SAMPLE a light viewer decodes 1 tick in this many for tick latency (default 20)
  HAWKER_LT_THROTTLE    0..1: each generator process burns this share of its time (forced saturation)
"""
from __future__ import annotations

import gc
import os
import random
import time
import uuid
from pathlib import Path
from typing import Any

import engineio
import gevent
import gevent.event
import gevent.lock
from locust import User, between, constant_pacing, events, task
from locust.contrib.socketio import SocketIOClient, SocketIOUser
from locust.exception import StopUser
from locust.runners import WorkerRunner

from loadtest import buying, generator
from loadtest.client import Clock, error_code, find_sale, now_ms
from loadtest.lightclient import mint
from loadtest.lightpool import JOIN_TIMEOUT_S
from loadtest.lightproc import LightProcess
from loadtest.samples import Sample, SampleWriter

SECRET = os.environ.get("HAWKER_LT_SECRET", "")
BROADCAST = os.environ.get("HAWKER_LT_BROADCAST", "loadtest")
SALE = os.environ.get("HAWKER_LT_SALE") or None
OUT = os.environ.get("HAWKER_LT_OUT", "loadtest-out/samples")
ABANDON = float(os.environ.get("HAWKER_LT_ABANDON", "0.2"))
QTY = int(os.environ.get("HAWKER_LT_QTY", "1"))
CODEC = os.environ.get("HAWKER_LT_CODEC", "msgpack")
SCENARIO = os.environ.get("HAWKER_LT_SCENARIO", "flash")
WINDOW_END = int(os.environ.get("HAWKER_LT_WINDOW_END", "0") or 0)
STORM_AT = int(os.environ.get("HAWKER_LT_STORM_AT", "0") or 0)
TICK_SAMPLE = int(os.environ.get("HAWKER_LT_TICK_SAMPLE", "20"))
THROTTLE = min(0.95, max(0.0, float(os.environ.get("HAWKER_LT_THROTTLE", "0") or 0)))
BLOCKED_WORD = os.environ.get("HAWKER_LT_BLOCKED_WORD", "")
CARD_OK = "4242424242424242"
MESSAGE = "hawker_rows"
RAW_TICKS_PER_S = 200  # raw tick samples kept per process and second (Locust's stats get every sampled tick)
GC_THRESHOLD_0 = 20_000
LINES = ["wow", "so pretty", "price?", "가격이 어떻게 되나요?", "ship to Busan?", "need this", "colour?"]


# ---- this process's shipment of raw rows to the master (or to the file when running alone) -------

class _Rows:
    """Raw samples and generator seconds of this process, shipped to the master every half second
    (a Locust custom message), so a distributed run's master has every worker's rows."""

    def __init__(self) -> None:
        self.samples: list[list[Any]] = []
        self.gen: list[list[Any]] = []
        self.raw_ticks = 0
        self.prev_ticks = 1
        self.raw_tick_second = 0
        self.env: Any = None
        self.started = False

    def add(self, s: Sample) -> None:
        if s.kind == "tick_latency":
            # keep about RAW_TICKS_PER_S a second, drawn at random over the whole second (keeping the
            # first ones would favour the sockets a fan-out reaches first)
            sec = int(time.time())
            if sec != self.raw_tick_second:
                self.raw_tick_second, self.prev_ticks, self.raw_ticks = sec, max(self.raw_ticks, 1), 0
            self.raw_ticks += 1
            if random.random() > RAW_TICKS_PER_S / self.prev_ticks:
                return
        self.samples.append([s.kind, s.at_ms, round(s.value_ms, 3), s.code, s.user])

    def add_gen(self, g: generator.GenSample) -> None:
        self.gen.append([g.process, g.at_ms, g.cpu_pct, g.gevent_lag_ms, g.light_lag_ms, g.viewers])

    def ship(self) -> None:
        if not (self.samples or self.gen) or self.env is None or self.env.runner is None:
            return
        data = {"s": self.samples, "g": self.gen}
        self.samples, self.gen = [], []
        self.env.runner.send_message(MESSAGE, data)

    def loop(self) -> None:
        while True:
            gevent.sleep(0.5)
            self.ship()


ROWS = _Rows()
_writer: SampleWriter | None = None


def _receive(environment: Any, msg: Any, **_kw: Any) -> None:
    """Master (or a lone local process): write what a generator process shipped."""
    global _writer
    if _writer is None:
        _writer = SampleWriter(OUT)
    for kind, at, value, code, user in msg.data.get("s", ()):
        _writer.add(Sample(kind, int(at), float(value), code, user))
    _writer.flush()
    if msg.data.get("g"):
        generator.append_rows(Path(OUT) / "generator.csv", msg.data["g"])


@events.init.add_listener
def _on_init(environment: Any, **_kw: Any) -> None:
    ROWS.env = environment
    if not isinstance(environment.runner, WorkerRunner) and environment.runner is not None:
        environment.runner.register_message(MESSAGE, _receive)


def record(s: Sample) -> None:
    ROWS.add(s)


@events.spawning_complete.add_listener
def _freeze_gc(**_kw: Any) -> None:
    """Every user of this process exists now: take them out of the collector's sight. A full
    collection over a few hundred full clients and their greenlets stopped the gevent loop for up
    to 0.7 s, which the saturation rule reads as generator lag."""
    gc.collect()
    gc.freeze()


@events.test_stopping.add_listener
def _ship_on_stop(**_kw: Any) -> None:
    ROWS.ship()


@events.quitting.add_listener
def _ship_on_quit(**_kw: Any) -> None:
    ROWS.ship()
    if _writer is not None:
        _writer.flush()


# ---- the light-viewer loop of this process ----------------------------------------------------

class _Light:
    """One light-viewer pool per generator process, in a child process of its own (started lazily:
    after Locust forks its workers; loadtest/lightproc.py says why not a thread), and the gevent
    side that turns its reports into Locust request events and raw samples."""

    def __init__(self) -> None:
        self.pool: LightProcess | None = None
        self.viewers = 0
        self.wake = gevent.event.Event()
        self.lock = gevent.lock.Semaphore()

    def get(self, host: str, env: Any) -> LightProcess:
        with self.lock:  # starting the child yields to other greenlets: the users spawned beside us wait
            if self.pool is None:
                import gevent.subprocess

                pool = LightProcess(host, TICK_SAMPLE, popen=gevent.subprocess.Popen)
                self.env = env
                pool.start(self.wake.set, gevent.spawn, gevent.sleep)
                self.pool = pool
                gevent.spawn(self._drain)
                _start_process_helpers(env, pool)
        return self.pool

    def _drain(self) -> None:
        fire = self.env.events.request.fire
        pool = self.pool
        assert pool is not None
        while True:
            self.wake.wait(0.5)
            self.wake.clear()
            n = 0
            while pool.outbox:
                item = pool.outbox.popleft()
                fire(request_type=item.request_type, name=item.name, response_time=item.ms, response_length=0,
                     exception=None if item.code in ("OK", "PARTIAL") or item.request_type == "TICK"
                     else RuntimeError(item.code), context={})
                if item.sample:
                    record(Sample(item.sample, now_ms(), item.ms, item.code, item.user))
                n += 1
                if n % 500 == 0:
                    gevent.sleep(0)

    def child(self) -> list[tuple[str, int, float]]:
        """(pid, viewers, loop lag ms) of the child pool, for the self-sampler."""
        if self.pool is None:
            return []
        return [(str(self.pool.pid), self.viewers, self.pool.take_busy_max_ms())]


LIGHT = _Light()
_helpers_started = False


def _start_process_helpers(env: Any, pool: LightProcess | None) -> None:
    """Once per generator process: the row shipper and the self-sampler."""
    global _helpers_started
    if _helpers_started:
        return
    _helpers_started = True
    gc.set_threshold(GC_THRESHOLD_0, 20, 100)  # fewer, larger young collections (CPython's default: 700)
    ROWS.env = env
    gevent.spawn(ROWS.loop)
    sampler = generator.SelfSampler(ROWS.add_gen, viewers=lambda: LIGHT.viewers, throttle=THROTTLE,
                                    children=LIGHT.child)
    gevent.spawn(sampler.run)


# ---- light viewers ------------------------------------------------------------------------------

class LightViewerUser(User):
    """A passive viewer on a light socket: watches (reads ticks), sends hearts, chats now and then.
    In `chat-storm` every viewer chats once a second; in `reconnect-storm` every viewer drops at
    HAWKER_LT_STORM_AT and comes back within 5 s."""

    fixed_count = int(os.environ.get("HAWKER_LT_VIEWERS", "0"))
    wait_time = constant_pacing(1) if SCENARIO == "chat-storm" else between(5, 15)

    def on_start(self) -> None:
        pool = LIGHT.get(self.host or "", self.environment)
        self.user_id = f"viewer-{uuid.uuid4().hex[:10]}"
        codec = CODEC if CODEC in ("msgpack", "json") else random.choice(("msgpack", "json"))
        joined = gevent.event.AsyncResult()
        self.joined = False
        pool.start_viewer(self.user_id, mint(SECRET, sub=self.user_id, role="viewer", broadcast=BROADCAST), codec,
                          on_joined=lambda ok, code: joined.set((ok, code)))
        try:
            ok, _code = joined.get(timeout=JOIN_TIMEOUT_S + 10)
        except gevent.Timeout:
            ok = False
        if not ok:
            raise StopUser()
        self.joined = True
        LIGHT.viewers += 1
        self.sent = 0
        if STORM_AT:
            pool.storm(self.user_id, STORM_AT, random.uniform(0.0, 5.0))

    def on_stop(self) -> None:
        if getattr(self, "user_id", None) is not None and LIGHT.pool is not None:
            if getattr(self, "joined", False):
                LIGHT.viewers -= 1
            LIGHT.pool.close(self.user_id)

    def _chat(self) -> None:
        self.sent += 1
        text = f"{random.choice(LINES)} {self.sent}"
        if BLOCKED_WORD and random.random() < 0.05:
            text = f"{BLOCKED_WORD} {text}"
        assert LIGHT.pool is not None
        LIGHT.pool.chat(self.user_id, text)

    @task(3)
    def hearts(self) -> None:
        if SCENARIO == "chat-storm":
            self._chat()
            return
        assert LIGHT.pool is not None
        LIGHT.pool.hearts(self.user_id, random.randint(1, 5))

    @task(1)
    def chat(self) -> None:
        self._chat()


# ---- full Socket.IO clients: buyers and the host ------------------------------------------------

class _InlineEngineIO(engineio.Client):
    """python-socketio's client starts a thread (under gevent, a greenlet) for every message it
    reads; with a few hundred buyers per process each reading 10 ticks a second that was a fifth of
    the process and the bursts showed as gevent loop lag. Our handlers never block (they record,
    set events or spawn), so messages are handled in the read loop itself."""

    def _trigger_event(self, event: str, *args: Any, **kwargs: Any) -> Any:
        if event == "message":
            kwargs["run_async"] = False
        return super()._trigger_event(event, *args, **kwargs)


class _BuyerClient(SocketIOClient):
    def _engineio_client_class(self) -> type:
        return _InlineEngineIO


class HawkerUser(SocketIOUser):
    """Connects one full python-socketio client for one person."""

    abstract = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:  # SocketIOUser's, with the inline client
        User.__init__(self, *args, **kwargs)
        self.sio = _BuyerClient(self.environment.events.request, **self.options)
        self.sio_greenlet = gevent.spawn(self.sio.wait)
        self.sio.on("*", self.sio.on_message)

    role = "viewer"
    prefix = "buyer"
    options = {"reconnection": True, "reconnection_attempts": 3, "serializer": "msgpack" if CODEC != "json" else "default"}

    def on_start(self) -> None:
        _start_process_helpers(self.environment, None)
        self.user_id = f"{self.prefix}-{uuid.uuid4().hex[:10]}"
        self.snapshot: dict[str, Any] = {}
        self.levels: dict[str, Any] = {}
        self.got_snapshot = gevent.event.Event()
        self.clock = Clock()
        self.sio.on("snapshot", self._on_snapshot)
        self.sio.on("tick", self._on_tick)
        token = mint(SECRET, sub=self.user_id, role=self.role, broadcast=BROADCAST, ttl=3600)
        url = (self.host or "") + ("?codec=json" if CODEC == "json" else "")
        t0 = time.perf_counter()
        for attempt in range(6):  # a refused connect (the server busy, Redis away) is retried, as the player does
            try:
                self.sio.connect(url, auth={"token": token}, transports=["websocket"], wait_timeout=30)
                self.got_snapshot.wait(20)
                for again in range(3):  # no snapshot yet: ask for it, as the player re-asks
                    if self.got_snapshot.is_set():
                        break
                    ack, _ = self.call("snapshot", {}, timeout=10)
                    if isinstance(ack, dict) and ack.get("ok"):
                        self._on_snapshot(ack.get("snapshot") or {})
                    else:
                        gevent.sleep(buying.backoff_ms(500, again) / 1000)
                code = "OK" if self.got_snapshot.is_set() else "NO_SNAPSHOT"
                break
            except Exception as exc:  # noqa: BLE001 - a failed join is a measurement, not a crash
                code = f"CONNECT_{type(exc).__name__}"
                try:
                    self.sio.disconnect()
                except Exception:  # noqa: BLE001 - a half-open client may fail to disconnect; the next attempt connects anew
                    pass
                if time.perf_counter() - t0 > 25:
                    break
                gevent.sleep(buying.backoff_ms(500, attempt) / 1000)
        record(Sample("join", now_ms(), (time.perf_counter() - t0) * 1000, code, self.user_id))
        if code != "OK":
            raise StopUser()
        self.clock.sync(self.sio)

    def on_stop(self) -> None:
        try:
            self.sio.disconnect()
        except Exception:  # noqa: BLE001 - the socket may be gone already; stopping a user must not raise
            pass

    def _on_snapshot(self, data: dict[str, Any]) -> None:
        self.snapshot = data or {}
        self.got_snapshot.set()

    def _on_tick(self, data: dict[str, Any]) -> None:
        if isinstance(data, dict) and isinstance(data.get("levels"), dict):
            self.levels.update(data["levels"])

    def call(self, event: str, payload: dict[str, Any], timeout: float = 30) -> tuple[Any, float]:
        t0 = time.perf_counter()
        try:
            ack = self.sio.call(event, payload, timeout=timeout)
        except Exception as exc:  # noqa: BLE001 - timeouts and disconnects are results too
            ack = {"ok": False, "error": {"code": "TIMEOUT" if "imeout" in type(exc).__name__ else f"CLIENT_{type(exc).__name__}"}}
        return ack, (time.perf_counter() - t0) * 1000


class BuyerUser(HawkerUser):
    """Waits for the countdown, presses Buy at the server-clock instant, retries BUSY/UNAVAILABLE
    with the same request id, pays (or walks away); refused SOLD_OUT it joins the waitlist and keeps
    watching the levels until the lot is sold out or the sale window ends."""

    fixed_count = int(os.environ.get("HAWKER_LT_BUYERS", "0"))
    wait_time = between(0.5, 1)

    def on_start(self) -> None:
        self.done = False
        self.holding = False
        self.waitlisted = False
        super().on_start()
        self.sio.on("hold.granted", self._on_granted)

    def _raw_call(self, event: str, payload: dict[str, Any], timeout: float) -> Any:
        return self.sio.call(event, payload, timeout=timeout)

    def _on_granted(self, data: dict[str, Any]) -> None:
        """A unit freed for us from the waitlist: pay for it like any other hold (or walk away)."""
        reservation = (data or {}).get("reservation") or {}
        if reservation.get("id") and not self.done:
            self.holding = True
            record(Sample("reserve", now_ms(), 0.0, "GRANTED", self.user_id))
            gevent.spawn(self._settle, data["sale_id"], reservation)

    def _settle(self, sale_id: str, reservation: dict[str, Any]) -> None:
        self.done = True
        if random.random() < ABANDON:
            record(Sample("abandon", now_ms(), 0.0, "OK", self.user_id))
            return
        self.pay(sale_id, reservation)

    def pay(self, sale_id: str, reservation: dict[str, Any]) -> None:
        payload = {"sale_id": sale_id, "reservation_id": reservation["id"], "idempotency_key": uuid.uuid4().hex,
                   "card": {"number": CARD_OK, "exp": "12/39", "cvc": "123"},
                   "contact": {"name": "Load Tester", "email": f"{self.user_id}@example.test"}}
        for attempt in range(6):
            pay, ms = self.call("checkout.pay", payload)
            pcode = error_code(pay)
            if pcode not in buying.RETRYABLE:
                break
            gevent.sleep(buying.backoff_ms(((pay or {}).get("error") or {}).get("retry_after"), attempt) / 1000)
        self.environment.events.request.fire(request_type="WSC", name="checkout.pay", response_time=ms,
                                             response_length=0, exception=None if pcode == "OK" else RuntimeError(pcode),
                                             context={})
        record(Sample("pay", now_ms(), ms, pcode, self.user_id))
        order_id = (pay.get("order") or {}).get("id", "") if isinstance(pay, dict) and pay.get("ok") else ""
        if order_id:
            record(Sample("order", now_ms(), 0.0, "OK", order_id))

    @task
    def buy(self) -> None:
        if self.done or self.holding:
            gevent.sleep(1)
            return
        sale = find_sale(self.snapshot, SALE)
        if sale is None:
            ack, _ = self.call("snapshot", {})
            if isinstance(ack, dict) and ack.get("ok"):
                self.snapshot = ack.get("snapshot") or {}
            return
        window_end = WINDOW_END or int(sale["opens_at"]) + 60_000
        if self.clock.server_now() > window_end:
            self.done = True
            return
        wait_ms = sale["opens_at"] - self.clock.server_now()
        if wait_ms > 0:
            gevent.sleep(wait_ms / 1000)
        lv = self.levels.get(f"stock:{sale['id']}")
        if isinstance(lv, dict):
            if int(lv.get("sold", 0)) >= int(lv.get("total", sale.get("units", 0)) or 1 << 30):
                self.done = True  # sold out for good
                return
            if self.waitlisted and int(lv.get("available", 0)) <= 0:
                return  # nothing to take; the waitlist or a later release may still come
        deadline = time.monotonic() + max(0.0, (window_end - self.clock.server_now()) / 1000)
        out = buying.reserve(self._raw_call, sale["id"], QTY, deadline, sleep=gevent.sleep)
        ms = sum(a.ms for a in out.attempts)
        self.environment.events.request.fire(request_type="WSC", name="sale.reserve", response_time=out.attempts[0].ms,
                                             response_length=0, context={},
                                             exception=None if out.code in ("OK", "SOLD_OUT") else RuntimeError(out.code))
        for a in out.attempts[:-1]:
            record(Sample("reserve_retry", now_ms(), a.ms, a.code, self.user_id))
        record(Sample("reserve", now_ms(), ms, out.code, self.user_id))
        if out.code == "OK":
            self.holding = True
            self._settle(sale["id"], out.ack["reservation"])
        elif out.code == "SOLD_OUT" and not self.waitlisted:
            ack, _ = self.call("sale.waitlist", {"sale_id": sale["id"], "qty": QTY})
            self.waitlisted = error_code(ack) == "OK"
        elif out.code in buying.FINAL_STOP:
            self.done = True


class HostUser(HawkerUser):
    """A scripted show for interactive runs: go live, pin, poll, schedule a sale. One per run."""

    role = "host"
    prefix = "host"
    fixed_count = 1
    wait_time = between(20, 30)

    def on_start(self) -> None:
        super().on_start()
        self.call("broadcast.start", {})
        products = ((self.snapshot.get("broadcast") or {}).get("products")) or []
        self.products = [p["id"] for p in products]

    @task
    def show(self) -> None:
        if self.products:
            pid = random.choice(self.products)
            self.call("product.pin", {"product_id": pid})
            self.call("poll.create", {"question": "Which colour next?", "options": ["red", "blue", "green"], "duration_s": 20})
            self.call("sale.schedule", {"product_id": pid, "units": 20, "limit": 2, "hold_s": 60,
                                        "opens_at": int(self.clock.server_now() + 10_000), "duration_s": 120})

