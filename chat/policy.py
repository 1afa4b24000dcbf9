"""Every chat knob in one frozen dataclass, passed in explicitly (the server fills it from HAWKER_CHAT_*)."""
from __future__ import annotations

from dataclasses import dataclass, field

from chat.words import default_words


@dataclass(frozen=True)
class ChatPolicy:
    max_len: int = 300                 # characters after cleaning; longer is TOO_LONG
    rate_per_s: float = 1.0            # token bucket refill per user per broadcast (all nodes)
    burst: int = 5                     # token bucket size
    staff_factor: float = 5.0          # host/moderators get rate and burst times this
    dup_window_s: int = 30             # same text from the same user within this window: DUPLICATE
    slow_max_s: int = 3600             # the largest slow mode a host may set
    timeout_max_s: int = 7 * 86400     # the longest time-out
    link_mode: str = "block"           # block | allow (allowed_domains only) | open
    allowed_domains: tuple[str, ...] = ()
    blocked_words: tuple[str, ...] = field(default_factory=default_words)
    allowed_words: tuple[str, ...] = ("scunthorpe", "penistone", "cockburn", "shitake")
    history_cap: int = 100_000         # messages kept per broadcast (stream MAXLEN ~, approximate)
    join_history: int = 50             # messages a joining client gets
    retention_s: int = 7 * 86400       # kept this long after the broadcast is closed
    questions_cap: int = 1000          # question index entries kept per broadcast
    request_ttl_s: int = 600           # a retried chat.send request_id returns the first answer this long
    buy_max_qty: int = 10              # comment-to-buy: largest quantity a message may order
    react_per_s: int = 20              # reactions one user may send per second (per node)
    overload_rate: float = 50.0        # inbound messages/s per broadcast above which viewers are sampled
    overload_k: int = 10               # messages per tick a viewer gets while sampled
