"""A viewer worker process of the media benchmark (loadtest/media_bench.py): it opens WHEP viewers
in batches when asked, counts each one's video frames cheaply, and reports over its pipe."""
from __future__ import annotations

import asyncio
import os
import signal
import time
from typing import Any

SECRET = "media-bench-secret-0123456789abcdef"


def mint_token(role: str, broadcast: str, sub: str) -> str:
    from loadtest.lightclient import mint

    return mint(SECRET, sub=sub, role=role, broadcast=broadcast)


def light_receive(connection: Any, counter: list[int]) -> None:
    """Count this viewer's video frames straight from the ICE connection (a bench worker only):
    SRTP packets are looked at in their clear RTP header (marker bit on the video payload type)
    and dropped, so the viewer costs no decryption, queueing or decoding. DTLS, RTCP and STUN
    still go through aiortc/aioice as usual."""
    passthrough = connection.data_received

    def data_received(data: bytes, component: int) -> None:
        if len(data) > 12 and 127 < data[0] < 192 and not 192 <= data[1] <= 223:
            counter[2] += 1
            if (data[1] & 0x7F) == counter[0] and data[1] & 0x80:
                counter[1] += 1
            return
        passthrough(data, component)

    connection.data_received = data_received


async def worker_main(conn: Any, base_url: str, broadcast: str, batch: int) -> None:
    import aiohttp
    from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription

    viewers: list[dict[str, Any]] = []
    loop = asyncio.get_running_loop()
    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True))  # spread over workers

    async def one(idx: int) -> None:
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        pc.addTransceiver("video", direction="recvonly")
        pc.addTransceiver("audio", direction="recvonly")
        await pc.setLocalDescription(await pc.createOffer())
        token = mint_token("viewer", broadcast, f"bench-{os.getpid()}-{idx}")
        try:
            async with session.post(f"{base_url}/whep/{broadcast}", data=pc.localDescription.sdp.encode(),
                                    headers={"Content-Type": "application/sdp",
                                             "Authorization": f"Bearer {token}"}) as resp:
                body = await resp.text()
                role = resp.headers.get("X-Hawker-Media-Role", "origin")
                if resp.status != 201:
                    await pc.close()
                    viewers.append({"ok": False, "status": resp.status, "body": body[:200],
                                    "hls": '"USE_HLS"' in body})
                    return
        except aiohttp.ClientError as exc:
            await pc.close()
            viewers.append({"ok": False, "status": 0, "body": repr(exc)})
            return
        video_pt = next(int(line.split()[3]) for line in body.splitlines() if line.startswith("m=video"))
        counter = [video_pt, 0, 0]
        await pc.setRemoteDescription(RTCSessionDescription(sdp=body, type="answer"))
        # after setRemoteDescription the bundled transport is final: count on its ICE connection
        light_receive(pc.getTransceivers()[0].receiver.transport.transport._connection, counter)
        viewers.append({"ok": True, "pc": pc, "counter": counter, "role": role})

    while True:
        cmd = await loop.run_in_executor(None, conn.recv)
        if cmd[0] == "add":
            n = cmd[1]
            start = len(viewers)
            for i in range(0, n, batch):
                await asyncio.gather(*(one(start + j) for j in range(i, min(n, i + batch))))
            conn.send({"added": n, "failed": [v["status"] for v in viewers[start:] if not v["ok"]],
                       "hls": sum(1 for v in viewers[start:] if not v["ok"] and v.get("hls"))})
        elif cmd[0] == "stats":
            conn.send({
                "frames": [v["counter"][1] for v in viewers if v["ok"]],
                "roles": [v["role"] for v in viewers if v["ok"]],
                "connected": sum(1 for v in viewers if v["ok"] and v["pc"].connectionState == "connected"),
                "time": time.monotonic(),
            })
        elif cmd[0] == "stop":
            await asyncio.gather(*(v["pc"].close() for v in viewers if v["ok"]), return_exceptions=True)
            await session.close()
            conn.send("stopped")
            return


def worker(conn: Any, base_url: str, broadcast: str, batch: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    asyncio.run(worker_main(conn, base_url, broadcast, batch))
