"""SSRF guard: URLs the service or the engine fetch may only reach public addresses.

- Webhook URLs (unless WEBHOOK_ALLOW_PRIVATE): checked when an endpoint is saved and again at
  every connection the sender opens (its resolver is `resolve_public`), so a name that
  re-resolves to a private address (DNS rebinding) is refused at send time, and the sender
  connects only to the addresses checked.
- Media URLs (unless MEDIA_ALLOW_PRIVATE): checked when a play is accepted. The engine fetches
  them, so a name that changes its answer later is the engine's to refuse.
"""

import concurrent.futures
import ipaddress
import re
import socket
import time

from django.conf import settings
from yarl import URL

# A name with more addresses than this has only its first ones tried: an attempt's deadline is
# shared by all of them.
MAX_ADDRESSES = 4


class BlockedAddress(OSError):
    """The host resolves to a non-public address."""


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


def resolve_public(host: str, port: int, *, allow_private: bool | None = None) -> list[str]:
    """The first MAX_ADDRESSES addresses of `host`; BlockedAddress when any is not public."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError, ValueError) as exc:
        raise UnresolvableHost(f"cannot resolve {host}: {exc}") from None
    addresses = list(dict.fromkeys(info[4][0] for info in infos))[:MAX_ADDRESSES]
    check_addresses(host, addresses, allow_private=allow_private)
    return addresses


def check_addresses(host: str, addresses: list[str], *, allow_private: bool | None = None) -> None:
    """BlockedAddress when one of `addresses` (of `host`) is not public (`allow_private`
    defaults to WEBHOOK_ALLOW_PRIVATE)."""
    if allow_private is None:
        allow_private = settings.WEBHOOK_ALLOW_PRIVATE
    if not allow_private:
        blocked = [address for address in addresses if not is_public(address)]
        if blocked:
            raise BlockedAddress(f"{host} resolves to a non-public address ({blocked[0]})")


# The URLs this service takes, as the schema declares them too: http(s) (any case), a host
# (a name in ASCII, Unicode ones in their xn-- form, or an IPv4 or bracketed IPv6 address), a
# port up to 65535, then no spaces or control characters. No credentials and no percent-encoding
# or Unicode in the host: parsers differ on them (`%31%32%37.0.0.1` and `127。0。0。1` are
# 127.0.0.1 to some), and the host checked must be the host reached.
MAX_URL_LENGTH = 2048
_HOST = "[A-Za-z0-9_.-]+"
_PORT = "(?:6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[0-9]{1,4})"
_V4 = "(?:25[0-5]|(?:2[0-4]|1?[0-9])?[0-9])(?:\\.(?:25[0-5]|(?:2[0-4]|1?[0-9])?[0-9])){3}"
_H = "[0-9A-Fa-f]{1,4}"
_V6 = "|".join(
    [
        f"(?:{_H}:){{7}}{_H}",
        f"(?:{_H}:){{1,7}}:",
        f"(?:{_H}:){{1,6}}:{_H}",
        f"(?:{_H}:){{1,5}}(?::{_H}){{1,2}}",
        f"(?:{_H}:){{1,4}}(?::{_H}){{1,3}}",
        f"(?:{_H}:){{1,3}}(?::{_H}){{1,4}}",
        f"(?:{_H}:){{1,2}}(?::{_H}){{1,5}}",
        f"{_H}:(?::{_H}){{1,6}}",
        f":(?:(?::{_H}){{1,7}}|:)",
        f"::(?:[Ff]{{4}}(?::0{{1,4}})?:)?{_V4}",
        f"(?:{_H}:){{1,4}}:{_V4}",
    ]
)
# Explicit ranges, not \s: Python's and JSON Schema's regular expressions differ on it.
URL_PATTERN = f"[Hh][Tt][Tt][Pp][Ss]?://(?:{_HOST}|\\[(?:{_V6})\\])(?::{_PORT})?(?:[/?#][^\\x00-\\x20\\x7f-\\x9f]*)?"
_URL = re.compile(URL_PATTERN)
URL_RULE = (
    "Enter a valid http:// or https:// URL: a host name or an IP address, an optional port, "
    "no spaces, control characters, credentials or percent-encoding in the host."
)


def _parse(url: str) -> tuple[str, int] | str:
    """The URL's (host, port) as the sender sees them, or why it is not a URL this service takes."""
    if not _URL.fullmatch(url):
        return URL_RULE
    parsed = URL(url)
    return parsed.host, parsed.port


def _refusal(host: str, port: int, *, allow_private: bool) -> str | None:
    try:
        resolve_public(host, port, allow_private=allow_private)
    except BlockedAddress as exc:
        return f"Refused: {exc}."
    except UnresolvableHost:
        pass  # a name that does not resolve reaches nothing now
    return None


def check_webhook_url(url: str) -> str | None:
    """Why `url` cannot be a webhook endpoint, or None when it can."""
    parsed = _parse(url)
    if isinstance(parsed, str):
        return parsed
    refusal = _refusal(*parsed, allow_private=settings.WEBHOOK_ALLOW_PRIVATE)
    return refusal and f"{refusal} Webhooks may only reach public addresses."


# A play's host names are looked up together, within this long; a name still unanswered then
# is refused (it could not be checked). One that does not resolve at all is accepted: it
# reaches nothing now, and the engine, which fetches the media, checks what it connects to.
MEDIA_LOOKUP_SECONDS = 2.0
_media_lookups = concurrent.futures.ThreadPoolExecutor(8, thread_name_prefix="media-lookup")


def check_media_urls(urls: list[str]) -> list[str]:
    """Why some of `urls` (valid http(s) URLs) may not be played, one message each; [] when
    all may."""
    if settings.MEDIA_ALLOW_PRIVATE:
        return []
    hosts = {}
    for url in urls:
        hosts.setdefault(_parse(url), url)
    lookups = {
        _media_lookups.submit(_refusal, host, port, allow_private=False): url for (host, port), url in hosts.items()
    }
    deadline = time.monotonic() + MEDIA_LOOKUP_SECONDS
    problems = []
    for lookup, url in lookups.items():
        try:
            refusal = lookup.result(timeout=max(0.0, deadline - time.monotonic()))
        except concurrent.futures.TimeoutError:
            refusal = "Refused: its host name could not be checked in time."
        if refusal:
            problems.append(f"{url[:100]}: {refusal} Media URLs may only reach public addresses.")
    return problems
