"""One bounded, multiplexed way to Redis for a whole process.

Every package that talks to Redis (inventory, chat, checkout, the hub) uses this layer, so a burst
queues instead of failing:

- `connect()` builds a client on a *blocking* pool of a fixed size: a command that finds every
  connection busy waits (up to `wait_s`) for one to come back instead of raising "Too many
  connections"; if none comes back in time it raises `PoolTimeout` (a Redis TimeoutError).
- `AutoPipeline` sends the Lua script calls made in one event-loop iteration as one pipeline, so a
  thousand concurrent reserves are a handful of round trips on a handful of connections.
- `batched()`: inside it, plain commands issued in one iteration are one pipeline (redislayer.batch):
  a join's dozen snapshot reads, and those of every join beside it, are one round trip.
- `overload_code()` says whether an exception means "Redis is slow" (`BUSY`) or "Redis is gone"
  (`UNAVAILABLE`): the transports answer those with `retry_after`, never `INTERNAL`.

It imports nothing of Hawker's, so the domain packages may use it (tests/foundation/test_layering.py).
"""
from redislayer.batch import batched
from redislayer.client import PoolTimeout, RedisTimer, connect
from redislayer.errors import BUSY, UNAVAILABLE, Overload, overload_code
from redislayer.pipeline import AutoPipeline, Script

__all__ = ["AutoPipeline", "BUSY", "batched", "Overload", "PoolTimeout", "RedisTimer", "Script", "UNAVAILABLE",
           "connect", "overload_code"]
