"""Deliveries carry the Standard Webhooks headers beside Hawker-Signature, verifiable with the
`standardwebhooks` library (the dev extra installs it) - or, where it is not installed, with the
algorithm as standardwebhooks.com documents it, written out here independently of our code."""
from __future__ import annotations

import base64
import hashlib
import hmac
import time

import orjson
import pytest

from checkout import standard_webhooks as sw
from checkout import verify
from tests.checkout.test_webhooks import hooks
from tests.waiting import wait_for as wait_until

WHSEC = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"  # the spec's format: base64 of the key
PLAIN = "a-plain-merchant-secret-0123456789"


def spec_verify(key: bytes, body: bytes, headers: dict[str, str]) -> dict:
    """standardwebhooks.com: signed content is `${id}.${timestamp}.${body}`, HMAC-SHA256 with the
    secret's key, base64, `v1,` prefix; several signatures are space-separated. Uses the library
    when it is installed."""
    try:
        from standardwebhooks import Webhook
    except ImportError:
        Webhook = None
    if Webhook is not None:
        return Webhook(key).verify(body, headers)  # raises WebhookVerificationError on a mismatch
    h = {k.lower(): v for k, v in headers.items()}
    content = f"{h['webhook-id']}.{h['webhook-timestamp']}.".encode() + body
    expected = base64.b64encode(hmac.new(key, content, hashlib.sha256).digest()).decode()
    if not any(s == "v1," + expected for s in h["webhook-signature"].split(" ")):
        raise ValueError("No matching signature found")
    if abs(time.time() - int(h["webhook-timestamp"])) > 300:
        raise ValueError("timestamp out of tolerance")
    return orjson.loads(body)


@pytest.mark.parametrize("secret,key", [(WHSEC, base64.b64decode(WHSEC[6:])), (PLAIN, PLAIN.encode())])
async def test_deliveries_verify_with_standard_webhooks(redis, recorder, secret, key):
    wh = hooks(redis, "n1")
    await wh.register("b1", recorder.url, secret)
    recorder.fail_first = 1  # the retry carries the same webhook-id, a fresh timestamp and signature
    await wh.start()
    try:
        event_id = await wh.emit("order.created", "b1", {"order": {"id": "o1", "total": 12900}})
        await wait_until(lambda: len(recorder.got) >= 2)
    finally:
        await wh.stop()
    for headers, body in recorder.got:
        assert headers["webhook-id"] == event_id == headers["Hawker-Event-Id"]
        assert headers["webhook-signature"].startswith("v1,")
        assert spec_verify(key, body, headers)["id"] == event_id
        assert verify(secret, body, headers["Hawker-Signature"])  # the Hawker signature is still there
        assert str(int(headers["webhook-timestamp"])) == headers["Hawker-Signature"].split(",")[0][2:]
        with pytest.raises(Exception):  # noqa: B017 - the library's WebhookVerificationError, or ours
            spec_verify(key, body.replace(b"12900", b"1"), headers)
        with pytest.raises(Exception):  # noqa: B017 - the library's WebhookVerificationError, or ours
            spec_verify(b"another key", body, headers)


def test_our_verifier_matches_the_spec_rules():
    body = b'{"id":"evt_1"}'
    h = sw.headers(WHSEC, "evt_1", int(time.time()), body)
    assert sw.verify(WHSEC, body, h)
    assert sw.verify(WHSEC, body, {**h, "webhook-signature": "v1,bogus " + h["webhook-signature"]})  # any of several
    assert not sw.verify(WHSEC, body + b" ", h)
    assert not sw.verify(WHSEC, body, {**h, "webhook-timestamp": str(int(time.time()) - 301)})
    assert not sw.verify(WHSEC, body, {k: v for k, v in h.items() if k != "webhook-id"})
    assert sw.signing_key(WHSEC) == base64.b64decode(WHSEC[6:]) and sw.signing_key(PLAIN) == PLAIN.encode()
