"""Requests inside a dialog reach a strict router, a named Contact once the runtime resolved
it, a TLS target over TLS and never in clear (RFC 3261 §8.1.2, §12.2.1.1, RFC 3263)."""

from __future__ import annotations

import logging
import sys

import pytest

from intercom.sip import uri as uri_module
from intercom.sip.core import Address
from intercom.sip.endpoint import HOLD_LIMIT, Endpoint
from intercom.sip.events import AddressNeeded, CallEnded, CallFailed
from intercom.sip.message import Request, parse_message
from intercom.sip.uri import SipUri, Uri

from .dialog_peer import ANSWER, OFFER, PHONE, door, events, in_dialog, responses, run_out

ROUTER = Address("udp", "198.51.100.20", 5070)


def answered_call(endpoint: Endpoint, *, contact: str, record_route: str = "") -> None:
    """The phone calls, the door answers, the phone ACKs; the door's next request is ours."""
    extra = f"Record-Route: {record_route}\r\n" if record_route else ""
    invite = in_dialog(
        "INVITE", call_id="in-1", from_tag="phone1", to_tag=None, cseq=1, branch="z9hG4bKi1",
        body=OFFER, extra=extra,
    ).replace(b"<sip:family@198.51.100.9:5060>", contact.encode())  # fmt: skip
    endpoint.receive(invite, PHONE, 0.0)
    endpoint.accept("in-1", ANSWER, 0.0)
    ok = endpoint.datagrams_to_send()[-1][0]
    ours = ok.split(b";tag=")[-1].split(b"\r\n")[0].decode()
    ack = in_dialog(
        "ACK", call_id="in-1", from_tag="phone1", to_tag=ours, cseq=1, branch="z9hG4bKa1"
    )
    endpoint.receive(ack, PHONE, 0.1)
    events(endpoint)


def sent_requests(endpoint: Endpoint) -> list[tuple[Request, Address]]:
    out = [(parse_message(data), dest) for data, dest in endpoint.datagrams_to_send()]
    return [(m, d) for m, d in out if isinstance(m, Request)]


def test_a_bye_through_a_strict_router_goes_to_the_request_uri() -> None:
    endpoint = door()
    strict = "<sip:198.51.100.20:5070>"  # an RFC 2543 proxy: no ;lr
    answered_call(endpoint, contact="<sip:family@198.51.100.9>", record_route=strict)
    endpoint.hangup("in-1", 1.0)
    [(bye, destination)] = sent_requests(endpoint)
    assert bye.method == "BYE" and str(bye.uri) == "sip:198.51.100.20:5070"
    assert bye.headers.get_all("Route") == ["<sip:family@198.51.100.9>"]
    assert destination == ROUTER


def test_a_strict_router_ahead_of_a_loose_one_still_gets_the_bye() -> None:
    # Record-Route lists the proxies nearest the phone first; as callee the route set keeps that
    # order, so the strict router (.20) is our first hop and the loose one (.30) its next.
    endpoint = door()
    record_route = "<sip:198.51.100.20:5070>, <sip:198.51.100.30;lr>"
    answered_call(endpoint, contact="<sip:family@198.51.100.9>", record_route=record_route)
    endpoint.hangup("in-1", 1.0)
    [(bye, destination)] = sent_requests(endpoint)
    assert str(bye.uri) == "sip:198.51.100.20:5070"
    assert bye.headers.get_all("Route") == ["<sip:198.51.100.30;lr>", "<sip:family@198.51.100.9>"]
    assert destination == ROUTER  # not the loose router that now heads the Route headers


def test_a_named_contact_is_asked_for_then_the_held_bye_goes_out() -> None:
    endpoint = door()
    answered_call(endpoint, contact="<sip:family@phone.example:5080>")
    endpoint.hangup("in-1", 1.0)
    assert sent_requests(endpoint) == []
    assert events(endpoint) == [
        AddressNeeded("phone.example", 5080),  # the Contact's port: no SRV (RFC 3263 §4.2)
        CallEnded("in-1", "hung up", False),
    ]
    endpoint.learn_address("phone.example", Address("udp", "198.51.100.9", 5060))
    [(bye, destination)] = sent_requests(endpoint)
    assert bye.method == "BYE" and destination == Address("udp", "198.51.100.9", 5080)
    assert bye.top_via.branch  # sent with our Via
    assert endpoint.held().client_transactions == 1


@pytest.mark.parametrize("answer", ["fails", "never comes"])
def test_a_name_that_does_not_resolve_fails_the_held_bye_in_one_line(
    answer: str, caplog: pytest.LogCaptureFixture
) -> None:
    endpoint = door()
    answered_call(endpoint, contact="<sip:family@phone.example>")
    endpoint.hangup("in-1", 1.0)
    events(endpoint)
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="intercom.sip"):
        if answer == "fails":
            endpoint.address_failed("phone.example", 2.0)
        else:
            now = run_out(endpoint, 2.0, horizon=HOLD_LIMIT - 2.0)  # held until 1 + HOLD_LIMIT
            assert not caplog.records
            run_out(endpoint, now)
    assert [r.getMessage() for r in caplog.records] == [
        "call in-1: BYE got no answer (cannot resolve phone.example)"
    ]
    assert sent_requests(endpoint) == [] and endpoint.held().calls == {}


def test_a_tls_contact_gets_its_bye_over_tls_with_our_alias() -> None:
    endpoint = door()
    answered_call(endpoint, contact="<sip:family@198.51.100.9;transport=tls>")
    endpoint.hangup("in-1", 1.0)
    [(bye, destination)] = sent_requests(endpoint)
    assert destination == Address("tls", "198.51.100.9", 5061)  # RFC 3261 §19.1.2
    assert bye.top_via.transport == "TLS" and "alias" in bye.top_via.params  # RFC 5923
    assert bye.top_via.branch and "rport" in bye.top_via.params


def test_an_unknown_transport_fails_the_bye_with_the_reason(
    caplog: pytest.LogCaptureFixture,
) -> None:
    endpoint = door()
    answered_call(endpoint, contact="<sip:family@198.51.100.9;transport=sctp>")
    with caplog.at_level(logging.INFO, logger="intercom.sip"):
        endpoint.hangup("in-1", 1.0)
    assert sent_requests(endpoint) == []
    assert "call in-1: BYE got no answer (transport sctp is not supported)" in caplog.messages
    assert endpoint.held().calls == {}


@pytest.mark.parametrize(
    ("target", "destination"),
    [
        ("sips:family@198.51.100.9", Address("tls", "198.51.100.9", 5061)),
        ("sip:family@198.51.100.9:5071;transport=TLS", Address("tls", "198.51.100.9", 5071)),
    ],
)
def test_a_tls_call_target_is_called_over_tls(target: str, destination: Address) -> None:
    endpoint = door()
    endpoint.call(SipUri.parse(target), ANSWER, 0.0)
    [(invite, sent_to)] = sent_requests(endpoint)
    assert sent_to == destination and invite.top_via.transport == "TLS"


@pytest.mark.parametrize(
    "target", ["sips:family@198.51.100.9", "sip:family@pbx.example;transport=tls"]
)
def test_a_tls_call_target_behind_a_clear_outbound_proxy_is_never_sent_in_clear(
    target: str, caplog: pytest.LogCaptureFixture
) -> None:
    endpoint = door(outbound_proxy=ROUTER)
    with caplog.at_level(logging.INFO, logger="intercom.sip"):
        call = endpoint.call(SipUri.parse(target), ANSWER, 0.0)
    assert endpoint.datagrams_to_send() == []
    assert events(endpoint) == [CallFailed(call.call_id, None, "unreachable")]
    assert caplog.messages[-1].endswith("asks for TLS, but the outbound proxy is reached over udp)")


@pytest.fixture
def uri_parses(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The texts that code of the package outside uri.py hands to parse_uri."""
    real = uri_module.parse_uri
    texts: list[str] = []

    def counting(text: str) -> Uri:
        texts.append(text)
        return real(text)

    for name, module in list(sys.modules.items()):
        outside = name.startswith("intercom.") and module is not uri_module
        if outside and getattr(module, "parse_uri", None) is real:
            monkeypatch.setattr(module, "parse_uri", counting)
    return texts


def test_the_request_uri_is_parsed_where_it_arrives_and_nowhere_else(
    uri_parses: list[str],
) -> None:
    """parse_message reads a received Request-URI once; the UAS checks use that value. A
    request we build carries its URI typed: routing it, holding it for a name and sending it
    once the name resolved parse nothing."""
    endpoint = door()
    options = in_dialog(
        "OPTIONS", call_id="o-1", from_tag="phone1", to_tag=None, cseq=1, branch="z9hG4bKo1"
    )
    endpoint.receive(options, PHONE, 0.0)
    assert uri_parses == ["sip:door@192.0.2.10:5060"]
    assert [r.status for r in responses(endpoint)] == [200]
    target = SipUri("pbx.example", "family")
    answered_call(endpoint, contact="<sip:family@phone.example:5080>")
    uri_parses.clear()
    call = endpoint.call(target, ANSWER, 1.0)
    endpoint.hangup("in-1", 1.0)
    assert events(endpoint)[:2] == [
        AddressNeeded("pbx.example"),
        AddressNeeded("phone.example", 5080),  # a port given: no SRV (RFC 3263 §4.2)
    ]
    endpoint.learn_address("pbx.example", Address("udp", "198.51.100.20", 5060))
    endpoint.learn_address("phone.example", Address("udp", "198.51.100.9", 5060))
    assert uri_parses == []
    sent = sent_requests(endpoint)
    assert [(r.method, r.uri) for r, _ in sent] == [
        ("INVITE", target),
        ("BYE", SipUri("phone.example", "family", 5080)),
    ]
    assert sent[0][0].call_id == call.call_id
