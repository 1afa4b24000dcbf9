"""The real-time hub: Socket.IO connections of one broadcast each, the command registry every part
plugs into, join snapshots, the server clock, polls and flash-sale lifecycles.

Features register with `hub.command(...)` and `hub.snapshot_part(...)` (see live/hub/registry.py)
from the `register(node)` function of their module in live/sockets/, which create_app calls once
the node (live/node.py) is built."""
from __future__ import annotations

from live.hub.registry import EVERYONE, HOST, STAFF, Caller, Registry

__all__ = ["Caller", "Registry", "EVERYONE", "HOST", "STAFF"]
