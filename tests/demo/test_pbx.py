"""The demo PBX's registrar and proxy, fed exact datagrams (no sockets)."""

from __future__ import annotations

import random

from intercom.demo.pbx import REALM, DemoPbx
from intercom.sip.auth import authorization_value, parse_challenges
from intercom.sip.core import Address
from intercom.sip.message import Message, Request, Response, parse_message

PBX = Address("udp", "127.0.0.1", 5070)
DOOR = Address("udp", "127.0.0.1", 5080)
PHONE = Address("udp", "127.0.0.1", 5090)
ACCOUNTS = {"door": "door-pw", "phone": "phone-pw"}


def pbx() -> DemoPbx:
    return DemoPbx(PBX, ACCOUNTS, random.Random(0))


def register(user: str, port: int, *, auth: str = "", expires: int = 600, cseq: int = 1) -> bytes:
    lines = [
        "REGISTER sip:127.0.0.1:5070 SIP/2.0",
        f"Via: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bKreg{cseq};rport",
        "Max-Forwards: 70",
        f"From: <sip:{user}@127.0.0.1:5070>;tag=f{user}",
        f"To: <sip:{user}@127.0.0.1:5070>",
        f"Call-ID: reg-{user}",
        f"CSeq: {cseq} REGISTER",
        f"Contact: <sip:{user}@127.0.0.1:{port}>",
        f"Expires: {expires}",
    ]
    if auth:
        lines.append(f"Authorization: {auth}")
    return ("\r\n".join(lines) + "\r\nContent-Length: 0\r\n\r\n").encode()


def answer(challenge_response: Message, method: str, uri: str, user: str, password: str) -> str:
    assert isinstance(challenge_response, Response)
    header = "WWW-Authenticate" if challenge_response.status == 401 else "Proxy-Authenticate"
    (challenge,) = parse_challenges(challenge_response.headers.get_all(header))
    return authorization_value(
        challenge, method=method, uri=uri, username=user, password=password, cnonce="c0ffee", nc=1
    )


def registered(server: DemoPbx, user: str, address: Address) -> None:
    ((challenge, _),) = server.receive(register(user, address.port), address)
    auth = answer(challenge, "REGISTER", "sip:127.0.0.1:5070", user, ACCOUNTS[user])
    ((ok, _),) = server.receive(register(user, address.port, auth=auth, cseq=2), address)
    assert isinstance(ok, Response) and ok.status == 200


def invite(*, auth: str = "", branch: str = "z9hG4bKinv1", max_forwards: int = 70) -> bytes:
    lines = [
        "INVITE sip:phone@127.0.0.1:5070 SIP/2.0",
        f"Via: SIP/2.0/UDP 127.0.0.1:5080;branch={branch};rport",
        f"Max-Forwards: {max_forwards}",
        "From: <sip:door@127.0.0.1:5070>;tag=door1",
        "To: <sip:phone@127.0.0.1:5070>",
        "Call-ID: call-1",
        "CSeq: 1 INVITE",
        "Contact: <sip:door@127.0.0.1:5080>",
    ]
    if auth:
        lines.append(f"Proxy-Authorization: {auth}")
    return ("\r\n".join(lines) + "\r\nContent-Length: 0\r\n\r\n").encode()


def test_register_is_challenged_then_bound_and_a_wrong_password_is_not() -> None:
    server = pbx()
    ((challenge, to),) = server.receive(register("phone", 5090), PHONE)
    assert isinstance(challenge, Response) and challenge.status == 401 and to == PHONE
    assert f'realm="{REALM}"' in (challenge.headers.get("WWW-Authenticate") or "")
    wrong = answer(challenge, "REGISTER", "sip:127.0.0.1:5070", "phone", "guess")
    ((refused, _),) = server.receive(register("phone", 5090, auth=wrong, cseq=2), PHONE)
    assert isinstance(refused, Response) and refused.status == 401
    assert "phone" not in server.bindings
    right = answer(challenge, "REGISTER", "sip:127.0.0.1:5070", "phone", "phone-pw")
    ((ok, _),) = server.receive(register("phone", 5090, auth=right, cseq=3), PHONE)
    assert isinstance(ok, Response) and ok.status == 200
    assert "<sip:phone@127.0.0.1:5090>;expires=" in (ok.headers.get("Contact") or "")
    assert str(server.bindings["phone"]) == "sip:phone@127.0.0.1:5090"


def test_an_account_registers_only_itself() -> None:
    server = pbx()
    ((challenge, _),) = server.receive(register("phone", 5090), PHONE)
    as_door = answer(challenge, "REGISTER", "sip:127.0.0.1:5070", "door", "door-pw")
    ((refused, _),) = server.receive(register("phone", 5090, auth=as_door, cseq=2), PHONE)
    assert isinstance(refused, Response) and refused.status == 401
    assert server.bindings == {}


def test_unknown_account_is_forbidden_and_expires_zero_unbinds() -> None:
    server = pbx()
    ((refused, _),) = server.receive(register("mallory", 5099), PHONE)
    assert isinstance(refused, Response) and refused.status == 403
    registered(server, "phone", PHONE)
    ((challenge, _),) = server.receive(register("phone", 5090, cseq=5), PHONE)
    auth = answer(challenge, "REGISTER", "sip:127.0.0.1:5070", "phone", "phone-pw")
    ((ok, _),) = server.receive(register("phone", 5090, auth=auth, expires=0, cseq=6), PHONE)
    assert isinstance(ok, Response) and ok.status == 200 and "Contact" not in ok.headers
    assert server.bindings == {}


def test_invite_is_challenged_then_record_routed_to_the_bound_contact() -> None:
    server = pbx()
    registered(server, "phone", PHONE)
    ((challenge, to),) = server.receive(invite(), DOOR)
    assert isinstance(challenge, Response) and challenge.status == 407 and to == DOOR
    ack = invite().replace(b"INVITE sip", b"ACK sip").replace(b"1 INVITE", b"1 ACK")
    assert server.receive(ack, DOOR) == []  # the hop-by-hop ACK of our 407 is absorbed
    auth = answer(challenge, "INVITE", "sip:phone@127.0.0.1:5070", "door", "door-pw")
    ((forwarded, to),) = server.receive(invite(auth=auth, branch="z9hG4bKinv2"), DOOR)
    assert isinstance(forwarded, Request) and to == PHONE
    assert str(forwarded.uri) == "sip:phone@127.0.0.1:5090"
    assert forwarded.headers.get("Record-Route") == "<sip:127.0.0.1:5070;lr>"
    assert forwarded.headers.get("Max-Forwards") == "69"
    assert "Proxy-Authorization" not in forwarded.headers
    ours, door_via = forwarded.vias
    assert ours.sent_by == "127.0.0.1:5070" and ours.branch and ours.branch.startswith("z9hG4bK")
    assert door_via.params["received"] == "127.0.0.1" and door_via.params["rport"] == "5080"

    # The phone's 180 comes back with our Via popped, to the door's received/rport.
    ringing = (
        forwarded.encode()
        .decode()
        .replace("INVITE sip:phone@127.0.0.1:5090 SIP/2.0", "SIP/2.0 180 Ringing", 1)
    )
    ((relayed, to),) = server.receive(ringing.encode(), PHONE)
    assert isinstance(relayed, Response) and relayed.status == 180 and to == DOOR
    assert [v.sent_by for v in relayed.vias] == ["127.0.0.1:5080"]

    # A CANCEL of that INVITE (same branch) is forwarded with the same branch as the INVITE.
    cancel = invite(branch="z9hG4bKinv2").replace(b"INVITE sip", b"CANCEL sip")
    cancel = cancel.replace(b"1 INVITE", b"1 CANCEL")
    ((forwarded_cancel, to),) = server.receive(cancel, DOOR)
    assert isinstance(forwarded_cancel, Request) and to == PHONE
    assert forwarded_cancel.vias[0].branch == ours.branch


def test_in_dialog_requests_follow_the_route_and_strangers_are_answered() -> None:
    server = pbx()
    bye = (
        b"BYE sip:phone@127.0.0.1:5090 SIP/2.0\r\n"
        b"Via: SIP/2.0/UDP 127.0.0.1:5080;branch=z9hG4bKbye;rport\r\n"
        b"Route: <sip:127.0.0.1:5070;lr>\r\nMax-Forwards: 70\r\n"
        b"From: <sip:door@127.0.0.1:5070>;tag=door1\r\nTo: <sip:phone@127.0.0.1:5070>;tag=ph\r\n"
        b"Call-ID: call-1\r\nCSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n"
    )
    ((forwarded, to),) = server.receive(bye, DOOR)
    assert isinstance(forwarded, Request) and to == PHONE and "Route" not in forwarded.headers

    registered(server, "door", DOOR)
    ((challenge, _),) = server.receive(invite(), DOOR)
    auth = answer(challenge, "INVITE", "sip:phone@127.0.0.1:5070", "door", "door-pw")
    ((unreachable, _),) = server.receive(invite(auth=auth, branch="z9hG4bKx"), DOOR)
    assert isinstance(unreachable, Response) and unreachable.status == 480  # not registered
    ((looped, _),) = server.receive(bye.replace(b"Max-Forwards: 70", b"Max-Forwards: 0"), DOOR)
    assert isinstance(looped, Response) and looped.status == 483


def test_garbage_keepalives_and_foreign_responses_are_dropped() -> None:
    server = pbx()
    assert server.receive(b"\r\n\r\n", DOOR) == []
    assert server.receive(b"NOT SIP AT ALL\r\n\r\n", DOOR) == []
    stray = (
        b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1:5080;branch=z9hG4bKz\r\n"
        b"From: <sip:a@b>;tag=1\r\nTo: <sip:c@d>;tag=2\r\nCall-ID: z\r\nCSeq: 1 OPTIONS\r\n"
        b"Content-Length: 0\r\n\r\n"
    )
    assert server.receive(stray, DOOR) == []
    assert parse_message(stray).call_id == "z"  # the drop was the PBX's choice, not a parse error
