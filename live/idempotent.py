"""`Idempotency-Key` for every mutating REST call, on checkout's IdempotencyStore.

Same key + same request -> the stored response (header `Idempotent-Replayed: true`); same key with
a different request -> 422 IDEMPOTENCY_MISMATCH; while the first is still running -> 409
IDEMPOTENCY_IN_PROGRESS (`retry_after` 1000 ms). Keys are scoped per user and kept 24 h. Without the header the call simply
runs. Responses of 5xx are not stored, so a retry after a server error runs again."""
from __future__ import annotations

from collections.abc import Awaitable, Callable

import orjson
from aiohttp import web

from checkout.idempotency import IdempotencyStore, fingerprint, valid_key
from domain import Code, DomainError
from live.errors import json_response

Make = Callable[[], Awaitable[web.Response]]


def setup(app: web.Application) -> None:
    app["idempotency"] = IdempotencyStore(app["redis"])


def store(app: web.Application) -> IdempotencyStore:
    st: IdempotencyStore = app["idempotency"]
    return st


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
    st = store(request.app)
    claim = await st.claim(user, key, fp)
    if claim.state == "DONE":
        return json_response(claim.body, status=claim.status, headers={"Idempotent-Replayed": "true"})
    if claim.state == "MISMATCH":
        raise DomainError(Code.IDEMPOTENCY_MISMATCH, "this Idempotency-Key was used with a different request")
    if claim.state == "RUNNING":
        raise DomainError(Code.IDEMPOTENCY_IN_PROGRESS, "a request with this Idempotency-Key is still running",
                          retry_after=1000)
    try:
        resp = await make()
    except DomainError as exc:
        if exc.status >= 500:
            await st.release(user, key)
            raise
        await st.finish(user, key, exc.status, {"error": exc.body()})
        raise
    except BaseException:
        await st.release(user, key)
        raise
    if resp.status >= 500:
        await st.release(user, key)
    else:
        sent = resp.body  # json_response's bytes; a streamed payload has no body to replay
        await st.finish(user, key, resp.status, orjson.loads(sent) if isinstance(sent, (bytes, bytearray)) and sent else None)
    return resp
