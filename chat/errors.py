"""Refusals: every rejected chat action carries a stable machine-readable code."""
from __future__ import annotations

from typing import Any

from domain import Code, DomainError

# Codes a sender can get back (the wire protocol lists them too): the product's own codes.
RATE_LIMITED = Code.RATE_LIMITED
SLOW_MODE = Code.SLOW_MODE
MUTED = Code.MUTED
BANNED = Code.BANNED
BLOCKED_WORD = Code.BLOCKED_WORD
LINK_NOT_ALLOWED = Code.LINK_NOT_ALLOWED
DUPLICATE = Code.DUPLICATE
TOO_LONG = Code.TOO_LONG
EMPTY = Code.EMPTY
# Codes of moderation / Q&A actions.
FORBIDDEN = Code.FORBIDDEN
NOT_FOUND = Code.NOT_FOUND
VALIDATION = Code.VALIDATION
NOT_A_QUESTION = Code.NOT_A_QUESTION

SEND_CODES = (RATE_LIMITED, SLOW_MODE, MUTED, BANNED, BLOCKED_WORD, LINK_NOT_ALLOWED, DUPLICATE, TOO_LONG, EMPTY)


class ChatRefused(DomainError):
    """A chat action that was refused and changed nothing.

    `retry_after` (milliseconds) is set for the codes that clear with time
    (RATE_LIMITED, SLOW_MODE, MUTED, DUPLICATE); it goes on the wire with the other details."""

    def __init__(self, code: Code, message: str = "", retry_after: int | None = None, **details: Any) -> None:
        if retry_after is not None:
            details["retry_after"] = retry_after
        super().__init__(code, message, **details)
