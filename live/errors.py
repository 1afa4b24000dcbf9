"""One error shape for every HTTP failure: {"error": {"code", "message", ...}} as JSON, never HTML.

The REST half of the error translation: a `DomainError` raised anywhere below a handler becomes its
status (from domain's one table) and body here, and nowhere else."""
from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from aiohttp import web

from domain import Code, DomainError
from live.metrics import OVERLOAD_ANSWERS
from redislayer import overload_code

log = logging.getLogger("hawker.http")

# Stable codes for HTTP statuses aiohttp raises by itself.
STATUS_CODES: dict[int, Code] = {
    400: Code.BAD_REQUEST,
    401: Code.UNAUTHORIZED,
    403: Code.FORBIDDEN,
    404: Code.NOT_FOUND,
    405: Code.METHOD_NOT_ALLOWED,
    409: Code.CONFLICT,
    413: Code.PAYLOAD_TOO_LARGE,
    415: Code.UNSUPPORTED_MEDIA_TYPE,
    422: Code.UNPROCESSABLE,
    429: Code.RATE_LIMITED,
    500: Code.INTERNAL,
    503: Code.UNAVAILABLE,
}


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        body=orjson.dumps(data, option=orjson.OPT_NON_STR_KEYS),
        status=status,
        content_type="application/json",
        headers=headers,
    )


def error_response(err: DomainError) -> web.Response:
    """THE translation of a refusal to HTTP: the status from the one table, the body `{"error": ...}`,
    and a `Retry-After` header (whole seconds) when the refusal says when to come back."""
    resp = json_response({"error": err.body()}, status=err.status)
    wait = err.retry_after
    if wait is not None:
        resp.headers["Retry-After"] = str(max(1, -(-int(wait) // 1000)))  # ms, rounded up: never too early
    return resp


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except DomainError as exc:
        return error_response(exc)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        if exc.text and exc.content_type == "application/json":
            return web.Response(body=exc.body, status=exc.status, content_type="application/json", headers=_keep(exc))
        code = STATUS_CODES.get(exc.status, Code.BAD_REQUEST if exc.status < 500 else Code.INTERNAL)
        resp = error_response(DomainError(code, exc.reason or code.value))
        resp.set_status(exc.status)  # aiohttp's own status stands (e.g. 416), with the nearest code
        resp.headers.update(_keep(exc))
        return resp
    except Exception as exc:  # noqa: BLE001 - the one place that turns failures into an answer
        over = overload_code(exc)
        if over is not None:  # the store is slow or gone: retryable, with the same Idempotency-Key
            log.warning("%s %s answered %s: %s", request.method, request.path, over.code, type(exc).__name__)
            OVERLOAD_ANSWERS.labels(over.code, "http").inc()
            return error_response(DomainError(over.code, over.message, retry_after=over.retry_after_ms))
        log.exception("unhandled error on %s %s", request.method, request.path)
        return error_response(DomainError(Code.INTERNAL, "internal server error"))


def _keep(exc: web.HTTPException) -> dict[str, str]:
    """Headers worth keeping from aiohttp's exception (Allow on 405, Location...)."""
    return {k: v for k, v in exc.headers.items() if k.lower() in ("allow", "location", "retry-after", "www-authenticate")}


async def read_json(request: web.Request, max_bytes: int | None = None) -> Any:
    """Parse a JSON body or refuse it (INVALID_JSON, PAYLOAD_TOO_LARGE, UNSUPPORTED_MEDIA_TYPE)."""
    ctype = request.content_type
    if ctype != "application/json":
        raise DomainError(Code.UNSUPPORTED_MEDIA_TYPE, "expected Content-Type: application/json")
    limit = max_bytes or request.app["config"].max_request_bytes
    if request.content_length is not None and request.content_length > limit:
        raise DomainError(Code.PAYLOAD_TOO_LARGE, f"body larger than {limit} bytes")
    raw = await request.read()
    if len(raw) > limit:
        raise DomainError(Code.PAYLOAD_TOO_LARGE, f"body larger than {limit} bytes")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise DomainError(Code.INVALID_JSON, "body is not valid JSON") from None
