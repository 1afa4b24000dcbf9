"""Redis keys of one broadcast's show data, in one place: `hub:{<broadcast>}:<part>:...`.

The hash tag `{<broadcast>}` puts every key of a broadcast (its record, products, sales index,
polls, quizzes, giveaways, presence) in one Redis Cluster slot, so each Lua script of the show
touches a single slot."""
from __future__ import annotations


def key(broadcast: str, *parts: str) -> str:
    """`hub:{broadcast}:part:part...`; an empty last part leaves a trailing ':' (a script's prefix)."""
    return ":".join([f"hub:{{{broadcast}}}", *parts])


def text(x: bytes | str) -> str:
    """A Redis reply as text (the client answers bytes; redis-py's types allow str too)."""
    return x.decode() if isinstance(x, bytes) else x
