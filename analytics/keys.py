"""Redis keys of one broadcast's analytics. They share the hash tag `{an:<broadcast>}` so every
script touches one slot (Redis Cluster), and all expire `ttl_s` after the last write.

  an:{an:<bc>}:m          hash  "<minute>:<metric>" -> count (metrics: joins, leaves, watch_ms, vsec,
                                chat, hearts, votes, reserves, reserved_units, waitlist, granted,
                                expired, expired_units, released, paid_holds, sold_units, orders,
                                units, rev:<CUR>, refunds, refund:<CUR>)
  an:{an:<bc>}:vs         hash  epoch second -> viewers (summed over nodes)
  an:{an:<bc>}:u          HLL   unique viewers of the show; `:u:<minute>` of one minute
  an:{an:<bc>}:r / :b     HLL   users who reserved / bought
  an:{an:<bc>}:s:<sale>   hash  per-sale counters and `cursor` (last stock event applied)
  an:{an:<bc>}:sb:<sale>  HLL   buyers of one sale
  an:{an:<bc>}:sales      set   sales with figures
  an:{an:<bc>}:seen       set   order events already counted (`<order>:<kind>`)"""
from __future__ import annotations


def base(broadcast: str) -> str:
    return f"an:{{an:{broadcast}}}:"


def minutes(bc: str) -> str:
    return base(bc) + "m"


def seconds(bc: str) -> str:
    return base(bc) + "vs"


def uniques(bc: str, minute: int | None = None) -> str:
    return base(bc) + ("u" if minute is None else f"u:{minute}")


def reservers(bc: str) -> str:
    return base(bc) + "r"


def buyers(bc: str) -> str:
    return base(bc) + "b"


def sale(bc: str, sale_id: str) -> str:
    return base(bc) + f"s:{sale_id}"


def sale_buyers(bc: str, sale_id: str) -> str:
    return base(bc) + f"sb:{sale_id}"


def sales(bc: str) -> str:
    return base(bc) + "sales"


def seen(bc: str) -> str:
    return base(bc) + "seen"
