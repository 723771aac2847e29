"""Pure helpers for locating a SIP server (RFC 3263, RFC 2782).

* ``parse_hostport`` splits the ``host[:port]`` form of RFC 3261 §25.1 (IPv6 in brackets);
  :class:`HostPort` is its typed value.
* ``srv_name`` builds the ``_sip._udp.host`` query name of RFC 3263 §4.2 (``_sips._tcp.host``
  for TLS).
* ``order_srv`` orders SRV records as RFC 2782 ("Usage rules") requires: ascending priority,
  weighted random selection within a priority, and a lone ``.`` target meaning
  "service decidedly not available".

No I/O happens here; randomness comes from an injected ``rng`` returning floats in [0, 1).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from intercom.sip.uri import format_hostport

__all__ = [
    "DEFAULT_PORTS",
    "TRANSPORTS",
    "HostPort",
    "SrvRecord",
    "Target",
    "is_ip_literal",
    "order_srv",
    "parse_hostport",
    "srv_name",
]

TRANSPORTS = ("udp", "tcp", "tls")
"""The transports SIP requests can go over."""
DEFAULT_PORTS = {"udp": 5060, "tcp": 5060, "tls": 5061}
"""RFC 3261 §19.1.2: the port of a URI (or server) that names none."""

_LABEL = re.compile(r"^[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?$")


@dataclass(frozen=True, slots=True)
class SrvRecord:
    """One SRV resource record (RFC 2782); ``target`` has no trailing dot, or is ``"."``."""

    priority: int
    weight: int
    port: int
    target: str


@dataclass(frozen=True, slots=True)
class Target:
    """A concrete place to send a request: IP literal (IPv6 without brackets), port, transport."""

    host: str
    port: int
    transport: str

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.transport}:{host}:{self.port}"


def is_ip_literal(host: str) -> bool:
    """True if ``host`` is an IPv4 or IPv6 address (IPv6 without brackets)."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _parse_port(text: str, port_text: str) -> int:
    if not port_text:
        raise ValueError(f"invalid host:port {text!r}: empty port")
    if not (port_text.isascii() and port_text.isdigit()):
        raise ValueError(f"invalid host:port {text!r}: port {port_text!r} is not a number")
    port = int(port_text)
    if not 1 <= port <= 65535:
        raise ValueError(f"invalid host:port {text!r}: port {port} is not in 1..65535")
    return port


def _check_hostname(text: str, host: str) -> None:
    labels = host[:-1].split(".") if host.endswith(".") else host.split(".")
    if len(host) > 254 or not all(_LABEL.match(label) for label in labels):
        raise ValueError(f"invalid host:port {text!r}: {host!r} is not a valid host name")
    if all(label.isdigit() for label in labels):
        # All-numeric names are IPv4 attempts (RFC 3986 §3.2.2); this one was not valid.
        raise ValueError(f"invalid host:port {text!r}: {host!r} is not a valid IPv4 address")


@dataclass(frozen=True, slots=True)
class HostPort:
    """A ``host[:port]`` (RFC 3261 §25.1): ``host`` without IPv6 brackets, ``port`` None
    when absent. ``str()`` writes it back, bracketing an IPv6 address."""

    host: str
    port: int | None = None

    @classmethod
    def parse(cls, text: str, default_port: int | None = None) -> HostPort:
        """As :func:`parse_hostport`; ``ValueError`` for anything else."""
        return cls(*parse_hostport(text, default_port))

    def __str__(self) -> str:
        return format_hostport(self.host, self.port)


def parse_hostport(text: str, default_port: int | None = None) -> tuple[str, int | None]:
    """Split ``host[:port]`` into ``(host, port)``; the port is ``default_port`` if absent.

    Accepts host names, IPv4, ``[IPv6]`` with or without a port, and a bare IPv6 address
    (which cannot carry a port).  Raises ``ValueError`` for anything else.
    """
    if not text:
        raise ValueError("invalid host:port '': empty host")
    if text.startswith("["):
        close = text.find("]")
        if close < 0:
            raise ValueError(f"invalid host:port {text!r}: missing ']'")
        host, rest = text[1:close], text[close + 1 :]
        if not host:
            raise ValueError(f"invalid host:port {text!r}: empty host")
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise ValueError(
                f"invalid host:port {text!r}: {host!r} is not an IPv6 address"
            ) from None
        if not rest:
            return host, default_port
        if not rest.startswith(":"):
            raise ValueError(f"invalid host:port {text!r}: unexpected {rest!r} after ']'")
        return host, _parse_port(text, rest[1:])
    if text.count(":") > 1:
        try:
            ipaddress.IPv6Address(text)
        except ValueError:
            raise ValueError(
                f"invalid host:port {text!r}: not an IPv6 address (put IPv6 in [brackets])"
            ) from None
        return text, default_port
    host, sep, port_text = text.partition(":")
    if not host:
        raise ValueError(f"invalid host:port {text!r}: empty host")
    if not is_ip_literal(host):
        _check_hostname(text, host)
    return host, (_parse_port(text, port_text) if sep else default_port)


def srv_name(host: str, transport: str) -> str:
    """The SRV query name for SIP over ``transport`` at ``host`` (RFC 3263 §4.2): TLS is
    ``_sips._tcp`` (the SIPS service over TCP)."""
    if transport not in TRANSPORTS:
        raise ValueError(f"unsupported transport {transport!r}; expected udp, tcp or tls")
    if transport == "tls":
        return f"_sips._tcp.{host.rstrip('.')}"
    return f"_sip._{transport}.{host.rstrip('.')}"


def _pick(group: list[SrvRecord], rng: Callable[[], float]) -> SrvRecord:
    """Remove and return one record by RFC 2782 weighted selection."""
    # Weight-0 records go first: they are chosen only when the random draw is exactly 0,
    # which is the "very small chance" RFC 2782 gives them.
    candidates = sorted(group, key=lambda r: r.weight != 0)
    total = sum(r.weight for r in candidates)
    if total == 0:
        chosen = candidates[min(int(rng() * len(candidates)), len(candidates) - 1)]
    else:
        draw = rng() * total
        running = 0
        chosen = candidates[-1]
        for record in candidates:
            running += record.weight
            if running >= draw:
                chosen = record
                break
    group.remove(chosen)
    return chosen


def order_srv(records: Sequence[SrvRecord], rng: Callable[[], float]) -> list[SrvRecord]:
    """Order SRV records for trying in turn, per RFC 2782.

    Ascending priority; within one priority, repeatedly pick a record with probability
    proportional to its weight (``rng()`` is called once per pick in a group of two or more).
    A single record whose target is ``"."`` means the service is not available: ``[]``.
    """
    if len(records) == 1 and records[0].target == ".":
        return []
    usable = [r for r in records if r.target != "."]
    ordered: list[SrvRecord] = []
    for priority in sorted({r.priority for r in usable}):
        group = [r for r in usable if r.priority == priority]
        while len(group) > 1:
            ordered.append(_pick(group, rng))
        ordered.extend(group)
    return ordered
