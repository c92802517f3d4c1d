"""SSRF guard: webhook URLs may only reach public addresses (unless WEBHOOK_ALLOW_PRIVATE).

Checked when an endpoint is saved and again at every connection the sender opens (its
resolver is `resolve_public`), so a name that re-resolves to a private address (DNS
rebinding) is refused at send time, and the sender connects only to the addresses checked.
"""

import ipaddress
import socket
from django.conf import settings
from yarl import URL

# A name with more addresses than this has only its first ones tried: an attempt's deadline is
# shared by all of them.
MAX_ADDRESSES = 4


class BlockedAddress(OSError):
    """The host resolves to an address webhooks may not reach."""


class UnresolvableHost(OSError):
    """The host name does not resolve."""


# IPv6 forms that carry an IPv4 address in their last 32 bits (NAT64, IPv4-compatible, SIIT).
_IPV4_CARRIERS = [ipaddress.ip_network(n) for n in ("64:ff9b::/96", "64:ff9b:1::/48", "::/96", "::ffff:0:0:0/96")]
_ALWAYS_REFUSED = [ipaddress.ip_network(n) for n in ("fec0::/10",)]  # site-local, deprecated


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if ip.ipv4_mapped:
        return ip.ipv4_mapped
    if ip.sixtofour:
        return ip.sixtofour
    if ip.teredo:
        return ip.teredo[1]
    if any(ip in network for network in _IPV4_CARRIERS):
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def is_public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address):
        if any(ip in network for network in _ALWAYS_REFUSED):
            return False
        embedded = _embedded_ipv4(ip)
        if embedded is not None and not is_public(str(embedded)):
            return False
    # is_global excludes loopback, private, link-local, shared (CGNAT), reserved and unspecified.
    return ip.is_global and not ip.is_multicast


def resolve_public(host: str, port: int) -> list[str]:
    """The first MAX_ADDRESSES addresses of `host`; BlockedAddress when any is not public."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError, ValueError) as exc:
        raise UnresolvableHost(f"cannot resolve {host}: {exc}") from None
    addresses = list(dict.fromkeys(info[4][0] for info in infos))[:MAX_ADDRESSES]
    check_addresses(host, addresses)
    return addresses


def check_addresses(host: str, addresses: list[str]) -> None:
    """BlockedAddress when one of `addresses` (of `host`) is not public."""
    if not settings.WEBHOOK_ALLOW_PRIVATE:
        blocked = [address for address in addresses if not is_public(address)]
        if blocked:
            raise BlockedAddress(f"{host} resolves to a non-public address ({blocked[0]})")


def check_webhook_url(url: str) -> str | None:
    """Why `url` cannot be a webhook endpoint, or None when it can."""
    if any(ord(char) < 33 or ord(char) == 127 for char in url):
        return "Enter a valid URL (no spaces or control characters)."
    try:
        parsed = URL(url)  # as the sender will see it: Unicode host forms normalised
        host, port = parsed.host, parsed.port
    except (ValueError, TypeError):
        return "Enter a valid URL."
    if parsed.scheme not in ("http", "https") or not host:
        return "Only http:// and https:// URLs with a host are allowed."
    if parsed.user or parsed.password:
        return "Credentials in the URL are not allowed."
    try:
        resolve_public(host, port)
    except BlockedAddress as exc:
        return f"Refused: {exc}. Webhooks may only reach public addresses."
    except UnresolvableHost:
        pass  # a name that does not resolve yet is checked again at every send
    return None
