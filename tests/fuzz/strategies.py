"""Hypothesis strategies for hostile input: JSON-ish values with wrong types, huge integers, NaN and
infinities, deep nesting, long strings, lone surrogates and integer map keys, and the frames that
carry them in either codec (some of them mangled on purpose).

Values are generated as Python objects and encoded here by hand, because the interesting ones are
exactly what a normal encoder refuses: the JSON text is written with the standard library's
encoder (which writes NaN, Infinity, huge integers and lone-surrogate escapes), msgpack with
`surrogatepass` (invalid UTF-8 on the wire) and integer keys."""
from __future__ import annotations

import json
import math
from typing import Any

import msgpack
from hypothesis import strategies as st

# Field names the handlers read (so generated payloads reach past "unknown field" checks).
FIELDS = ("sale_id", "qty", "request_id", "reservation_id", "product_id", "units", "price", "currency", "limit",
          "hold_s", "opens_at", "duration_s", "poll_id", "option", "options", "question", "n", "title", "text",
          "kind", "user", "seconds", "until", "since", "message_id", "emoji", "count", "enabled", "sdp",
          "candidate", "session", "id", "idempotency_key", "image_url", "description", "scheduled_start",
          "broadcast", "token", "reason", "amount", "url", "events", "secret")

MSGPACK_INT = st.integers(-(2**63), 2**64 - 1)
HUGE_INT = st.one_of(st.integers(-(2**200), 2**200), st.sampled_from([2**53, 2**63, 2**64, -(2**63) - 1, 10**30]))
STRANGE_TEXT = st.one_of(
    st.text(max_size=40),
    st.text(alphabet=st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF), min_size=1, max_size=3),  # lone surrogates
    st.sampled_from(["", " ", "../../etc/passwd", "%00", "\x00", "<script>", "s1", "p1", "b1", "u1", "*",
                     "connect", "disconnect", "__proto__", "constructor", "NaN", "-1", "1e999", "ü" * 65]),
    st.integers(1, 200_000).map(lambda n: "x" * n),  # long strings, past every max_len and max_bytes
)
FLOATS = st.one_of(st.floats(allow_nan=False, allow_infinity=False), st.floats(allow_nan=False, allow_infinity=False),
                   st.floats(allow_nan=True, allow_infinity=True), st.sampled_from([math.nan, math.inf, -0.0, 1e308]))
PLAIN_TEXT = st.one_of(st.text(max_size=40), st.sampled_from(["", " ", "s1", "p1", "p2", "b1", "u1", "v1", "h1", "r1",
                                                             "KRW", "USD", "hello", "https://x.example/a.png"]))


def scalars(codec: str, anchors: tuple[Any, ...] = ()) -> st.SearchStrategy[Any]:
    """Mostly plausible values (the lot's id, small numbers, ordinary text) so payloads get past the
    first checks into the handlers; the rest is hostile."""
    ints = st.one_of(st.integers(-5, 1_000_005), MSGPACK_INT) if codec == "msgpack" else st.one_of(
        st.integers(-5, 1_000_005), HUGE_INT)
    plausible = st.one_of(st.integers(0, 10), PLAIN_TEXT, *(st.just(a) for a in anchors))
    hostile = st.one_of(st.none(), st.booleans(), ints, FLOATS, STRANGE_TEXT)
    return st.one_of(plausible, plausible, hostile)


def values(codec: str, anchors: tuple[Any, ...] = ()) -> st.SearchStrategy[Any]:
    keys = st.one_of(st.sampled_from(FIELDS), st.text(max_size=12))
    if codec == "msgpack":
        keys = st.one_of(keys, st.integers(-3, 3))  # integer map keys: JSON cannot say them, msgpack can
    return st.recursive(
        scalars(codec, anchors),
        lambda inner: st.one_of(st.lists(inner, max_size=5), st.dictionaries(keys, inner, max_size=5)),
        max_leaves=12,
    )


def _typed(name: str, anchors: tuple[Any, ...]) -> st.SearchStrategy[Any]:
    """A value of the type a handler expects for `name`, so a payload can get all the way through."""
    ids = st.one_of(*(st.just(a) for a in anchors), st.sampled_from(["p1", "p2", "s1", "q1", "v1", "h1"]))
    small = st.integers(0, 10)
    text = st.one_of(st.text(min_size=1, max_size=30), st.sampled_from(["hello", "buy 2", "구매 2개", "r1", "r2"]))
    by_name: dict[str, st.SearchStrategy[Any]] = {
        "options": st.lists(text, min_size=2, max_size=6), "qty": st.integers(1, 3), "n": st.integers(1, 10),
        "option": st.integers(0, 5), "seconds": st.integers(0, 120), "enabled": st.booleans(),
        "units": st.integers(1, 5), "price": st.integers(0, 10_000), "limit": st.integers(1, 3),
        "hold_s": st.integers(10, 3600), "duration_s": st.integers(5, 600), "currency": st.sampled_from(["KRW", "USD"]),
    }
    if name in by_name:
        return by_name[name]
    if name.endswith("_id") or name in ("id", "user", "session"):
        return ids
    return st.one_of(text, small)


@st.composite
def typed_payloads(draw: st.DrawFn, anchors: tuple[Any, ...]) -> dict[str, Any]:
    keys = draw(st.lists(st.sampled_from(FIELDS), max_size=5, unique=True))
    return {k: draw(_typed(k, anchors)) for k in keys}


def payloads(codec: str, anchors: tuple[Any, ...] = ()) -> st.SearchStrategy[Any]:
    """What goes after the event name: mostly objects with the handlers' field names (often with
    the types the handlers want), sometimes not objects at all."""
    typed = typed_payloads(anchors)
    flat = st.dictionaries(st.sampled_from(FIELDS), scalars(codec, anchors), max_size=4)
    fields = st.dictionaries(st.sampled_from(FIELDS), values(codec, anchors), max_size=6)
    deep = st.integers(50, 3000 if codec == "json" else 400).map(lambda n: _nest(n))
    return st.one_of(typed, typed, typed, flat, fields, values(codec, anchors), deep)


def _nest(n: int) -> Any:
    value: Any = {"qty": 1}
    for i in range(n):
        value = [value] if i % 2 else {"sale_id": value}
    return value


class Frame:
    """One client frame: `data` to send (str = text frame, bytes = binary), its ack id, and whether
    it is well-formed (then an ack is owed) or mangled (an ack or a 4002 close is the right answer)."""

    def __init__(self, data: str | bytes, ack_id: int, well_formed: bool, event: Any, what: str) -> None:
        self.data = data
        self.ack_id = ack_id
        self.well_formed = well_formed
        self.event = event
        self.what = what

    def __repr__(self) -> str:  # keep hypothesis's falsifying-example output readable
        shown = self.data[:200] if isinstance(self.data, str) else self.data[:200].hex()
        return f"Frame({self.what}, event={self.event!r:.60}, {len(self.data)} bytes: {shown!r})"


def _fit(value: Any) -> Any:
    """msgpack's integers stop at 64 bits: clamp bigger ones (JSON text carries them whole)."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return max(-(2**63), min(2**64 - 1, value))
    if isinstance(value, list):
        return [_fit(v) for v in value]
    if isinstance(value, dict):
        return {_fit(k): _fit(v) for k, v in value.items()}
    return value


def encode(codec: str, data: Any, ack_id: int) -> str | bytes:
    if codec == "msgpack":
        pkt = {"id": ack_id, "type": 2, "nsp": "/", "data": _fit(data)}  # id first: survives more damage
        return msgpack.packb(pkt, unicode_errors="surrogatepass")
    try:
        body = json.dumps(data, ensure_ascii=True, allow_nan=True)
    except (ValueError, RecursionError):
        body = "[" * 3000
    return f"42{ack_id}{body}"


def json_plain(data: Any) -> bool:
    """True if `data` survives a strict JSON round trip (what the server accepts as a payload)."""
    try:
        json.loads(json.dumps(data, allow_nan=False), parse_constant=_refuse)
        return True
    except (ValueError, TypeError, RecursionError):
        return False


def _refuse(_: str) -> Any:
    raise ValueError


@st.composite
def frames(draw: st.DrawFn, codec: str, events: list[str], ack_id: int, anchors: tuple[Any, ...] = ()) -> Frame:
    """An event frame for one of `events` (or a strange name), sometimes with extra arguments,
    sometimes mangled after encoding."""
    event = draw(st.one_of(st.sampled_from(events), st.sampled_from(events), st.sampled_from(events),
                           values(codec)))
    shape = draw(st.sampled_from(["one"] * 6 + ["none", "two"]))
    payload = draw(payloads(codec, anchors))
    data = [event] if shape == "none" else [event, payload] if shape == "one" else [event, payload, payload]
    try:
        raw = encode(codec, data, ack_id)
    except (ValueError, TypeError, OverflowError):  # msgpack's own limits (nesting): send it as JSON text
        raw = encode("json", data, ack_id)
    mangle = draw(st.sampled_from(["none"] * 9 + ["truncate", "garbage", "flip"]))
    if mangle == "none":
        return Frame(raw, ack_id, True, event, "event")
    # keep the ack id itself intact (mangling it would make it another, valid id)
    prefix = len(f"42{ack_id}") + 1 if isinstance(raw, str) else 1 + 3 + len(msgpack.packb(ack_id))
    if isinstance(raw, str):
        cut = draw(st.integers(prefix, max(prefix, len(raw) - 1)))
        if mangle == "truncate":
            raw = raw[:cut]
        elif mangle == "garbage":
            raw = raw[:cut] + draw(st.text(min_size=1, max_size=8)) + raw[cut:]
        else:
            raw = raw[:cut] + chr((ord(raw[cut]) + 1) % 0x110000 if cut < len(raw) else 0x41) + raw[cut + 1:]
    else:
        cut = draw(st.integers(prefix, max(prefix, len(raw) - 1)))
        if mangle == "truncate":
            raw = raw[:cut]
        elif mangle == "garbage":
            raw = raw[:cut] + draw(st.binary(min_size=1, max_size=8)) + raw[cut:]
        elif raw:
            raw = raw[:cut] + bytes([raw[cut] ^ 0xFF]) + raw[cut + 1:]
    if isinstance(raw, str):  # a text frame must still be UTF-8 (else it is the websocket layer's business)
        raw = raw.encode("utf-8", "replace").decode("utf-8")
    return Frame(raw, ack_id, False, event, mangle)
