"""Graceful shutdown of a real `hawker serve` process: SIGTERM/SIGINT -> sockets hear
`server.shutdown` {"reconnect": true} and are closed, the process exits 0."""
import asyncio
import signal

import pytest
import socketio

from live.auth import mint
from shop.broadcasts import BroadcastStore
from tests.conftest import TEST_SECRET
from tests.foundation.procs import hawker, port_open, stop, wait_http, wait_until
from tests.redis_proc import free_port

pytestmark = pytest.mark.slow


class Recorder:
    def __init__(self) -> None:
        self.sio = socketio.AsyncClient(reconnection=False)
        self.shutdown: list = []
        self.disconnected = False
        self.sio.on("server.shutdown", self.shutdown.append)
        self.sio.on("disconnect", self._gone)

    async def _gone(self, *_a) -> None:
        self.disconnected = True


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
async def test_signal_tells_sockets_to_reconnect_and_exits_zero(redis, redis_url, sig):
    await BroadcastStore(redis).ensure("bye", title="Bye", host="h")
    port = free_port()
    proc = hawker("serve", "--port", str(port), "--redis-url", redis_url, "--log-level", "warning",
                  env={"HAWKER_SECRET": TEST_SECRET, "HAWKER_PAYMENT_PROVIDER": "sandbox"})
    clients: list[Recorder] = []
    try:
        url = f"http://127.0.0.1:{port}"
        await wait_http(url + "/readyz", proc)
        for i in range(3):
            c = Recorder()
            await c.sio.connect(url, transports=["websocket"], socketio_path="socket.io",
                                auth={"token": mint(TEST_SECRET, sub=f"v{i}", role="viewer", broadcast="bye")},
                                wait_timeout=30)
            clients.append(c)
        assert all(c.sio.connected for c in clients)
        code = stop(proc, sig, timeout=60)
        assert code == 0
        for c in clients:
            await wait_until(lambda c=c: c.disconnected, what="the server closing the socket")
            assert c.shutdown == [{"reconnect": True}]
        assert not port_open(port)
    finally:
        if proc.poll() is None:
            stop(proc, signal.SIGKILL)
        for c in clients:
            if c.sio.connected:
                await c.sio.disconnect()
        await asyncio.sleep(0)


async def test_shutdown_with_no_sockets_is_prompt_and_clean(redis_url):
    port = free_port()
    proc = hawker("serve", "--port", str(port), "--redis-url", redis_url, "--log-level", "warning",
                  env={"HAWKER_SECRET": TEST_SECRET, "HAWKER_PAYMENT_PROVIDER": "sandbox"}, stderr=-1)
    try:
        await wait_http(f"http://127.0.0.1:{port}/healthz", proc)
    finally:
        code = stop(proc, signal.SIGTERM, timeout=60)
    err = proc.stderr.read()
    assert code == 0, err
    assert "Traceback" not in err
