"""Full Socket.IO clients for Locust: one per person (HawkerUser) and the buyer who presses Buy (BuyerUser)."""
from __future__ import annotations

import os
import random
import time
import uuid
from typing import Any

import engineio
import gevent
import gevent.event
from locust import User, between, task
from locust.contrib.socketio import SocketIOClient, SocketIOUser
from locust.exception import StopUser

from loadtest import buying
from loadtest.client import Clock, error_code, find_sale, now_ms
from loadtest.lightclient import mint
from loadtest.locust_light import start_process_helpers
from loadtest.locust_rows import record
from loadtest.locust_settings import ABANDON, BROADCAST, CODEC, QTY, SALE, SECRET, WINDOW_END
from loadtest.samples import Sample

CARD_OK = "4242424242424242"


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
        start_process_helpers(self.environment, None)
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
