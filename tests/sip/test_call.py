"""Tests for intercom.sip.call: the outgoing INVITE, forking, CANCEL, auth and redirects."""

from __future__ import annotations

import hashlib
import logging
import random
import re

import pytest

from intercom.sip.auth import DigestClient
from intercom.sip.build import ALLOWED_METHODS, make_response
from intercom.sip.call import TIMER_CANCEL, CallState, OutgoingCall
from intercom.sip.core import Address, Ids
from intercom.sip.events import CallAnswered, CallEnded, CallFailed, CallProgressed
from intercom.sip.message import Headers, Request, Response
from intercom.sip.uri import NameAddr, SipUri
from tests.sip.test_session import FakeSender

TARGET = SipUri.parse("sip:family@pbx.example")
LOCAL = NameAddr.parse('"Door" <sip:door@pbx.example>')
CONTACT = NameAddr.parse("<sip:door@192.0.2.10:5060>")
SERVER = Address("udp", "192.0.2.1", 5060)
OFFER = b"v=0\r\no=door 1 1 IN IP4 192.0.2.10\r\ns=-\r\nc=IN IP4 192.0.2.10\r\nt=0 0\r\n"
ANSWER = b"v=0\r\no=phone 7 7 IN IP4 192.0.2.21\r\ns=-\r\nc=IN IP4 192.0.2.21\r\nt=0 0\r\n"
RECORD_ROUTE = ["<sip:192.0.2.1;lr;ftag=x>", "<sip:198.51.100.7;lr>"]  # as in the 200, top first


def make_call(
    password: str = "secret", offer: bytes | None = OFFER
) -> tuple[OutgoingCall, FakeSender]:
    sender = FakeSender()
    ids = Ids(random.Random(7))
    call = OutgoingCall(
        sender=sender, ids=ids, auth=DigestClient("door", password, cnonce_factory=ids.cnonce),
        local=LOCAL, target=TARGET, contact=lambda: CONTACT, offer=offer,
        answer_offer=lambda call_id, sdp: ANSWER, destination=SERVER,
    )  # fmt: skip
    call.start(0.0)
    return call, sender


def invites(sender: FakeSender) -> list[Request]:
    return sender.sent("INVITE")


def reply(
    invite: Request,
    status: int,
    *,
    tag: str | None = None,
    contact: str | None = "<sip:201@192.0.2.21:5062>",
    sdp: bytes | None = None,
    headers: tuple[tuple[str, str], ...] = (),
    record_route: list[str] | None = None,
) -> Response:
    """The response a phone behind the forking proxy would send (Record-Route included)."""
    response = make_response(invite, status, to_tag=tag)
    if 100 < status < 300:
        for value in RECORD_ROUTE if record_route is None else record_route:
            response.headers.add("Record-Route", value)
        if contact:
            response.headers.add("Contact", contact)
    for name, value in headers:
        response.headers.add(name, value)
    if sdp is not None:
        response.headers.add("Content-Type", "application/sdp")
        response.body = sdp
    return response


def feed(call: OutgoingCall, response: Response, now: float = 1.0) -> None:
    call.on_response(call.invite, response, now)


# -- the INVITE -------------------------------------------------------------------------------


def test_invite_headers() -> None:
    call, sender = make_call()
    ((invite, tu, destination),) = sender.requests
    assert (invite.method, str(invite.uri)) == ("INVITE", "sip:family@pbx.example")
    assert tu is call
    assert destination == SERVER
    tag = invite.from_.tag
    assert tag is not None and len(tag) == 12
    names = [name for name, _ in invite.headers]
    assert names == [
        "Via", "Max-Forwards", "From", "To", "Call-ID", "CSeq", "Contact", "Allow", "Supported",
        "User-Agent", "Content-Type",
    ]  # fmt: skip
    assert invite.headers.get("From") == f'"Door" <sip:door@pbx.example>;tag={tag}'
    assert invite.headers.get("To") == "<sip:family@pbx.example>"
    assert invite.headers.get("Call-ID") == call.call_id
    assert invite.headers.get("CSeq") == "1 INVITE"
    assert invite.headers.get("Max-Forwards") == "70"
    assert invite.headers.get("Contact") == "<sip:door@192.0.2.10:5060>"
    assert invite.headers.get("Allow") == ALLOWED_METHODS
    assert invite.headers.get("Supported") == "timer"
    assert invite.headers.get("User-Agent") == "intercom/0.1.0"
    assert invite.headers.get("Content-Type") == "application/sdp"
    assert invite.body == OFFER
    assert call.state is CallState.CALLING


# -- provisional responses and forking --------------------------------------------------------


def test_100_keeps_calling(caplog: pytest.LogCaptureFixture) -> None:
    call, sender = make_call()
    feed(call, reply(call.invite, 100))
    assert call.state is CallState.CALLING
    assert call.legs == 0
    assert sender.events == []


def test_180_from_two_phones(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="intercom.sip.call")
    call, sender = make_call()
    feed(call, reply(call.invite, 180, tag="kitchen"))
    feed(call, reply(call.invite, 180, tag="kitchen"))  # a repeat: nothing new
    feed(call, reply(call.invite, 180, tag="attic"))
    assert call.state is CallState.RINGING
    assert call.legs == 2
    assert sender.events == [
        CallProgressed(call.call_id, 180, "Ringing", legs=1),
        CallProgressed(call.call_id, 180, "Ringing", legs=2),
    ]
    lines = [r.getMessage() for r in caplog.records if r.name == "intercom.sip.call"]
    assert lines[-2:] == [
        "call to sip:family@pbx.example: 180 Ringing from 1 phone",
        "call to sip:family@pbx.example: 180 Ringing from 2 phones",
    ]


def test_183_with_sdp_is_early_media() -> None:
    call, sender = make_call()
    feed(call, reply(call.invite, 183, tag="kitchen", sdp=ANSWER))
    assert sender.events == [
        CallProgressed(call.call_id, 183, "Session Progress", legs=1, sdp=ANSWER)
    ]
    assert call.state is CallState.RINGING


# -- the answer -------------------------------------------------------------------------------


def test_200_is_acked_through_the_record_route() -> None:
    call, sender = make_call()
    invite = call.invite
    feed(call, reply(invite, 180, tag="kitchen"))
    ok = reply(invite, 200, tag="kitchen", sdp=ANSWER)
    feed(call, ok, now=2.0)

    ((ack, destination),) = sender.acks
    assert destination is None  # routed by its Route header
    tag = invite.from_.tag
    assert (
        ack.encode()
        == (
            "ACK sip:201@192.0.2.21:5062 SIP/2.0\r\n"  # loose routing: the Contact of the 200
            "Route: <sip:198.51.100.7;lr>\r\n"  # Record-Route reversed (§12.1.2)
            "Route: <sip:192.0.2.1;lr;ftag=x>\r\n"
            "Max-Forwards: 70\r\n"
            f'From: "Door" <sip:door@pbx.example>;tag={tag}\r\n'
            "To: <sip:family@pbx.example>;tag=kitchen\r\n"
            f"Call-ID: {call.call_id}\r\n"
            "CSeq: 1 ACK\r\n"
            "Content-Length: 0\r\n\r\n"
        ).encode()
    )
    assert call.state is CallState.CONNECTED
    assert sender.events[-1] == CallAnswered(
        call.call_id, ANSWER, "<sip:family@pbx.example>;tag=kitchen"
    )
    assert call.session is not None
    assert call.session.dialog.remote_tag == "kitchen"
    assert call.session.dialog.local_seq == 1
    assert [r.method for r, _, _ in sender.requests] == ["INVITE"]  # no BYE, no CANCEL
    assert sender.cancels == []


def test_second_200_from_another_phone_is_acked_and_hung_up() -> None:
    call, sender = make_call()
    invite = call.invite
    feed(call, reply(invite, 180, tag="kitchen"))
    feed(call, reply(invite, 180, tag="attic"))
    feed(call, reply(invite, 200, tag="kitchen", sdp=ANSWER), now=2.0)
    feed(
        call,
        reply(invite, 200, tag="attic", sdp=ANSWER, contact="<sip:202@192.0.2.22:5062>"),
        now=2.1,
    )

    assert [(a.headers.get("To"), str(a.uri)) for a, _ in sender.acks] == [
        ("<sip:family@pbx.example>;tag=kitchen", "sip:201@192.0.2.21:5062"),
        ("<sip:family@pbx.example>;tag=attic", "sip:202@192.0.2.22:5062"),
    ]
    (bye,) = sender.sent("BYE")
    assert bye.headers.get("To") == "<sip:family@pbx.example>;tag=attic"
    assert str(bye.uri) == "sip:202@192.0.2.22:5062"
    assert bye.headers.get("CSeq") == "2 BYE"
    assert bye.headers.get_all("Route") == ["<sip:198.51.100.7;lr>", "<sip:192.0.2.1;lr;ftag=x>"]
    bye_tu = sender.requests[-1][1]
    assert bye_tu is not call and bye_tu is not call.session
    bye_tu.on_response(bye, make_response(bye, 200), 2.2)  # only logged

    # The first dialog is untouched: one CallAnswered, still connected to the kitchen.
    assert [type(e) for e in sender.events].count(CallAnswered) == 1
    assert call.state is CallState.CONNECTED
    assert call.session is not None
    assert call.session.dialog.remote_tag == "kitchen"
    assert call.session.dialog.local_seq == 1
    assert not call.session.ended


def test_retransmitted_200_gets_the_same_ack_again() -> None:
    call, sender = make_call()
    ok = reply(call.invite, 200, tag="kitchen", sdp=ANSWER)
    feed(call, ok, now=1.0)
    feed(call, ok, now=1.5)
    feed(call, ok, now=2.5)
    first, second, third = (ack for ack, _ in sender.acks)
    assert first.encode() == second.encode() == third.encode()
    assert [type(e) for e in sender.events] == [CallAnswered]
    assert sender.sent("BYE") == []


def test_busy_fails_without_an_ack_of_ours(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="intercom.sip.call")
    call, sender = make_call()
    feed(call, reply(call.invite, 180, tag="kitchen"))
    feed(call, reply(call.invite, 486, tag="kitchen"))
    assert sender.events[-1] == CallFailed(call.call_id, 486, "busy")
    assert sender.acks == []  # the transaction ACKs a non-2xx (§17.1.1.3)
    assert call.state is CallState.ENDED
    assert call.ended
    assert "call to sip:family@pbx.example failed: 486 Busy Here" in caplog.messages


@pytest.mark.parametrize(
    ("status", "reason"),
    [(603, "declined"), (404, "unavailable"), (480, "unavailable"), (408, "timeout"),
     (600, "busy"), (503, "503 Service Unavailable")],
)  # fmt: skip
def test_final_status_outcomes(status: int, reason: str) -> None:
    call, sender = make_call()
    feed(call, reply(call.invite, status, tag="x"))
    assert sender.events == [CallFailed(call.call_id, status, reason)]


# -- cancel -----------------------------------------------------------------------------------


def test_cancel_before_any_provisional_waits_for_one() -> None:
    call, sender = make_call()
    call.cancel(0.5)
    assert sender.cancels == []  # §9.1: not before a provisional response
    assert call.state is CallState.CANCELLING
    feed(call, reply(call.invite, 180, tag="kitchen"), now=0.8)
    assert sender.cancels == [(call.invite, call)]
    assert sender.events == []  # no progress reported once cancelling
    feed(call, reply(call.invite, 487, tag="kitchen"), now=0.9)
    assert sender.events == [CallFailed(call.call_id, 487, "cancelled")]
    assert call.ended


def test_cancel_before_any_provisional_is_bounded_even_if_the_invite_is_lost() -> None:
    call, sender = make_call()
    call.cancel(0.5)
    assert call.get_timer() == 0.5 + TIMER_CANCEL  # normally Timer B (at 32.0) ends it first
    call.handle_timer(0.5 + TIMER_CANCEL)
    assert sender.cancels == []
    assert sender.events == [CallFailed(call.call_id, None, "cancelled")]
    assert call.ended and call.get_timer() is None


def test_cancel_after_180_then_487() -> None:
    call, sender = make_call()
    feed(call, reply(call.invite, 180, tag="kitchen"), now=1.0)
    call.hangup(30.0)  # the ring timeout, say
    assert sender.cancels == [(call.invite, call)]
    assert call.get_timer() == 62.0  # 64*T1 after the CANCEL (§9.1)
    feed(call, reply(call.invite, 487, tag="kitchen"), now=30.1)
    assert sender.events[-1] == CallFailed(call.call_id, 487, "cancelled")
    assert call.get_timer() is None
    call.cancel(31.0)  # nothing more
    assert len(sender.cancels) == 1


def test_cancel_without_any_final_ends_after_64_t1() -> None:
    call, sender = make_call()
    feed(call, reply(call.invite, 180, tag="kitchen"), now=1.0)
    call.cancel(10.0)
    ((_, cancel_tu),) = sender.cancels
    cancel = Request(headers=Headers([("CSeq", "1 CANCEL")]), method="CANCEL", uri=SipUri("x"))
    cancel_tu.on_transaction_failed(cancel, "timeout", 42.0)  # Timer F of the CANCEL
    assert sender.events[1:] == []
    call.handle_timer(42.0)
    assert sender.events[1:] == [CallFailed(call.call_id, None, "cancelled")]
    assert call.ended


def test_200_after_cancel_is_acked_hung_up_and_reported_failed() -> None:
    call, sender = make_call()
    feed(call, reply(call.invite, 180, tag="kitchen"), now=1.0)
    call.cancel(5.0)
    feed(call, reply(call.invite, 200, tag="kitchen", sdp=ANSWER), now=5.05)
    assert len(sender.acks) == 1
    (bye,) = sender.sent("BYE")
    assert bye.headers.get("To") == "<sip:family@pbx.example>;tag=kitchen"
    assert sender.events[-1] == CallFailed(call.call_id, 200, "cancelled")
    assert CallAnswered not in [type(e) for e in sender.events]
    assert call.session is None
    assert call.ended
    # A second phone's 2xx after that: ACK and BYE too, nothing reported.
    feed(call, reply(call.invite, 200, tag="attic", sdp=ANSWER), now=5.1)
    assert len(sender.acks) == 2
    assert len(sender.sent("BYE")) == 2
    assert len([e for e in sender.events if isinstance(e, CallFailed)]) == 1


def test_timer_b_while_cancel_waits_reports_cancelled() -> None:
    call, sender = make_call()
    call.cancel(1.0)
    call.on_transaction_failed(call.invite, "timeout", 32.0)
    assert sender.events == [CallFailed(call.call_id, None, "cancelled")]
    assert sender.cancels == []


# -- authentication ---------------------------------------------------------------------------

CHALLENGE = 'Digest realm="asterisk", nonce="{nonce}", qop="auth", algorithm=MD5'


def _md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


def _params(value: str) -> dict[str, str]:
    pairs = re.findall(r'([a-z]+)=(?:"([^"]*)"|([^\s,]+))', value.removeprefix("Digest "))
    return {k: quoted or bare for k, quoted, bare in pairs}


def challenge(invite: Request, nonce: str) -> Response:
    return reply(
        invite, 407, tag="pbx", headers=(("Proxy-Authenticate", CHALLENGE.format(nonce=nonce)),)
    )


def test_407_is_answered_with_a_second_invite() -> None:
    call, sender = make_call()
    first = call.invite
    feed(call, challenge(first, "n1"))
    first_invite, second = invites(sender)
    assert first_invite is first
    assert second.headers.get("CSeq") == "2 INVITE"
    assert second.call_id == first.call_id
    assert second.headers.get("From") == first.headers.get("From")
    assert second.headers.get("To") == "<sip:family@pbx.example>"
    assert second.top_via.branch != first.top_via.branch
    assert sender.requests[1][2] == SERVER
    value = second.headers.get("Proxy-Authorization")
    assert value is not None
    params = _params(value)
    assert (params["username"], params["realm"], params["nonce"]) == ("door", "asterisk", "n1")
    assert params["uri"] == "sip:family@pbx.example"
    assert (params["qop"], params["nc"]) == ("auth", "00000001")
    ha1 = _md5("door:asterisk:secret")
    ha2 = _md5("INVITE:sip:family@pbx.example")
    expected = _md5(f"{ha1}:n1:00000001:{params['cnonce']}:auth:{ha2}")
    assert params["response"] == expected
    assert sender.events == []

    # The answer to the authenticated INVITE carries its credentials in the ACK (§13.2.2.4).
    feed(call, reply(second, 200, tag="kitchen", sdp=ANSWER))
    ((ack, _),) = sender.acks
    assert ack.headers.get("CSeq") == "2 ACK"
    assert ack.headers.get("Proxy-Authorization") == value


def test_wrong_password_fails_after_two_invites(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    call, sender = make_call(password="wrong")
    feed(call, challenge(call.invite, "n1"))
    feed(call, challenge(call.invite, "n2"))  # not stale: the password is wrong
    assert len(invites(sender)) == 2
    assert sender.events == [
        CallFailed(
            call.call_id, 407,
            "407 Proxy Authentication Required: wrong credentials for realm asterisk",
        )
    ]  # fmt: skip
    warnings = [r for r in caplog.records if r.name == "intercom.sip.call"
                and r.levelno == logging.WARNING]  # fmt: skip
    assert [r.getMessage() for r in warnings] == [
        "call to sip:family@pbx.example failed: "
        "407 Proxy Authentication Required: wrong credentials for realm asterisk"
    ]
    assert all("response=" not in m and "secret" not in m for m in caplog.messages)


def test_stale_challenges_are_capped() -> None:
    call, sender = make_call()
    for n in range(5):
        stale = reply(
            call.invite, 401, tag="pbx",
            headers=(("WWW-Authenticate", CHALLENGE.format(nonce=f"s{n}") + ", stale=true"),),
        )  # fmt: skip
        feed(call, stale)
    assert len(invites(sender)) == 4  # the first and three answers
    assert sender.events == [CallFailed(call.call_id, 401, "401 Unauthorized: too many challenges")]


# -- redirect ---------------------------------------------------------------------------------


def test_302_is_followed_once() -> None:
    call, sender = make_call()
    moved = reply(call.invite, 302, tag="r")
    moved.headers.add("Contact", "<sip:203@192.0.2.23:5064;transport=udp>")
    feed(call, moved)
    _, second = invites(sender)
    assert str(second.uri) == "sip:203@192.0.2.23:5064;transport=udp"
    assert second.headers.get("To") == "<sip:family@pbx.example>"
    assert second.headers.get("CSeq") == "2 INVITE"
    assert second.call_id == call.call_id
    assert sender.requests[1][2] is None  # routed to the new target by the endpoint
    assert sender.events == []

    again = reply(second, 302, tag="r")
    again.headers.add("Contact", "<sip:204@192.0.2.24>")
    feed(call, again)
    assert len(invites(sender)) == 2
    assert sender.events == [CallFailed(call.call_id, 302, "302 Moved Temporarily")]


# -- transaction failures ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reason", "outcome"), [("timeout", "timeout"), ("transport", "unreachable")]
)
def test_timer_b_fails_the_call(reason: str, outcome: str) -> None:
    call, sender = make_call()
    call.on_transaction_failed(call.invite, reason, 32.0)
    assert sender.events == [CallFailed(call.call_id, None, outcome)]
    assert call.state is CallState.ENDED


# -- after the answer -------------------------------------------------------------------------


def connected() -> tuple[OutgoingCall, FakeSender]:
    call, sender = make_call()
    feed(call, reply(call.invite, 180, tag="kitchen"))
    feed(call, reply(call.invite, 180, tag="attic"))
    feed(call, reply(call.invite, 200, tag="kitchen", sdp=ANSWER), now=2.0)
    return call, sender


def peer_request(call: OutgoingCall, method: str, seq: int, tag: str = "kitchen") -> Request:
    headers = Headers()
    headers.add("Via", f"SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK{method}{seq}{tag}")
    headers.add("From", f"<sip:family@pbx.example>;tag={tag}")
    headers.add("To", call.invite.headers.get("From") or "")
    headers.add("Call-ID", call.call_id)
    headers.add("CSeq", f"{seq} {method}")
    return Request(headers=headers, method=method, uri=SipUri("192.0.2.10", "door", 5060))


def test_bye_from_peer_after_answer() -> None:
    call, sender = connected()
    response = call.on_request(peer_request(call, "BYE", 1), 20.0)
    assert response is not None
    assert (response.status, response.headers.get("CSeq")) == (200, "1 BYE")
    assert sender.events[-1] == CallEnded(call.call_id, "BYE from peer", by_peer=True)
    assert call.state is CallState.ENDED
    assert call.ended


def test_hangup_sends_bye_with_cseq_2() -> None:
    call, sender = connected()
    call.hangup(20.0)
    (bye,) = sender.sent("BYE")
    assert bye.headers.get("CSeq") == "2 BYE"
    assert str(bye.uri) == "sip:201@192.0.2.21:5062"
    assert bye.headers.get("To") == "<sip:family@pbx.example>;tag=kitchen"
    assert bye.headers.get("Call-ID") == call.call_id
    assert sender.requests[-1][1] is call.session
    assert sender.events[-1] == CallEnded(call.call_id, "hung up", by_peer=False)
    assert call.ended


def test_requests_on_other_legs() -> None:
    call, _ = connected()
    bye = call.on_request(peer_request(call, "BYE", 1, tag="attic"), 3.0)  # an early leg ends
    assert bye is not None and bye.status == 200
    info = call.on_request(peer_request(call, "INFO", 2, tag="attic"), 3.0)
    assert info is not None and info.status == 481
    stranger = call.on_request(peer_request(call, "BYE", 1, tag="nobody"), 3.0)
    assert stranger is not None and stranger.status == 481
    assert call.on_request(peer_request(call, "ACK", 1, tag="nobody"), 3.0) is None
    assert call.state is CallState.CONNECTED


def test_session_timer_from_the_200() -> None:
    call, sender = make_call()
    ok = reply(
        call.invite, 200, tag="kitchen", sdp=ANSWER,
        headers=(("Session-Expires", "300;refresher=uas"), ("Require", "timer")),
    )  # fmt: skip
    feed(call, ok, now=2.0)
    assert call.get_timer() == 2.0 + 300 - 32
    call.handle_timer(270.0)
    assert sender.events[-1] == CallEnded(call.call_id, "session timer expired", by_peer=False)
    assert len(sender.sent("BYE")) == 1


def test_offerless_invite_answers_in_the_ack() -> None:
    call, sender = make_call(offer=None)
    assert call.invite.body == b""
    assert call.invite.headers.get("Content-Type") is None
    feed(call, reply(call.invite, 200, tag="kitchen", sdp=OFFER))
    ((ack, _),) = sender.acks
    assert ack.body == ANSWER
    assert ack.headers.get("Content-Type") == "application/sdp"
    assert sender.events == [
        CallAnswered(call.call_id, OFFER, "<sip:family@pbx.example>;tag=kitchen")
    ]


def test_the_calls_credentials_answer_a_challenge_to_its_bye() -> None:
    call, sender = connected()
    call.hangup(20.0)
    (first,) = sender.sent("BYE")
    assert first.headers.get("CSeq") == "2 BYE"
    assert call.session is not None
    call.session.on_response(first, challenge(first, "b1"), 20.1)

    _, second = sender.sent("BYE")
    assert sender.requests[-1][1] is call.session
    assert second.headers.get("CSeq") == "3 BYE"
    assert second.call_id == call.call_id
    assert second.headers.get("From") == first.headers.get("From")
    assert second.headers.get("To") == "<sip:family@pbx.example>;tag=kitchen"
    assert str(second.uri) == "sip:201@192.0.2.21:5062"
    params = _params(second.headers.get("Proxy-Authorization") or "")
    assert (params["username"], params["realm"], params["nonce"]) == ("door", "asterisk", "b1")
    assert (params["uri"], params["nc"]) == ("sip:201@192.0.2.21:5062", "00000001")
    ha1 = _md5("door:asterisk:secret")
    ha2 = _md5("BYE:sip:201@192.0.2.21:5062")
    assert params["response"] == _md5(f"{ha1}:b1:00000001:{params['cnonce']}:auth:{ha2}")
    assert sender.events[-1] == CallEnded(call.call_id, "hung up", by_peer=False)
