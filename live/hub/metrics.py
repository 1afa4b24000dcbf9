"""The hub's Prometheus metrics (merged across worker processes like the rest of /metrics).
Sockets per broadcast are the fan-out engine's `hawker_fanout_sockets`."""
from __future__ import annotations

from prometheus_client import Counter

HUB_COMMANDS = Counter("hawker_hub_commands_total", "Client events handled by the hub, by event and result code",
                       ["event", "code"])
HUB_CONNECTS = Counter("hawker_hub_connects_total", "Socket connection attempts, by result code", ["code"])
HUB_SALE_EVENTS = Counter("hawker_hub_sale_events_total", "Sale lifecycle events sent (once across nodes)", ["event"])
