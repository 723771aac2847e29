"""Router: §8.1.2 next hop from the outbound proxy, the first Route or the Request-URI, with
host names resolved only through addresses the runtime handed over."""

from __future__ import annotations

from intercom.sip.core import Address
from intercom.sip.message import Request
from intercom.sip.routing import Router
from intercom.sip.uri import SipUri, parse_uri

PBX = Address("udp", "192.0.2.5", 5080)


def request(uri: str, *routes: str) -> Request:
    request = Request(method="BYE", uri=parse_uri(uri))
    for route in routes:
        request.headers.add("Route", route)
    return request


def test_the_request_uri_a_literal_or_a_learned_name() -> None:
    router = Router("udp", None, {})
    assert router.route(request("sip:a@198.51.100.7")) == Address("udp", "198.51.100.7", 5060)
    assert router.route(request("sip:a@pbx.example")) is None  # no DNS here
    assert not router.knows("pbx.example")
    router.learn("pbx.example", PBX)
    assert router.knows("pbx.example")
    assert router.route(request("sip:a@pbx.example")) == PBX
    assert router.route(request("sip:a@pbx.example:5090")) == Address("udp", PBX.host, 5090)
    assert router.route(request("tel:+4930123")) is None


def test_the_first_route_then_the_outbound_proxy_win() -> None:
    router = Router("tcp", None, {"pbx.example": PBX})
    routed = request("sip:a@198.51.100.7", "<sip:pbx.example;lr>", "<sip:203.0.113.1;lr>")
    assert router.route(routed) == Address("tcp", PBX.host, PBX.port)
    maddr = SipUri("pbx.example", "a", params={"maddr": "203.0.113.9", "transport": "udp"})
    assert router.address_for(maddr) == Address("udp", "203.0.113.9", 5060)
    proxy = Address("udp", "203.0.113.4", 5070)
    assert Router("udp", proxy, {}).route(routed) == proxy


def test_a_strict_router_is_reached_through_the_request_uri() -> None:
    """§8.1.2 / §12.2.1.1: without ``;lr`` the first route is the Request-URI already."""
    router = Router("udp", None, {})
    strict = request("sip:198.51.100.20:5070", "<sip:a@192.0.2.99>")  # Route: remote target
    assert router.route(strict) == Address("udp", "198.51.100.20", 5070)
    loose = request("sip:a@192.0.2.99", "<sip:198.51.100.20:5070;lr>")
    assert router.route(loose) == Address("udp", "198.51.100.20", 5070)


def test_tls_goes_over_tls_to_5061_unless_a_port_is_named() -> None:
    router = Router("udp", None, {"pbx.example": PBX})
    for uri, expected in [
        ("sips:a@198.51.100.7", Address("tls", "198.51.100.7", 5061)),
        ("sip:a@198.51.100.7;transport=TLS", Address("tls", "198.51.100.7", 5061)),
        ("sips:a@198.51.100.7:5071", Address("tls", "198.51.100.7", 5071)),
        ("sips:a@pbx.example", Address("tls", PBX.host, 5061)),  # PBX was found for udp
    ]:
        assert router.route(request(uri)) == expected, uri
    tls = Router("tls", None, {"pbx.example": Address("tls", PBX.host, 5071)})
    assert tls.route(request("sip:a@pbx.example")) == Address("tls", PBX.host, 5071)
    assert tls.route(request("sip:a@pbx.example;transport=udp")) == Address("udp", PBX.host, 5060)


def test_a_tls_uri_is_refused_rather_than_sent_in_clear_to_a_proxy() -> None:
    clear = Address("udp", "203.0.113.4", 5070)
    for uri in ("sips:a@198.51.100.7", "sip:a@198.51.100.7;transport=tls"):
        assert Router("udp", clear, {}).route(request(uri)) is None
        assert Router("udp", clear, {}).missing_host(request(uri)) is None
        secure = Address("tls", "203.0.113.4", 5061)
        assert Router("tls", secure, {}).route(request(uri)) == secure
    refusal = Router("udp", clear, {}).refusal(SipUri("198.51.100.7", "a", scheme="sips"))
    assert refusal == "sips:a@198.51.100.7 asks for TLS, but the outbound proxy is reached over udp"
    sctp = SipUri("198.51.100.7", "a", params={"transport": "sctp"})
    assert Router("udp", None, {}).refusal(sctp) == "transport sctp is not supported"


def test_the_missing_host_is_the_next_hops_name() -> None:
    router = Router("udp", None, {"pbx.example": PBX})
    assert router.missing_host(request("sip:a@phone.example", "<sip:pbx.example;lr>")) is None
    assert router.missing_host(request("sip:a@198.51.100.7", "<sip:rr.example;lr>")) == (
        "rr.example"
    )
    assert router.missing_host(request("sip:a@phone.example")) == "phone.example"
    proxy = Address("udp", "203.0.113.4", 5070)
    assert Router("udp", proxy, {}).missing_host(request("sip:a@phone.example")) is None
