"""The media benchmark's figures (loadtest/media_bench.py): fps summaries, per-process CPU per viewer,
loop-lag p99 from histogram deltas, and the synthetic host's own sender statistics."""
from __future__ import annotations

import statistics
from typing import Any


def fps_summary(rates: list[float]) -> dict[str, Any]:
    rates = sorted(rates)
    return {"viewers": len(rates), "fps_mean": round(statistics.fmean(rates), 2) if rates else 0.0,
            "fps_p10": round(rates[len(rates) // 10], 2) if rates else 0.0}


def per_process(step: dict[str, Any], base: dict[str, Any], origin_pid: int) -> dict[str, Any]:
    """Per server process: its viewers (by the role that answered them), its CPU above its own
    baseline, CPU per viewer and fps; the edges' CPU per viewer over the origin's."""
    processes = []
    for pid, cpu in step["process_cpu_pct"].items():
        role = "origin" if pid == origin_pid else "edge"
        fps = step["fps_by_role"].get(role, {"viewers": 0, "fps_mean": 0.0, "fps_p10": 0.0})
        edges = max(1, len(step["process_cpu_pct"]) - 1)
        viewers = fps["viewers"] if role == "origin" else round(fps["viewers"] / edges)
        extra = cpu - base["process_cpu_pct"].get(pid, 0.0)
        processes.append({"pid": pid, "role": role, "viewers": viewers, "cpu_pct": cpu,
                          "cpu_pct_per_viewer": round(extra / viewers, 3) if viewers else None,
                          "fps_mean": fps["fps_mean"], "fps_p10": fps["fps_p10"]})
    origin = [p for p in processes if p["role"] == "origin"]
    edge = [p for p in processes if p["role"] == "edge"]
    o = origin[0]["cpu_pct_per_viewer"] if origin else None
    edge_extra = sum(p["cpu_pct"] - base["process_cpu_pct"].get(p["pid"], 0.0) for p in edge)
    edge_viewers = step["fps_by_role"].get("edge", {}).get("viewers", 0)
    e = round(edge_extra / edge_viewers, 3) if edge_viewers else None
    return {"processes": processes, "origin_cpu_per_viewer": o, "edge_cpu_per_viewer": e,
            "edge_over_origin_cpu_per_viewer": round(e / o, 2) if e and o else None}


def p99_ms(before: dict[float, float], after: dict[float, float]) -> float | None:
    """99th percentile of the loop lag in the window, as the upper bound of its histogram bucket."""
    delta = {le: after.get(le, 0.0) - before.get(le, 0.0) for le in after}
    total = delta.get(float("inf"), 0.0)
    if total <= 0:
        return None
    for le in sorted(delta):
        if delta[le] >= 0.99 * total:
            return None if le == float("inf") else round(le * 1000, 1)
    return None


async def ingest_lost(pub: Any) -> int:
    """Video packets the server reported lost in its receiver reports (RTCP RR) to the host."""
    for sender in pub.pc.getSenders():
        if sender.track is not None and sender.track.kind == "video":
            stats = await sender.getStats()
            return sum(getattr(s, "packetsLost", 0) or 0 for s in stats.values() if s.type == "remote-inbound-rtp")
    return 0


async def ingest_bytes(pub: Any) -> int:
    """Bytes the synthetic host has sent (its video sender's stats)."""
    total = 0
    for sender in pub.pc.getSenders():
        if sender.track is not None and sender.track.kind == "video":
            stats = await sender.getStats()
            total += sum(getattr(s, "bytesSent", 0) or 0 for s in stats.values() if s.type == "outbound-rtp")
    return total
