"""Tests for intercom.sip.session: an established dialog's behaviour until BYE."""

from __future__ import annotations

import hashlib
import logging
import random
import re
from dataclasses import dataclass, field, replace

import pytest

from intercom.sip.auth import DigestClient
from intercom.sip.build import ACCEPTED_BODIES, ALLOWED_METHODS, SUPPORTED, make_response
from intercom.sip.core import Address, Ids, TransactionUser
from intercom.sip.dialog import Dialog, DialogState
from intercom.sip.events import CallEnded, Event, InfoReceived, MediaUpdated
from intercom.sip.message import Headers, Request, Response
from intercom.sip.session import (
    Session,
    SessionTimer,
    interval_too_small,
    uac_session_timer,
    uas_session_timer,
)
from intercom.sip.uri import NameAddr, SipUri

# -- a fake endpoint, shared with test_call.py -----------------------------------------------


@dataclass
class FakeSender:
    """Implements the core.Sender protocol and records everything the TU asked for."""

    ids: Ids = field(default_factory=lambda: Ids(random.Random(4242)))
    requests: list[tuple[Request, TransactionUser, Address | None]] = field(default_factory=list)
    acks: list[tuple[Request, Address | None]] = field(default_factory=list)
    cancels: list[tuple[Request, TransactionUser]] = field(default_factory=list)
    responses: list[Response] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)

    def send_request(
        self, request: Request, tu: TransactionUser, destination: Address | None = None
    ) -> Request:
        # As the real endpoint does: the request as sent has its Via (fresh branch).
        headers = request.headers.copy()
        headers.prepend("Via", f"SIP/2.0/UDP 192.0.2.10:5060;rport;branch={self.ids.branch()}")
        sent = replace(request, headers=headers)
        self.requests.append((sent, tu, destination))
        return sent

    def send_ack(self, ack: Request, destination: Address | None = None) -> None:
        self.acks.append((ack, destination))

    def send_cancel(self, invite: Request, tu: TransactionUser) -> None:
        self.cancels.append((invite, tu))

    def send_response(self, response: Response) -> None:
        self.responses.append(response)

    def emit(self, event: Event) -> None:
        self.events.append(event)

    def sent(self, method: str) -> list[Request]:
        return [r for r, _, _ in self.requests if r.method == method]


# -- a confirmed dialog: the intercom called the family phone ---------------------------------

CALL_ID = "a84b4c76e66710"
OURS = '"Door" <sip:door@pbx.example>;tag=1928301774'
THEIRS = "<sip:family@pbx.example>;tag=a6c85cf"
PEER_CONTACT = "<sip:201@192.0.2.21:5062>"
CONTACT = NameAddr.parse("<sip:door@192.0.2.10:5060>")
OFFER = b"v=0\r\no=door 1 1 IN IP4 192.0.2.10\r\ns=-\r\nc=IN IP4 192.0.2.10\r\nt=0 0\r\n"
HOLD = b"v=0\r\no=phone 5 6 IN IP4 192.0.2.21\r\ns=-\r\nt=0 0\r\na=sendonly\r\n"
HELD = b"v=0\r\no=door 1 2 IN IP4 192.0.2.10\r\ns=-\r\nt=0 0\r\na=recvonly\r\n"


def make_dialog() -> Dialog:
    return Dialog(
        call_id=CALL_ID,
        local=NameAddr.parse(OURS),
        remote=NameAddr.parse(THEIRS),
        remote_target=SipUri.parse("sip:201@192.0.2.21:5062"),
        route_set=[NameAddr.parse("<sip:pbx.example;lr>")],
        local_seq=1,
        state=DialogState.CONFIRMED,
    )


class Media:
    """The media layer's answer_offer: records offers, answers with a fixed SDP (or None)."""

    def __init__(self, answer: bytes | None = HELD) -> None:
        self.answer = answer
        self.offers: list[bytes] = []

    def __call__(self, call_id: str, offer: bytes) -> bytes | None:
        self.offers.append(offer)
        return self.answer


def make_session(
    *, now: float = 0.0, media: Media | None = None, timer: SessionTimer | None = None,
    auth: DigestClient | None = None, allow: str = "INVITE, ACK, BYE, UPDATE",
    ids: Ids | None = None, owns_call_id: bool = False,
) -> tuple[Session, FakeSender, Media]:  # fmt: skip
    """``allow``: the Allow of the peer's INVITE (UPDATE in it: refreshes are UPDATEs)."""
    sender = FakeSender()
    media = media or Media()
    session = Session(
        make_dialog(), sender=sender, answer_offer=media, contact=lambda: CONTACT, now=now,
        local_sdp=OFFER, timer=timer, auth=auth, peer=peer_request("INVITE", 1, b"",
        ("Allow", allow)), ids=ids, owns_call_id=owns_call_id,
    )  # fmt: skip
    return session, sender, media


def peer_request(
    method: str, seq: int, body: bytes = b"", *extra: tuple[str, str], branch: str = ""
) -> Request:
    """A request from the phone inside the dialog, as the endpoint would hand it over."""
    headers = Headers()
    headers.add("Via", f"SIP/2.0/UDP 192.0.2.21:5062;branch=z9hG4bK{branch or method}{seq}")
    headers.add("Max-Forwards", "70")
    headers.add("From", THEIRS)
    headers.add("To", OURS)
    headers.add("Call-ID", CALL_ID)
    headers.add("CSeq", f"{seq} {method}")
    headers.add("Contact", PEER_CONTACT)
    for name, value in extra:
        headers.add(name, value)
    if body:
        headers.add("Content-Type", "application/sdp")
    return Request(headers=headers, body=body, method=method, uri=CONTACT.uri)


def answer(session: Session, request: Request, now: float = 0.0) -> Response:
    response = session.on_request(request, now)
    assert response is not None
    return response


def drive(session: Session, until: float) -> list[float]:
    """Fire every timer up to ``until``; the instants it fired at."""
    fired: list[float] = []
    while (at := session.get_timer()) is not None and at <= until:
        fired.append(at)
        session.handle_timer(at)
    return fired


# -- in-dialog requests -----------------------------------------------------------------------


def test_cseq_out_of_order_gets_500() -> None:
    session, _, _ = make_session()
    assert answer(session, peer_request("INFO", 5)).status == 200
    assert answer(session, peer_request("INFO", 4)).status == 500
    assert answer(session, peer_request("INFO", 5)).status == 500
    assert answer(session, peer_request("INFO", 6)).status == 200


def test_reinvite_hold_is_answered_and_its_2xx_retransmitted_until_ack() -> None:
    session, sender, media = make_session(now=100.0)
    reinvite = peer_request("INVITE", 2, HOLD)
    response = answer(session, reinvite, now=100.0)

    assert media.offers == [HOLD]
    assert (response.status, response.reason) == (200, "OK")
    assert response.body == HELD
    assert response.headers.get("Content-Type") == "application/sdp"
    assert response.headers.get("Contact") == "<sip:door@192.0.2.10:5060>"
    assert response.headers.get("Allow") == ALLOWED_METHODS
    assert response.headers.get("Supported") == SUPPORTED
    assert response.headers.get("CSeq") == "2 INVITE"
    assert response.headers.get("To") == OURS
    assert sender.events == [MediaUpdated(CALL_ID, HOLD, HELD)]
    assert session.dialog.remote_target == SipUri.parse("sip:201@192.0.2.21:5062")

    assert drive(session, until=112.0) == [100.5, 101.5, 103.5, 107.5, 111.5]
    assert sender.responses == [response] * 5
    assert session.on_request(peer_request("ACK", 2), now=112.0) is None
    assert session.get_timer() is None
    assert drive(session, until=200.0) == []
    assert len(sender.responses) == 5
    assert not session.ended


def test_ack_for_another_cseq_does_not_stop_retransmissions() -> None:
    session, _, _ = make_session()
    answer(session, peer_request("INVITE", 3, HOLD))
    assert session.on_request(peer_request("ACK", 2), now=0.2) is None
    assert session.get_timer() == 0.5


def test_no_ack_within_64_t1_sends_bye_and_ends() -> None:
    session, sender, _ = make_session()
    answer(session, peer_request("INVITE", 2, HOLD))

    fired = drive(session, until=60.0)

    retransmits = [0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5]
    assert fired == [*retransmits, 32.0]
    assert len(sender.responses) == len(retransmits)
    (bye,) = sender.sent("BYE")
    assert bye.headers.get("CSeq") == "2 BYE"
    assert str(bye.uri) == "sip:201@192.0.2.21:5062"
    assert sender.events[-1] == CallEnded(CALL_ID, "no ACK", by_peer=False)
    assert session.ended
    assert session.get_timer() is None


def test_update_with_sdp_is_answered_without_retransmission() -> None:
    session, sender, media = make_session()
    response = answer(session, peer_request("UPDATE", 2, HOLD))
    assert response.status == 200
    assert response.body == HELD
    assert response.headers.get("Contact") == "<sip:door@192.0.2.10:5060>"
    assert media.offers == [HOLD]
    assert sender.events == [MediaUpdated(CALL_ID, HOLD, HELD)]
    assert session.get_timer() is None


@pytest.mark.parametrize("method", ["INVITE", "UPDATE"])
def test_unacceptable_offer_gets_488(method: str) -> None:
    session, sender, _ = make_session(media=Media(answer=None))
    response = answer(session, peer_request(method, 2, HOLD))
    assert (response.status, response.reason) == (488, "Not Acceptable Here")
    assert response.body == b""
    assert sender.events == []
    assert session.get_timer() is None  # nothing to retransmit
    assert not session.ended


def test_reinvite_without_sdp_offers_ours_and_takes_the_answer_from_the_ack() -> None:
    session, sender, media = make_session()
    response = answer(session, peer_request("INVITE", 2))
    assert response.status == 200
    assert response.body == OFFER
    assert media.offers == []

    # A new offer while ours is unanswered: 491 (RFC 3261 §14.2, RFC 3311 §5.2).
    assert answer(session, peer_request("UPDATE", 3, HOLD), now=0.3).status == 491

    ack_answer = b"v=0\r\no=phone 5 7 IN IP4 192.0.2.21\r\ns=-\r\nt=0 0\r\n"
    assert session.on_request(peer_request("ACK", 2, ack_answer), now=0.4) is None
    assert sender.events == [MediaUpdated(CALL_ID, OFFER, ack_answer)]
    assert session.get_timer() is None


def test_info_is_reported() -> None:
    session, sender, _ = make_session()
    info = peer_request("INFO", 2)
    info.headers.add("Content-Type", "application/dtmf-relay")
    info.body = b"Signal=5\r\nDuration=160\r\n"
    response = answer(session, info)
    assert response.status == 200
    assert sender.events == [
        InfoReceived(CALL_ID, "application/dtmf-relay", b"Signal=5\r\nDuration=160\r\n")
    ]


def test_options_lists_what_we_do() -> None:
    session, _, _ = make_session()
    response = answer(session, peer_request("OPTIONS", 2))
    assert response.status == 200
    assert response.headers.get("Allow") == "INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, UPDATE"
    assert response.headers.get("Accept") == ACCEPTED_BODIES
    assert response.headers.get("Supported") == "timer"


def test_unknown_method_gets_501_with_allow() -> None:
    session, sender, _ = make_session()
    response = answer(session, peer_request("REFER", 2))
    assert (response.status, response.reason) == (501, "Not Implemented")
    assert response.headers.get("Allow") == ALLOWED_METHODS
    assert sender.events == []


def test_bye_from_peer_ends_the_session() -> None:
    session, sender, _ = make_session()
    response = answer(session, peer_request("BYE", 2))
    assert (response.status, response.headers.get("CSeq")) == (200, "2 BYE")
    assert sender.events == [CallEnded(CALL_ID, "BYE from peer", by_peer=True)]
    assert session.ended
    assert session.dialog.state is DialogState.TERMINATED
    assert sender.requests == []  # no BYE of ours
    assert answer(session, peer_request("INFO", 3)).status == 481
    assert answer(session, peer_request("BYE", 4)).status == 200  # a retransmission, say


def test_hangup_sends_bye_through_the_dialog() -> None:
    session, sender, _ = make_session()
    session.hangup(5.0)
    (bye,) = sender.sent("BYE")
    assert str(bye.uri) == "sip:201@192.0.2.21:5062"
    assert bye.headers.get_all("Route") == ["<sip:pbx.example;lr>"]
    assert bye.headers.get("From") == OURS
    assert bye.headers.get("To") == THEIRS
    assert bye.headers.get("CSeq") == "2 BYE"
    assert bye.headers.get("Call-ID") == CALL_ID
    assert sender.requests[0][1] is session
    assert sender.events == [CallEnded(CALL_ID, "hung up", by_peer=False)]
    # The BYE's outcome is only logged; hanging up twice does nothing.
    session.on_response(bye, make_response(bye, 481), 5.1)
    session.hangup(6.0)
    assert len(sender.requests) == 1
    assert len(sender.events) == 1


# -- session timers (RFC 4028) ----------------------------------------------------------------


def test_refresh_is_answered_with_session_expires_and_the_peer_refreshes() -> None:
    session, _, _ = make_session()
    refresh = peer_request(
        "UPDATE", 2, b"", ("Supported", "timer"), ("Session-Expires", "1800"), ("Min-SE", "90")
    )
    response = answer(session, refresh, now=10.0)
    assert response.status == 200
    assert response.headers.get("Session-Expires") == "1800;refresher=uac"
    assert response.headers.get("Require") == "timer"
    assert session.timer == SessionTimer(1800, we_refresh=False)
    # §10: BYE min(32, 1800/3) = 32 s before expiry when no refresh comes.
    assert session.get_timer() == 10.0 + 1800 - 32

    # A refresh (re-INVITE, the peer is the refresher) pushes the expiry.
    reinvite = peer_request(
        "INVITE", 3, HOLD, ("Supported", "timer"), ("Session-Expires", "1200;refresher=uac")
    )
    response = answer(session, reinvite, now=900.0)
    assert response.headers.get("Session-Expires") == "1200;refresher=uac"
    session.on_request(peer_request("ACK", 3), now=900.1)
    assert session.get_timer() == 900.0 + 1200 - 32


def test_session_timer_expiry_sends_bye() -> None:
    session, sender, _ = make_session(timer=SessionTimer(90, we_refresh=False))
    assert session.get_timer() == 60.0  # 90 - min(32, 30)
    session.handle_timer(59.9)
    assert sender.requests == []
    session.handle_timer(60.0)
    (bye,) = sender.sent("BYE")
    assert bye.headers.get("CSeq") == "2 BYE"
    assert sender.events == [CallEnded(CALL_ID, "session timer expired", by_peer=False)]
    assert session.ended


def test_refresh_without_timer_support_makes_us_the_refresher() -> None:
    session, sender, _ = make_session()
    response = answer(session, peer_request("UPDATE", 2, b"", ("Session-Expires", "600")), 0.0)
    assert response.headers.get("Session-Expires") == "600;refresher=uas"
    assert response.headers.get("Require") is None
    assert session.get_timer() == 300.0

    session.handle_timer(300.0)
    (update,) = sender.sent("UPDATE")
    assert update.headers.get("CSeq") == "2 UPDATE"
    assert update.headers.get("Session-Expires") == "600;refresher=uac"
    assert update.headers.get("Supported") == "timer"
    assert update.headers.get("Contact") == "<sip:door@192.0.2.10:5060>"
    assert update.body == b""

    ok = make_response(update, 200)
    ok.headers.add("Session-Expires", "600;refresher=uac")
    ok.headers.add("Contact", "<sip:201@192.0.2.22:5062>")
    session.on_response(update, ok, 300.2)
    assert session.timer == SessionTimer(600, we_refresh=True)
    assert session.get_timer() == 600.2
    assert session.dialog.remote_target == SipUri.parse("sip:201@192.0.2.22:5062")
    assert session.dialog.route_set == [NameAddr.parse("<sip:pbx.example;lr>")]


def test_refresh_answered_481_ends_the_call() -> None:
    session, sender, _ = make_session(timer=SessionTimer(1800, we_refresh=True))
    session.handle_timer(900.0)
    (update,) = sender.sent("UPDATE")
    session.on_response(update, make_response(update, 481), 900.1)
    assert sender.events == [CallEnded(CALL_ID, "session refresh failed", by_peer=False)]
    assert [r.method for r, _, _ in sender.requests] == ["UPDATE", "BYE"]


def test_refresh_refused_otherwise_lets_the_session_expire() -> None:
    session, sender, _ = make_session(timer=SessionTimer(1800, we_refresh=True))
    session.handle_timer(900.0)
    (update,) = sender.sent("UPDATE")
    session.on_response(update, make_response(update, 501), 900.1)
    assert session.get_timer() == 1800.0
    session.handle_timer(1800.0)
    assert sender.events == [CallEnded(CALL_ID, "session timer expired", by_peer=False)]


def test_too_small_interval_gets_422() -> None:
    session, _, _ = make_session()
    request = peer_request("UPDATE", 2, b"", ("Supported", "timer"), ("Session-Expires", "60"))
    response = answer(session, request)
    assert (response.status, response.headers.get("Min-SE")) == (422, "90")
    assert session.timer is None


def test_timer_helpers() -> None:
    base = peer_request("INVITE", 1)
    assert uas_session_timer(base) == (None, [])
    asked_uas = peer_request(
        "INVITE", 1, b"", ("k", "timer, 100rel"), ("x", "1800;refresher=uas")
    )  # compact forms
    assert uas_session_timer(asked_uas) == (
        SessionTimer(1800, we_refresh=True),
        [("Session-Expires", "1800;refresher=uas")],
    )
    assert not interval_too_small(asked_uas)
    ok = make_response(base, 200)
    assert uac_session_timer(ok) is None
    ok.headers.add("Session-Expires", "900;refresher=uas")
    assert uac_session_timer(ok) == SessionTimer(900, we_refresh=False)
    ok.headers.set("Session-Expires", "900")
    assert uac_session_timer(ok) == SessionTimer(900, we_refresh=True)


# -- authentication of our own requests (RFC 3261 §8.1.3.5, §22.2) ----------------------------

PEER_URI = "sip:201@192.0.2.21:5062"
REALM_CHALLENGE = 'Digest realm="pbx.example", nonce="{nonce}", qop="auth", algorithm=MD5'


def digest_client(password: str = "secret") -> DigestClient:
    cnonces = iter(["c1", "c2", "c3", "c4"])
    return DigestClient("door", password, cnonce_factory=lambda: next(cnonces))


def challenged(request: Request, status: int, nonce: str, *, stale: bool = False) -> Response:
    response = make_response(request, status)
    value = REALM_CHALLENGE.format(nonce=nonce) + (", stale=true" if stale else "")
    response.headers.add("WWW-Authenticate" if status == 401 else "Proxy-Authenticate", value)
    return response


def digest_params(value: str | None) -> dict[str, str]:
    assert value is not None and value.startswith("Digest ")
    pairs = re.findall(r'([a-z]+)=(?:"([^"]*)"|([^\s,]+))', value.removeprefix("Digest "))
    return {k: quoted or bare for k, quoted, bare in pairs}


def expected_response(method: str, nonce: str, cnonce: str, nc: str, password: str) -> str:
    def md5(text: str) -> str:
        return hashlib.md5(text.encode()).hexdigest()

    ha1 = md5(f"door:pbx.example:{password}")
    return md5(f"{ha1}:{nonce}:{nc}:{cnonce}:auth:{md5(f'{method}:{PEER_URI}')}")


def test_bye_challenged_with_407_is_resent_with_proxy_authorization() -> None:
    session, sender, _ = make_session(auth=digest_client())
    session.hangup(5.0)
    (first,) = sender.sent("BYE")
    session.on_response(first, challenged(first, 407, "n1"), 5.1)

    _, second = sender.sent("BYE")
    assert sender.requests[1][1] is session
    assert sender.requests[1][2] is None  # routed by the endpoint, as the first BYE
    assert second.headers.get("CSeq") == "3 BYE"
    assert first.headers.get("CSeq") == "2 BYE"
    assert str(second.uri) == str(first.uri) == PEER_URI
    assert second.headers.get("Call-ID") == CALL_ID
    assert second.headers.get("From") == OURS
    assert second.headers.get("To") == THEIRS
    assert second.headers.get_all("Route") == ["<sip:pbx.example;lr>"]
    assert second.top_via.branch != first.top_via.branch
    assert second.headers.get("Authorization") is None
    params = digest_params(second.headers.get("Proxy-Authorization"))
    assert (params["username"], params["realm"], params["nonce"]) == ("door", "pbx.example", "n1")
    assert (params["uri"], params["qop"], params["nc"], params["cnonce"]) == (
        PEER_URI, "auth", "00000001", "c1",
    )  # fmt: skip
    assert params["response"] == expected_response("BYE", "n1", "c1", "00000001", "secret")
    assert first.headers.get("Proxy-Authorization") is None

    session.on_response(second, make_response(second, 200), 5.2)
    assert len(sender.requests) == 2
    assert sender.events == [CallEnded(CALL_ID, "hung up", by_peer=False)]  # once, at hangup


def test_bye_challenged_with_401_is_resent_with_authorization() -> None:
    session, sender, _ = make_session(auth=digest_client())
    session.hangup(5.0)
    (first,) = sender.sent("BYE")
    session.on_response(first, challenged(first, 401, "w1"), 5.1)
    _, second = sender.sent("BYE")
    assert second.headers.get("CSeq") == "3 BYE"
    assert second.headers.get("Proxy-Authorization") is None
    params = digest_params(second.headers.get("Authorization"))
    assert (params["realm"], params["nonce"], params["uri"]) == ("pbx.example", "w1", PEER_URI)
    assert params["response"] == expected_response("BYE", "w1", "c1", "00000001", "secret")


def test_proxy_then_peer_challenge_sends_both_credentials() -> None:
    session, sender, _ = make_session(auth=digest_client())
    session.hangup(5.0)
    (first,) = sender.sent("BYE")
    session.on_response(first, challenged(first, 407, "p1"), 5.1)
    _, second = sender.sent("BYE")
    session.on_response(second, challenged(second, 401, "u1"), 5.2)  # a first 401: answered
    _, _, third = sender.sent("BYE")
    assert third.headers.get("CSeq") == "4 BYE"
    assert third.headers.get("Proxy-Authorization") == second.headers.get("Proxy-Authorization")
    params = digest_params(third.headers.get("Authorization"))
    assert (params["nonce"], params["cnonce"]) == ("u1", "c2")
    assert params["response"] == expected_response("BYE", "u1", "c2", "00000001", "secret")


def test_wrong_credentials_for_bye_give_up_with_one_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    session, sender, _ = make_session(auth=digest_client(password="hunter2-door"))
    session.hangup(5.0)
    (first,) = sender.sent("BYE")
    session.on_response(first, challenged(first, 407, "n1"), 5.1)
    _, second = sender.sent("BYE")
    session.on_response(second, challenged(second, 407, "n2"), 5.2)  # not stale: wrong password

    assert len(sender.sent("BYE")) == 2  # no third BYE
    assert sender.events == [CallEnded(CALL_ID, "hung up", by_peer=False)]
    assert session.ended
    assert session.get_timer() is None
    warnings = [
        r.getMessage() for r in caplog.records
        if r.name == "intercom.sip.session" and r.levelno == logging.WARNING
    ]  # fmt: skip
    assert warnings == [
        f"x call {CALL_ID}: BYE got 407 Proxy Authentication Required: "
        "wrong credentials for realm pbx.example, giving up"
    ]
    credentials = second.headers.get("Proxy-Authorization")
    assert credentials is not None
    secret_bits = [credentials, digest_params(credentials)["response"], "hunter2"]
    assert caplog.records  # the debug and info lines were captured, and none of them leaks
    for record in caplog.records:
        text = record.getMessage() + repr(record.args)
        assert not any(bit in text for bit in secret_bits), text


def test_stale_challenges_to_bye_are_capped(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="intercom.sip.session")
    session, sender, _ = make_session(auth=digest_client())
    session.hangup(5.0)
    for n in range(4):
        bye = sender.sent("BYE")[-1]
        session.on_response(bye, challenged(bye, 401, f"s{n}", stale=True), 5.1 + n / 10)
    byes = sender.sent("BYE")
    assert [b.headers.get("CSeq") for b in byes] == ["2 BYE", "3 BYE", "4 BYE"]  # 2 answers
    assert [digest_params(b.headers.get("Authorization"))["nonce"] for b in byes[1:]] == [
        "s0", "s1",
    ]  # fmt: skip
    assert [r.getMessage() for r in caplog.records if r.name == "intercom.sip.session"] == [
        f"x call {CALL_ID}: BYE got 401 Unauthorized again for realm pbx.example: "
        "too many challenges, giving up"
    ]


def test_challenge_to_bye_without_auth_is_only_logged() -> None:
    session, sender, _ = make_session()
    session.hangup(5.0)
    (bye,) = sender.sent("BYE")
    session.on_response(bye, challenged(bye, 407, "n1"), 5.1)
    assert len(sender.requests) == 1


def test_refresh_update_challenged_is_resent_with_credentials() -> None:
    session, sender, _ = make_session(
        timer=SessionTimer(1800, we_refresh=True), auth=digest_client()
    )
    session.handle_timer(900.0)
    (first,) = sender.sent("UPDATE")
    session.on_response(first, challenged(first, 407, "r1"), 900.1)

    _, second = sender.sent("UPDATE")
    assert sender.requests[1][1] is session
    assert second.headers.get("CSeq") == "3 UPDATE"
    assert second.headers.get("Call-ID") == CALL_ID
    assert (second.headers.get("From"), second.headers.get("To")) == (OURS, THEIRS)
    assert second.headers.get("Session-Expires") == "1800;refresher=uac"
    assert second.headers.get("Supported") == "timer"
    assert second.headers.get("Contact") == "<sip:door@192.0.2.10:5060>"
    params = digest_params(second.headers.get("Proxy-Authorization"))
    assert (params["nonce"], params["uri"]) == ("r1", PEER_URI)
    assert params["response"] == expected_response("UPDATE", "r1", "c1", "00000001", "secret")

    session.on_response(first, make_response(first, 200), 900.2)  # stale object: ignored
    assert session.get_timer() == 1800.0
    ok = make_response(second, 200)
    ok.headers.add("Session-Expires", "1800;refresher=uac")
    session.on_response(second, ok, 900.3)
    assert session.timer == SessionTimer(1800, we_refresh=True)
    assert session.get_timer() == 900.3 + 900
    assert len(sender.requests) == 2
    assert sender.events == []


def test_refresh_with_wrong_credentials_lets_the_session_expire(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="intercom.sip.session")
    session, sender, _ = make_session(
        timer=SessionTimer(1800, we_refresh=True), auth=digest_client(password="wrong")
    )
    session.handle_timer(900.0)
    (first,) = sender.sent("UPDATE")
    session.on_response(first, challenged(first, 401, "r1"), 900.1)
    _, second = sender.sent("UPDATE")
    session.on_response(second, challenged(second, 401, "r2"), 900.2)
    assert len(sender.sent("UPDATE")) == 2
    assert [r.getMessage() for r in caplog.records if r.name == "intercom.sip.session"] == [
        f"x call {CALL_ID}: session refresh got 401 Unauthorized: "
        "wrong credentials for realm pbx.example, giving up"
    ]
    assert session.get_timer() == 1800.0
    session.handle_timer(1800.0)
    assert sender.events == [CallEnded(CALL_ID, "session timer expired", by_peer=False)]
    assert [r.method for r, _, _ in sender.requests] == ["UPDATE", "UPDATE", "BYE"]


def test_challenge_to_a_refresh_the_peer_made_moot_is_dropped() -> None:
    session, sender, _ = make_session(
        timer=SessionTimer(1800, we_refresh=True), auth=digest_client()
    )
    session.handle_timer(900.0)
    (update,) = sender.sent("UPDATE")
    # The peer's own UPDATE without Session-Expires removes the timer (RFC 4028 §7.2).
    assert answer(session, peer_request("UPDATE", 2), 900.05).status == 200
    assert session.timer is None
    session.on_response(update, challenged(update, 407, "r1"), 900.1)
    assert len(sender.requests) == 1
    assert session.get_timer() is None
    assert not session.ended
