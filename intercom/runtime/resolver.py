"""Locate a SIP server over DNS (RFC 3263 §4.2, with RFC 2782 SRV ordering).

The transport is fixed by configuration, so NAPTR (RFC 3263 §4.1) is skipped:

* an IP literal is used as is (port 5060 if none, 5061 for TLS) without any DNS query;
* a host name with an explicit port is looked up with A/AAAA;
* otherwise ``_sip._<transport>.<host>`` SRV records (``_sips._tcp.<host>`` for TLS) are tried
  in RFC 2782 order, each target looked up with A/AAAA; without SRV records the host's A/AAAA
  records are used with the default port (5060, 5061 for TLS).

A target found for TLS is only an address: the certificate it presents is checked against the
host name the user configured, never against an SRV target or an address (RFC 5922 §4.1), which
``runtime/tls.py`` does.

Only SRV needs dnspython (A/AAAA go through the system resolver), so it is imported on the
first SRV question: a door configured with an IP literal or a ``host:port`` never loads it
(about 6 MB and a noticeable share of the start-up on a Pi Zero).
"""

from __future__ import annotations

import asyncio
import logging
import random
import socket
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from intercom.errors import IntercomError
from intercom.sip.locate import (
    DEFAULT_PORTS,
    TRANSPORTS,
    SrvRecord,
    Target,
    is_ip_literal,
    order_srv,
    srv_name,
)

if TYPE_CHECKING:
    import dns.asyncresolver

__all__ = [
    "DEFAULT_SIP_PORT",
    "DnsBackend",
    "ResolveError",
    "SystemDnsBackend",
    "resolve",
]

logger = logging.getLogger(__name__)

DEFAULT_SIP_PORT = 5060


class DnsBackend(Protocol):
    """The two DNS questions RFC 3263 needs here; failures come back as ``[]``."""

    async def srv(self, name: str) -> list[SrvRecord]:
        """SRV records for ``name``; ``[]`` on NXDOMAIN, no answer or error."""
        ...

    async def addresses(self, host: str) -> list[str]:
        """IP addresses of ``host`` (A and AAAA), IPv4 first; ``[]`` if none."""
        ...


class SystemDnsBackend:
    """SRV through dnspython's async resolver; addresses through the system resolver.

    ``loop.getaddrinfo`` is used for addresses so that ``/etc/hosts`` names work.  Every query
    is bounded by ``timeout`` seconds; any failure is logged at DEBUG and turned into ``[]``.
    """

    def __init__(
        self, timeout: float = 3.0, resolver: dns.asyncresolver.Resolver | None = None
    ) -> None:
        self.timeout = timeout
        self._resolver = resolver  # created on first use: reads /etc/resolv.conf

    async def srv(self, name: str) -> list[SrvRecord]:
        import dns.asyncresolver  # here, not at the top: see the module docstring
        import dns.exception
        import dns.rdatatype

        try:
            if self._resolver is None:
                self._resolver = dns.asyncresolver.Resolver()
            answer = await asyncio.wait_for(
                self._resolver.resolve(name, dns.rdatatype.SRV, lifetime=self.timeout),
                self.timeout,
            )
        except (dns.exception.DNSException, OSError, TimeoutError, ValueError) as exc:
            logger.debug("SRV %s: lookup failed: %s: %s", name, type(exc).__name__, exc)
            return []
        records: list[SrvRecord] = []
        for rdata in answer:
            target = rdata.target.to_text()
            records.append(
                SrvRecord(
                    priority=int(rdata.priority),
                    weight=int(rdata.weight),
                    port=int(rdata.port),
                    target=target if target == "." else target.rstrip("."),
                )
            )
        return records

    async def addresses(self, host: str) -> list[str]:
        loop = asyncio.get_running_loop()
        try:
            infos = await asyncio.wait_for(
                loop.getaddrinfo(host, None, type=socket.SOCK_DGRAM), self.timeout
            )
        except (OSError, TimeoutError, ValueError) as exc:
            logger.debug("A/AAAA %s: lookup failed: %s: %s", host, type(exc).__name__, exc)
            return []
        v4: list[str] = []
        v6: list[str] = []
        for family, _type, _proto, _canon, sockaddr in infos:
            address = str(sockaddr[0])
            if family == socket.AF_INET and address not in v4:
                v4.append(address)
            elif family == socket.AF_INET6 and address not in v6:
                v6.append(address)
        return v4 + v6


class ResolveError(IntercomError, OSError):
    """No usable address was found for a SIP server."""


async def _addresses(backend: DnsBackend, host: str) -> list[str]:
    found = await backend.addresses(host)
    logger.debug("A/AAAA %s -> %s", host, ", ".join(found) or "nothing")
    return found


async def resolve(
    host: str,
    port: int | None,
    transport: str,
    *,
    backend: DnsBackend,
    rng: Callable[[], float] = random.random,
) -> list[Target]:
    """Targets to try, in order, for SIP over ``transport`` to ``host[:port]`` (RFC 3263 §4.2).

    Raises ``ResolveError`` if nothing resolves, ``ValueError`` for an unknown transport.
    """
    if transport not in TRANSPORTS:
        raise ValueError(f"unsupported transport {transport!r}; expected udp, tcp or tls")
    default_port = DEFAULT_PORTS[transport]
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if is_ip_literal(host):
        return [Target(host, port or default_port, transport)]

    targets: list[Target] = []

    def add(addresses: list[str], target_port: int) -> None:
        for address in addresses:
            target = Target(address, target_port, transport)
            if target not in targets:
                targets.append(target)

    if port is not None:
        add(await _addresses(backend, host), port)
        if not targets:
            raise ResolveError(f"cannot resolve {host}: no A or AAAA records")
        return targets

    name = srv_name(host, transport)
    records = await backend.srv(name)
    ordered = order_srv(records, rng)
    logger.debug(
        "SRV %s -> %s",
        name,
        ", ".join(f"{r.priority} {r.weight} {r.port} {r.target}" for r in ordered) or "nothing",
    )
    if records and not ordered:
        raise ResolveError(f"cannot resolve {host}: SRV {name} says service not available")
    for record in ordered:
        if is_ip_literal(record.target):
            add([record.target], record.port)
        else:
            add(await _addresses(backend, record.target), record.port)
    if ordered and not targets:
        raise ResolveError(f"cannot resolve {host}: no A or AAAA records for the SRV targets")
    if not records:
        add(await _addresses(backend, host), default_port)
    if not targets:
        raise ResolveError(f"cannot resolve {host}: no SRV, A or AAAA records")
    return targets
