"""Link policy: block links, allow only listed domains, or allow all.

Detection runs on NFKC-folded text, so full-width ｅｘａｍｐｌｅ．ｃｏｍ and "example。com" count as
links. Something with a scheme or `www.` is a link whatever its ending; a bare `name.tld` is a link
when the tld is a common one (so "hi.there" or "3.5" are not)."""
from __future__ import annotations

import re
from collections.abc import Iterable

from chat.fold import nfkc_lower

MODES = ("block", "allow", "open")

_COMMON_TLDS = (
    "com net org io co ly me gg tv kr jp cn us uk de fr ru info biz xyz app dev link shop store site online "
    "top club live click ai to be cc in tk ml ga cf gq pw ws su vip fun icu buzz page art bit so sh"
).split()
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_SCHEMED = re.compile(rf"(?:[a-z][a-z0-9+.-]{{1,15}}://|www\.)((?:{_LABEL}\.)*{_LABEL})", re.I)
_BARE = re.compile(rf"(?<![\w@.-])((?:{_LABEL}\.)+(?:{'|'.join(_COMMON_TLDS)}|xn--[a-z0-9-]+))(?!\.?[\w-])", re.I)
# "example . com" / "example dot com": only before the few endings spammers spell out.
_SPACED_DOT = re.compile(r"\s*(?:\.|\(dot\)|\[dot\]|\s+dot\s+)\s*(?=(?:com|net|org|kr|io|ly|co|shop)\b)")


def find_domains(text: str) -> list[str]:
    """Every domain a text links to (lower-case, without `www.`)."""
    folded = nfkc_lower(text)
    if "." not in folded and ":" not in folded and "dot" not in folded:
        return []
    folded = _SPACED_DOT.sub(".", folded)
    found: list[str] = []
    for m in _SCHEMED.finditer(folded):
        found.append(m.group(1))
    for m in _BARE.finditer(folded):
        found.append(m.group(1))
    return [d[4:] if d.startswith("www.") else d for d in found]


class LinkPolicy:
    """`offending(text)` returns the first domain the policy refuses, or None."""

    def __init__(self, mode: str = "block", allowed_domains: Iterable[str] = ()) -> None:
        if mode not in MODES:
            raise ValueError(f"link mode must be one of {', '.join(MODES)}")
        self.mode = mode
        self.allowed = tuple(d.strip().lower().lstrip(".") for d in allowed_domains if d.strip())

    def _ok(self, domain: str) -> bool:
        return any(domain == a or domain.endswith("." + a) for a in self.allowed)

    def offending(self, text: str) -> str | None:
        if self.mode == "open":
            return None
        for domain in find_domains(text):
            if self.mode == "block" or not self._ok(domain):
                return domain
        return None
