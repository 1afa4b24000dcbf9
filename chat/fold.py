"""Folding text for matching (never for storage): defeats the cheap evasions of a word filter.

A message is split on white space into words; each word is NFKC-normalized (full-width ｆｕｃｋ ->
fuck), case-folded, and stripped of everything that is not a letter ("f.u.c.k", "f1uck" -> fuck).
Runs of single letters are joined ("f u c k" -> fuck, "시 발" -> 시발). `collapse` squeezes repeated
letters (fuuuuck -> fuck) for comparison."""
from __future__ import annotations

import re
import unicodedata

_REPEATS = re.compile(r"(.)\1+", re.DOTALL)
_NOT_LETTER = re.compile(r"[\W\d_]+")
# Look-alike dots that NFKC leaves alone (ideographic full stop and friends).
_DOTS = str.maketrans({"\u3002": ".", "\uff61": ".", "\u2024": ".", "\u00b7": "."})


def nfkc_lower(text: str) -> str:
    return unicodedata.normalize("NFKC", text).translate(_DOTS).casefold()


def collapse(text: str) -> str:
    """Repeated characters squeezed to one: "fuuuck" -> "fuck", "ㅋㅋㅋ" -> "ㅋ"."""
    return _REPEATS.sub(r"\1", text)


def letters(word: str) -> str:
    """One word as lower-case letters only (no collapse)."""
    return _NOT_LETTER.sub("", nfkc_lower(word))


def words(text: str) -> list[str]:
    """The letter-only words of a text; consecutive single letters are joined into one word."""
    out: list[str] = []
    run: list[str] = []
    for raw in nfkc_lower(text).split():
        w = _NOT_LETTER.sub("", raw)
        if not w:
            continue
        if len(w) == 1:
            run.append(w)
            continue
        if run:
            out.append("".join(run))
            run = []
        out.append(w)
    if run:
        out.append("".join(run))
    return out
