"""A load-test buyer told BUSY retries with the same request id, and gets the one reservation: a
real server whose Redis is paused (SIGSTOP) answers BUSY/UNAVAILABLE after its command deadline;
when Redis comes back the retry is answered, and the audit shows one hold for that buyer."""
from __future__ import annotations

import os
import signal
import threading
import time

import requests
import socketio

from loadtest import buying
from loadtest.lightclient import mint
from loadtest.localstack import LocalStack


def test_buyer_retries_busy_with_the_same_request_id():
    with LocalStack(env={"HAWKER_COMMAND_DEADLINE_MS": "300", "HAWKER_REDIS_WAIT_MS": "50"}) as stack:
        host_token = mint(stack.secret, sub="h", role="host", broadcast="b1")
        r = requests.post(stack.url + "/api/broadcasts", headers={"Authorization": f"Bearer {host_token}"}, timeout=10,
                          json={"id": "b1", "title": "t", "products": [{"id": "p1", "title": "x", "price": 1000, "currency": "KRW"}]})
        assert r.status_code == 201, r.text
        host, buyer = socketio.Client(), socketio.Client()
        host.connect(stack.url, auth={"token": host_token}, transports=["websocket"], wait_timeout=20)
        sale = host.call("sale.schedule", {"product_id": "p1", "units": 5, "limit": 1, "hold_s": 60}, timeout=20)["sale"]["id"]
        buyer.connect(stack.url, auth={"token": mint(stack.secret, sub="alice", role="viewer", broadcast="b1")},
                      transports=["websocket"], wait_timeout=20)
        assert stack.redis is not None
        os.kill(stack.redis.pid, signal.SIGSTOP)
        resumed = threading.Timer(2.0, os.kill, (stack.redis.pid, signal.SIGCONT))
        resumed.start()
        try:
            out = buying.reserve(lambda e, p, t: buyer.call(e, p, timeout=t), sale, 1, time.monotonic() + 40,
                                 timeout_s=5)
        finally:
            resumed.join()
            os.kill(stack.redis.pid, signal.SIGCONT)
        codes = [a.code for a in out.attempts]
        assert codes[0] in ("BUSY", "UNAVAILABLE", "TIMEOUT"), codes  # refused while Redis was away
        assert out.code == "OK", codes  # ... and answered once it came back
        assert len({a.request_id for a in out.attempts}) == 1  # every attempt was the same request
        audit = requests.get(f"{stack.url}/api/sales/{sale}/audit", headers={"Authorization": f"Bearer {host_token}"},
                             timeout=20).json()
        mine = [x for x in audit["reservations"] if x["user"] == "alice"]
        assert len(mine) == 1 and mine[0]["id"] == out.ack["reservation"]["id"]
        assert audit["levels"]["held"] == 1 and audit["levels"]["available"] == 4
        buyer.disconnect()
        host.disconnect()


def test_backoff_grows_from_retry_after_with_jitter():
    assert 200 <= buying.backoff_ms(200, 0) <= 400
    assert 800 <= buying.backoff_ms(200, 2) <= 1600
    assert buying.backoff_ms(None, 20) <= 10_000  # capped
