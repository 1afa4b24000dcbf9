"""The fan-out engine: encode-once, coalesced, multi-node delivery to a broadcast's sockets.

    fan = Fanout(sio, redis, node_id="n1", tick_ms=100)    # sio: FanoutServer (see server.py)
    await fan.start() / await fan.stop()
    await fan.join(sid, broadcast, staff=False, user=None)  # first member subscribes this node
    await fan.leave(sid)
    fan.urgent(broadcast, event, data)     # at once, every member on every node, order kept
    fan.chat(broadcast, message)           # next tick; viewers sampled past the overload rate
    fan.hearts(broadcast, n=1)             # summed per tick
    fan.level(broadcast, key, value)       # latest value per tick ("stock:<sale>", "poll:<poll>")
    fan.to_user(broadcast, user, event, data)  # every socket of that user, any node
    fan.viewer_count(broadcast) -> int     # summed across nodes
    fan.set_chat_sampler(sampler)          # chat.overload.ChatSampler (the chat part's policy)

Per tick each broadcast's members get one Socket.IO event `tick`:
    {"ts": <server ms>, "chat": [...], "hearts": <int>, "levels": {key: value}, "viewers": <int>}
(empty parts left out; see docs/protocol.md "Fan-out frames")."""
from live.fanout.conn import Bounds, Conn
from live.fanout.engine import Fanout
from live.fanout.server import FanoutServer

__all__ = ["Bounds", "Conn", "Fanout", "FanoutServer"]
