"""The access log without secrets: a `token=` value (query string, fragment, Referer) or anything
shaped like a JWT is written as `[redacted]`, for every request.

Old links carry the host token in `?token=` (the browser sends it; the log would keep it, and so
would anyone who reads the log). New links put it in the fragment, which never reaches a server;
this logger is the guarantee for the old ones and for a Socket.IO `?token=` connection."""
from __future__ import annotations

import re

from aiohttp.abc import AbstractAccessLogger
from aiohttp.web_log import AccessLogger
from aiohttp.web_request import BaseRequest
from aiohttp.web_response import StreamResponse

REDACTED = "[redacted]"
_SECRET_PARAM = re.compile(r"(?i)((?:^|[?&#;/])(?:access_token|id_token|token|jwt|auth|secret)=)[^&#;\s\"]*")
_JWT = re.compile(r"eyJ[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]*")
_BEARER = re.compile(r"(?i)(bearer\s+)\S+")


def redact(text: str) -> str:
    """`text` with every token-like value replaced (idempotent, bounded work: three regexes)."""
    text = _SECRET_PARAM.sub(lambda m: m.group(1) + REDACTED, text)
    text = _BEARER.sub(lambda m: m.group(1) + REDACTED, text)
    return _JWT.sub(REDACTED, text)


class RedactingAccessLogger(AccessLogger):
    """aiohttp's access logger (same format, same `extra` fields) with every value redacted."""

    def log(self, request: BaseRequest, response: StreamResponse, time: float) -> None:
        try:
            values: list[str] = []
            extra: dict[str, str | dict[str, str]] = {}
            for key, value in self._format_line(request, response, time):
                value = redact(value) if isinstance(value, str) else value
                values.append(value)
                if isinstance(key, str):
                    extra[key] = value
                else:
                    k1, k2 = key
                    prev = extra.get(k1)
                    dct = prev if isinstance(prev, dict) else {}
                    dct[k2] = value
                    extra[k1] = dct
            self.logger.info(self._log_format % tuple(values), extra=extra)
        except Exception:  # noqa: BLE001 - as aiohttp's own: a log line must never fail a request
            self.logger.exception("Error in logging")


ACCESS_LOG_CLASS: type[AbstractAccessLogger] = RedactingAccessLogger
