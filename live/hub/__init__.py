"""The real-time hub: Socket.IO connections of one broadcast each, the command registry every part
plugs into, join snapshots, the server clock, polls and flash-sale lifecycles.

Parts register with `hub.command(...)` and `hub.snapshot_part(...)` (see live/hub/registry.py)
from a `register(hub, services)` function that create_app calls after `live.hub.setup`."""
from __future__ import annotations

from live.hub.registry import EVERYONE, HOST, STAFF, Caller, Registry

__all__ = ["Caller", "Registry", "EVERYONE", "HOST", "STAFF"]
