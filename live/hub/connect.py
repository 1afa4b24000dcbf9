"""Connection auth: which user, which role, which broadcast a new socket is; refusals carry a code.

The token comes from the connect packet's `auth` (`{"token": ..., "broadcast": ...}`) or, for
convenience, the query string (`?token=...&broadcast=...`). The broadcast is the token's `bc`;
a `*` token (operator) must name one with `broadcast`."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from socketio.exceptions import ConnectionRefusedError

from domain import Code, DomainError
from domain.validate import ID_RULE, is_id
from live.auth import ADMIN_BROADCAST, AuthError, Claims, verify


class Refused(DomainError):
    """Why a connection was refused; `refusal()` is what python-socketio sends in CONNECT_ERROR."""

    def refusal(self) -> ConnectionRefusedError:
        # error_args = {"message": message, "data": {"code", "message", ...}}: socket.io-client's err.data
        return ConnectionRefusedError(self.message, self.body())


@dataclass(frozen=True)
class Identity:
    claims: Claims
    broadcast: str


def _query(environ: Mapping[str, Any]) -> dict[str, str]:
    qs = parse_qs(environ.get("QUERY_STRING", "") or "")
    return {k: v[0] for k, v in qs.items() if v}


def authenticate(secret: str, environ: Mapping[str, Any], auth: Any) -> Identity:
    """Check the token and decide the broadcast, or raise Refused."""
    if auth is not None and not isinstance(auth, dict):
        raise Refused(Code.BAD_AUTH, "auth must be an object like {\"token\": \"...\"}")
    auth = auth or {}
    query = _query(environ)
    token = auth.get("token") if "token" in auth else query.get("token")
    if token is not None and not isinstance(token, str):
        raise Refused(Code.TOKEN_INVALID, "token must be a string")
    try:
        claims = verify(secret, token)
    except AuthError as exc:  # the same code, as a connection refusal
        raise Refused(exc.code, exc.message) from None
    wanted = auth.get("broadcast", query.get("broadcast"))
    if wanted is not None and not is_id(wanted):
        raise Refused(Code.BAD_AUTH, f"broadcast must be {ID_RULE}")
    if claims.broadcast == ADMIN_BROADCAST:
        if not wanted:
            raise Refused(Code.BROADCAST_REQUIRED, "a '*' token must name the broadcast to join")
        return Identity(claims, wanted)
    if wanted and wanted != claims.broadcast:
        raise Refused(Code.FORBIDDEN, "the token is for another broadcast")
    return Identity(claims, claims.broadcast)
