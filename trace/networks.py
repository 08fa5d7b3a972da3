"""Client networks: the unit the edge's throttles count a client by.

One person rarely keeps one address (phones, DHCP, IPv6 privacy addresses), and an attacker
can often choose among the addresses of a whole network, so throttles count the network a
client address belongs to: the /24 of an IPv4 address, the /64 of an IPv6 address (the
smallest block an IPv6 site is given, RFC 6177). The address is the one the server believes,
``X-Forwarded-For`` only from a trusted proxy (``settings.http.trusted_proxies``).
"""

from __future__ import annotations

import ipaddress

IPV4_PREFIX = 24
IPV6_PREFIX = 64


def client_network(address: str) -> str:
    """The network of ``address`` in CIDR form; an IPv4-mapped IPv6 address counts as its
    IPv4 address. Something that is no IP address (a Unix socket peer, a test client's name)
    is its own network."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    prefix = IPV4_PREFIX if ip.version == 4 else IPV6_PREFIX
    return str(ipaddress.ip_network(f"{ip}/{prefix}", strict=False))
