"""Where a lot lives in Redis: its nine keys, all in the hash tag {lot:ID} (one cluster slot), and
the sharded channel its scripts SPUBLISH the lot id on when its stock changes."""
from __future__ import annotations

# every script that appends lot events SPUBLISHes the lot id on the lot's sharded channel
# CHANGED_CHANNEL + "{lot:ID}" (lua/prelude.py emit): it hashes to the lot's slot, so on a Redis
# Cluster the wake stays on the lot's shard (changed_channel)
CHANGED_CHANNEL = "inv:changed:"
_KEY_NAMES = ("meta", "res", "exp", "usr", "uh", "req", "wl", "wlu", "ev")
RES, REQ, EVENTS = 1, 5, 8  # positions in keys_for(): reservations hash, request ids hash, event stream


def changed_channel(lot_id: str) -> str:
    """The sharded channel a lot's scripts SPUBLISH its id on (same slot as keys_for(lot_id))."""
    return CHANGED_CHANNEL + "{lot:%s}" % lot_id


def keys_for(lot_id: str) -> list[str]:
    """Every key of one lot; all share the hash tag {lot:ID}, hence one cluster slot."""
    tag = "{lot:%s}" % lot_id
    return [f"inv:{tag}:{name}" for name in _KEY_NAMES]
