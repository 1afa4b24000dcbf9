"""Redis keys of one broadcast's chat. All share the hash tag {chat:<broadcast>} so every script
touches one slot and runs unchanged on Redis Cluster."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ChatKeys:
    broadcast: str

    def __post_init__(self) -> None:
        if not self.broadcast or "{" in self.broadcast or "}" in self.broadcast:
            raise ValueError("broadcast id must be non-empty and contain no braces")

    @property
    def base(self) -> str:
        return "chat:{" + self.broadcast + "}:"

    @property
    def stream(self) -> str:       # XADD entries u n r t k
        return self.base + "msgs"

    @property
    def bans(self) -> str:         # hash user -> "by|at"
        return self.base + "bans"

    @property
    def mutes(self) -> str:        # hash user -> until ms
        return self.base + "mutes"

    @property
    def cfg(self) -> str:          # hash slow, pin, buy
        return self.base + "cfg"

    @property
    def removed(self) -> str:      # hash message id -> "by|at"
        return self.base + "removed"

    @property
    def answered(self) -> str:     # hash question id -> at
        return self.base + "answered"

    @property
    def questions(self) -> str:    # zset question id -> ts
        return self.base + "qs"

    @property
    def reactions(self) -> str:    # hash emoji name -> total
        return self.base + "react"

    def user(self, user: str) -> str:   # hash tk (tokens), tt (refill ms), last (last accepted ms)
        return self.base + "u:" + user

    def dups(self, user: str) -> str:   # zset fingerprint -> ms
        return self.base + "d:" + user

    def request(self, user: str, request_id: str) -> str:  # string -> message id (a retry's answer)
        return self.base + "r:" + user + ":" + request_id

    def all_fixed(self) -> list[str]:
        return [self.stream, self.bans, self.mutes, self.cfg, self.removed, self.answered,
                self.questions, self.reactions]
