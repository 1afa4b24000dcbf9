"""Locust users for a live sale: viewers who chat and send hearts, buyers who press Buy at the
server-clock instant and pay (or walk away), and a host who runs a scripted show.

Interactive:  locust -f loadtest/locustfile.py --host http://127.0.0.1:8080
Headless:     python -m loadtest.spike (starts everything, runs the sale, audits, writes a report)

Settings come from the environment (the spike runner sets them):
  HAWKER_LT_SECRET     token secret of the server under test (tokens are minted like a merchant does)
  HAWKER_LT_BROADCAST  broadcast id (default "loadtest")
  HAWKER_LT_SALE       sale id to buy from (default: the newest open or scheduled sale in the snapshot)
  HAWKER_LT_OUT        folder for raw samples (default "loadtest-out/samples")
  HAWKER_LT_ABANDON    share of buyers who hold and never pay, so holds expire (default 0.2)
  HAWKER_LT_QTY        units a buyer asks for (default 1)
  HAWKER_LT_CODEC      msgpack (default, what the player uses) or json
"""
from __future__ import annotations

import os
import random
import time
import uuid
from typing import Any

import gevent
from locust import between, events, task
from locust.contrib.socketio import SocketIOUser

from live.auth import mint
from loadtest.client import Clock, error_code, find_sale, now_ms
from loadtest.samples import Sample, SampleWriter

SECRET = os.environ.get("HAWKER_LT_SECRET", "")
BROADCAST = os.environ.get("HAWKER_LT_BROADCAST", "loadtest")
SALE = os.environ.get("HAWKER_LT_SALE") or None
OUT = os.environ.get("HAWKER_LT_OUT", "loadtest-out/samples")
ABANDON = float(os.environ.get("HAWKER_LT_ABANDON", "0.2"))
QTY = int(os.environ.get("HAWKER_LT_QTY", "1"))
CODEC = os.environ.get("HAWKER_LT_CODEC", "msgpack")
CARD_OK = "4242424242424242"

_writer: SampleWriter | None = None


def writer() -> SampleWriter:
    global _writer
    if _writer is None:
        _writer = SampleWriter(OUT)
    return _writer


@events.test_stopping.add_listener
def _flush_on_stop(**_kw: Any) -> None:
    if _writer is not None:
        _writer.flush()


@events.quitting.add_listener
def _flush_on_quit(**_kw: Any) -> None:
    if _writer is not None:
        _writer.flush()


class HawkerUser(SocketIOUser):
    """Connects one socket for one person; every subclass is one kind of person."""

    abstract = True
    role = "viewer"
    options = {"reconnection": True, "reconnection_attempts": 3, "serializer": CODEC if CODEC == "msgpack" else "default"}

    def on_start(self) -> None:
        self.user_id = f"{self.role}-{uuid.uuid4().hex[:10]}"
        self.snapshot: dict[str, Any] = {}
        self.got_snapshot = gevent.event.Event()
        self.clock = Clock()
        self.sio.on("snapshot", self._on_snapshot)
        self.sio.on("tick", self._on_tick)
        token = mint(SECRET, sub=self.user_id, role=self.role, broadcast=BROADCAST, ttl=3600)
        url = self.host + ("?codec=json" if CODEC == "json" else "")
        t0 = time.perf_counter()
        try:
            self.sio.connect(url, auth={"token": token}, transports=["websocket"], wait_timeout=30)
            self.got_snapshot.wait(30)
            code = "OK" if self.got_snapshot.is_set() else "NO_SNAPSHOT"
        except Exception as exc:  # noqa: BLE001 - a failed join is a measurement, not a crash
            code = f"CONNECT_{type(exc).__name__}"
        writer().add(Sample("join", now_ms(), (time.perf_counter() - t0) * 1000, code, self.user_id))
        if code != "OK":
            self.stop()
            return
        self.clock.sync(self.sio)
        writer().add(Sample("clock_offset", now_ms(), self.clock.offset_ms, "OK", self.user_id))

    def on_stop(self) -> None:
        try:
            self.sio.disconnect()
        except Exception:  # noqa: BLE001
            pass

    def _on_snapshot(self, data: dict[str, Any]) -> None:
        self.snapshot = data or {}
        self.got_snapshot.set()

    def _on_tick(self, data: dict[str, Any]) -> None:
        """Tick latency for a sample of ticks; chat latency for this user's own messages."""
        if not isinstance(data, dict):
            return
        now = self.clock.server_now()
        if "ts" in data and random.random() < 0.05:
            writer().add(Sample("tick_latency", now_ms(), now - data["ts"], "OK", self.user_id))
        for msg in data.get("chat") or ():
            if isinstance(msg, dict) and msg.get("user") == self.user_id and "ts" in msg:
                writer().add(Sample("chat_latency", now_ms(), now - msg["ts"], "OK", self.user_id))

    def call(self, event: str, payload: dict[str, Any], timeout: float = 30) -> tuple[Any, float]:
        t0 = time.perf_counter()
        try:
            ack = self.sio.call(event, payload, timeout=timeout)
        except Exception as exc:  # noqa: BLE001 - timeouts and disconnects are results too
            ack = {"ok": False, "error": {"code": f"CLIENT_{type(exc).__name__}"}}
        return ack, (time.perf_counter() - t0) * 1000


class ViewerUser(HawkerUser):
    """Watches, chats now and then, sends hearts, votes in an open poll."""

    weight = 4
    fixed_count = int(os.environ.get("HAWKER_LT_VIEWERS", "0"))
    wait_time = between(5, 15)

    @task(3)
    def hearts(self) -> None:
        self.call("hearts", {"n": random.randint(1, 5)})

    @task(1)
    def chat(self) -> None:
        ack, ms = self.call("chat.send", {"text": random.choice(["wow", "so pretty", "price?", "가격이 어떻게 되나요?", "ship to Busan?"]),
                                          "request_id": uuid.uuid4().hex[:16]})
        if error_code(ack) not in ("OK",):
            writer().add(Sample("chat_latency", now_ms(), ms, error_code(ack), self.user_id))

    @task(1)
    def vote(self) -> None:
        poll = (self.snapshot or {}).get("poll")
        if isinstance(poll, dict) and poll.get("state") == "open" and poll.get("options"):
            ack, ms = self.call("poll.vote", {"poll_id": poll["id"], "option": random.randrange(len(poll["options"]))})
            writer().add(Sample("vote", now_ms(), ms, error_code(ack), self.user_id))


class BuyerUser(HawkerUser):
    """Waits for the countdown, presses Buy at the server-clock instant, pays or walks away."""

    weight = 1
    fixed_count = int(os.environ.get("HAWKER_LT_BUYERS", "0"))
    wait_time = between(1, 2)

    def on_start(self) -> None:
        self.done = False
        super().on_start()
        self.sio.on("hold.granted", self._on_granted)

    def _on_granted(self, data: dict[str, Any]) -> None:
        """A unit freed for us from the waitlist: pay for it like any other hold (or walk away)."""
        reservation = (data or {}).get("reservation") or {}
        if reservation.get("id") and random.random() >= ABANDON:
            gevent.spawn(self.pay, data["sale_id"], reservation)

    def pay(self, sale_id: str, reservation: dict[str, Any]) -> None:
        pay, ms = self.call("checkout.pay", {
            "sale_id": sale_id, "reservation_id": reservation["id"], "idempotency_key": uuid.uuid4().hex,
            "card": {"number": CARD_OK, "exp": "12/39", "cvc": "123"},
            "contact": {"name": "Load Tester", "email": f"{self.user_id}@example.test"},
        })
        pcode = error_code(pay)
        writer().add(Sample("pay", now_ms(), ms, pcode, self.user_id))
        order_id = (pay.get("order") or {}).get("id", "") if isinstance(pay, dict) and pay.get("ok") else ""
        if order_id:
            writer().add(Sample("order", now_ms(), 0.0, "OK", order_id))

    @task
    def buy_once(self) -> None:
        if self.done or not self.got_snapshot.is_set():
            gevent.sleep(1)
            return
        sale = find_sale(self.snapshot, SALE)
        if sale is None:
            ack, _ = self.call("snapshot", {})
            if isinstance(ack, dict) and ack.get("ok"):
                self.snapshot = ack.get("snapshot") or {}
            return
        wait_ms = sale["opens_at"] - self.clock.server_now()
        if wait_ms > 0:
            gevent.sleep(wait_ms / 1000)
        self.done = True
        ack, ms = self.call("sale.reserve", {"sale_id": sale["id"], "qty": QTY, "request_id": uuid.uuid4().hex[:16]})
        code = error_code(ack)
        writer().add(Sample("reserve", now_ms(), ms, code, self.user_id))
        if code == "SOLD_OUT" and random.random() < 0.3:
            self.call("sale.waitlist", {"sale_id": sale["id"], "qty": QTY})
        if code != "OK" or random.random() < ABANDON:
            return
        self.pay(sale["id"], ack["reservation"])


class HostUser(HawkerUser):
    """A scripted show for interactive runs: go live, pin, poll, schedule a sale. One per run."""

    role = "host"
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
