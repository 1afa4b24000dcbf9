"""One webhook delivery on the wire: the POST to exactly the addresses the egress policy checked (no
second DNS lookup, no redirect, a bounded read of the answer, a generic error code). The signature
it carries is checkout/signature.py's."""
from __future__ import annotations

import logging
import socket
import time

import aiohttp
import aiohttp.abc

from checkout import metrics
from checkout.egress import DELIVERY_FAILED, Target

log = logging.getLogger("hawker.webhooks")


class PinnedResolver(aiohttp.abc.AbstractResolver):
    """Answers every lookup with the addresses the policy just checked: the connection goes to
    them, never to what a second DNS query might say (DNS rebinding)."""

    def __init__(self, target: Target) -> None:
        self.target = target

    async def resolve(self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
                      ) -> list[aiohttp.abc.ResolveResult]:
        out: list[aiohttp.abc.ResolveResult] = []
        for a in self.target.addresses:
            fam = socket.AF_INET6 if ":" in a else socket.AF_INET
            out.append({"hostname": self.target.host, "host": a, "port": self.target.port, "family": fam,
                        "proto": 0, "flags": socket.AI_NUMERICHOST})
        return out

    async def close(self) -> None:
        return None


async def post(target: Target, url: str, body: bytes, headers: dict[str, str], timeout_s: float,
               endpoint_id: str) -> tuple[bool, str]:
    """POST `body` to `url` connecting only to `target`'s addresses: (delivered, '' or DELIVERY_FAILED)."""
    t0 = time.perf_counter()
    ok = False
    # one connector per delivery: it knows only the checked addresses, keeps no connection and no DNS cache
    connector = aiohttp.TCPConnector(resolver=PinnedResolver(target), use_dns_cache=False, force_close=True)
    try:
        async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=timeout_s),
                                         trust_env=False) as session:
            async with session.post(url, data=body, headers=headers, allow_redirects=False) as resp:
                await resp.content.read(64 * 1024)  # bounded: nothing of it is kept
                ok = 200 <= resp.status < 300
                if not ok:
                    log.info("webhook %s answered HTTP %d", endpoint_id, resp.status)
    except (TimeoutError, aiohttp.ClientError, OSError, ValueError) as exc:
        log.info("webhook %s delivery failed: %s", endpoint_id, type(exc).__name__)
    metrics.WEBHOOK_LATENCY.observe(time.perf_counter() - t0)
    return ok, "" if ok else DELIVERY_FAILED
