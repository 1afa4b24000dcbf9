"""Small helpers the load runs share: a JSON call to the server's REST API (what a merchant's
backend does, over the network) and a percentile of measured values."""
from __future__ import annotations

import json
import urllib.request
from typing import Any


def http_json(method: str, url: str, token: str, body: Any = None) -> Any:
    """`method url` with a bearer token and a JSON body; the decoded JSON answer (None if empty)."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers={
        "Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.loads(resp.read() or b"null")


def pct(values: list[float], q: float) -> float:
    """The q-quantile (0..1) of `values` by rank; 0.0 when there are none."""
    if not values:
        return 0.0
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))]
