"""Refusals: every rejected chat action carries a stable machine-readable code."""
from __future__ import annotations

from typing import Any

# Codes a sender can get back (the wire protocol lists them too).
RATE_LIMITED = "RATE_LIMITED"
SLOW_MODE = "SLOW_MODE"
MUTED = "MUTED"
BANNED = "BANNED"
BLOCKED_WORD = "BLOCKED_WORD"
LINK_NOT_ALLOWED = "LINK_NOT_ALLOWED"
DUPLICATE = "DUPLICATE"
TOO_LONG = "TOO_LONG"
EMPTY = "EMPTY"
# Codes of moderation / Q&A actions.
FORBIDDEN = "FORBIDDEN"
NOT_FOUND = "NOT_FOUND"
VALIDATION = "VALIDATION"
NOT_A_QUESTION = "NOT_A_QUESTION"

SEND_CODES = (RATE_LIMITED, SLOW_MODE, MUTED, BANNED, BLOCKED_WORD, LINK_NOT_ALLOWED, DUPLICATE, TOO_LONG, EMPTY)


class ChatRefused(Exception):
    """A chat action that was refused and changed nothing.

    `retry_after` (milliseconds) is set for the codes that clear with time
    (RATE_LIMITED, SLOW_MODE, MUTED)."""

    def __init__(self, code: str, message: str = "", retry_after: int | None = None, **details: Any) -> None:
        super().__init__(message or code)
        self.code = code
        self.message = message or code.replace("_", " ").lower()
        self.retry_after = retry_after
        self.details = details

    def to_error(self) -> dict[str, Any]:
        """The `error` object of a Socket.IO ack: {code, message, retry_after?, ...}."""
        err: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.retry_after is not None:
            err["retry_after"] = self.retry_after
        err.update(self.details)
        return err

    def __repr__(self) -> str:
        return f"ChatRefused({self.code!r}, retry_after={self.retry_after!r})"
