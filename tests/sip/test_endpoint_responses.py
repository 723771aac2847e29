"""Responses that match no request of ours change nothing (RFC 3261 §17.1.3, RFC 6026 §8.9).

A Call-ID is no secret: the door logs it at INFO and hands it to INTERCOM_ON_RING. Whoever
learnt it forges responses carrying it, with a branch and a From-tag of its own guessing: a 183
with SDP naming its own RTP address (the door's audio would go there, and the addresses the
door accepts media from would be its), a 200 with its own Contact (the door would ACK and BYE
there). Each must produce no event and send nothing, whether the forger is a stranger (the
gate drops it unparsed) or sits on a trusted host (the endpoint drops it), while the phone's
own responses, a fork's late answer and 2xx retransmissions after Timer M still do their work.
"""

from __future__ import annotations

import logging
import random

import pytest

from intercom.sip.core import Address
from intercom.sip.endpoint import Endpoint, EndpointConfig
from intercom.sip.events import CallAnswered, CallProgressed, Event
from intercom.sip.message import Request, Response, parse_message
from intercom.sip.uri import SipUri
from tests.sip.dialog_peer import ANSWER, DOOR, OFFER, PHONE, Media, in_dialog, reply

SERVER = Address("udp", "192.0.2.5", 5060)  # the SIP server: the door's outbound proxy
TRUSTED_LAN = "192.0.2."  # INTERCOM_TRUSTED_HOSTS: the server's network
FORGERS = {
    "stranger": Address("udp", "203.0.113.66", 5060),
    "trusted host": Address("udp", "192.0.2.77", 5060),  # passes the gate, not the endpoint
}
FORGED_SDP = (
    b"v=0\r\no=mallory 1 1 IN IP4 203.0.113.66\r\ns=-\r\nc=IN IP4 203.0.113.66\r\nt=0 0\r\n"
    b"m=audio 40000 RTP/AVP 0\r\n"
)
TIMER_M = 32.0


def door(*, via_server: bool = True, media: Media | None = None) -> Endpoint:
    """The door as the daemon runs it: the server trusted (and its network), calls through it
    as the outbound proxy unless ``via_server`` is False (a direct call to the phone)."""
    return Endpoint(
        EndpointConfig(DOOR.host, DOOR.port, "door", outbound_proxy=SERVER if via_server else None),
        rng=random.Random(5),
        answer_offer=media if media is not None else Media(),
        is_trusted_source=lambda host: host.startswith(TRUSTED_LAN),
    )


def out(endpoint: Endpoint) -> list[tuple[Request | Response, Address]]:
    return [(parse_message(data), where) for data, where in endpoint.datagrams_to_send()]


def requests(endpoint: Endpoint) -> list[tuple[Request, Address]]:
    return [(m, where) for m, where in out(endpoint) if isinstance(m, Request)]


def events(endpoint: Endpoint) -> list[Event]:
    found = []
    while (event := endpoint.next_event()) is not None:
        found.append(event)
    return found


def place_call(endpoint: Endpoint, now: float = 0.0) -> Request:
    """The door calls the family; its INVITE as sent."""
    endpoint.call(SipUri(SERVER.host if endpoint.config.outbound_proxy else PHONE.host, "family"),
                  ANSWER, now)  # fmt: skip
    [(invite, _)] = requests(endpoint)
    assert invite.method == "INVITE"
    return invite


def forged(
    invite: Request, status: int, *, branch: str = "z9hG4bKguessed", from_tag: str = "guessed",
    to_tag: str = "mallory", call_id: str | None = None, cseq: str = "1 INVITE",
    sdp: bytes = b"",
) -> bytes:  # fmt: skip
    """A response carrying the INVITE's Call-ID (unless told otherwise) and whatever else the
    forger chose: its own branch, From-tag, To-tag, Contact and SDP."""
    head = [
        f"SIP/2.0 {status} Forged",
        f"Via: SIP/2.0/UDP {DOOR.host}:{DOOR.port};branch={branch};rport",
        f"From: <sip:door@{DOOR.host}>;tag={from_tag}",
        f"To: <sip:family@{SERVER.host}>;tag={to_tag}",
        f"Call-ID: {call_id or invite.call_id}",
        f"CSeq: {cseq}",
        "Contact: <sip:mallory@203.0.113.66:5060>",
    ]
    if sdp:
        head.append("Content-Type: application/sdp")
    return ("\r\n".join(head) + f"\r\nContent-Length: {len(sdp)}\r\n\r\n").encode() + sdp


def same_ack(one: Request, other: Request) -> bool:
    """The same ACK sent again (each goes out with a fresh Via branch)."""
    return (
        one.method == other.method == "ACK"
        and all(
            one.headers.get(name) == other.headers.get(name)
            for name in ("From", "To", "Call-ID", "CSeq", "Route")
        )
        and (one.uri, one.body) == (other.uri, other.body)
    )


def connect(endpoint: Endpoint, invite: Request, source: Address, now: float) -> Request:
    """The phone rings and answers (tag "kitchen"); the door's ACK, which went to ``source``."""
    endpoint.receive(reply(invite, 180, to_tag="kitchen"), source, now)
    endpoint.receive(reply(invite, 200, to_tag="kitchen", body=OFFER), source, now)
    [(ack, where)] = requests(endpoint)
    assert ack.method == "ACK" and where == source
    assert [type(e) for e in events(endpoint)] == [CallProgressed, CallAnswered]
    assert endpoint.held().calls[invite.call_id] == "connected"
    return ack


# -- what a forger who knows only the Call-ID can do: nothing --------------------------------


@pytest.mark.parametrize("forger", FORGERS)
def test_a_forged_183_and_200_while_calling_change_nothing(forger: str) -> None:
    endpoint = door()
    invite = place_call(endpoint)
    endpoint.receive(reply(invite, 180, to_tag="kitchen"), SERVER, 0.1)
    [ringing] = events(endpoint)
    assert isinstance(ringing, CallProgressed) and ringing.status == 180
    source = FORGERS[forger]
    endpoint.receive(forged(invite, 183, sdp=FORGED_SDP), source, 0.2)
    endpoint.receive(forged(invite, 200, sdp=FORGED_SDP), source, 0.3)
    assert events(endpoint) == []  # no early media, no answer: the door's audio stays put
    assert out(endpoint) == []  # no ACK, no BYE to the forged Contact
    assert endpoint.held().calls[invite.call_id] == "ringing"
    # The phone's own answer still connects the call, with the phone's SDP.
    endpoint.receive(reply(invite, 200, to_tag="kitchen", body=OFFER), SERVER, 1.0)
    [answered] = events(endpoint)
    assert isinstance(answered, CallAnswered) and answered.sdp == OFFER
    assert [(m.method, where) for m, where in requests(endpoint)] == [("ACK", SERVER)]


@pytest.mark.parametrize("when", [1.0, 1.0 + TIMER_M])  # during Timer M and after it
@pytest.mark.parametrize("forger", FORGERS)
def test_forged_responses_to_a_connected_call_send_nothing(forger: str, when: float) -> None:
    endpoint = door()
    invite = place_call(endpoint)
    connect(endpoint, invite, SERVER, 0.5)
    endpoint.handle_timer(when)  # Timer M ends the INVITE transaction at 0.5 + 32
    out(endpoint)
    source = FORGERS[forger]
    for data in (
        forged(invite, 183, sdp=FORGED_SDP),
        forged(invite, 200, sdp=FORGED_SDP),  # a "fork" of its own: would be ACKed and BYEd
        forged(invite, 200, to_tag="kitchen", sdp=FORGED_SDP),  # the answered leg's tag
        forged(invite, 200, from_tag=invite.from_.tag or "", sdp=FORGED_SDP),  # our tag, too
    ):
        endpoint.receive(data, source, when)
    assert out(endpoint) == [] and events(endpoint) == []
    assert endpoint.held().calls[invite.call_id] == "connected"


def test_a_response_on_the_invites_branch_must_repeat_its_call_id_cseq_and_from() -> None:
    """§8.2.6.2: a response repeats its request's Call-ID, CSeq and From; one that does not
    answers nothing, even on the branch of a live transaction, which does not move either."""
    endpoint = door()
    invite = place_call(endpoint)
    branch, ours = invite.top_via.branch or "", invite.from_.tag or ""
    for data in (
        forged(invite, 486, branch=branch, to_tag="kitchen"),  # a From-tag not ours
        forged(invite, 183, branch=branch, from_tag=ours, call_id="other", sdp=FORGED_SDP),
        forged(invite, 200, branch=branch, from_tag=ours, cseq="7 INVITE", sdp=FORGED_SDP),
    ):
        endpoint.receive(data, FORGERS["trusted host"], 0.1)
    assert out(endpoint) == [] and events(endpoint) == []  # not even the 486's ACK
    assert endpoint.held().calls[invite.call_id] == "calling"
    connect(endpoint, invite, SERVER, 0.5)


def test_after_timer_m_a_2xx_must_match_the_invite_whole() -> None:
    """The stray path of §17.1.3: branch, Call-ID, CSeq and From-tag of the INVITE, a 2xx."""
    endpoint = door()
    invite = place_call(endpoint)
    ack = connect(endpoint, invite, SERVER, 0.0)
    endpoint.handle_timer(TIMER_M)
    assert endpoint.held().client_transactions == 0  # the transaction is gone
    branch, ours = invite.top_via.branch or "", invite.from_.tag or ""
    source = FORGERS["trusted host"]
    for data in (
        forged(invite, 200, branch=branch, to_tag="kitchen"),  # a From-tag not ours
        forged(invite, 200, branch=branch, from_tag=ours, to_tag="kitchen", call_id="other"),
        forged(invite, 200, branch=branch, from_tag=ours, to_tag="kitchen", cseq="2 INVITE"),
        forged(invite, 200, branch=branch, from_tag=ours, to_tag="kitchen", cseq="1 UPDATE"),
        forged(invite, 183, branch=branch, from_tag=ours, to_tag="kitchen", sdp=FORGED_SDP),
        forged(invite, 486, branch=branch, from_tag=ours, to_tag="kitchen"),
    ):
        endpoint.receive(data, source, 40.0)
    assert out(endpoint) == [] and events(endpoint) == []
    # The phone's genuine retransmission of its 200: the same ACK again (§13.2.2.4).
    endpoint.receive(reply(invite, 200, to_tag="kitchen", body=OFFER), SERVER, 40.0)
    [(again, where)] = requests(endpoint)
    assert where == SERVER and same_ack(again, ack)
    assert events(endpoint) == []


def test_in_a_direct_call_only_the_phone_is_heard_on_the_invites_branch() -> None:
    """The callee of a direct call is no trusted host: its responses pass because they carry
    the branch of a request the door sent to its address; the same bytes from another address
    are dropped by the gate, during the transaction and after it."""
    endpoint = door(via_server=False)
    invite = place_call(endpoint)
    stranger = FORGERS["stranger"]
    genuine_183 = reply(invite, 183, to_tag="kitchen", body=FORGED_SDP)
    endpoint.receive(genuine_183, stranger, 0.1)  # a copy, replayed from elsewhere
    assert events(endpoint) == [] and out(endpoint) == []
    ack = connect(endpoint, invite, PHONE, 0.2)
    endpoint.handle_timer(0.2 + TIMER_M)
    genuine_200 = reply(invite, 200, to_tag="kitchen", body=OFFER)
    endpoint.receive(genuine_200, stranger, 40.0)
    assert out(endpoint) == [] and events(endpoint) == []
    endpoint.receive(genuine_200, PHONE, 40.0)
    [(again, where)] = requests(endpoint)
    assert where == PHONE and same_ack(again, ack)


# -- what genuine late responses still do -----------------------------------------------------


def test_a_forked_2xx_during_timer_m_is_acked_and_hung_up() -> None:
    """RFC 6026: Timer M keeps the transaction 64*T1 for the other forks' answers."""
    endpoint = door()
    invite = place_call(endpoint)
    connect(endpoint, invite, SERVER, 0.0)
    endpoint.receive(reply(invite, 200, to_tag="attic", body=OFFER), SERVER, 5.0)
    sent = requests(endpoint)
    assert [(m.method, m.to.tag) for m, _ in sent] == [("ACK", "attic"), ("BYE", "attic")]
    assert {where for _, where in sent} == {SERVER}
    assert events(endpoint) == []  # the call goes on with the kitchen
    assert endpoint.held().calls[invite.call_id] == "connected"


def test_stray_responses_are_logged_once_then_counted(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="intercom.sip.gate")
    endpoint = door()
    invite = place_call(endpoint)
    source = FORGERS["trusted host"]
    for n in range(100):
        endpoint.receive(forged(invite, 183, sdp=FORGED_SDP), source, n * 0.01)
    assert out(endpoint) == [] and events(endpoint) == []
    endpoint.gate.log.flush(1.0)
    lines = [r.getMessage() for r in caplog.records if r.name == "intercom.sip.gate"]
    assert lines == [
        "x stray response from 192.0.2.77 dropped: not for a request of ours; more are counted"
        " and logged once a minute",
        "x dropped 99 stray responses from 192.0.2.77 in the last 1 s: not for a request of ours",
    ]


# -- a re-INVITE's late 2xx ----------------------------------------------------------------------


def _refreshing_call(endpoint: Endpoint, direction: str) -> tuple[Request, Address]:
    """A confirmed call whose session the door refreshes by re-INVITE (the peer's Allow has no
    UPDATE); the door's first refresh re-INVITE, sent at 60.1 s, and where it went."""
    timer = "Supported: timer\r\nSession-Expires: 120;refresher={}\r\nAllow: INVITE, ACK, BYE\r\n"
    if direction == "outgoing":
        invite = place_call(endpoint)
        extra = timer.format("uac")
        endpoint.receive(reply(invite, 200, to_tag="kitchen", body=OFFER, extra=extra), SERVER, 0.1)
        requests(endpoint)  # the ACK
    else:
        incoming = in_dialog(
            "INVITE", call_id="in-1", from_tag="phone1", to_tag=None, cseq=1,
            branch="z9hG4bKin-1", body=OFFER, extra=timer.format("uas"),
        )  # fmt: skip
        endpoint.receive(incoming, SERVER, 0.0)
        events(endpoint)
        endpoint.accept("in-1", ANSWER, 0.1)
        [ok] = [m for m, _ in out(endpoint) if isinstance(m, Response) and m.status == 200]
        ack = in_dialog("ACK", call_id="in-1", from_tag="phone1", to_tag=ok.to.tag, cseq=1,
                        branch="z9hG4bKin-1ack")  # fmt: skip
        endpoint.receive(ack, SERVER, 0.1)
    events(endpoint)
    endpoint.handle_timer(60.1)
    [(reinvite, where)] = requests(endpoint)
    assert reinvite.method == "INVITE" and reinvite.to.tag
    return reinvite, where


@pytest.mark.parametrize("direction", ["outgoing", "incoming"])
def test_a_late_2xx_to_a_re_invite_is_acked_with_the_re_invites_cseq(direction: str) -> None:
    endpoint = door()
    reinvite, server = _refreshing_call(endpoint, direction)
    seq = reinvite.cseq.seq
    their_tag = reinvite.to.tag or ""
    ok = reply(reinvite, 200, to_tag=their_tag, body=OFFER)
    endpoint.receive(ok, server, 60.2)
    [(ack, _)] = requests(endpoint)
    assert (ack.method, ack.cseq.seq) == ("ACK", seq)
    endpoint.handle_timer(60.2 + TIMER_M)  # the re-INVITE's transaction is gone
    endpoint.receive(ok, server, 95.0)  # the peer never got our ACK: its 200 again
    [(again, where)] = requests(endpoint)
    assert (again.method, again.cseq.seq, where) == ("ACK", seq, server)
    assert again.to.tag == their_tag
    # Its To-tag must be the dialog's: another tag on the same branch is a forgery.
    endpoint.receive(reply(reinvite, 200, to_tag="mallory", body=FORGED_SDP).replace(
        f"tag={their_tag}".encode(), b"tag=mallory"), server, 95.5)  # fmt: skip
    assert out(endpoint) == [] and events(endpoint) == []
