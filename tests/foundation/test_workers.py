"""`hawker serve --workers 2`: two processes on one port (SO_REUSEPORT); /metrics merges both."""
import signal

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import TEST_SECRET
from tests.foundation.procs import hawker, stop, wait_http
from tests.redis_proc import free_port

pytestmark = pytest.mark.slow


def _value(text: str, sample: str, labels: dict[str, str] | None = None) -> float:
    total = 0.0
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            if s.name == sample and (labels is None or all(s.labels.get(k) == v for k, v in labels.items())):
                total += s.value
    return total


async def test_two_workers_share_the_port_and_metrics(redis_url):
    port = free_port()
    proc = hawker("serve", "--port", str(port), "--workers", "2", "--redis-url", redis_url,
                  "--log-level", "warning", env={"HAWKER_SECRET": TEST_SECRET, "HAWKER_PAYMENT_PROVIDER": "sandbox"})
    url = f"http://127.0.0.1:{port}"
    try:
        await wait_http(url + "/readyz", proc)
        seen: dict[int, int] = {}
        # a fresh TCP connection per request: the kernel spreads them over the listening workers
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as http:
            for _ in range(400):
                async with http.get(url + "/healthz") as r:
                    assert r.status == 200
                    pid = (await r.json())["pid"]
                    seen[pid] = seen.get(pid, 0) + 1
                if len(seen) == 2 and min(seen.values()) >= 3:
                    break
            assert len(seen) == 2, f"every request went to one process: {seen}"
            assert proc.pid not in seen  # the parent only supervises
            async with http.get(url + "/metrics") as r:
                assert r.status == 200
                text = await r.text()
        assert _value(text, "hawker_process_up") == 2
        # each process counted its own answers; the merged counter holds at least all of them, which
        # no single process's counter could (each saw fewer than the total)
        answered = sum(seen.values())
        merged = _value(text, "hawker_http_requests_total", {"method": "GET", "status": "200"})
        assert merged >= answered > max(seen.values())
    finally:
        code = stop(proc, signal.SIGTERM, timeout=90)
    assert code == 0
