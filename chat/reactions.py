"""Reactions (hearts and a small fixed emoji set) are counted, never fanned out one by one.

Each node keeps a `ReactionTally` of what its own sockets sent during the current tick; once a tick
`flush` adds those deltas to the broadcast's totals in Redis (one script, lua/react.lua) and
returns the totals with their version `v`, which the fan-out sends as a versioned level: when two
nodes flush at once, the older total can never replace the newer one on a viewer's screen."""
from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

from chat.errors import RATE_LIMITED, VALIDATION, ChatRefused
from chat.keys import ChatKeys

_REACT = (Path(__file__).parent / "lua" / "react.lua").read_text(encoding="utf-8")
SEQ = "v"  # the totals' version (docs/protocol.md: keep the highest `v`): bumped by every flush

# name -> glyph. A client may send either.
REACTIONS: dict[str, str] = {
    "heart": "\u2764\ufe0f",
    "fire": "\U0001f525",
    "laugh": "\U0001f602",
    "wow": "\U0001f62e",
    "clap": "\U0001f44f",
    "sad": "\U0001f622",
}
_BY_GLYPH = {glyph: name for name, glyph in REACTIONS.items()}
_BY_GLYPH.update({glyph.replace("\ufe0f", ""): name for name, glyph in REACTIONS.items()})


def reaction_name(emoji: object) -> str:
    """The canonical name of a reaction ("heart" or "❤️" -> "heart"); VALIDATION otherwise."""
    if isinstance(emoji, str):
        if emoji in REACTIONS:
            return emoji
        name = _BY_GLYPH.get(emoji) or _BY_GLYPH.get(emoji.replace("\ufe0f", ""))
        if name:
            return name
    raise ChatRefused(VALIDATION, f"emoji must be one of {', '.join(REACTIONS)}")


class ReactionTally:
    """One node's reaction deltas since the last flush, with a per-user cap per window."""

    def __init__(self, per_user_per_s: int = 20) -> None:
        self.per_user = per_user_per_s
        self._pending: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        self._window = -1
        self._sent: dict[tuple[str, str], int] = defaultdict(int)
        self._scripts: dict[int, Any] = {}  # the react script, per Redis client

    def add(self, broadcast: str, user: str, emoji: object, now_ms: int) -> str:
        """Count one reaction; returns its name. RATE_LIMITED past the user's cap this second."""
        name = reaction_name(emoji)
        window = now_ms // 1000
        if window != self._window:
            self._window = window
            self._sent.clear()
        key = (broadcast, user)
        if self._sent[key] >= self.per_user:
            raise ChatRefused(RATE_LIMITED, "too many reactions", retry_after=1000 - now_ms % 1000)
        self._sent[key] += 1
        self._pending[broadcast][name] += 1
        return name

    def pending(self) -> list[str]:
        """Broadcasts with reactions waiting to be flushed."""
        return [b for b, d in self._pending.items() if d]

    async def flush(self, redis: Any, broadcast: str) -> dict[str, int] | None:
        """Add this node's deltas to the totals; return all totals and their version `v` (None when
        nothing was pending)."""
        deltas = self._pending.pop(broadcast, None)
        if not deltas:
            return None
        script = self._scripts.get(id(redis))
        if script is None:
            script = self._scripts[id(redis)] = redis.register_script(_REACT)
        args: list[Any] = []
        for name, n in deltas.items():
            args += [name, n]
        flat = await script(keys=[ChatKeys(broadcast).reactions], args=args)
        raw = dict(zip(flat[::2], flat[1::2], strict=True))
        totals = decode_totals(raw)
        totals[SEQ] = int(raw.get(b"_seq") or raw.get("_seq") or 0)
        return totals


def decode_totals(raw: dict[Any, Any]) -> dict[str, int]:
    out = {name: 0 for name in REACTIONS}
    for k, v in raw.items():
        name = k.decode() if isinstance(k, bytes) else k
        if name in out:
            out[name] = int(v)
    return out
