"""IP literals as the stack compares them."""

from __future__ import annotations

import ipaddress

from intercom.ip import parse_ip


def test_parse_ip() -> None:
    assert parse_ip("192.0.2.1") == ipaddress.ip_address("192.0.2.1")
    assert parse_ip("[2001:db8::1]") == ipaddress.ip_address("2001:db8::1")
    assert parse_ip("::ffff:192.0.2.1") == ipaddress.ip_address("192.0.2.1")  # dual stack
    assert parse_ip("pbx.example") is None
    assert parse_ip("") is None
