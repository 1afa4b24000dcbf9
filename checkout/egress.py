"""Where merchant webhooks may go: the egress policy (no import of live/, no network of its own).

A webhook URL is typed by a host and fetched by the server, so without a policy it is a way into
the server's own network (SSRF): loopback admin ports, the cloud metadata service, private
ranges. The policy is applied at registration AND at every delivery, to the addresses the name
resolves to at that moment (a name may resolve to a public address at registration and to
127.0.0.1 later: DNS rebinding); the delivery then connects to exactly the checked addresses.

- `https` only; plain `http` only for hosts listed in `http_hosts` (local development);
- every resolved address must be public: loopback, private, link-local, CGNAT, multicast,
  unspecified, reserved/documentation, cloud metadata, IPv6 ULA, and IPv4 embedded in IPv6
  (mapped, compatible, NAT64, 6to4, Teredo) are refused, unless `allow_private` (development and
  tests: `HAWKER_WEBHOOK_ALLOW_PRIVATE=1`).
"""
from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from domain import Code

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Lookup = Callable[[str, int], Awaitable[list[str]]]

REFUSED = Code.WEBHOOK_URL_REFUSED  # the code a registration of a refused endpoint answers
DESTINATION_REFUSED = Code.DESTINATION_REFUSED  # recorded on a delivery the policy stopped
DELIVERY_FAILED = Code.DELIVERY_FAILED  # recorded on any other failed delivery (no remote details)

METADATA = {ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254"),
            ipaddress.ip_address("100.100.100.200")}  # AWS/GCP/Azure, AWS IPv6, Alibaba
CGNAT = ipaddress.ip_network("100.64.0.0/10")
ULA = ipaddress.ip_network("fc00::/7")
NAT64 = ipaddress.ip_network("64:ff9b::/96")
NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")
V4_COMPATIBLE = ipaddress.ip_network("::/96")


class EgressRefused(Exception):
    """The policy refuses this URL or address. `reason` is for logs and messages, never a remote's words."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _embedded_v4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address stands for, if any (each form reaches an IPv4 host)."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]  # the client's address
    if ip in NAT64 or ip in V4_COMPATIBLE:
        if ip in V4_COMPATIBLE and int(ip) <= 1:  # :: and ::1 are themselves, not 0.0.0.0 / 0.0.0.1
            return None
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def classify(address: str | IPAddress) -> str | None:
    """Why `address` is not a public destination ("loopback", "private", ...), or None if it is."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0] if isinstance(address, str) else address)
    except ValueError:
        return "invalid"
    if isinstance(ip, ipaddress.IPv6Address):
        inner = _embedded_v4(ip)
        if inner is not None:
            why = classify(inner)
            return f"ipv4-in-ipv6 {why}" if why else None
        if ip in NAT64_LOCAL:
            return "reserved"
    if ip in METADATA:
        return "metadata"
    if ip.is_unspecified:
        return "unspecified"
    if ip.is_loopback:
        return "loopback"
    if ip.is_link_local:
        return "link-local"
    if isinstance(ip, ipaddress.IPv4Address) and ip in CGNAT:
        return "cgnat"
    if ip.is_multicast:
        return "multicast"
    if isinstance(ip, ipaddress.IPv6Address) and ip in ULA:
        return "ula"
    if isinstance(ip, ipaddress.IPv6Address) and ip.is_site_local:
        return "site-local"
    if ip.is_reserved:
        return "reserved"
    if ip.is_private:
        return "private"
    if not ip.is_global:
        return "reserved"
    return None


async def system_lookup(host: str, port: int) -> list[str]:
    """Resolve with the system resolver (getaddrinfo), every address of every family."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


@dataclass(frozen=True)
class Target:
    """A checked destination: connect to `addresses` (and nothing else) for `host`."""

    url: str
    scheme: str
    host: str
    port: int
    addresses: tuple[str, ...]


@dataclass(frozen=True)
class EgressPolicy:
    """The rules; `lookup` is the resolver (injectable: tests pass one to play DNS rebinding)."""

    allow_private: bool = False
    http_hosts: frozenset[str] = frozenset()
    lookup: Lookup = field(default=system_lookup, compare=False)

    @classmethod
    def from_settings(cls, allow_private: bool, http_hosts: str | Iterable[str] = "",
                      lookup: Lookup | None = None) -> EgressPolicy:
        hosts = http_hosts.split(",") if isinstance(http_hosts, str) else list(http_hosts)
        clean = frozenset(h.strip().strip("[]").lower() for h in hosts if h.strip())
        return cls(allow_private=allow_private, http_hosts=clean, lookup=lookup or system_lookup)

    def check_url(self, url: str) -> tuple[str, str, int]:
        """Scheme and host rules alone (no lookup): (scheme, host, port) or EgressRefused."""
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError:
            raise EgressRefused("the URL cannot be parsed") from None
        scheme, host = parts.scheme.lower(), (parts.hostname or "").lower()
        if not host:
            raise EgressRefused("the URL has no host")
        if parts.username is not None or parts.password is not None:
            raise EgressRefused("credentials in the URL are not allowed (use the signing secret)")
        if scheme == "http":
            if host not in self.http_hosts:
                raise EgressRefused("only https is allowed (plain http only for the configured development hosts)")
        elif scheme != "https":
            raise EgressRefused("only https is allowed")
        return scheme, host, port or (443 if scheme == "https" else 80)

    def check_address(self, address: str) -> None:
        why = classify(address)
        if why is not None and not (self.allow_private and why != "invalid"):
            raise EgressRefused(f"the host resolves to a non-public address ({why})")

    async def resolve(self, url: str, timeout_s: float = 10.0) -> Target:
        """Check the URL, resolve its host now (bounded: a slow resolver must not hold the
        delivery worker), check every address: the Target to connect to."""
        scheme, host, port = self.check_url(url)
        try:
            ipaddress.ip_address(host.split("%", 1)[0])
            addresses = [host]
        except ValueError:
            try:
                addresses = await asyncio.wait_for(self.lookup(host, port), timeout_s)
            except TimeoutError:
                raise EgressRefused("the host did not resolve in time") from None
            except (OSError, UnicodeError, ValueError):
                raise EgressRefused("the host does not resolve") from None
        if not addresses:
            raise EgressRefused("the host does not resolve")
        for a in addresses:  # one bad address refuses the name: no mixing public and private answers
            self.check_address(a)
        return Target(url, scheme, host, port, tuple(addresses))
