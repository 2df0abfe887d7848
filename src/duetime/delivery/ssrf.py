"""Which webhook targets duetime may call: http(s) URLs whose host resolves only to public
addresses (no private, loopback, link-local, multicast, reserved or unspecified ones), unless
private targets are explicitly allowed. Checked when the URL is saved and again before each
send, on the addresses actually connected to (DNS can change in between)."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
MAX_URL_LENGTH = 2048


class UnsafeTarget(ValueError):
    """The URL is malformed or points somewhere duetime must not call."""


def forbidden_reason(ip: IPAddress) -> str | None:
    """Why `ip` must not be called, or None for a public address."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    checks = (
        ("unspecified", ip.is_unspecified),
        ("loopback", ip.is_loopback),
        ("link-local", ip.is_link_local),
        ("multicast", ip.is_multicast),
        ("reserved", ip.is_reserved),
        ("private", ip.is_private),
    )
    for name, hit in checks:
        if hit:
            return f"a {name} address"
    if not ip.is_global:
        return "not a public address"
    return None


def parse_webhook_url(url: str) -> tuple[str, str, int]:
    """(scheme, host, port) of a syntactically acceptable webhook URL; raises UnsafeTarget."""
    if len(url) > MAX_URL_LENGTH:
        raise UnsafeTarget(f"webhook URL is longer than {MAX_URL_LENGTH} characters")
    if any(ch.isspace() or ord(ch) < 32 for ch in url):
        raise UnsafeTarget("webhook URL must not contain whitespace or control characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UnsafeTarget(f"webhook URL {url!r} is malformed: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise UnsafeTarget(f"webhook URL must use http or https, not {parts.scheme or 'nothing'!r}")
    host = parts.hostname
    if not host:
        raise UnsafeTarget(f"webhook URL {url!r} has no host")
    if parts.username is not None or parts.password is not None:
        raise UnsafeTarget("webhook URL must not contain a user name or password")
    if parts.fragment:
        raise UnsafeTarget("webhook URL must not contain a fragment (#...)")
    return scheme, host, port or (443 if scheme == "https" else 80)


async def resolve(host: str, port: int, *, timeout: float = 5.0) -> list[IPAddress]:
    """Every address `host` resolves to; raises UnsafeTarget when it does not resolve."""
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(timeout):
            infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, TimeoutError) as exc:
        raise UnsafeTarget(f"webhook host {host!r} does not resolve ({exc})") from None
    found: list[IPAddress] = []
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
        if address not in found:
            found.append(address)
    if not found:
        raise UnsafeTarget(f"webhook host {host!r} does not resolve")
    return found


async def check_target(url: str, *, allow_private: bool) -> tuple[str, list[IPAddress]]:
    """The host of `url` and the addresses it may be called on; raises UnsafeTarget when the
    URL is malformed, does not resolve, or resolves to any forbidden address."""
    _, host, port = parse_webhook_url(url)
    addresses = await resolve(host, port)
    if not allow_private:
        for address in addresses:
            reason = forbidden_reason(address)
            if reason is not None:
                raise UnsafeTarget(
                    f"webhook host {host!r} resolves to {address}, {reason}; "
                    "duetime only calls public addresses"
                )
    return host, addresses
