"""Blocked words, robust to case, spacing, repeated letters and full-width forms.

Each word of a message is folded (`chat.fold.words`: NFKC, case-fold, letters only, spaced-out single
letters joined) and compared with the list after squeezing repeated letters on both sides:
  * a short entry (under 4 letters; under 2 for Hangul/CJK) matches a whole word only, and the word
    must have at least as many letters as the entry, so "ass" blocks "ASS" and "aaasss" but not "as";
  * a longer entry also matches inside a word ("fuckyou", "시발놈아").
`allowed` lists exceptions that contain a long entry (e.g. "scunthorpe"); they are masked out first.
Not handled: leetspeak letters (@ for a, $ for s) and words split by spaces into several multi-letter
pieces ("fu ck")."""
from __future__ import annotations

import re
from collections.abc import Iterable
from importlib import resources

from chat.fold import collapse, letters, words


def _long(folded: str) -> bool:
    wide = any(ord(c) >= 0x1100 for c in folded)
    return len(folded) >= (2 if wide else 4)


def load_list(name: str) -> tuple[str, ...]:
    """A bundled list: `en` or `ko` (chat/wordlists/<name>.txt, one entry a line, # comments)."""
    text = resources.files("chat.wordlists").joinpath(f"{name}.txt").read_text(encoding="utf-8")
    return tuple(line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#"))


def default_words() -> tuple[str, ...]:
    return load_list("en") + load_list("ko")


class WordFilter:
    """`find(text)` returns the list entry the text contains, or None."""

    def __init__(self, blocked: Iterable[str], allowed: Iterable[str] = ()) -> None:
        self._whole: dict[str, tuple[str, int]] = {}  # collapsed -> (entry, letters in entry)
        inner: dict[str, str] = {}
        for entry in blocked:
            raw = letters(entry)
            if not raw:
                continue
            folded = collapse(raw)
            self._whole.setdefault(folded, (entry, len(raw)))
            if _long(folded):
                inner.setdefault(folded, entry)
        self._inner = inner
        self._inner_re = re.compile("|".join(re.escape(w) for w in sorted(inner, key=len, reverse=True))) if inner else None
        ok = sorted({collapse(letters(w)) for w in allowed if letters(w)}, key=len, reverse=True)
        self._allowed_re = re.compile("|".join(re.escape(w) for w in ok)) if ok else None

    def __bool__(self) -> bool:
        return bool(self._whole)

    def find(self, text: str) -> str | None:
        if not self._whole:
            return None
        for word in words(text):
            folded = collapse(word)
            hit = self._whole.get(folded)
            if hit is not None and len(word) >= hit[1]:
                return hit[0]
            if self._inner_re is None:
                continue
            if self._allowed_re is not None:
                folded = self._allowed_re.sub("\x00", folded)
            m = self._inner_re.search(folded)
            if m:
                return self._inner[m.group(0)]
        return None
