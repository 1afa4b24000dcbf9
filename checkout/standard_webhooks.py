"""Standard Webhooks (standardwebhooks.com) headers beside Hawker-Signature, so a merchant can verify
a delivery with any of the `standardwebhooks` libraries:

    webhook-id:        the event id (the same on every attempt: de-duplicate on it)
    webhook-timestamp: unix seconds of this attempt
    webhook-signature: "v1," + base64(hmac-sha256(key, "<id>.<timestamp>.<body>"))

The key is the endpoint's secret as the spec defines it: a secret registered as `whsec_<base64>`
is that base64 decoded (what `Webhook("whsec_...")` does); any other secret is its UTF-8 bytes
(`Webhook(secret.encode())`)."""
from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time
from collections.abc import Mapping

PREFIX = "whsec_"


def signing_key(secret: str) -> bytes:
    """The HMAC key for a registered secret, decoded exactly as the reference library decodes it."""
    if secret.startswith(PREFIX):
        try:
            key = base64.b64decode(secret[len(PREFIX):] + "==")
        except (binascii.Error, ValueError):
            key = b""
        if key:
            return key
    return secret.encode()


def signature(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(signing_key(secret), f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


def headers(secret: str, msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The three headers of one delivery attempt."""
    return {"webhook-id": msg_id, "webhook-timestamp": str(timestamp),
            "webhook-signature": signature(secret, msg_id, timestamp, body)}


def verify(secret: str, body: bytes, got: Mapping[str, str], tolerance_s: int = 300, now: int | None = None) -> bool:
    """What a receiver does: a v1 signature among the space-separated ones matches, the timestamp is recent."""
    h = {k.lower(): v for k, v in got.items()}
    msg_id, ts, sigs = h.get("webhook-id"), h.get("webhook-timestamp"), h.get("webhook-signature")
    if not (msg_id and ts and sigs):
        return False
    try:
        t = int(ts)
    except ValueError:
        return False
    now = int(time.time()) if now is None else now
    if abs(now - t) > tolerance_s:
        return False
    expected = signature(secret, msg_id, t, body)
    return any(hmac.compare_digest(expected, s) for s in sigs.split(" ") if s.startswith("v1,"))
