"""Which webhook targets duetime may call: http(s) URLs whose host resolves only to public
addresses (no private, loopback, link-local, multicast, reserved or unspecified ones), unless
private targets are explicitly allowed. Checked when the URL is saved and again before each
send, on the addresses actually connected to (DNS can change in between)."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import quote, urlsplit

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


@dataclass(frozen=True)
class Target:
    """A checked webhook URL, split for the HTTP client."""

    scheme: str
    host: str  # lower case, IDNA-encoded; without brackets for IPv6
    port: int
    host_header: str  # as in the `Host` header
    request_target: str  # path and query, percent-encoded
    addresses: tuple[IPAddress, ...] = ()


def split_webhook_url(url: str, what: str = "webhook") -> Target:
    """A syntactically acceptable webhook URL, split; raises UnsafeTarget. `what` names the
    URL in the messages (`push endpoint`)."""
    if len(url) > MAX_URL_LENGTH:
        raise UnsafeTarget(f"{what} URL is longer than {MAX_URL_LENGTH} characters")
    if any(ch.isspace() or ord(ch) < 32 for ch in url):
        raise UnsafeTarget(f"{what} URL must not contain whitespace or control characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UnsafeTarget(f"{what} URL {url!r} is malformed: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise UnsafeTarget(f"{what} URL must use http or https, not {parts.scheme or 'nothing'!r}")
    host = parts.hostname
    if not host:
        raise UnsafeTarget(f"{what} URL {url!r} has no host")
    if parts.username is not None or parts.password is not None:
        raise UnsafeTarget(f"{what} URL must not contain a user name or password")
    if parts.fragment:
        raise UnsafeTarget(f"{what} URL must not contain a fragment (#...)")
    try:
        host = host.encode("idna").decode("ascii")
    except UnicodeError:
        raise UnsafeTarget(f"{what} URL host {host!r} is not a valid name") from None
    default = 443 if scheme == "https" else 80
    shown = f"[{host}]" if ":" in host else host
    host_header = shown if port in (None, default) else f"{shown}:{port}"
    path = quote(parts.path or "/", safe="/%:@!$&'()*+,;=~-._")
    query = quote(parts.query, safe="/%:@!$&'()*+,;=~-._?")
    return Target(scheme, host, port or default, host_header, path + (f"?{query}" if query else ""))


def parse_webhook_url(url: str) -> tuple[str, str, int]:
    """(scheme, host, port) of a syntactically acceptable webhook URL; raises UnsafeTarget."""
    target = split_webhook_url(url)
    return target.scheme, target.host, target.port


async def resolve(
    host: str, port: int, *, timeout: float = 5.0, what: str = "webhook"
) -> list[IPAddress]:
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
        raise UnsafeTarget(f"{what} host {host!r} does not resolve ({exc})") from None
    found: list[IPAddress] = []
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
        if address not in found:
            found.append(address)
    if not found:
        raise UnsafeTarget(f"{what} host {host!r} does not resolve")
    return found


async def check_target(url: str, *, allow_private: bool, what: str = "webhook") -> Target:
    """`url` split, with the addresses it may be called on; raises UnsafeTarget when the
    URL is malformed, does not resolve, or resolves to any forbidden address."""
    target = split_webhook_url(url, what)
    host = target.host
    addresses = await resolve(host, target.port, what=what)
    if not allow_private:
        for address in addresses:
            reason = forbidden_reason(address)
            if reason is not None:
                raise UnsafeTarget(
                    f"{what} host {host!r} resolves to {address}, {reason}; "
                    "duetime only calls public addresses unless "
                    "DUETIME_WEBHOOK_ALLOW_PRIVATE=1 is set"
                )
    return Target(
        target.scheme,
        host,
        target.port,
        target.host_header,
        target.request_target,
        tuple(addresses),
    )
