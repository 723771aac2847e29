"""An IP literal as the stack compares it: brackets undone, an IPv4-mapped IPv6 address as its
IPv4 address (a dual-stack socket reports an IPv4 peer as ``::ffff:192.0.2.1``)."""

from __future__ import annotations

import ipaddress

__all__ = ["IpAddress", "parse_ip"]

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def parse_ip(text: str) -> IpAddress | None:
    """``text`` as an IP address (``[...]`` and IPv4-mapped IPv6 undone); None if it is none."""
    text = text.strip()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address
