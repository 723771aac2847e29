"""The registration behind a NAT and across address changes, driven through the Endpoint."""

from __future__ import annotations

import random

from intercom.sip.core import Address
from intercom.sip.endpoint import Endpoint, EndpointConfig
from intercom.sip.message import Request, parse_message
from intercom.sip.registration import RegistrationConfig
from intercom.sip.uri import SipUri

PBX = Address("udp", "198.51.100.9", 5060)
INSTANCE = "urn:uuid:00000000-0000-4000-8000-000000000001"
PARAMS = f';+sip.instance="<{INSTANCE}>";reg-id=1'


def registered_endpoint() -> tuple[Endpoint, Request]:
    endpoint = Endpoint(
        EndpointConfig("192.0.2.10", 5062, user="door", host_addresses={"pbx.example": PBX}),
        rng=random.Random(3),
        answer_offer=lambda call_id, offer: None,
    )
    config = RegistrationConfig(
        registrar="pbx.example", registrar_uri=SipUri("pbx.example"),
        aor=SipUri("pbx.example", "door"), keepalive_interval=None, instance_id=INSTANCE,
    )  # fmt: skip
    endpoint.register(config, 0.0)
    return endpoint, last_register(endpoint)


def last_register(endpoint: Endpoint) -> Request:
    [(data, destination)] = endpoint.datagrams_to_send()
    request = parse_message(data)
    assert isinstance(request, Request) and request.method == "REGISTER"
    assert destination == PBX
    return request


def ok(endpoint: Endpoint, register: Request, now: float, via_params: str = "") -> None:
    via = register.headers.get("Via") or ""
    lines = [
        "SIP/2.0 200 OK",
        f"Via: {via.replace(';rport', ';rport' + via_params)}",
        f"From: {register.headers.get('From')}",
        f"To: {register.headers.get('To')};tag=r1",
        f"Call-ID: {register.call_id}",
        f"CSeq: {register.headers.get('CSeq')}",
        "Expires: 600",
    ]
    endpoint.receive(("\r\n".join(lines) + "\r\nContent-Length: 0\r\n\r\n").encode(), PBX, now)


def test_register_carries_instance_and_reg_id_but_claims_no_outbound() -> None:
    _, register = registered_endpoint()
    assert register.headers.get("Contact") == f"<sip:door@192.0.2.10:5062>{PARAMS}"
    assert "Supported" not in register.headers


def test_public_address_from_via_is_registered_once_and_used_in_contact() -> None:
    endpoint, register = registered_endpoint()
    ok(endpoint, register, 0.1, "=40000;received=203.0.113.9")
    again = last_register(endpoint)  # at once, the private binding removed
    assert again.headers.get("Contact") == (
        f"<sip:door@203.0.113.9:40000>{PARAMS}, <sip:door@192.0.2.10:5062>;expires=0"
    )
    assert str(endpoint.contact()) == "<sip:door@203.0.113.9:40000>"  # INVITEs say it too
    ok(endpoint, again, 0.2, "=40000;received=203.0.113.9")
    assert endpoint.datagrams_to_send() == []  # learned once: no loop


def test_no_nat_no_second_register() -> None:
    endpoint, register = registered_endpoint()
    ok(endpoint, register, 0.1, "=5062")
    assert endpoint.datagrams_to_send() == []
    assert endpoint.registration is not None and endpoint.registration.public_address is None


def test_new_local_host_registers_at_once_and_removes_the_old_binding() -> None:
    endpoint, register = registered_endpoint()
    ok(endpoint, register, 0.1)
    endpoint.set_local_host("192.0.2.77", 5.0)
    moved = last_register(endpoint)
    assert moved.headers.get("Contact") == (
        f"<sip:door@192.0.2.77:5062>{PARAMS}, <sip:door@192.0.2.10:5062>;expires=0"
    )
    assert "192.0.2.77:5062" in (moved.headers.get("Via") or "")
    endpoint.set_local_host("192.0.2.77", 6.0)  # unchanged: nothing sent
    assert endpoint.datagrams_to_send() == []


def test_calls_through_the_server_say_the_public_address_direct_ones_the_local() -> None:
    endpoint, register = registered_endpoint()
    ok(endpoint, register, 0.1, "=40000;received=203.0.113.9")
    endpoint.datagrams_to_send()
    contacts = {}
    for target in (SipUri("pbx.example", "family"), SipUri("192.0.2.50", "phone")):
        endpoint.call(target, None, 1.0)
        [(data, _)] = endpoint.datagrams_to_send()
        invite = parse_message(data)
        contacts[target.host] = invite.headers.get("Contact")
    assert contacts == {
        "pbx.example": "<sip:door@203.0.113.9:40000>",
        "192.0.2.50": "<sip:door@192.0.2.10:5062>",  # a LAN phone called directly
    }
