"""Tests for intercom.runtime.resolver (RFC 3263 §4.2 server location)."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable
from typing import Any, cast

import dns.asyncresolver
import dns.message
import dns.rrset
import pytest

from intercom.runtime.resolver import ResolveError, SystemDnsBackend, resolve
from intercom.sip.locate import SrvRecord, Target


class FakeDnsBackend:
    """Answers from dicts and records every query as ("SRV"|"A/AAAA", name)."""

    def __init__(
        self,
        srv: dict[str, list[SrvRecord]] | None = None,
        addresses: dict[str, list[str]] | None = None,
    ) -> None:
        self.srv_answers = srv or {}
        self.address_answers = addresses or {}
        self.queries: list[tuple[str, str]] = []

    async def srv(self, name: str) -> list[SrvRecord]:
        self.queries.append(("SRV", name))
        return list(self.srv_answers.get(name, []))

    async def addresses(self, host: str) -> list[str]:
        self.queries.append(("A/AAAA", host))
        return list(self.address_answers.get(host, []))


def no_rng() -> float:
    raise AssertionError("rng must not be used here")


def run(
    host: str,
    port: int | None,
    transport: str,
    backend: FakeDnsBackend,
    rng: Callable[[], float] = no_rng,
) -> list[Target]:
    return asyncio.run(resolve(host, port, transport, backend=backend, rng=rng))


def test_ipv4_literal_makes_no_query():
    backend = FakeDnsBackend()
    assert run("192.0.2.1", None, "udp", backend) == [Target("192.0.2.1", 5060, "udp")]
    assert run("192.0.2.1", 5080, "tcp", backend) == [Target("192.0.2.1", 5080, "tcp")]
    assert backend.queries == []


def test_ipv6_literal_makes_no_query():
    backend = FakeDnsBackend()
    targets = run("2001:db8::1", None, "udp", backend)
    assert targets == [Target("2001:db8::1", 5060, "udp")]
    assert [str(t) for t in targets] == ["udp:[2001:db8::1]:5060"]
    assert run("[2001:db8::1]", 5070, "tcp", backend) == [Target("2001:db8::1", 5070, "tcp")]
    assert backend.queries == []


def test_explicit_port_skips_srv():
    backend = FakeDnsBackend(
        srv={"_sip._udp.pbx.example": [SrvRecord(10, 10, 5999, "other.example")]},
        addresses={"pbx.example": ["192.0.2.10", "2001:db8::10"]},
    )
    assert run("pbx.example", 5070, "udp", backend) == [
        Target("192.0.2.10", 5070, "udp"),
        Target("2001:db8::10", 5070, "udp"),
    ]
    assert backend.queries == [("A/AAAA", "pbx.example")]


def test_explicit_port_without_addresses_raises():
    backend = FakeDnsBackend()
    with pytest.raises(ResolveError, match=r"^cannot resolve pbx\.example: no A or AAAA records$"):
        run("pbx.example", 5070, "udp", backend)


def test_srv_with_two_priorities():
    backend = FakeDnsBackend(
        srv={
            "_sip._tcp.pbx.example": [
                SrvRecord(20, 0, 5080, "backup.pbx.example"),
                SrvRecord(10, 30, 5060, "a.pbx.example"),
                SrvRecord(10, 70, 5062, "b.pbx.example"),
            ]
        },
        addresses={
            "a.pbx.example": ["192.0.2.1"],
            "b.pbx.example": ["192.0.2.2", "2001:db8::2"],
            "backup.pbx.example": ["198.51.100.9"],
        },
    )
    # Priority 10: running sums a=30, b=100; 0.5*100=50 -> b first, then a.
    draws = [0.5]
    targets = run("pbx.example", None, "tcp", backend, rng=lambda: draws.pop(0))
    assert [str(t) for t in targets] == [
        "tcp:192.0.2.2:5062",
        "tcp:[2001:db8::2]:5062",
        "tcp:192.0.2.1:5060",
        "tcp:198.51.100.9:5080",
    ]
    assert draws == []
    assert backend.queries == [
        ("SRV", "_sip._tcp.pbx.example"),
        ("A/AAAA", "b.pbx.example"),
        ("A/AAAA", "a.pbx.example"),
        ("A/AAAA", "backup.pbx.example"),
    ]


def test_srv_targets_without_addresses_do_not_fall_back_to_host():
    backend = FakeDnsBackend(
        srv={"_sip._udp.pbx.example": [SrvRecord(10, 0, 5060, "gone.pbx.example")]},
        addresses={"pbx.example": ["192.0.2.1"]},
    )
    with pytest.raises(ResolveError, match="no A or AAAA records for the SRV targets"):
        run("pbx.example", None, "udp", backend)
    assert ("A/AAAA", "pbx.example") not in backend.queries


def test_srv_dot_target_means_unavailable():
    backend = FakeDnsBackend(
        srv={"_sip._udp.pbx.example": [SrvRecord(0, 0, 0, ".")]},
        addresses={"pbx.example": ["192.0.2.1"]},
    )
    with pytest.raises(ResolveError, match="service not available"):
        run("pbx.example", None, "udp", backend)
    assert backend.queries == [("SRV", "_sip._udp.pbx.example")]


def test_no_srv_falls_back_to_addresses_with_5060():
    backend = FakeDnsBackend(addresses={"pbx.example": ["192.0.2.7", "2001:db8::7"]})
    assert run("pbx.example", None, "udp", backend) == [
        Target("192.0.2.7", 5060, "udp"),
        Target("2001:db8::7", 5060, "udp"),
    ]
    assert backend.queries == [("SRV", "_sip._udp.pbx.example"), ("A/AAAA", "pbx.example")]


def test_nothing_found_raises():
    backend = FakeDnsBackend()
    with pytest.raises(ResolveError) as info:
        run("pbx.example", None, "udp", backend)
    assert str(info.value) == "cannot resolve pbx.example: no SRV, A or AAAA records"
    assert backend.queries == [("SRV", "_sip._udp.pbx.example"), ("A/AAAA", "pbx.example")]


def test_unknown_transport_rejected():
    with pytest.raises(ValueError, match="unsupported transport 'sctp'"):
        run("pbx.example", None, "sctp", FakeDnsBackend())


def test_tls_asks_for_sips_srv_and_defaults_to_5061():
    """RFC 3263 §4.2: SIPS over TCP is ``_sips._tcp``; without SRV the host's A on 5061."""
    backend = FakeDnsBackend(
        srv={"_sips._tcp.pbx.example": [SrvRecord(1, 0, 5071, "edge.pbx.example")]},
        addresses={"edge.pbx.example": ["192.0.2.7"], "other.example": ["192.0.2.8"]},
    )
    assert run("pbx.example", None, "tls", backend) == [Target("192.0.2.7", 5071, "tls")]
    assert run("other.example", None, "tls", backend) == [Target("192.0.2.8", 5061, "tls")]
    assert run("192.0.2.9", None, "tls", backend) == [Target("192.0.2.9", 5061, "tls")]
    assert ("SRV", "_sips._tcp.other.example") in backend.queries


def test_system_backend_resolves_localhost_offline():
    found = asyncio.run(SystemDnsBackend(timeout=3.0).addresses("localhost"))
    assert found
    assert found[0] in {"127.0.0.1", "::1"}
    assert set(found) <= {"127.0.0.1", "::1"}


def test_system_backend_addresses_ipv4_first_deduplicated(monkeypatch: pytest.MonkeyPatch):
    async def fake_getaddrinfo(
        self: object, host: str, port: object, **kwargs: object
    ) -> list[Any]:
        assert host == "pbx.example"
        v6, v4, udp = socket.AF_INET6, socket.AF_INET, socket.SOCK_DGRAM
        return [
            (v6, udp, 17, "", ("2001:db8::1", 0, 0, 0)),
            (v4, udp, 17, "", ("192.0.2.1", 0)),
            (v6, udp, 17, "", ("2001:db8::1", 0, 0, 0)),
            (v4, udp, 17, "", ("192.0.2.2", 0)),
            (v4, udp, 17, "", ("192.0.2.1", 0)),
        ]

    monkeypatch.setattr(asyncio.BaseEventLoop, "getaddrinfo", fake_getaddrinfo)
    found = asyncio.run(SystemDnsBackend().addresses("pbx.example"))
    assert found == ["192.0.2.1", "192.0.2.2", "2001:db8::1"]


def test_system_backend_address_failure_returns_empty():
    # A 64-octet label cannot be IDNA-encoded, so getaddrinfo fails before any network use.
    found = asyncio.run(SystemDnsBackend().addresses("a" * 64 + ".example"))
    assert found == []


def test_system_backend_srv_failure_returns_empty_within_timeout():
    # A nameserver on a loopback port nobody listens on: the query must fail or time out
    # quickly and come back as [] instead of raising.
    resolver = dns.asyncresolver.Resolver(configure=False)
    resolver.nameservers = ["127.0.0.1"]
    resolver.port = 9  # discard; nothing answers DNS there
    backend = SystemDnsBackend(timeout=0.3, resolver=resolver)
    started = time.monotonic()
    found = asyncio.run(backend.srv("_sip._udp.pbx.example"))
    assert found == []
    assert time.monotonic() - started < 2.0


class _SrvResponder(asyncio.DatagramProtocol):
    """A loopback DNS server answering every SRV query with fixed records."""

    def __init__(self, records: list[str]) -> None:
        self.records = records
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        query = dns.message.from_wire(data)
        response = dns.message.make_response(query)
        name = query.question[0].name
        response.answer.append(dns.rrset.from_text_list(name, 60, "IN", "SRV", self.records))
        assert self.transport is not None
        self.transport.sendto(response.to_wire(), addr)


def _srv_via_loopback(records: list[str]) -> list[SrvRecord]:
    async def main() -> list[SrvRecord]:
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(
            lambda: _SrvResponder(records), local_addr=("127.0.0.1", 0)
        )
        try:
            resolver = dns.asyncresolver.Resolver(configure=False)
            resolver.nameservers = ["127.0.0.1"]
            resolver.port = transport.get_extra_info("sockname")[1]
            backend = SystemDnsBackend(timeout=2.0, resolver=resolver)
            return await backend.srv("_sip._udp.pbx.example")
        finally:
            transport.close()

    return asyncio.run(main())


def test_system_backend_srv_parses_records():
    found = _srv_via_loopback(["10 60 5060 a.pbx.example.", "20 0 5070 b.pbx.example."])
    assert sorted(found, key=lambda r: r.priority) == [
        SrvRecord(10, 60, 5060, "a.pbx.example"),
        SrvRecord(20, 0, 5070, "b.pbx.example"),
    ]


def test_system_backend_srv_keeps_root_target():
    assert _srv_via_loopback(["0 0 0 ."]) == [SrvRecord(0, 0, 0, ".")]
