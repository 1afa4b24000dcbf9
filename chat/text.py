"""Cleaning what a viewer typed: NFC, no control characters, bounded length.

The cleaned text is stored and delivered verbatim. It is *not* HTML-escaped here: escaping is the
renderer's job (the player sets `textContent`), so a payload such as `<script>` stays inert text and
is never escaped twice."""
from __future__ import annotations

import re
import unicodedata

from chat.errors import EMPTY, TOO_LONG, VALIDATION, ChatRefused

# Whitespace controls become a space; every other C0/C1 control, bidi override/isolate, BOM and
# line/paragraph separator is dropped (bidi controls can reorder the rest of a page's text).
_DROP = [c for c in range(0x20)] + [0x7F] + list(range(0x80, 0xA0))
_DROP += list(range(0x202A, 0x202F)) + list(range(0x2066, 0x206A)) + [0x200E, 0x200F, 0x061C]
_DROP += [0xFEFF, 0x2028, 0x2029, 0xFFF9, 0xFFFA, 0xFFFB]
_TABLE: dict[int, str | None] = {c: None for c in _DROP}
for _ws in (0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x85):
    _TABLE[_ws] = " "

_SPACES = re.compile(r"\s{2,}")
# "Zalgo" text: more than 3 combining marks in a row are cut to 3.
_MARKS = re.compile(r"([\u0300-\u036f\u0483-\u0489\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f]{3})"
                    r"[\u0300-\u036f\u0483-\u0489\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f]+")


def clean(text: object, max_len: int = 300) -> str:
    """NFC-normalize, drop control characters, squeeze runs of spaces, strip.

    Raises EMPTY when nothing is left and TOO_LONG above `max_len` code points (the text is refused,
    not truncated: a cut message can change meaning)."""
    if not isinstance(text, str):
        raise ChatRefused(VALIDATION, "text must be a string")
    if len(text) > max_len * 8:  # a cheap bound before any work on a huge payload
        raise ChatRefused(TOO_LONG, f"at most {max_len} characters", max_len=max_len)
    # Controls go first, then NFC: "e\x00\u0301" must become "é", not a decomposed "e\u0301".
    out = unicodedata.normalize("NFC", _SPACES.sub(" ", text.translate(_TABLE))).strip()
    if not out.isascii():
        out = _MARKS.sub(r"\1", out)
    if not out:
        raise ChatRefused(EMPTY, "the message is empty")
    if len(out) > max_len:
        raise ChatRefused(TOO_LONG, f"at most {max_len} characters", max_len=max_len)
    return out
