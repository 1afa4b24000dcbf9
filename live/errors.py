"""One error shape for every HTTP failure: {"error": {"code", "message"}} as JSON, never HTML."""
from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from aiohttp import web

from live.metrics import OVERLOAD_ANSWERS
from redislayer import overload_code

log = logging.getLogger("hawker.http")

# Stable codes for HTTP statuses aiohttp raises by itself.
STATUS_CODES: dict[int, str] = {
    400: "BAD_REQUEST",
    401: "UNAUTHORIZED",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    409: "CONFLICT",
    413: "PAYLOAD_TOO_LARGE",
    415: "UNSUPPORTED_MEDIA_TYPE",
    422: "UNPROCESSABLE",
    429: "RATE_LIMITED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
}


class ApiError(Exception):
    """Raise from a handler to answer with a JSON error of the given status and code."""

    def __init__(self, status: int, code: str, message: str = "", **details: Any) -> None:
        super().__init__(message or code)
        self.status = status
        self.code = code
        self.message = message or code.replace("_", " ").lower()
        self.details = details


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        body=orjson.dumps(data, option=orjson.OPT_NON_STR_KEYS),
        status=status,
        content_type="application/json",
        headers=headers,
    )


def error_response(status: int, code: str, message: str, **details: Any) -> web.Response:
    body: dict[str, Any] = {"code": code, "message": message}
    if details:
        body.update(details)
    return json_response({"error": body}, status=status)


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ApiError as exc:
        return error_response(exc.status, exc.code, exc.message, **exc.details)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code = STATUS_CODES.get(exc.status, f"HTTP_{exc.status}")
        message = exc.reason or code
        if exc.text and exc.content_type == "application/json":
            return web.Response(body=exc.body, status=exc.status, content_type="application/json", headers=_keep(exc))
        resp = error_response(exc.status, code, message)
        resp.headers.update(_keep(exc))
        return resp
    except Exception as exc:  # noqa: BLE001 - the one place that turns failures into an answer
        over = overload_code(exc)
        if over is not None:  # the store is slow or gone: retryable, with the same Idempotency-Key
            log.warning("%s %s answered %s: %s", request.method, request.path, over.code, type(exc).__name__)
            OVERLOAD_ANSWERS.labels(over.code, "http").inc()
            resp = error_response(503, over.code, over.message, retry_after=over.retry_after_ms)
            resp.headers["Retry-After"] = str(max(1, round(over.retry_after_ms / 1000)))
            return resp
        log.exception("unhandled error on %s %s", request.method, request.path)
        return error_response(500, "INTERNAL", "internal server error")


def _keep(exc: web.HTTPException) -> dict[str, str]:
    """Headers worth keeping from aiohttp's exception (Allow on 405, Location...)."""
    return {k: v for k, v in exc.headers.items() if k.lower() in ("allow", "location", "retry-after", "www-authenticate")}


async def read_json(request: web.Request, max_bytes: int | None = None) -> Any:
    """Parse a JSON body or raise a 400/413/415 ApiError."""
    ctype = request.content_type
    if ctype != "application/json":
        raise ApiError(415, "UNSUPPORTED_MEDIA_TYPE", "expected Content-Type: application/json")
    limit = max_bytes or request.app["config"].max_request_bytes
    if request.content_length is not None and request.content_length > limit:
        raise ApiError(413, "PAYLOAD_TOO_LARGE", f"body larger than {limit} bytes")
    raw = await request.read()
    if len(raw) > limit:
        raise ApiError(413, "PAYLOAD_TOO_LARGE", f"body larger than {limit} bytes")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise ApiError(400, "INVALID_JSON", "body is not valid JSON") from None
