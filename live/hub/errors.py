"""Turning the hub's own store errors into socket refusals (HubError) and REST errors (ApiError)."""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from live.errors import ApiError
from live.hub.registry import HubError
from shop.broadcasts import StoreError
from shop.polls import PollError
from shop.validate import Invalid

_STATUS = {"NOT_FOUND": 404, "PRODUCT_NOT_FOUND": 404, "BROADCAST_EXISTS": 409, "PRODUCT_EXISTS": 409,
           "BAD_STATE": 409, "VALIDATION": 422}


@contextmanager
def refusals() -> Iterator[None]:
    """In a command handler: store and validation errors become HubError with the same code."""
    try:
        yield
    except Invalid as exc:
        raise HubError("VALIDATION", exc.message, field=exc.field) from None
    except (StoreError, PollError) as exc:
        raise HubError(exc.code, exc.message, **exc.details) from None


@contextmanager
def api_errors() -> Iterator[None]:
    """In a REST handler: the same errors as JSON with a fitting status."""
    try:
        yield
    except Invalid as exc:
        raise ApiError(422, "VALIDATION", exc.message, field=exc.field) from None
    except StoreError as exc:
        raise ApiError(_STATUS.get(exc.code, 400), exc.code, exc.message, **exc.details) from None
