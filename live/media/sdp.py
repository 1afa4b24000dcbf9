"""Checking an SDP offer before aiortc sees it, so bad input gets a clear 4xx and changes nothing."""
from __future__ import annotations

from aiortc.sdp import SessionDescription

from domain import Code, DomainError

MAX_SDP_BYTES = 64 * 1024
SEND_DIRECTIONS = ("sendonly", "sendrecv")
RECV_DIRECTIONS = ("recvonly", "sendrecv")


def check_offer(text: str, *, publishing: bool) -> SessionDescription:
    """Parse an offer; raise 400 INVALID_SDP when it is not one we can answer.

    A publisher's media must be sendonly/sendrecv, a viewer's recvonly/sendrecv."""
    if len(text) > MAX_SDP_BYTES:
        raise DomainError(Code.PAYLOAD_TOO_LARGE, f"SDP larger than {MAX_SDP_BYTES} bytes")
    if not text.lstrip().startswith("v=0"):
        raise DomainError(Code.INVALID_SDP, "the body is not an SDP offer (must start with v=0)")
    try:
        desc = SessionDescription.parse(text)
    except Exception as exc:  # noqa: BLE001 - aiortc's parser raises many kinds
        raise DomainError(Code.INVALID_SDP, f"the SDP offer cannot be parsed: {exc}") from None
    media = [m for m in desc.media if m.kind in ("audio", "video")]
    if not media:
        raise DomainError(Code.INVALID_SDP, "the SDP offer has no audio or video section")
    wanted = SEND_DIRECTIONS if publishing else RECV_DIRECTIONS
    for m in media:
        if m.ice is None or not m.ice.usernameFragment or not m.ice.password:
            raise DomainError(Code.INVALID_SDP, f"the {m.kind} section has no ICE credentials")
        if m.dtls is None or not m.dtls.fingerprints:
            raise DomainError(Code.INVALID_SDP, f"the {m.kind} section has no DTLS fingerprint")
        if m.direction is not None and m.direction not in wanted and m.direction != "inactive":
            role = "a publisher must send" if publishing else "a viewer must receive"
            raise DomainError(Code.INVALID_SDP, f"{role} ({m.kind} is {m.direction})")
    return desc
