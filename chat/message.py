"""The chat message and the people who send them."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

KINDS = ("chat", "question", "system")
ROLES = ("host", "moderator", "viewer", "system")
STAFF = ("host", "moderator")
BADGES = {"host": "host", "moderator": "mod", "system": "system"}


@dataclass(frozen=True, slots=True)
class Actor:
    """Who is acting: user id, display name and role (from their token)."""

    user: str
    name: str
    role: str = "viewer"

    @property
    def is_staff(self) -> bool:
        return self.role in STAFF


@dataclass(frozen=True, slots=True)
class Message:
    """One chat line. `id` is its Redis stream id "<ms>-<seq>": unique per broadcast, ordered by
    (ms, seq) (`sort_key`), and its ms part is the server time the message was accepted (`ts`).

    `text` is the cleaned text, verbatim: never HTML-escaped here (renderers escape it)."""

    id: str
    user: str
    name: str
    role: str
    text: str
    ts: int
    kind: str = "chat"
    removed: bool = False
    answered: bool = False

    @property
    def badge(self) -> str | None:
        return BADGES.get(self.role)

    @property
    def sort_key(self) -> tuple[int, int]:
        ms, _, seq = self.id.partition("-")
        return int(ms), int(seq or 0)

    def to_wire(self) -> dict[str, Any]:
        """The JSON shape clients get (`removed`/`answered` only when true)."""
        out: dict[str, Any] = {"id": self.id, "user": self.user, "name": self.name, "role": self.role,
                               "text": self.text, "ts": self.ts, "kind": self.kind}
        badge = BADGES.get(self.role)
        if badge:
            out["badge"] = badge
        if self.removed:
            out["removed"] = True
        if self.answered:
            out["answered"] = True
        return out

    @classmethod
    def from_entry(cls, entry_id: bytes | str, fields: dict[Any, Any]) -> Message:
        """Build from a stream entry (fields u, n, r, t, k)."""
        mid = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
        f = {(k.decode() if isinstance(k, bytes) else k): (v.decode() if isinstance(v, bytes) else v)
             for k, v in fields.items()}
        return cls(id=mid, user=f.get("u", ""), name=f.get("n", ""), role=f.get("r", "viewer"),
                   text=f.get("t", ""), ts=int(mid.partition("-")[0]), kind=f.get("k", "chat"))
