"""The cascade: this process as an edge of the origin that holds a publish. The first local
viewer opens one pull from the origin (shared by every local viewer), the pull follows a takeover
to another process, and it lingers a moment after the last viewer left."""
from __future__ import annotations

import asyncio
from typing import Any

from domain import Code, DomainError
from live.media import edge, metrics
from live.media.core import EDGE_WATCH_S, MediaCore, log
from live.media.edge import EdgeError, EdgePull
from live.media.stream import KeyframeRequester, Stream


class Cascade(MediaCore):
    """Edge pulls of this process."""

    async def _edge_stream(self, broadcast: str, holder: dict[str, Any]) -> Stream:
        """The local stream of `broadcast` pulled from its origin: the open pull, or a new one
        (concurrent first viewers share one). `503 USE_HLS` (reason `origin_unreachable`) if it fails."""
        pull = self.pulls.get(broadcast)
        if pull is not None and not pull.closed:
            if pull.linger is not None:
                pull.linger.cancel()
                pull.linger = None
            return pull.stream
        future = self._pulling.get(broadcast)
        if future is None:
            future = asyncio.ensure_future(self._open_pull(broadcast, holder))
            self._pulling[broadcast] = future
            future.add_done_callback(lambda _f: self._pulling.pop(broadcast, None))
        try:
            pull = await asyncio.shield(future)
        except EdgeError as exc:
            log.warning("edge pull of %s from %s failed: %s", broadcast, holder.get("node"), exc)
            raise DomainError(Code.USE_HLS, "the broadcast's origin cannot be reached; play the HLS stream",
                           hls_url=self.hls_url(broadcast), reason="origin_unreachable") from None
        return pull.stream

    async def _open_pull(self, broadcast: str, holder: dict[str, Any]) -> EdgePull:
        import aiohttp

        if self._http is None or self._http.closed:
            self._http = aiohttp.ClientSession()
        pull: EdgePull | None = None

        def send_pli() -> None:
            coro = pull.send_pli() if pull is not None else None
            if coro is not None:
                metrics.KEYFRAME_REQUESTS.inc()
                self._spawn(coro)

        stream = Stream(broadcast=broadcast, session_id=f"edge:{holder.get('session')}",
                        keyframes=KeyframeRequester(send_pli), load=self.load)
        pull = EdgePull(broadcast=broadcast, origin=holder, pc=self._pc(), stream=stream)

        def on_frame(frame: Any) -> None:
            pull.frames += 1
            pull.stream.on_frame(frame)

        def on_end(kind: str) -> None:
            if kind == "video" or pull.stream.info.video_codec is None:
                self._spawn(self._end_pull(pull, f"origin {kind} ended"))

        @pull.pc.on("connectionstatechange")
        async def _on_state() -> None:
            if pull.pc.connectionState in ("failed", "closed") and not pull.closed:
                await self._end_pull(pull, f"connection {pull.pc.connectionState}")

        try:
            await edge.negotiate(pull, self._http, self.secret, self.claims.node_id, on_frame, on_end)
        except BaseException:
            pull.closed = True
            stream.end()
            await pull.pc.close()
            raise
        if self.closing or self.publishers.get(broadcast) is not None:
            await edge.release(pull, self._http, self.secret, self.claims.node_id)
            raise EdgeError("the publish moved here or this process is shutting down")
        self.pulls[broadcast] = pull
        metrics.EDGE_PULLS.inc()
        self._spawn(self._watch_origin(pull))
        log.info("edge: pulling %s from %s (%s)", broadcast, holder.get("node"), holder.get("url"))
        return pull

    async def _watch_origin(self, pull: EdgePull) -> None:
        """The origin dies without a goodbye: its Redis claim expires (or names another process
        after a takeover there). Either way this pull is over; `_end_pull` decides what follows."""
        while not pull.closed:
            await asyncio.sleep(EDGE_WATCH_S)
            if pull.closed:
                return
            holder = await self.claims.holder(pull.broadcast)
            if holder is None or holder.get("node") != pull.node:
                if holder is None and self.publishers.get(pull.broadcast) is not None:
                    return  # the publish is ours now (_start moved the viewers)
                await self._end_pull(pull, "the origin gave up the publish")
                return

    async def _end_pull(self, pull: EdgePull, why: str, follow: bool = True) -> None:
        """The pull ended. If another process holds the publish now (a takeover there) the local
        viewers follow it on a new pull; else they are ended cleanly, like the origin's own."""
        if pull.closed:
            return
        pull.closed = True
        if self.pulls.get(pull.broadcast) is pull:
            del self.pulls[pull.broadcast]
        metrics.EDGE_PULLS.dec()
        viewers = [v for v in self.viewers.values() if v.stream is pull.stream]
        moved = False
        if follow and viewers and not self.closing:
            holder = await self.claims.holder(pull.broadcast)
            if holder is not None and holder.get("session") != pull.origin.get("session"):
                try:
                    new = await self._edge_stream(pull.broadcast, holder)
                    moved = self._move_viewers(pull.stream, new) > 0 or not viewers
                except DomainError:
                    moved = False
        log.info("edge: pull of %s from %s ended (%s); %d viewers %s", pull.broadcast, pull.node, why,
                 len(viewers), "follow the new origin" if moved else "ended")
        if not moved:
            await asyncio.gather(*(self.end_play(pull.broadcast, v.id) for v in viewers), return_exceptions=True)
        await edge.release(pull, self._http, self.secret, self.claims.node_id)

    def _linger_if_unwatched(self, broadcast: str) -> None:
        """The last local viewer of a pulled broadcast left: drop the pull after the linger."""
        pull = self.pulls.get(broadcast)
        if pull is None or pull.closed or pull.linger is not None:
            return
        if any(v.stream is pull.stream for v in self.viewers.values()):
            return

        def drop() -> None:
            pull.linger = None
            if pull.closed or any(v.stream is pull.stream for v in self.viewers.values()):
                return
            self._spawn(self._end_pull(pull, "no viewers left", follow=False))

        pull.linger = asyncio.get_running_loop().call_later(self.edge_linger_s, drop)
