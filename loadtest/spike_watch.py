"""What the spike runner watches on the server during a run: the host's own socket (sale, stock, sell-out, moderation) and CPU/RSS."""
from __future__ import annotations

import threading
import time
from typing import Any

import socketio

from loadtest.client import Clock, error_code
from loadtest.localstack import LocalStack


class ResourceSampler(threading.Thread):
    """Server CPU % and RSS once a second (psutil over the server's processes)."""

    def __init__(self, pids: list[int]) -> None:
        super().__init__(daemon=True)
        import psutil

        self.procs = [psutil.Process(p) for p in pids]
        self.samples: list[tuple[float, float, float]] = []
        self.stop_event = threading.Event()

    def run(self) -> None:
        import psutil

        t0 = time.monotonic()
        for p in self.procs:
            p.cpu_percent(None)
        while not self.stop_event.wait(1.0):
            cpu = rss = 0.0
            for p in self.procs:
                try:
                    cpu += p.cpu_percent(None)
                    rss += p.memory_info().rss / 2**20
                except psutil.NoSuchProcess:
                    pass
            self.samples.append((round(time.monotonic() - t0, 1), round(cpu, 1), round(rss, 1)))


class Monitor:
    """The host's own socket: schedules the sale, records stock levels and the sold-out time, and
    in `chat-storm` moderates (deletes a line and times its sender out every few seconds)."""

    def __init__(self, url: str, token: str) -> None:
        self.sio = socketio.Client(reconnection=True)
        self.url, self.token = url, token
        self.sale_id: str | None = None
        self.stock: list[tuple[int, int, int, int]] = []
        self.soldout_at: int | None = None
        self.sold_all_at: int | None = None
        self.units = 0
        self.opened_at: int | None = None
        self.last_chat: dict[str, Any] | None = None
        self.moderated = 0
        self.clock = Clock()
        self.sio.on("tick", self._tick)
        self.sio.on("sale.soldout", self._soldout)
        self.sio.on("sale.open", self._open)

    def connect(self) -> None:
        self.sio.connect(self.url, auth={"token": self.token}, transports=["websocket"], wait_timeout=30)
        self.clock.sync(self.sio)

    def call(self, event: str, payload: dict[str, Any]) -> dict[str, Any]:
        ack = self.sio.call(event, payload, timeout=30)
        if error_code(ack) != "OK":
            raise RuntimeError(f"{event} refused: {ack}")
        return ack

    def _tick(self, data: dict[str, Any]) -> None:
        if not isinstance(data, dict):
            return
        chat = data.get("chat") or []
        if chat and isinstance(chat[-1], dict):
            self.last_chat = chat[-1]
        lv = (data.get("levels") or {}).get(f"stock:{self.sale_id}") if self.sale_id else None
        if isinstance(lv, dict):
            ts = int(data.get("ts", 0))
            self.stock.append((ts, int(lv["available"]), int(lv["held"]), int(lv["sold"])))
            if self.sold_all_at is None and self.units and int(lv["sold"]) >= self.units:
                self.sold_all_at = ts

    def _soldout(self, data: dict[str, Any]) -> None:
        if data.get("sale_id") == self.sale_id and self.soldout_at is None:
            self.soldout_at = int(data.get("at") or self.clock.server_now())

    def _open(self, data: dict[str, Any]) -> None:
        if data.get("sale_id") == self.sale_id:
            self.opened_at = int(data.get("at") or 0)

    def moderate(self) -> None:
        """One moderation action on the newest line: delete it, time its sender out for 10 s."""
        msg = self.last_chat
        if not msg or msg.get("role") in ("host", "moderator") or not msg.get("id"):
            return
        try:
            self.sio.call("chat.delete", {"message_id": msg["id"]}, timeout=10)
            if msg.get("user"):
                self.sio.call("chat.timeout", {"user": msg["user"], "seconds": 10}, timeout=10)
            self.moderated += 1
        except Exception:  # noqa: BLE001 - moderation under load may time out; the run goes on
            pass


def server_pids(stack: LocalStack | None) -> list[int]:
    """The server process and its children (its workers), for ResourceSampler."""
    import psutil

    if stack is None or stack.proc is None:
        return []
    try:
        parent = psutil.Process(stack.pid)
        return [parent.pid] + [c.pid for c in parent.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []

