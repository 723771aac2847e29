"""A registration over TCP keeps its flow alive and registers again when the flow fails
(RFC 5626 §4.4.1): keepalives go over the registration's transport, and a transport failure
towards the registrar while registered sends a REGISTER at once."""

from __future__ import annotations

import random

from intercom.sip.core import Address
from intercom.sip.endpoint import Endpoint, EndpointConfig
from intercom.sip.events import RegistrationFailed
from intercom.sip.message import Request, Response, parse_message
from intercom.sip.registration import RegistrationConfig, RegistrationState
from intercom.sip.uri import SipUri

REGISTRAR = Address("tcp", "192.0.2.5", 5060)


def registered_endpoint() -> Endpoint:
    e = Endpoint(
        EndpointConfig(local_host="192.0.2.10", local_port=5062, user="door", transport="tcp",
                       host_addresses={"pbx.example": REGISTRAR}),
        rng=random.Random(5), answer_offer=lambda call_id, offer: None,
    )  # fmt: skip
    config = RegistrationConfig(
        registrar="pbx.example",
        registrar_uri=SipUri("pbx.example").with_params(transport="tcp"),
        aor=SipUri("pbx.example", "door"),
        keepalive_interval=25.0,
    )
    e.register(config, 0.0)
    [(register, destination)] = e.datagrams_to_send()
    assert destination == REGISTRAR
    e.receive(ok(register), REGISTRAR, 0.1)
    assert e.registration is not None and e.registration.state is RegistrationState.REGISTERED
    return e


def ok(request: bytes) -> bytes:
    parsed = parse_message(request)
    head = [f"{name}: {value}" for name, value in parsed.headers
            if name in ("Via", "From", "To", "Call-ID", "CSeq")]  # fmt: skip
    response = parse_message(
        ("\r\n".join(["SIP/2.0 200 OK", *head, "Expires: 600", "Content-Length: 0"]) + "\r\n\r\n")
        .encode()
    )  # fmt: skip
    assert isinstance(response, Response)
    return response.encode()


def test_tcp_registration_sends_keepalives_on_its_flow() -> None:
    e = registered_endpoint()
    deadline = e.get_timer()
    assert deadline is not None and 20.0 < deadline <= 25.1
    e.handle_timer(deadline)
    assert e.datagrams_to_send() == [(b"\r\n\r\n", REGISTRAR)]


def test_a_failed_flow_registers_again_at_once() -> None:
    e = registered_endpoint()
    e.transport_failed(Address("tcp", "198.51.100.9", 5060), 30.0)  # another peer: no matter
    assert e.datagrams_to_send() == []
    e.transport_failed(REGISTRAR, 30.0)
    [(register, destination)] = e.datagrams_to_send()
    assert register.startswith(b"REGISTER ") and destination == REGISTRAR
    e.transport_failed(REGISTRAR, 30.1)  # the new connection is refused too: the ladder waits
    assert e.datagrams_to_send() == []
    assert e.registration is not None and e.registration.state is RegistrationState.FAILED


TLS_REGISTRAR = Address("tls", "192.0.2.5", 5061)


def test_a_tls_registration_says_so_in_via_and_contact_and_keeps_its_flow() -> None:
    """RFC 3261 §26 with RFC 5630's advice taken as servers take it: ``sip:`` with
    ``;transport=tls`` in Contact, ``SIP/2.0/TLS`` with RFC 5923's ``alias`` in Via; the
    keepalives (RFC 5626) go over the same TLS flow."""
    e = Endpoint(
        EndpointConfig(local_host="192.0.2.10", local_port=5062, user="door", transport="tls",
                       host_addresses={"pbx.example": TLS_REGISTRAR}),
        rng=random.Random(5), answer_offer=lambda call_id, offer: None,
    )  # fmt: skip
    config = RegistrationConfig(
        registrar="pbx.example",
        registrar_uri=SipUri("pbx.example").with_params(transport="tls"),
        aor=SipUri("pbx.example", "door"),
        keepalive_interval=25.0,
    )
    e.register(config, 0.0)
    [(register, destination)] = e.datagrams_to_send()
    assert destination == TLS_REGISTRAR
    request = parse_message(register)
    assert isinstance(request, Request)
    assert request.start_line().startswith("REGISTER sip:pbx.example;transport=tls ")
    via = request.top_via
    assert (via.transport, via.sent_by) == ("TLS", "192.0.2.10:5062")
    assert "alias" in via.params and "rport" in via.params
    assert request.headers.get("Contact", "").startswith("<sip:door@192.0.2.10:5062;transport=tls>")
    e.receive(ok(register), TLS_REGISTRAR, 0.1)
    deadline = e.get_timer()
    assert deadline is not None
    e.handle_timer(deadline)
    assert e.datagrams_to_send() == [(b"\r\n\r\n", TLS_REGISTRAR)]


def test_a_transport_failure_gives_the_registration_its_reason() -> None:
    e = registered_endpoint()
    e.transport_failed(REGISTRAR, 30.0)  # the flow broke: a REGISTER goes out at once
    e.datagrams_to_send()
    list(iter(e.next_event, None))
    reason = "tls:192.0.2.5:5061: certificate for pbx.example rejected: certificate has expired"
    e.transport_failed(REGISTRAR, 30.1, reason)
    failed = [ev for ev in iter(e.next_event, None) if isinstance(ev, RegistrationFailed)]
    assert [f.reason for f in failed] == [reason]
