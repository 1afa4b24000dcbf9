"""The local members of one broadcast on this node, as the fan-out engine keeps them."""
from __future__ import annotations

from typing import Any

from live.fanout.conn import Conn
from live.fanout.frames import CODECS
from live.fanout.handout import Targets
from live.fanout.relay import SEQ


class Room:
    """The local members of one broadcast, grouped by (codec, staff) so a tick's loop is flat."""

    __slots__ = ("groups", "count", "users", "last_viewers", "viewers_at", "seqs", "sending", "held")

    def __init__(self) -> None:
        self.groups: dict[tuple[str, bool], dict[str, Conn]] = {(c, s): {} for c in CODECS for s in (False, True)}
        self.count = 0
        self.users: dict[str, set[str]] = {}
        self.last_viewers = -1
        self.viewers_at = 0  # server ms of the last tick sent to this room
        self.seqs: dict[str, int] = {}  # the highest `v` delivered, per versioned level
        self.sending = False  # a tick is being handed out in slices (live/fanout/handout.py)
        self.held: list[Targets] = []  # events produced meanwhile, written after it

    def fresh(self, levels: dict[str, Any]) -> dict[str, Any]:
        """The levels to send: versioned ones older than what was delivered go."""
        out: dict[str, Any] = {}
        for key, value in levels.items():
            seq = value.get(SEQ) if isinstance(value, dict) else None
            if isinstance(seq, int):
                if seq <= self.seqs.get(key, -1):
                    continue
                self.seqs[key] = seq
            out[key] = value
        return out


class Member:
    __slots__ = ("broadcast", "staff", "user", "conn", "key")

    def __init__(self, broadcast: str, staff: bool, user: str | None, conn: Conn, key: tuple[str, bool]) -> None:
        self.broadcast = broadcast
        self.staff = staff
        self.user = user
        self.conn = conn
        self.key = key
