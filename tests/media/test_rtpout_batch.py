"""The batched fan-out send (UDP GSO) on real sockets and real SRTP: what arrives is exactly the
packets the per-packet loop sends, and a NACK is answered with the same packet."""
from __future__ import annotations

import os
import socket
import struct
from types import SimpleNamespace as NS

import pytest
from pylibsrtp import Policy, Session
from pylibsrtp._binding import ffi

from live.media import rtpout
from live.media.frames import EncodedFrame, gso_runs
from live.media.rtpout import RtpOutput

KEY = os.urandom(30)
EXT = b"\xbe\xde\x00\x01\x10\x30\x00\x00"  # a one-byte MID extension, as _configure builds it


def test_runs_are_equal_sizes_closed_by_one_smaller_packet() -> None:
    assert gso_runs([1200, 1200, 1200, 700]) == [(0, 4)]
    assert gso_runs([30, 8, 1200, 1200, 400, 90]) == [(0, 2), (2, 5), (5, 6)]  # SPS, PPS, then FU-As
    assert gso_runs([100, 200]) == [(0, 1), (1, 2)]  # a bigger packet cannot follow in one send
    assert gso_runs([1200] * 100, max_segments=40) == [(0, 40), (40, 80), (80, 100)]
    assert gso_runs([]) == []


def _output(batch: bool, sock: socket.socket, addr: tuple[str, int], sent: list[bytes]) -> RtpOutput:
    out = object.__new__(RtpOutput)
    transport = NS(_sock=sock, _buffer=None, get_write_buffer_size=lambda: 0, sendto=lambda d, a: sock.sendto(d, a))
    pair = NS(protocol=NS(transport=transport), remote_addr=addr)
    srtp = Session(Policy(key=KEY, ssrc_type=Policy.SSRC_ANY_OUTBOUND))

    async def send_rtp(data: bytes) -> None:
        sent.append(data)

    out.kind, out.sender, out.dtls, out.ice = "video", NS(), NS(_tx_srtp=srtp, _send_rtp=send_rtp), NS(_nominated={1: pair})
    out.ssrc, out.pt, out.seq, out.ts_origin, out.ext, out.b0 = 0x1234, 96, 65533, 1000, EXT, 0x90
    out.history, out.waiting, out.want_keyframe, out.closed = [None] * rtpout.HISTORY, False, lambda: None, False
    out.packets = out.octets = out.frames = out.dropped = out.overflows = out.batches = 0
    out.len_p, out.batch = ffi.new("int *"), batch
    return out


@pytest.mark.parametrize("batch", [True, False])
async def test_every_packet_arrives_protected_in_order_with_the_marker_on_the_last(batch: bool) -> None:
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.bind(("127.0.0.1", 0))
    rx.settimeout(2)
    tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    tx.setblocking(False)
    nacked: list[bytes] = []
    out = _output(batch, tx, rx.getsockname(), nacked)
    frame = EncodedFrame("video", "H264", b"", 90000, True)
    frame._payloads = [os.urandom(20), os.urandom(8)] + [os.urandom(1100) for _ in range(5)] + [os.urandom(333)]
    out.send(frame, 0)
    inbound = Session(Policy(key=KEY, ssrc_type=Policy.SSRC_ANY_INBOUND))
    got = [inbound.unprotect(rx.recv(2048)) for _ in frame._payloads]
    for i, (packet, payload) in enumerate(zip(got, frame._payloads)):
        b0, b1, seq, ts, ssrc = struct.unpack("!BBHLL", packet[:12])
        assert (b0, b1 & 0x7F, ts, ssrc) == (0x90, 96, 91000, 0x1234)
        assert seq == (65533 + i) & 0xFFFF  # across the wrap
        assert bool(b1 & 0x80) == (i == len(got) - 1)
        assert packet[12:20] == EXT and packet[20:] == payload
    assert (out.batches > 0) == (batch and rtpout._GSO["ok"])
    assert out.seq == (65533 + len(got)) & 0xFFFF and out.packets == len(got)
    await out.retransmit((65533 + 3) & 0xFFFF)  # a NACK: the very same packet again
    assert nacked == [got[3]]
