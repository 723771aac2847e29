"""Tests for intercom.sip.locate (RFC 3263 host parsing, RFC 2782 SRV ordering)."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable

import pytest

from intercom.sip.locate import (
    SrvRecord,
    Target,
    is_ip_literal,
    order_srv,
    parse_hostport,
    srv_name,
)


def scripted(values: Iterable[float]) -> tuple[Callable[[], float], list[float]]:
    """An rng returning ``values`` in turn; the returned list holds what is left unused."""
    remaining = list(values)

    def rng() -> float:
        return remaining.pop(0)

    return rng, remaining


@pytest.mark.parametrize(
    ("text", "default", "expected"),
    [
        ("pbx.example", None, ("pbx.example", None)),
        ("pbx.example", 5060, ("pbx.example", 5060)),
        ("pbx.example:5070", 5060, ("pbx.example", 5070)),
        ("pbx.example.", None, ("pbx.example.", None)),
        ("localhost", None, ("localhost", None)),
        ("192.0.2.1", None, ("192.0.2.1", None)),
        ("192.0.2.1:5062", None, ("192.0.2.1", 5062)),
        ("[2001:db8::1]", None, ("2001:db8::1", None)),
        ("[2001:db8::1]", 5060, ("2001:db8::1", 5060)),
        ("[2001:db8::1]:5070", None, ("2001:db8::1", 5070)),
        ("2001:db8::1", 5060, ("2001:db8::1", 5060)),
        ("::1", None, ("::1", None)),
        ("pbx.example:1", None, ("pbx.example", 1)),
        ("pbx.example:65535", None, ("pbx.example", 65535)),
    ],
)
def test_parse_hostport_good(text: str, default: int | None, expected: tuple[str, int | None]):
    assert parse_hostport(text, default) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "host:port",
        ":5060",
        "pbx.example:",
        "pbx.example:0",
        "pbx.example:65536",
        "pbx.example:-1",
        "pbx.example:50a",
        "pbx.example:\u0665",
        "pbx example",
        "pbx..example",
        "-pbx.example",
        "999.0.0.1",
        "[2001:db8::1",
        "[]",
        "[]:5060",
        "[pbx.example]",
        "[2001:db8::1]5060",
        "[2001:db8::1]:",
        "2001:db8::1:5060:x",
        "a:b:c",
    ],
)
def test_parse_hostport_bad(text: str):
    with pytest.raises(ValueError, match="invalid host:port"):
        parse_hostport(text)


def test_parse_hostport_error_messages():
    with pytest.raises(ValueError) as info:
        parse_hostport("host:port")
    assert str(info.value) == "invalid host:port 'host:port': port 'port' is not a number"
    with pytest.raises(ValueError) as info:
        parse_hostport("pbx.example:70000")
    assert str(info.value) == "invalid host:port 'pbx.example:70000': port 70000 is not in 1..65535"
    with pytest.raises(ValueError) as info:
        parse_hostport(":5060")
    assert str(info.value) == "invalid host:port ':5060': empty host"


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("192.0.2.1", True),
        ("2001:db8::1", True),
        ("::1", True),
        ("[2001:db8::1]", False),
        ("pbx.example", False),
        ("localhost", False),
        ("999.0.0.1", False),
        ("", False),
    ],
)
def test_is_ip_literal(host: str, expected: bool):
    assert is_ip_literal(host) is expected


def test_srv_name():
    assert srv_name("pbx.example", "udp") == "_sip._udp.pbx.example"
    assert srv_name("pbx.example", "tcp") == "_sip._tcp.pbx.example"
    assert srv_name("pbx.example.", "udp") == "_sip._udp.pbx.example"
    assert srv_name("pbx.example", "tls") == "_sips._tcp.pbx.example"  # RFC 3263 §4.2
    with pytest.raises(ValueError, match="unsupported transport 'sctp'"):
        srv_name("pbx.example", "sctp")


def test_target_str():
    assert str(Target("192.0.2.1", 5060, "udp")) == "udp:192.0.2.1:5060"
    assert str(Target("2001:db8::1", 5060, "tcp")) == "tcp:[2001:db8::1]:5060"


def test_order_srv_priority_ascending_without_rng_for_singletons():
    records = [
        SrvRecord(30, 5, 5062, "c.example"),
        SrvRecord(10, 5, 5060, "a.example"),
        SrvRecord(20, 5, 5061, "b.example"),
    ]
    rng, _ = scripted([])  # singleton groups must not consume randomness
    assert [r.target for r in order_srv(records, rng)] == ["a.example", "b.example", "c.example"]


def test_order_srv_weighted_selection_exact_order():
    a = SrvRecord(10, 60, 5060, "a.example")
    b = SrvRecord(10, 20, 5060, "b.example")
    c = SrvRecord(10, 20, 5060, "c.example")
    d = SrvRecord(20, 0, 5060, "d.example")
    e = SrvRecord(20, 10, 5060, "e.example")
    # Priority 10: running sums a=60, b=80, c=100.  0.7*100=70 -> b.
    # Then a=60, c=80: 0.9*80=72 -> c.  Then a.
    # Priority 20: weight 0 first: d=0, e=10.  0.0*10=0 -> d.  Then e.
    rng, left = scripted([0.7, 0.9, 0.0])
    assert order_srv([e, a, d, b, c], rng) == [b, c, a, d, e]
    assert left == []

    # Low draws favour the first heavy record; a non-zero draw skips the weight-0 one.
    rng, left = scripted([0.1, 0.1, 0.5])
    assert order_srv([a, b, c, d, e], rng) == [a, b, c, e, d]
    assert left == []

    # The upper edge of rng() picks the last record of the group.
    rng, left = scripted([0.999, 0.999, 0.999])
    assert order_srv([a, b, c, d, e], rng) == [c, b, a, e, d]
    assert left == []


def test_order_srv_all_zero_weights_uniform():
    x = SrvRecord(10, 0, 5060, "x.example")
    y = SrvRecord(10, 0, 5060, "y.example")
    z = SrvRecord(10, 0, 5060, "z.example")
    rng, left = scripted([0.5, 0.99])
    assert order_srv([x, y, z], rng) == [y, z, x]
    assert left == []


def test_order_srv_weight_distribution():
    heavy = SrvRecord(10, 90, 5060, "heavy.example")
    light = SrvRecord(10, 10, 5060, "light.example")
    never = SrvRecord(10, 0, 5060, "zero.example")
    rng = random.Random(3263).random
    firsts = [order_srv([light, never, heavy], rng)[0].target for _ in range(2000)]
    assert 1700 < firsts.count("heavy.example") < 1900
    assert 100 < firsts.count("light.example") < 300
    assert firsts.count("zero.example") == 0


def test_order_srv_dot_target_means_unavailable():
    rng, _ = scripted([])
    assert order_srv([SrvRecord(0, 0, 0, ".")], rng) == []
    assert order_srv([], rng) == []
    real = SrvRecord(20, 0, 5060, "pbx.example")
    assert order_srv([SrvRecord(10, 0, 0, "."), real], rng) == [real]
