"""What other viewers see of a person's display name (an auction's leader, a quiz's winners, a
giveaway's winner): the first letter and the last, never the whole name."""
from __future__ import annotations


def mask(name: str) -> str:
    """"Jiwoo" -> "J***o"; an empty name -> "?***"."""
    name = (name or "").strip() or "?"
    return name[0] + "***" + (name[-1] if len(name) > 2 else "")
