"""The HAWKER_LT_* settings a Locust process reads from its environment (listed in loadtest/locustfile.py)."""
from __future__ import annotations

import os

SECRET = os.environ.get("HAWKER_LT_SECRET", "")
BROADCAST = os.environ.get("HAWKER_LT_BROADCAST", "loadtest")
SALE = os.environ.get("HAWKER_LT_SALE") or None
OUT = os.environ.get("HAWKER_LT_OUT", "loadtest-out/samples")
ABANDON = float(os.environ.get("HAWKER_LT_ABANDON", "0.2"))
QTY = int(os.environ.get("HAWKER_LT_QTY", "1"))
CODEC = os.environ.get("HAWKER_LT_CODEC", "msgpack")
SCENARIO = os.environ.get("HAWKER_LT_SCENARIO", "flash")
WINDOW_END = int(os.environ.get("HAWKER_LT_WINDOW_END", "0") or 0)
STORM_AT = int(os.environ.get("HAWKER_LT_STORM_AT", "0") or 0)
TICK_SAMPLE = int(os.environ.get("HAWKER_LT_TICK_SAMPLE", "20"))
THROTTLE = min(0.95, max(0.0, float(os.environ.get("HAWKER_LT_THROTTLE", "0") or 0)))
BLOCKED_WORD = os.environ.get("HAWKER_LT_BLOCKED_WORD", "")
