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

The viewers and the host are here; the buyers are in loadtest/locust_buyers.py, the light-viewer child
of each process in loadtest/locust_light.py, the shipment of raw rows in loadtest/locust_rows.py.
"""
from __future__ import annotations

import os
import random
import uuid

import gevent
import gevent.event
from locust import User, between, constant_pacing, task
from locust.exception import StopUser

from loadtest.lightclient import mint
from loadtest.lightpool import JOIN_TIMEOUT_S
from loadtest.locust_buyers import BuyerUser, HawkerUser
from loadtest.locust_light import LIGHT
from loadtest.locust_settings import BLOCKED_WORD, BROADCAST, CODEC, SCENARIO, SECRET, STORM_AT

# Locust finds its User classes among this module's names, so the imported ones are kept here
__all__ = ["BuyerUser", "HawkerUser", "HostUser", "LightViewerUser"]

LINES = ["wow", "so pretty", "price?", "가격이 어떻게 되나요?", "ship to Busan?", "need this", "colour?"]


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


# ---- the host (a full Socket.IO client, like the buyers) ---------------------------------------

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

