"""HLS for the mass audience: one encode (or a remux when the host sends H264) per live stream.

Each publish becomes a *run*: `<media_dir>/hls/<broadcast>/<run>/` holding ~2 s MPEG-TS segments and
`index.m3u8`, written by FFmpeg's HLS muxer through PyAV in a worker thread (the event loop only
drops frames into a bounded queue). The playlist is an EVENT playlist while live; when the publish
ends it gets `#EXT-X-ENDLIST` and becomes a VOD playlist: the replay. `<broadcast>/current` names
the newest run; segment URIs in the playlist are `<run>/seg_NNNNN.ts`, relative to
`/hls/<broadcast>/index.m3u8`.

VP8 from the host is decoded once and encoded to H264 once (libx264) with a keyframe forced every
segment; H264 is remuxed untouched and we ask the host for a keyframe every segment instead.
Opus audio is decoded once and encoded to AAC (players do not take Opus in TS)."""
from __future__ import annotations

import asyncio
import fractions
import logging
import os
import queue
import re
import secrets
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av

from domain.validate import ID_RE
from live.media.frames import AUDIO_CLOCK, VIDEO_CLOCK, EncodedFrame, KeyframeWait
from live.media.stream import Stream

log = logging.getLogger("hawker.media.hls")

VIDEO_TB = fractions.Fraction(1, VIDEO_CLOCK)
AUDIO_TB = fractions.Fraction(1, AUDIO_CLOCK)
QUEUE_FRAMES = 600  # ~10 s of video + audio; past it we drop to the next keyframe
# What a request may name (anything else is refused before the disk is touched): run folders are
# `attach()`'s `YYYYMMDDTHHMMSS-<6 hex>`, files are one plain name with a media suffix.
RUN_RE = re.compile(r"^[0-9]{8}T[0-9]{6}-[0-9a-f]{6}$")
FILE_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}\.(ts|m4s|mp4|m3u8)$")
BROADCAST_RE = ID_RE  # the one id rule


class HlsService:
    """Attaches one HlsRun per live stream and knows where each broadcast's playlist is."""

    def __init__(self, root: Path, segment_s: float = 2.0, video_bitrate: int = 1_000_000) -> None:
        self.root = root
        self.segment_s = segment_s
        self.video_bitrate = video_bitrate
        self.runs: dict[Stream, HlsRun] = {}

    def broadcast_dir(self, broadcast: str) -> Path:
        return self.root / broadcast

    def current_run(self, broadcast: str) -> Path | None:
        if not BROADCAST_RE.match(broadcast):
            return None
        try:
            run = (self.broadcast_dir(broadcast) / "current").read_text().strip()
        except OSError:
            return None
        return self.broadcast_dir(broadcast) / run if RUN_RE.match(run) else None

    def file_path(self, broadcast: str, run: str, name: str) -> Path | None:
        """The file `<root>/<broadcast>/<run>/<name>` if every part is a plain, well-formed name and
        the resolved path (symlinks followed) is still inside the broadcast's folder; else None.
        Callers answer None with the same 404 whether or not anything exists at the named place."""
        if not (BROADCAST_RE.match(broadcast) and RUN_RE.match(run) and FILE_RE.match(name)):
            return None
        base = self.broadcast_dir(broadcast)
        try:
            resolved = (base / run / name).resolve(strict=True)
            inside = resolved.is_relative_to(base.resolve(strict=True) / run)
        except (OSError, RuntimeError, ValueError):
            return None
        return resolved if inside and resolved.is_file() else None

    def playlist_path(self, broadcast: str) -> Path | None:
        run = self.current_run(broadcast)
        if run is None:
            return None
        path = run / "index.m3u8"
        return path if path.exists() else None

    def has_playlist(self, broadcast: str) -> bool:
        return self.playlist_path(broadcast) is not None

    def attach(self, stream: Stream) -> HlsRun:
        run_id = time.strftime("%Y%m%dT%H%M%S", time.gmtime()) + "-" + secrets.token_hex(3)
        directory = self.broadcast_dir(stream.broadcast) / run_id
        directory.mkdir(parents=True, exist_ok=True)
        _atomic_write(self.broadcast_dir(stream.broadcast) / "current", run_id)
        run = HlsRun(stream, directory, run_id, self.segment_s, self.video_bitrate, asyncio.get_running_loop())
        self.runs[stream] = run
        stream.listeners.append(run.feed)
        run.start()
        return run

    def detach(self, stream: Stream) -> None:
        run = self.runs.get(stream)
        if run is not None:
            if run.feed in stream.listeners:
                stream.listeners.remove(run.feed)
            run.finish()

    async def wait_finished(self, stream: Stream, timeout: float = 15.0) -> None:
        run = self.runs.pop(stream, None)
        if run is not None:
            await asyncio.to_thread(run.thread.join, timeout)


@dataclass(eq=False)
class HlsRun(KeyframeWait):
    """One publish's HLS output, produced by a worker thread."""

    stream: Stream
    dir: Path
    run_id: str
    segment_s: float
    bitrate: int
    loop: asyncio.AbstractEventLoop
    frames_written: int = 0
    dropped: int = 0
    error: str | None = None

    def __post_init__(self) -> None:
        self.queue: queue.Queue[EncodedFrame | None] = queue.Queue(maxsize=QUEUE_FRAMES)
        self.thread = threading.Thread(target=self._run, name=f"hls-{self.stream.broadcast}", daemon=True)
        self.waiting = False  # after a full queue: the video resumes at a keyframe

    def start(self) -> None:
        self.thread.start()

    # ---- event-loop side ---------------------------------------------------------------------

    def feed(self, frame: EncodedFrame) -> None:
        if frame.kind == "video" and self.waiting and not self._resumes_at(frame):
            return
        try:
            self.queue.put_nowait(frame)
        except queue.Full:
            self.dropped += 1
            if frame.kind == "video":
                self.waiting = True
                self.stream.keyframes.request()

    def finish(self) -> None:
        while True:
            try:
                self.queue.put(None, timeout=1.0)
                return
            except queue.Full:
                try:
                    self.queue.get_nowait()
                except queue.Empty:
                    pass

    def _ask_keyframe(self) -> None:
        self.loop.call_soon_threadsafe(self.stream.keyframes.request)

    # ---- worker thread -----------------------------------------------------------------------

    def _run(self) -> None:
        writer = _Writer(self)
        try:
            while True:
                frame = self.queue.get()
                if frame is None:
                    break
                writer.write(frame)
        except Exception as exc:  # noqa: BLE001 - HLS failing must not take the live stream down
            self.error = repr(exc)
            log.exception("HLS writer for %s failed", self.stream.broadcast)
        finally:
            writer.close()


class _Writer:
    """PyAV state of one run: decoders, encoders and the HLS muxer (used by one thread only)."""

    def __init__(self, run: HlsRun) -> None:
        self.run = run
        self.out: Any = None
        self.vstream: Any = None
        self.astream: Any = None
        self.remux = False
        self.vdecoder: Any = None
        self.adecoder: Any = None
        self.t0: float | None = None
        self.base: dict[str, int] = {}
        self.last_pts: dict[str, int] = {}
        self.last_key_pts: int | None = None
        self.size: tuple[int, int] | None = None
        self.video_codec: str | None = None

    def _pts(self, frame: EncodedFrame, clock: int) -> int:
        assert self.t0 is not None
        if frame.kind not in self.base:
            self.base[frame.kind] = round((frame.arrival - self.t0) * clock) - frame.timestamp
        return frame.timestamp + self.base[frame.kind]

    def write(self, frame: EncodedFrame) -> None:
        if frame.kind == "video":
            self._video(frame)
        elif self.out is not None and frame.codec == "opus":
            self._audio(frame)

    def _open(self, frame: EncodedFrame) -> bool:
        """Open the muxer at the first video keyframe (its size decides the encoder's)."""
        self.video_codec = frame.codec
        self.remux = frame.codec == "H264"
        self.vdecoder = av.CodecContext.create("h264" if self.remux else "vp8", "r")
        packet = av.Packet(frame.data)
        packet.pts = frame.timestamp
        packet.time_base = VIDEO_TB
        decoded = self.vdecoder.decode(packet)
        if not decoded:
            return False
        width, height = decoded[0].width, decoded[0].height
        self.size = (width - width % 2, height - height % 2)
        self.t0 = frame.arrival
        opts = {
            "hls_time": str(self.run.segment_s),
            "hls_list_size": "0",
            "hls_playlist_type": "event",
            "hls_segment_type": "mpegts",
            "hls_flags": "independent_segments+temp_file+program_date_time",
            "hls_segment_filename": str(self.run.dir / "seg_%05d.ts"),
            "hls_base_url": f"{self.run.run_id}/",
        }
        self.out = av.open(str(self.run.dir / "index.m3u8"), mode="w", format="hls", options=opts)
        if self.remux:
            self.vstream = self.out.add_stream("h264", rate=30)
        else:
            self.vstream = self.out.add_stream("libx264", rate=30)
            self.vstream.bit_rate = self.run.bitrate
            self.vstream.pix_fmt = "yuv420p"
            self.vstream.options = {"preset": "superfast", "tune": "zerolatency"}
            self.vstream.codec_context.time_base = VIDEO_TB
        self.vstream.width, self.vstream.height = self.size
        self.vstream.time_base = VIDEO_TB
        if self.run.stream.info.audio_codec is not None:
            self.adecoder = av.CodecContext.create("opus", "r")
            self.astream = self.out.add_stream("aac", rate=AUDIO_CLOCK)
            self.astream.layout = "stereo"
            self.astream.bit_rate = 96_000
            self.astream.time_base = AUDIO_TB
        log.info("HLS %s run %s: %s %dx%d (%s)", self.run.stream.broadcast, self.run.run_id, frame.codec,
                 *self.size, "remux" if self.remux else "encode")
        if not self.remux:
            for vf in decoded:
                self._encode_video(vf, self._pts(frame, VIDEO_CLOCK), force_key=True)
        else:
            self._mux_video_packet(frame, self._pts(frame, VIDEO_CLOCK))
        return True

    def _video(self, frame: EncodedFrame) -> None:
        if self.out is None:
            if frame.keyframe:
                self._open(frame)
            else:
                self.run._ask_keyframe()
            return
        pts = self._pts(frame, VIDEO_CLOCK)
        if pts <= self.last_pts.get("video", -1):
            return
        if self.remux:
            self._mux_video_packet(frame, pts)
            return
        decoded = _decode(self.vdecoder, frame.data, pts, VIDEO_TB)
        if decoded is None:
            self.run._ask_keyframe()
            return
        for vf in decoded:
            due = self.last_key_pts is None or pts - self.last_key_pts >= self.run.segment_s * VIDEO_CLOCK
            self._encode_video(vf, pts, force_key=due)

    def _encode_video(self, vf: Any, pts: int, force_key: bool) -> None:
        assert self.size is not None
        if (vf.width, vf.height) != self.size or vf.format.name != "yuv420p":
            vf = vf.reformat(width=self.size[0], height=self.size[1], format="yuv420p")
        vf.pts = pts
        vf.time_base = VIDEO_TB
        vf.pict_type = av.video.frame.PictureType.I if force_key else av.video.frame.PictureType.NONE
        if force_key:
            self.last_key_pts = pts
        self.last_pts["video"] = pts
        for packet in self.vstream.encode(vf):
            self.out.mux(packet)
            self.run.frames_written += 1

    def _mux_video_packet(self, frame: EncodedFrame, pts: int) -> None:
        packet = av.Packet(frame.data)
        packet.pts = packet.dts = pts
        packet.time_base = VIDEO_TB
        packet.stream = self.vstream
        if frame.keyframe:
            packet.is_keyframe = True
            self.last_key_pts = pts
        elif self.last_key_pts is not None and pts - self.last_key_pts >= self.run.segment_s * VIDEO_CLOCK:
            self.run._ask_keyframe()  # Chrome sends H264 keyframes only when asked: one per segment
        self.last_pts["video"] = pts
        self.out.mux(packet)
        self.run.frames_written += 1

    def _audio(self, frame: EncodedFrame) -> None:
        if self.astream is None:
            return
        pts = self._pts(frame, AUDIO_CLOCK)
        if pts < 0 or pts <= self.last_pts.get("audio", -1):
            return
        decoded = _decode(self.adecoder, frame.data, pts, AUDIO_TB)
        if decoded is None:
            return
        for af in decoded:
            af.pts = pts
            af.time_base = AUDIO_TB
            self.last_pts["audio"] = pts
            for out_packet in self.astream.encode(af):
                self.out.mux(out_packet)

    def close(self) -> None:
        if self.out is None:
            return
        try:
            if not self.remux and self.vstream is not None:
                for packet in self.vstream.encode(None):
                    self.out.mux(packet)
            if self.astream is not None:
                for packet in self.astream.encode(None):
                    self.out.mux(packet)
        except Exception:  # noqa: BLE001 - a failing encoder flush must not stop finalizing the replay
            log.exception("flushing HLS encoders failed")
        finally:
            self.out.close()
            self.out = None
        finalize_playlist(self.run.dir / "index.m3u8")


def finalize_playlist(path: Path) -> None:
    """Turn the live EVENT playlist into the replay: VOD type and an end marker."""
    try:
        text = path.read_text()
    except OSError:
        return
    text = text.replace("#EXT-X-PLAYLIST-TYPE:EVENT", "#EXT-X-PLAYLIST-TYPE:VOD")
    if "#EXT-X-ENDLIST" not in text:
        text = text.rstrip("\n") + "\n#EXT-X-ENDLIST\n"
    _atomic_write(path, text)


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def _decode(decoder: Any, data: bytes, pts: int, time_base: Any) -> list[Any] | None:
    """The frames `decoder` makes of one encoded frame at `pts`; None when it cannot decode it."""
    packet = av.Packet(data)
    packet.pts = pts
    packet.time_base = time_base
    try:
        return list(decoder.decode(packet))
    except av.FFmpegError:
        return None
