"""Field checks shared by every door (socket commands, REST, the domain libraries): one
`Invalid(field, message)`, a `DomainError` with code `VALIDATION` and the `field` it is about.

One id rule for the whole product (`ID_RE`, documented in docs/protocol.md "Ids"): 1-64 of
`[A-Za-z0-9_-]`. Every id Hawker issues fits it (uuid hex, `o_<ULID>`, `r<n>`, `s<hex>`, `a<hex>-w<n>`,
`token_urlsafe` session ids) and so do the slugs operators choose (`b1`, `demo-sneaker`); nothing
else may name a thing, a key or a request: no '.', ':', '/', spaces or control characters."""
from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Literal, cast, overload

from domain.errors import Code, DomainError

ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}\Z")
ID_RULE = "1-64 letters, digits, '-' or '_'"
CURRENCY_RE = re.compile(r"^[A-Z]{3}\Z")
MAX_MONEY = 10**12
MAX_TS = 10**13  # ms; year 2286


class Invalid(DomainError):
    """A field that fails its check: `VALIDATION` with `field` on the wire."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(Code.VALIDATION, message, field=field)
        self.field = field


def is_id(value: object) -> bool:
    """The one id rule, for callers that check a value rather than a payload field."""
    return isinstance(value, str) and ID_RE.match(value) is not None


def check_id(value: object, name: str) -> str:
    """`value` if it is an id, else `Invalid(name)`: the same refusal at every door."""
    if not is_id(value):
        raise Invalid(name, f"{name} must be {ID_RULE}")
    return cast("str", value)


_MISSING = object()


def _get(data: Mapping[str, Any], name: str, required: bool, default: Any) -> Any:
    value = data.get(name, _MISSING)
    if value is _MISSING or value is None:
        if required:
            raise Invalid(name, f"{name} is required")
        return default
    return value


# The overloads say what the checks guarantee: a required field, or one with a default, is never None.
@overload
def text(data: Mapping[str, Any], name: str, *, required: Literal[True] = ..., max_len: int = ..., min_len: int = ...,
         default: str | None = ...) -> str: ...
@overload
def text(data: Mapping[str, Any], name: str, *, required: bool = ..., max_len: int = ..., min_len: int = ...,
         default: str) -> str: ...
@overload
def text(data: Mapping[str, Any], name: str, *, required: bool = ..., max_len: int = ..., min_len: int = ...,
         default: str | None = ...) -> str | None: ...
def text(data: Mapping[str, Any], name: str, *, required: bool = True, max_len: int = 200, min_len: int = 1,
         default: str | None = None) -> str | None:
    value = _get(data, name, required, default)
    if value is default and not required:
        return cast("str | None", default)  # `is` narrowed it to Any
    if not isinstance(value, str):
        raise Invalid(name, f"{name} must be a string")
    value = value.strip()
    if not (min_len <= len(value) <= max_len):
        raise Invalid(name, f"{name} must be {min_len}-{max_len} characters")
    return value


@overload
def ident(data: Mapping[str, Any], name: str, *, required: Literal[True] = ..., default: str | None = ...) -> str: ...
@overload
def ident(data: Mapping[str, Any], name: str, *, required: bool = ..., default: str) -> str: ...
@overload
def ident(data: Mapping[str, Any], name: str, *, required: bool = ..., default: str | None = ...) -> str | None: ...
def ident(data: Mapping[str, Any], name: str, *, required: bool = True, default: str | None = None) -> str | None:
    value = _get(data, name, required, default)
    if value is default and not required:
        return cast("str | None", default)  # `is` narrowed it to Any
    return check_id(value, name)


@overload
def integer(data: Mapping[str, Any], name: str, *, required: Literal[True] = ..., lo: int = ..., hi: int = ...,
            default: int | None = ...) -> int: ...
@overload
def integer(data: Mapping[str, Any], name: str, *, required: bool = ..., lo: int = ..., hi: int = ...,
            default: int) -> int: ...
@overload
def integer(data: Mapping[str, Any], name: str, *, required: bool = ..., lo: int = ..., hi: int = ...,
            default: int | None = ...) -> int | None: ...
def integer(data: Mapping[str, Any], name: str, *, required: bool = True, lo: int = 0, hi: int = MAX_MONEY,
            default: int | None = None) -> int | None:
    value = _get(data, name, required, default)
    if value is default and not required:
        return cast("int | None", default)  # `is` narrowed it to Any
    if isinstance(value, bool) or not isinstance(value, int):
        raise Invalid(name, f"{name} must be an integer")
    if not (lo <= value <= hi):
        raise Invalid(name, f"{name} must be between {lo} and {hi}")
    return value


@overload
def currency(data: Mapping[str, Any], name: str = ..., *, required: Literal[True] = ...,
             default: str | None = ...) -> str: ...
@overload
def currency(data: Mapping[str, Any], name: str = ..., *, required: bool = ..., default: str) -> str: ...
@overload
def currency(data: Mapping[str, Any], name: str = ..., *, required: bool = ...,
             default: str | None = ...) -> str | None: ...
def currency(data: Mapping[str, Any], name: str = "currency", *, required: bool = True,
             default: str | None = None) -> str | None:
    value = _get(data, name, required, default)
    if value is default and not required:
        return cast("str | None", default)  # `is` narrowed it to Any
    if not isinstance(value, str) or not CURRENCY_RE.match(value):
        raise Invalid(name, f"{name} must be an ISO 4217 code like 'USD'")
    return value


def url(data: Mapping[str, Any], name: str, *, required: bool = False, default: str = "") -> str:
    value = _get(data, name, required, default)
    if value == "":
        return ""
    if not isinstance(value, str) or len(value) > 2048 or not (
            value.startswith("https://") or value.startswith("http://") or value.startswith("/")):
        raise Invalid(name, f"{name} must be an http(s) URL or a path starting with '/'")
    return value


def string_list(data: Mapping[str, Any], name: str, *, lo: int, hi: int, max_len: int = 100) -> list[str]:
    value = _get(data, name, True, None)
    if not isinstance(value, list) or not (lo <= len(value) <= hi):
        raise Invalid(name, f"{name} must be a list of {lo}-{hi} strings")
    out = []
    for i, item in enumerate(value):
        if not isinstance(item, str) or not (1 <= len(item.strip()) <= max_len):
            raise Invalid(f"{name}[{i}]", f"each of {name} must be 1-{max_len} characters")
        out.append(item.strip())
    return out


def only(data: Mapping[str, Any], allowed: set[str]) -> None:
    """Refuse unknown fields: a typo should not be silently ignored."""
    for key in data:
        if key not in allowed:
            raise Invalid(str(key)[:64], f"unknown field {str(key)[:64]!r}")
