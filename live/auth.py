"""JWT (HS256) tokens: who you are (`sub`), what you may do (`role`), and for which broadcast (`bc`)."""
from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass

import jwt
from aiohttp import web

from domain import Code, DomainError

ROLES = ("host", "moderator", "viewer")
ADMIN_BROADCAST = "*"  # a token for every broadcast (an operator's / merchant's admin token)


class AuthError(DomainError):
    """A token that cannot be used (TOKEN_MISSING, TOKEN_INVALID, TOKEN_EXPIRED: 401)."""


@dataclass(frozen=True)
class Claims:
    sub: str
    role: str
    broadcast: str
    name: str
    exp: int

    def allows(self, broadcast: str) -> bool:
        return self.broadcast in (broadcast, ADMIN_BROADCAST)

    @property
    def is_staff(self) -> bool:
        """Host or moderator: may moderate chat."""
        return self.role in ("host", "moderator")


def mint(secret: str, *, sub: str, role: str, broadcast: str, name: str | None = None, ttl: int = 12 * 3600) -> str:
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}")
    if not sub or not broadcast:
        raise ValueError("sub and broadcast are required")
    now = int(time.time())
    payload = {"sub": sub, "role": role, "bc": broadcast, "name": name or sub, "iat": now, "exp": now + int(ttl)}
    return jwt.encode(payload, secret, algorithm="HS256")


def verify(secret: str, token: str | None) -> Claims:
    if not token:
        raise AuthError(Code.TOKEN_MISSING, "a bearer token is required")
    try:
        data = jwt.decode(token, secret, algorithms=["HS256"], options={"require": ["sub", "exp"]})
    except jwt.ExpiredSignatureError:
        raise AuthError(Code.TOKEN_EXPIRED, "the token has expired") from None
    except jwt.InvalidSignatureError:
        raise AuthError(Code.TOKEN_INVALID, "the token signature does not match") from None
    except jwt.PyJWTError as exc:
        raise AuthError(Code.TOKEN_INVALID, f"the token is not valid: {exc}") from None
    role = data.get("role")
    broadcast = data.get("bc") or data.get("broadcast")
    sub = data.get("sub")
    if role not in ROLES:
        raise AuthError(Code.TOKEN_INVALID, "the token has no valid role")
    if not isinstance(broadcast, str) or not broadcast or not isinstance(sub, str) or not sub:
        raise AuthError(Code.TOKEN_INVALID, "the token names no broadcast or subject")
    given = data.get("name")
    name = given if isinstance(given, str) else sub
    return Claims(sub=sub, role=role, broadcast=broadcast, name=name[:64], exp=int(data["exp"]))


def bearer(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip()
    return None


def require(request: web.Request, roles: Iterable[str] = ROLES, broadcast: str | None = None) -> Claims:
    """Authenticate an HTTP request; raise 401 (no/bad token) or 403 (wrong role or broadcast)."""
    claims = verify(request.app["config"].secret, bearer(request))  # AuthError: 401 by its code
    if claims.role not in tuple(roles):
        raise DomainError(Code.FORBIDDEN, f"role {claims.role!r} may not do this")
    if broadcast is not None and not claims.allows(broadcast):
        raise DomainError(Code.FORBIDDEN, "the token is for another broadcast")
    return claims
