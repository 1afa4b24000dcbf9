"""Webhook signatures as the payment platforms make them: `t=<unix>,v1=<hex hmac-sha256>` over
`t.body`. `sign` is what Hawker sends; `verify` is what a receiver does (and the tests)."""
from __future__ import annotations

import hashlib
import hmac
import time


def sign(secret: str, body: bytes, t: int | None = None) -> str:
    t = int(time.time()) if t is None else t
    mac = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


def verify(secret: str, body: bytes, header: str, tolerance_s: int = 300, now: int | None = None) -> bool:
    """What a receiver does: check the HMAC and that the timestamp is recent."""
    try:
        parts = dict(p.split("=", 1) for p in header.split(","))
        t = int(parts["t"])
    except (ValueError, KeyError):
        return False
    now = int(time.time()) if now is None else now
    if abs(now - t) > tolerance_s:
        return False
    expected = sign(secret, body, t).split("v1=", 1)[1]
    return hmac.compare_digest(expected, parts.get("v1", ""))
