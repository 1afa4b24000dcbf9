"""Idempotency for every mutating call, on checkout's IdempotencyStore: `once()` is the one
claim -> run -> finish/release protocol; `idempotent()` is its REST face (`Idempotency-Key`
header) and live/sockets/checkout.py its socket face (`idempotency_key` in the payload).

Same key + same request -> the stored response (header `Idempotent-Replayed: true`); same key with
a different request -> 422 IDEMPOTENCY_MISMATCH; while the first is still running -> 409
IDEMPOTENCY_IN_PROGRESS (`retry_after` 1000 ms). Keys are scoped per user and kept 24 h. Without the header the call simply
runs. Responses of 5xx are not stored, so a retry after a server error runs again."""
from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import orjson
from aiohttp import web

from checkout.idempotency import IdempotencyStore, fingerprint, valid_key
from domain import Code, DomainError
from live.errors import json_response
from live.node import node_of

Make = Callable[[], Awaitable[web.Response]]
T = TypeVar("T")
Kept = tuple[int, Any] | None  # (status, body) to store, or None: forget the claim (a retry runs again)


@dataclass(frozen=True)
class Replayed:
    """The first answer to this key, as stored."""

    status: int
    body: Any


@dataclass(frozen=True)
class Protocol(Generic[T]):
    """How a transport stores its answers: `keep(answer)` and `keep_error(exc)` say what to store
    (None: release the key); `refuse(code)` is the transport's error for MISMATCH / IN_PROGRESS."""

    keep: Callable[[T], Kept]
    keep_error: Callable[[Exception], Kept]
    refuse: Callable[[str], Exception]


async def once(st: IdempotencyStore, scope: str, key: str, fp: str, run: Callable[[], Awaitable[T]],
               how: Protocol[T]) -> T | Replayed:
    """Run `run` at most once per (scope, key) with this fingerprint; a retry gets `Replayed`."""
    claim = await st.claim(scope, key, fp)
    if claim.state == "DONE":
        return Replayed(claim.status, claim.body)
    if claim.state in ("MISMATCH", "RUNNING"):
        raise how.refuse("IDEMPOTENCY_MISMATCH" if claim.state == "MISMATCH" else "IDEMPOTENCY_IN_PROGRESS")
    try:
        answer = await run()
    except Exception as exc:
        kept = how.keep_error(exc)
        if kept is None:
            await st.release(scope, key)
        else:
            await st.finish(scope, key, *kept)
        raise
    except BaseException:
        await st.release(scope, key)
        raise
    kept = how.keep(answer)
    if kept is None:
        await st.release(scope, key)
    else:
        await st.finish(scope, key, *kept)
    return answer


def store(app: web.Application) -> IdempotencyStore:
    return node_of(app).idempotency


def _keep_response(resp: web.Response) -> Kept:
    if resp.status >= 500:
        return None
    sent = resp.body  # json_response's bytes; a streamed payload has no body to replay
    return resp.status, orjson.loads(sent) if isinstance(sent, (bytes, bytearray)) and sent else None


def _keep_domain_error(exc: Exception) -> Kept:
    if not isinstance(exc, DomainError) or exc.status >= 500:
        return None
    return exc.status, {"error": exc.body()}


def _refuse_http(code: str) -> Exception:
    if code == Code.IDEMPOTENCY_MISMATCH:
        return DomainError(Code.IDEMPOTENCY_MISMATCH, "this Idempotency-Key was used with a different request")
    return DomainError(Code.IDEMPOTENCY_IN_PROGRESS, "a request with this Idempotency-Key is still running",
                       retry_after=1000)


HTTP: Protocol[web.Response] = Protocol(keep=_keep_response, keep_error=_keep_domain_error, refuse=_refuse_http)


async def idempotent(request: web.Request, user: str, make: Make, *, required: bool = False) -> web.Response:
    key = request.headers.get("Idempotency-Key")
    if not key:
        if required:
            raise DomainError(Code.IDEMPOTENCY_KEY_REQUIRED, "send an Idempotency-Key header with this request")
        return await make()
    if not valid_key(key):
        raise DomainError(Code.BAD_REQUEST, "Idempotency-Key must be 1 to 255 printable characters")
    body = await request.read()
    try:  # the same JSON with its keys in another order or other spacing is the same request
        parsed: object = orjson.loads(body) if body else None
    except orjson.JSONDecodeError:
        parsed = body.decode("utf-8", "replace")
    fp = fingerprint(request.method, request.path, request.query_string, parsed)
    answer = await once(store(request.app), user, key, fp, make, HTTP)
    if isinstance(answer, Replayed):
        return json_response(answer.body, status=answer.status, headers={"Idempotent-Replayed": "true"})
    return answer
