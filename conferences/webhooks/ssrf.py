"""SSRF guard: webhook URLs may only reach public addresses (unless WEBHOOK_ALLOW_PRIVATE).

Checked when an endpoint is saved and again when the socket opens (GuardedBackend), so a name
that re-resolves to a private address (DNS rebinding) is refused at send time.
"""

import ipaddress
import socket
from urllib.parse import urlsplit

import httpcore
import httpx
from django.conf import settings


class BlockedAddress(httpcore.ConnectError):
    """The host resolves to an address webhooks may not reach."""


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
    """The addresses of `host`; BlockedAddress when any of them is not public."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError, ValueError) as exc:
        raise httpcore.ConnectError(f"cannot resolve {host}: {exc}") from None
    addresses = list(dict.fromkeys(info[4][0] for info in infos))
    if not settings.WEBHOOK_ALLOW_PRIVATE:
        blocked = [address for address in addresses if not is_public(address)]
        if blocked:
            raise BlockedAddress(f"{host} resolves to a non-public address ({blocked[0]})")
    return addresses


def check_webhook_url(url: str) -> str | None:
    """Why `url` cannot be a webhook endpoint, or None when it can."""
    if any(ord(char) < 33 or ord(char) == 127 for char in url):
        return "Enter a valid URL (no spaces or control characters)."
    try:
        httpx.URL(url)  # what the sender will parse
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except (ValueError, httpx.InvalidURL):
        return "Enter a valid URL."
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "Only http:// and https:// URLs with a host are allowed."
    if parts.username or parts.password:
        return "Credentials in the URL are not allowed."
    try:
        resolve_public(parts.hostname, port)
    except BlockedAddress as exc:
        return f"Refused: {exc}. Webhooks may only reach public addresses."
    except httpcore.ConnectError:
        pass  # a name that does not resolve yet is checked again at every send
    return None


class GuardedBackend(httpcore.SyncBackend):
    """Connects only to addresses resolve_public allows, and to the address it checked."""

    def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None):
        last_error = None
        for address in resolve_public(host, port):
            try:
                return super().connect_tcp(address, port, timeout, local_address, socket_options)
            except httpcore.ConnectError as exc:
                last_error = exc
        raise last_error or httpcore.ConnectError(f"no address for {host}")
