"""Endpoint.call_peer_host: where an outgoing call's INVITE went, so that its media may come
from there (the server anchoring media, the outbound proxy, or the target itself)."""

from __future__ import annotations

import random

from intercom.sip.core import Address
from intercom.sip.endpoint import Endpoint, EndpointConfig
from intercom.sip.events import AddressNeeded
from intercom.sip.uri import SipUri

TARGET = Address("udp", "198.51.100.9", 5060)
PROXY = Address("udp", "203.0.113.4", 5070)


def endpoint(
    outbound_proxy: Address | None = None, host_addresses: dict[str, Address] | None = None
) -> Endpoint:
    config = EndpointConfig(
        local_host="192.0.2.10",
        local_port=5062,
        user="door",
        outbound_proxy=outbound_proxy,
        host_addresses=host_addresses or {},
    )
    return Endpoint(
        config,
        rng=random.Random(3),
        answer_offer=lambda call_id, offer: None,
    )


def test_a_direct_call_names_its_target() -> None:
    e = endpoint()
    call = e.call(SipUri(TARGET.host, "family"), None, 0.0)
    assert e.call_peer_host(call.call_id) == TARGET.host
    assert e.call_peer_host("another-call") is None


def test_an_outbound_proxy_is_the_peer() -> None:
    e = endpoint(outbound_proxy=PROXY)
    call = e.call(SipUri(TARGET.host, "family"), None, 0.0)
    assert e.call_peer_host(call.call_id) == PROXY.host


def test_a_server_name_is_its_resolved_address() -> None:
    e = endpoint(host_addresses={"pbx.example": Address("udp", "192.0.2.5", 5060)})
    call = e.call(SipUri("pbx.example", "family"), None, 0.0)
    assert e.call_peer_host(call.call_id) == "192.0.2.5"


def test_a_learned_address_routes_later_requests_and_the_config_stays_as_given() -> None:
    e = endpoint()
    assert not e.knows_host("pbx.example")
    held = e.call(SipUri("pbx.example", "family"), None, 0.0)  # no address: held, asked for
    assert e.call_peer_host(held.call_id) is None and not held.ended
    assert e.next_event() == AddressNeeded("pbx.example")
    e.learn_address("pbx.example", Address("udp", "192.0.2.7", 5070))
    assert e.call_peer_host(held.call_id) == "192.0.2.7"  # the held INVITE went out
    assert [d for _, d in e.datagrams_to_send()] == [Address("udp", "192.0.2.7", 5070)]
    assert e.knows_host("pbx.example") and e.config.host_addresses == {}
    call = e.call(SipUri("pbx.example", "family"), None, 1.0, call_id="chosen-before-dns")
    assert call.call_id == "chosen-before-dns"
    assert e.call_peer_host("chosen-before-dns") == "192.0.2.7"
    [(data, destination)] = [d for d in e.datagrams_to_send() if b"INVITE sip:" in d[0]]
    assert destination == Address("udp", "192.0.2.7", 5070)
    assert b"Call-ID: chosen-before-dns\r\n" in data
