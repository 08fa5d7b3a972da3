"""Outbound addresses: where medtrace may send a webhook.

A webhook URL is the subscriber's choice. Unchecked, it lets any participant make the server
POST into its own network (server-side request forgery): the database port on loopback, a
cloud's metadata service at 169.254.169.254, an admin page on a private address. The rule:
every address the URL's host resolves to must be a global unicast address, so neither
loopback, private, shared (100.64/10), link-local, multicast, reserved nor unspecified. An
IPv4-mapped IPv6 address (``::ffff:127.0.0.1``) is judged as the IPv4 address it carries,
and a host written as a number in any spelling (``0x7f000001``, ``2130706433``,
``0177.0.0.1``) is judged by the address the resolver makes of it, never by its text. An
operator with receivers on premises allows their networks (``webhook_allowed_networks``);
the cloud metadata addresses stay refused even then.

The check runs when a subscription is made and again before every delivery, and the
delivery connects to the very address checked (:class:`Target`), so a DNS answer that
changes between the check and the connection (DNS rebinding) changes nothing. Deliveries
never follow redirects, so a receiver cannot bounce one to an address that was not checked.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Sequence
from dataclasses import dataclass

import httpx

from medtrace.errors import InvalidInput

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

#: Cloud instance-metadata services (AWS, GCP, Azure, OpenStack; AWS over IPv6; Alibaba;
#: Azure's WireServer, a public address): refused whatever the allow-list says.
METADATA_ADDRESSES: frozenset[IPAddress] = frozenset(
    ipaddress.ip_address(a)
    for a in ("169.254.169.254", "fd00:ec2::254", "100.100.100.200", "168.63.129.16")
)

_SCHEMES = frozenset({"http", "https"})


@dataclass(frozen=True)
class Target:
    """A webhook URL with the checked address the delivery must connect to."""

    url: httpx.URL
    address: IPAddress

    def pinned_url(self) -> httpx.URL:
        """The URL with its host replaced by the checked address (no second DNS lookup)."""
        return self.url.copy_with(host=str(self.address))

    def headers(self) -> dict[str, str]:
        """The ``Host`` header the receiver expects: the URL's own host and port."""
        return {"Host": self.url.netloc.decode("ascii")}

    def extensions(self) -> dict[str, str]:
        """For HTTPS, the name the TLS handshake sends (SNI) and checks the certificate for."""
        return {"sni_hostname": self.url.host} if self.url.scheme == "https" else {}


def forbidden(address: IPAddress, allowed: Sequence[IPNetwork]) -> str | None:
    """Why medtrace may not connect to ``address`` (None if it may)."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if address in METADATA_ADDRESSES:
        return "a cloud metadata service"
    if any(address in network for network in allowed):
        return None
    if address.is_multicast:
        return "a multicast address"
    if not address.is_global:
        return "not a public address (loopback, private, link-local, reserved or unspecified)"
    return None


def check_url(url: str, *, allowed: Sequence[IPNetwork]) -> Target:
    """Resolve a webhook URL and check every address its host has; the target to connect to.

    Raises ``InvalidInput`` with rule ``webhook.bad_url`` (not an absolute http(s) URL),
    ``webhook.unresolvable`` (no address) or ``webhook.forbidden_address``. Blocks while the
    system resolver answers: callers on an event loop run it in a thread.
    """
    parsed = _parse(url)
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    addresses = _resolve(parsed.host, port)
    for address in addresses:
        reason = forbidden(address, allowed)
        if reason is not None:
            raise InvalidInput(
                f"webhook URL host {parsed.host!r} resolves to {address}: {reason}; "
                "medtrace does not send alerts there",
                rule="webhook.forbidden_address",
            )
    return Target(parsed, addresses[0])


def _parse(url: str) -> httpx.URL:
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise InvalidInput(f"not a URL: {exc}", rule="webhook.bad_url") from exc
    if parsed.scheme not in _SCHEMES or not parsed.host:
        raise InvalidInput("a webhook URL is an absolute http(s) URL", rule="webhook.bad_url")
    return parsed


def _resolve(host: str, port: int) -> list[IPAddress]:
    """Every address of ``host`` (an IP literal in any spelling resolves to itself)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise InvalidInput(
            f"webhook URL host {host!r} does not resolve: {exc}", rule="webhook.unresolvable"
        ) from exc
    addresses = list(dict.fromkeys(ipaddress.ip_address(info[4][0]) for info in infos))
    if not addresses:
        raise InvalidInput(f"webhook URL host {host!r} has no address", rule="webhook.unresolvable")
    return addresses
