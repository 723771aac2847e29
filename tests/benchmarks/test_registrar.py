"""The benchmark's digest-less registrar and stateless proxy, fed exact bytes (no socket)."""

from __future__ import annotations

from benchmarks.registrar import Registrar
from intercom.sip.message import Request, Response, parse_message

ME = ("127.0.0.1", 5999)
CALLEE = ("127.0.0.1", 6100)
PHONE = ("127.0.0.1", 5070)


def request(first_line: str, *headers: str) -> bytes:
    lines = [
        first_line,
        "Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKphone1;rport",
        "From: <sip:bench@127.0.0.1>;tag=a1",
        "To: <sip:bench@127.0.0.1>",
        "Call-ID: c1@127.0.0.1",
        "Max-Forwards: 70",
        *headers,
        "Content-Length: 0",
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def registrar() -> Registrar:
    return Registrar(ME, {"echo": CALLEE})


def test_register_binds_the_contact_without_a_challenge() -> None:
    reg = registrar()
    data = request("REGISTER sip:127.0.0.1:5999 SIP/2.0", "CSeq: 1 REGISTER",
                   "Contact: <sip:bench@127.0.0.1:5070>", "Expires: 600")  # fmt: skip
    [(out, destination)] = reg.receive(data, PHONE)
    response = parse_message(out)
    assert isinstance(response, Response) and response.status == 200
    assert destination == PHONE
    assert reg.bindings == {"bench": PHONE}
    unregister = data.replace(b"Expires: 600", b"Expires: 0")
    reg.receive(unregister, PHONE)
    assert reg.bindings == {}


def test_invite_to_a_route_goes_to_the_callee_whatever_the_port() -> None:
    reg = registrar()
    # pyVoIP puts no port in its Request-URI
    data = request("INVITE sip:echo@127.0.0.1 SIP/2.0", "CSeq: 1 INVITE")
    [(out, destination)] = reg.receive(data, PHONE)
    assert destination == CALLEE
    forwarded = parse_message(out)
    assert isinstance(forwarded, Request)
    vias = forwarded.headers.get_list("Via")
    assert vias[0].startswith("SIP/2.0/UDP 127.0.0.1:5999;branch=z9hG4bK")
    assert "rport=5070" in vias[1]
    assert forwarded.headers.get("Max-Forwards") == "69"


def test_a_response_loses_our_via_and_goes_back() -> None:
    reg = registrar()
    [(out, _)] = reg.receive(request("INVITE sip:echo@127.0.0.1 SIP/2.0", "CSeq: 1 INVITE"), PHONE)
    answer = out.decode().replace("INVITE sip:echo@127.0.0.1 SIP/2.0", "SIP/2.0 180 Ringing")
    [(back, destination)] = reg.receive(answer.encode(), CALLEE)
    assert destination == PHONE
    response = parse_message(back)
    assert isinstance(response, Response)
    assert len(response.headers.get_list("Via")) == 1


def test_in_dialog_request_follows_its_uri_and_unknown_users_get_404() -> None:
    reg = registrar()
    bye = request("BYE sip:echo@127.0.0.1:6100;transport=UDP SIP/2.0", "CSeq: 2 BYE")
    assert reg.receive(bye, PHONE)[0][1] == CALLEE
    [(out, destination)] = reg.receive(
        request("INVITE sip:nobody@127.0.0.1:5999 SIP/2.0", "CSeq: 1 INVITE"), PHONE
    )
    response = parse_message(out)
    assert isinstance(response, Response) and response.status == 404
    assert destination == PHONE
