"""Tests for intercom.sip.transaction: RFC 3261 §17 state machines with RFC 6026's fixes.

Time is counted by hand (aioquic style): every deadline is asserted to the exact value of the
RFC's timer arithmetic with T1 = 0.5 s, T2 = 4 s, T4 = 5 s.
"""

from __future__ import annotations

import pytest

from intercom.sip.errors import LocalProtocolError
from intercom.sip.message import Request, Response, parse_message
from intercom.sip.transaction import (
    TRYING_DELAY,
    ClientTransaction,
    InviteClientTransaction,
    InviteServerTransaction,
    NonInviteClientTransaction,
    NonInviteServerTransaction,
    ServerTransaction,
    TransactionState,
    build_ack,
    client_key,
    server_key,
)

S = TransactionState
VIA = "SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bKinv1;rport"
FROM = '"Door" <sip:door@example.com>;tag=fromtag1'


def message(start: str, *headers: str, body: str = "") -> Request | Response:
    text = start + "\r\n" + "".join(h + "\r\n" for h in headers)
    text += f"Content-Length: {len(body)}\r\n\r\n" + body
    return parse_message(text.encode())


def request(method: str = "INVITE", *, via: str = VIA, cseq: int = 7, to: str = "") -> Request:
    msg = message(
        f"{method} sip:bob@example.com SIP/2.0",
        f"Via: {via}",
        "Max-Forwards: 70",
        "Route: <sip:proxy.example.com;lr>",
        f"From: {FROM}",
        f"To: <sip:bob@example.com>{to}",
        "Call-ID: call-1@192.0.2.10",
        f"CSeq: {cseq} {method}",
        "Contact: <sip:door@192.0.2.10:5060>",
    )
    assert isinstance(msg, Request)
    return msg


def response(req: Request, status: int, to_tag: str | None = "callee1") -> Response:
    to = req.headers.get("To") or ""
    if to_tag is not None and ";tag=" not in to:
        to += f";tag={to_tag}"
    msg = message(
        f"SIP/2.0 {status} Whatever",
        *(f"Via: {v}" for v in req.headers.get_list("Via")),
        f"From: {req.headers.get('From')}",
        f"To: {to}",
        f"Call-ID: {req.call_id}",
        f"CSeq: {req.headers.get('CSeq')}",
    )
    assert isinstance(msg, Response)
    return msg


def state(t: ClientTransaction | ServerTransaction) -> TransactionState:
    """The state, read through a call so that mypy does not narrow it across steps."""
    return t.state


def walk(t: ClientTransaction | ServerTransaction) -> list[tuple[float, int]]:
    """Fire each timer at its exact deadline until the transaction ends or nothing is armed;
    record (deadline, number of messages sent then)."""
    fired: list[tuple[float, int]] = []
    while (when := t.get_timer()) is not None:
        t.handle_timer(when)
        fired.append((when, len(t.take_outbox())))
    return fired


# -- INVITE client ------------------------------------------------------------------------------


def test_invite_client_udp_retransmits_with_doubling_then_timer_b() -> None:
    invite = request()
    t = InviteClientTransaction(invite, reliable=False, now=0.0)
    assert state(t) is S.CALLING
    assert t.take_outbox() == [invite]
    assert t.take_outbox() == []
    assert t.get_timer() == 0.5
    t.handle_timer(0.4)  # not due yet
    assert t.take_outbox() == []
    retransmits = []
    while (when := t.get_timer()) is not None:
        t.handle_timer(when)
        out = t.take_outbox()
        if out:
            assert out == [invite]
            retransmits.append(when)
        else:
            assert when == 32.0
    assert retransmits == [0.5, 1.5, 3.5, 7.5, 15.5, 31.5]
    assert state(t) is S.TERMINATED
    assert t.terminated
    assert t.timed_out
    assert t.failed_reason == "timeout"


def test_invite_client_tcp_never_retransmits_timer_b_at_32() -> None:
    invite = request()
    t = InviteClientTransaction(invite, reliable=True, now=10.0)
    assert t.take_outbox() == [invite]
    assert t.get_timer() == 42.0
    t.handle_timer(41.9)
    assert not t.terminated
    t.handle_timer(42.0)
    assert t.take_outbox() == []
    assert t.timed_out
    assert t.get_timer() is None


def test_late_handle_timer_fires_every_due_timer_once() -> None:
    t = InviteClientTransaction(request(), reliable=False, now=0.0)
    t.take_outbox()
    t.handle_timer(40.0)  # A (due 0.5) and B (due 32) are both overdue
    assert len(t.take_outbox()) == 1
    assert t.timed_out


def test_invite_client_provisional_stops_a_and_b() -> None:
    invite = request()
    t = InviteClientTransaction(invite, reliable=False, now=0.0)
    t.take_outbox()
    assert t.receive_response(response(invite, 180), 0.2) is True
    assert state(t) is S.PROCEEDING
    assert t.get_timer() is None  # §17.1.1.2: no retransmission, and B only runs in CALLING
    t.handle_timer(100.0)
    assert t.take_outbox() == []
    assert not t.terminated
    assert t.receive_response(response(invite, 183), 5.0) is True
    assert state(t) is S.PROCEEDING


def test_invite_client_486_builds_ack_and_absorbs_retransmissions() -> None:
    invite = request()
    t = InviteClientTransaction(invite, reliable=False, now=0.0)
    t.take_outbox()
    assert t.receive_response(response(invite, 180, "busy9"), 0.3) is True
    assert t.receive_response(response(invite, 486, "busy9"), 60.0) is True
    assert state(t) is S.COMPLETED
    [ack] = t.take_outbox()
    assert ack.method == "ACK"
    assert str(ack.uri) == "sip:bob@example.com"
    assert ack.headers.get_all("Via") == [VIA]
    assert ack.top_via.branch == "z9hG4bKinv1"
    assert ack.headers.get("Max-Forwards") == "70"
    assert ack.headers.get_all("Route") == ["<sip:proxy.example.com;lr>"]
    assert ack.headers.get("From") == FROM
    assert ack.headers.get("To") == "<sip:bob@example.com>;tag=busy9"
    assert ack.to.tag == "busy9"
    assert ack.call_id == "call-1@192.0.2.10"
    assert ack.headers.get("CSeq") == "7 ACK"
    assert ack.headers.get("Contact") is None
    assert ack.body == b""
    wire = ack.encode()
    assert wire.startswith(b"ACK sip:bob@example.com SIP/2.0\r\n")
    parsed = parse_message(wire)  # valid on the wire (§8.2 checks pass)
    assert isinstance(parsed, Request)
    assert (parsed.cseq.seq, parsed.cseq.method) == (7, "ACK")
    assert server_key(ack) == server_key(invite)  # it reaches the peer's INVITE transaction

    assert t.get_timer() == 92.0  # Timer D = 32 s after the final response
    assert t.receive_response(response(invite, 486, "busy9"), 61.0) is False
    assert t.take_outbox() == [ack]  # the same ACK again
    assert t.receive_response(response(invite, 180, "busy9"), 62.0) is False
    assert t.take_outbox() == []
    t.handle_timer(91.9)
    assert state(t) is S.COMPLETED
    t.handle_timer(92.0)
    assert state(t) is S.TERMINATED
    assert not t.timed_out
    assert t.failed_reason is None
    assert t.receive_response(response(invite, 486, "busy9"), 93.0) is False
    assert t.take_outbox() == []


def test_invite_client_486_over_tcp_terminates_at_once() -> None:
    invite = request(via="SIP/2.0/TCP 192.0.2.10:5060;branch=z9hG4bKinv1")
    t = InviteClientTransaction(invite, reliable=True, now=0.0)
    t.take_outbox()
    assert t.receive_response(response(invite, 603, "no"), 2.0) is True
    [ack] = t.take_outbox()
    assert ack.headers.get("CSeq") == "7 ACK"
    assert ack.headers.get_all("Via") == ["SIP/2.0/TCP 192.0.2.10:5060;branch=z9hG4bKinv1"]
    assert state(t) is S.TERMINATED  # Timer D = 0
    assert t.get_timer() is None
    assert t.failed_reason is None


def test_invite_client_every_2xx_reaches_the_tu_until_timer_m() -> None:
    invite = request()
    t = InviteClientTransaction(invite, reliable=False, now=0.0)
    t.take_outbox()
    assert t.receive_response(response(invite, 200, "forkA"), 1.0) is True
    assert state(t) is S.ACCEPTED
    assert t.take_outbox() == []  # the ACK for a 2xx belongs to the TU (§13.2.2.4)
    assert t.get_timer() == 33.0  # Timer M = 64*T1
    assert t.receive_response(response(invite, 200, "forkB"), 2.0) is True
    assert t.receive_response(response(invite, 200, "forkA"), 3.0) is True  # retransmission
    assert t.receive_response(response(invite, 180, "forkC"), 4.0) is False
    assert t.receive_response(response(invite, 486, "forkC"), 5.0) is False
    assert t.take_outbox() == []  # neither retransmitted INVITEs nor ACKs
    assert state(t) is S.ACCEPTED
    t.handle_timer(33.0)
    assert state(t) is S.TERMINATED
    assert not t.timed_out
    assert t.receive_response(response(invite, 200, "forkA"), 34.0) is False


def test_invite_client_2xx_after_486_from_another_fork_reaches_the_tu() -> None:
    invite = request()
    t = InviteClientTransaction(invite, reliable=False, now=0.0)
    t.receive_response(response(invite, 486, "forkA"), 1.0)
    t.take_outbox()
    assert t.receive_response(response(invite, 200, "forkB"), 2.0) is True
    assert t.take_outbox() == []
    assert state(t) is S.COMPLETED
    assert t.get_timer() == 33.0


def test_invite_client_transport_error() -> None:
    t = InviteClientTransaction(request(), reliable=True, now=0.0)
    t.transport_failed(0.1)
    assert state(t) is S.TERMINATED
    assert t.failed_reason == "transport"
    assert not t.timed_out
    assert t.get_timer() is None


def test_transport_error_after_final_response_is_ignored() -> None:
    invite = request()
    t = InviteClientTransaction(invite, reliable=False, now=0.0)
    t.receive_response(response(invite, 200), 1.0)
    t.transport_failed(1.5)
    assert state(t) is S.ACCEPTED
    assert t.failed_reason is None


def test_client_transactions_check_the_method() -> None:
    with pytest.raises(LocalProtocolError):
        InviteClientTransaction(request("OPTIONS"), reliable=False, now=0.0)
    with pytest.raises(LocalProtocolError):
        NonInviteClientTransaction(request(), reliable=False, now=0.0)


# -- non-INVITE client --------------------------------------------------------------------------


def test_non_invite_client_timer_e_capped_at_t2_then_timer_f() -> None:
    options = request("OPTIONS")
    t = NonInviteClientTransaction(options, reliable=False, now=0.0)
    assert state(t) is S.TRYING
    assert t.take_outbox() == [options]
    assert t.key == ("z9hG4bKinv1", "OPTIONS")
    assert walk(t) == [
        (0.5, 1), (1.5, 1), (3.5, 1), (7.5, 1), (11.5, 1), (15.5, 1), (19.5, 1), (23.5, 1),
        (27.5, 1), (31.5, 1), (32.0, 0),
    ]  # fmt: skip
    assert t.timed_out
    assert t.failed_reason == "timeout"


def test_non_invite_client_proceeding_retransmits_every_t2() -> None:
    register = request("REGISTER")
    t = NonInviteClientTransaction(register, reliable=False, now=0.0)
    t.take_outbox()
    assert t.receive_response(response(register, 100, None), 0.2) is True
    assert state(t) is S.PROCEEDING
    assert t.get_timer() == 0.5  # E keeps its deadline
    assert walk(t) == [
        (0.5, 1), (4.5, 1), (8.5, 1), (12.5, 1), (16.5, 1), (20.5, 1), (24.5, 1), (28.5, 1),
        (32.0, 0),
    ]  # fmt: skip
    assert t.timed_out


def test_non_invite_client_final_then_timer_k() -> None:
    options = request("OPTIONS")
    t = NonInviteClientTransaction(options, reliable=False, now=0.0)
    t.take_outbox()
    t.handle_timer(0.5)
    assert t.take_outbox() == [options]
    assert t.receive_response(response(options, 200), 1.0) is True
    assert state(t) is S.COMPLETED
    assert t.get_timer() == 6.0  # Timer K = T4
    assert t.receive_response(response(options, 200), 1.2) is False
    assert t.receive_response(response(options, 100, None), 1.3) is False
    t.handle_timer(5.9)
    assert t.take_outbox() == []  # E was cancelled
    t.handle_timer(6.0)
    assert state(t) is S.TERMINATED
    assert not t.timed_out


def test_non_invite_client_over_tcp() -> None:
    options = request("OPTIONS", via="SIP/2.0/TCP 192.0.2.10:5060;branch=z9hG4bKo1")
    t = NonInviteClientTransaction(options, reliable=True, now=0.0)
    assert t.take_outbox() == [options]
    assert t.get_timer() == 32.0  # no Timer E
    assert t.receive_response(response(options, 404), 1.0) is True
    assert state(t) is S.TERMINATED  # Timer K = 0
    assert t.get_timer() is None


# -- INVITE server ------------------------------------------------------------------------------


def test_invite_server_486_retransmits_with_timer_g_then_timer_h() -> None:
    invite = request()
    t = InviteServerTransaction(invite, reliable=False, now=0.0)
    assert state(t) is S.PROCEEDING
    assert t.take_outbox() == []  # 100 Trying waits for the TU (§17.2.1)
    assert t.get_timer() == 0.2
    ringing = response(invite, 180)
    t.send_response(ringing, 0.0)
    assert t.take_outbox() == [ringing]
    assert t.get_timer() is None  # the 180 went first: no 100 pending
    t.receive_request(invite, 0.0)  # retransmitted INVITE: last provisional again
    assert t.take_outbox() == [ringing]
    busy = response(invite, 486)
    t.send_response(busy, 0.0)
    assert state(t) is S.COMPLETED
    assert t.take_outbox() == [busy]
    retransmits = []
    while (when := t.get_timer()) is not None:
        t.handle_timer(when)
        out = t.take_outbox()
        if out:
            assert out == [busy]
            retransmits.append(when)
    assert retransmits == [0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5]
    assert state(t) is S.TERMINATED
    assert t.timed_out  # Timer H: no ACK
    assert t.failed_reason == "timeout"


def test_invite_server_ack_confirms_then_timer_i() -> None:
    invite = request()
    t = InviteServerTransaction(invite, reliable=False, now=0.0)
    busy = response(invite, 486)
    t.send_response(busy, 0.0)
    assert t.take_outbox() == [busy]
    t.handle_timer(0.5)
    assert t.take_outbox() == [busy]
    assert t.get_timer() == 1.5
    t.receive_request(invite, 0.8)  # retransmitted INVITE in COMPLETED: final again
    assert t.take_outbox() == [busy]
    ack = build_ack(invite, busy)
    t.receive_request(ack, 1.0)
    assert state(t) is S.CONFIRMED
    assert t.get_timer() == 6.0  # Timer I = T4; G and H are gone
    t.receive_request(ack, 2.0)
    t.receive_request(invite, 2.5)
    assert t.take_outbox() == []
    assert state(t) is S.CONFIRMED
    t.handle_timer(6.0)
    assert state(t) is S.TERMINATED
    assert not t.timed_out


def test_invite_server_over_tcp() -> None:
    invite = request(via="SIP/2.0/TCP 192.0.2.10:5060;branch=z9hG4bKinv1")
    t = InviteServerTransaction(invite, reliable=True, now=0.0)
    busy = response(invite, 486)
    t.send_response(busy, 1.0)
    assert t.take_outbox() == [busy]
    assert t.get_timer() == 33.0  # H only, no G
    t.receive_request(build_ack(invite, busy), 2.0)
    assert state(t) is S.TERMINATED  # Timer I = 0
    assert t.get_timer() is None


def test_invite_server_2xx_accepted_absorbs_invite_until_timer_l() -> None:
    invite = request()
    t = InviteServerTransaction(invite, reliable=False, now=0.0)
    trying = response(invite, 100, None)
    t.send_response(trying, 0.0)
    ok = response(invite, 200)
    t.send_response(ok, 1.0)
    assert t.take_outbox() == [trying, ok]
    assert state(t) is S.ACCEPTED
    assert t.get_timer() == 33.0  # Timer L = 64*T1
    t.receive_request(invite, 1.5)
    assert t.take_outbox() == []  # absorbed: 2xx retransmission is the TU's job
    t.send_response(ok, 1.5)  # the TU's retransmission goes out
    assert t.take_outbox() == [ok]
    with pytest.raises(LocalProtocolError):
        t.send_response(response(invite, 486), 2.0)
    with pytest.raises(LocalProtocolError):
        t.send_response(response(invite, 180), 2.0)
    t.receive_request(build_ack(invite, ok), 2.0)  # a branch-reusing 2xx ACK: absorbed
    assert state(t) is S.ACCEPTED
    assert t.take_outbox() == []
    t.handle_timer(33.0)
    assert state(t) is S.TERMINATED
    assert not t.timed_out
    t.send_response(ok, 34.0)  # a late TU retransmission is dropped
    assert t.take_outbox() == []


def test_invite_server_misuse_and_transport_error() -> None:
    invite = request()
    t = InviteServerTransaction(invite, reliable=False, now=0.0)
    t.send_response(response(invite, 480), 0.0)
    with pytest.raises(LocalProtocolError):
        t.send_response(response(invite, 180), 0.1)
    with pytest.raises(LocalProtocolError):
        t.send_response(response(invite, 200), 0.1)
    with pytest.raises(LocalProtocolError):
        t.receive_request(request("BYE"), 0.1)
    t.transport_failed(0.2)
    assert state(t) is S.TERMINATED
    assert t.failed_reason == "transport"
    assert not t.timed_out
    with pytest.raises(LocalProtocolError):
        InviteServerTransaction(request("OPTIONS"), reliable=False, now=0.0)


def sent(t: ServerTransaction) -> list[tuple[int, str | None]]:
    return [(r.status, r.to.tag) for r in t.take_outbox()]


def test_trying_delay_is_the_200_ms_of_rfc3261() -> None:
    assert TRYING_DELAY == 0.2


@pytest.mark.parametrize("reliable", [False, True], ids=["udp", "tcp"])
def test_invite_server_sends_100_when_the_tu_is_silent_for_200_ms(reliable: bool) -> None:
    invite = request(via=VIA if not reliable else VIA.replace("UDP", "TCP"))
    t = InviteServerTransaction(invite, reliable=reliable, now=10.0)
    assert t.take_outbox() == []
    assert t.get_timer() == 10.2
    t.handle_timer(10.19)
    assert t.take_outbox() == []
    t.handle_timer(10.2)
    [trying] = t.take_outbox()
    assert trying.status == 100 and trying.reason == "Trying"
    assert trying.to.tag is None  # §8.2.6.2: never a To tag on a 100
    assert trying.headers.get_list("Via") == invite.headers.get_list("Via")
    assert trying.call_id == invite.call_id and trying.cseq == invite.cseq
    assert state(t) is S.PROCEEDING
    assert t.get_timer() is None  # one 100, not a retransmission timer
    t.handle_timer(11.0)
    assert t.take_outbox() == []
    t.receive_request(invite, 11.0)  # a retransmission gets the last provisional: the 100
    assert sent(t) == [(100, None)]
    ringing = response(invite, 180)
    t.send_response(ringing, 12.0)
    assert t.take_outbox() == [ringing]
    t.receive_request(invite, 12.5)
    assert t.take_outbox() == [ringing]


def test_invite_server_late_timer_sends_one_100() -> None:
    t = InviteServerTransaction(request(), reliable=False, now=0.0)
    t.handle_timer(3.0)  # the runtime was late: still exactly one 100
    assert sent(t) == [(100, None)]
    assert t.get_timer() is None


@pytest.mark.parametrize("status", [180, 183, 200, 403, 486, 488])
@pytest.mark.parametrize("at", [0.0, 0.199], ids=["at-once", "just-in-time"])
def test_invite_server_tu_response_within_200_ms_cancels_the_100(status: int, at: float) -> None:
    invite = request()
    t = InviteServerTransaction(invite, reliable=False, now=0.0)
    t.send_response(response(invite, status), at)
    assert sent(t) == [(status, "callee1")]
    if status < 200:
        assert t.get_timer() is None
    elif status < 300:
        assert t.get_timer() == at + 32.0  # Timer L only
    else:
        assert t.get_timer() == at + 0.5  # Timer G only
    t.handle_timer(0.2)
    assert t.take_outbox() == []  # no 100 after the TU's response
    while (when := t.get_timer()) is not None:  # and none ever after
        t.handle_timer(when)
        assert all(r.status == status for r in t.take_outbox())


def test_invite_server_retransmission_before_any_response_gets_100_at_once() -> None:
    invite = request()
    t = InviteServerTransaction(invite, reliable=False, now=0.0)
    t.receive_request(invite, 0.1)  # the peer retransmits: it must hear from us now
    assert sent(t) == [(100, None)]
    assert state(t) is S.PROCEEDING
    assert t.get_timer() is None  # the pending 100 was that one
    t.handle_timer(0.2)
    assert t.take_outbox() == []
    t.receive_request(invite, 0.6)  # the next retransmission gets the 100 again
    assert sent(t) == [(100, None)]
    refused = response(invite, 403)
    t.send_response(refused, 0.7)
    assert t.take_outbox() == [refused]
    t.receive_request(invite, 0.8)
    assert t.take_outbox() == [refused]  # the final now, never the 100


def test_invite_server_transport_error_before_the_100() -> None:
    t = InviteServerTransaction(request(), reliable=False, now=0.0)
    t.transport_failed(0.1)
    assert state(t) is S.TERMINATED
    assert t.get_timer() is None
    t.handle_timer(0.2)
    assert t.take_outbox() == []


def test_invite_server_ack_before_final_is_ignored() -> None:
    invite = request()
    t = InviteServerTransaction(invite, reliable=False, now=0.0)
    t.receive_request(build_ack(invite, response(invite, 486)), 0.1)
    assert state(t) is S.PROCEEDING


# -- non-INVITE server --------------------------------------------------------------------------


def test_non_invite_server_resends_final_until_timer_j() -> None:
    options = request("OPTIONS")
    t = NonInviteServerTransaction(options, reliable=False, now=0.0)
    assert state(t) is S.TRYING
    t.receive_request(options, 0.1)
    assert t.take_outbox() == []  # TRYING: nothing to resend
    ok = response(options, 200)
    t.send_response(ok, 1.0)
    assert state(t) is S.COMPLETED
    assert t.take_outbox() == [ok]
    assert t.get_timer() == 33.0  # Timer J = 64*T1
    t.receive_request(options, 2.0)
    assert t.take_outbox() == [ok]
    t.send_response(response(options, 500), 2.5)  # discarded (§17.2.2)
    assert t.take_outbox() == []
    t.receive_request(options, 3.0)
    assert t.take_outbox() == [ok]
    with pytest.raises(LocalProtocolError):
        t.send_response(response(options, 100, None), 3.0)
    t.handle_timer(32.9)
    assert state(t) is S.COMPLETED
    t.handle_timer(33.0)
    assert state(t) is S.TERMINATED
    assert not t.timed_out


def test_non_invite_server_provisional_then_final_over_tcp() -> None:
    bye = request("BYE", via="SIP/2.0/TCP 192.0.2.10:5060;branch=z9hG4bKbye1", to=";tag=x")
    t = NonInviteServerTransaction(bye, reliable=True, now=0.0)
    trying = response(bye, 100)
    t.send_response(trying, 0.0)
    assert state(t) is S.PROCEEDING
    t.receive_request(bye, 0.5)
    assert t.take_outbox() == [trying, trying]
    ok = response(bye, 200)
    t.send_response(ok, 1.0)
    assert t.take_outbox() == [ok]
    assert state(t) is S.TERMINATED  # Timer J = 0
    assert t.get_timer() is None
    with pytest.raises(LocalProtocolError):
        NonInviteServerTransaction(request("ACK"), reliable=True, now=0.0)


# -- keys ---------------------------------------------------------------------------------------


def test_server_key_for_invite_ack_and_cancel() -> None:
    invite = request()
    assert server_key(invite) == ("z9hG4bKinv1", "192.0.2.10:5060", "INVITE")
    ack = build_ack(invite, response(invite, 486))
    assert server_key(ack) == ("z9hG4bKinv1", "192.0.2.10:5060", "INVITE")
    cancel = request("CANCEL")
    assert server_key(cancel) == ("z9hG4bKinv1", "192.0.2.10:5060", "CANCEL")
    assert InviteServerTransaction(invite, reliable=False, now=0.0).key == server_key(invite)
    other_host = request(via="SIP/2.0/UDP Door.Example.COM;branch=z9hG4bKinv1")
    assert server_key(other_host) == ("z9hG4bKinv1", "door.example.com", "INVITE")


def test_server_key_rfc2543_fallback() -> None:
    for via in ("SIP/2.0/UDP 192.0.2.10:5060", "SIP/2.0/UDP 192.0.2.10:5060;branch=old1"):
        invite = request(via=via)
        ack = build_ack(invite, response(invite, 486))
        key = server_key(invite)
        assert key == (f"|call-1@192.0.2.10|fromtag1|7|{via}", "192.0.2.10:5060", "INVITE")
        assert server_key(ack) == key
        assert server_key(request(via=via, cseq=8)) != key
        assert server_key(request("CANCEL", via=via))[2] == "CANCEL"


def test_client_key_matches_responses() -> None:
    invite = request()
    t = InviteClientTransaction(invite, reliable=False, now=0.0)
    assert t.key == ("z9hG4bKinv1", "INVITE")
    assert client_key(response(invite, 180)) == t.key
    cancel = request("CANCEL")
    assert client_key(cancel) == ("z9hG4bKinv1", "CANCEL")
    assert client_key(response(cancel, 200)) == ("z9hG4bKinv1", "CANCEL")
    assert client_key(build_ack(invite, response(invite, 486))) == ("z9hG4bKinv1", "ACK")


# -- §9.1: an INVITE whose CANCEL gets no final response is given up 64*T1 later ----------------


def test_invite_client_cancelled_in_proceeding_ends_64_t1_after_the_cancel() -> None:
    t = InviteClientTransaction(request(), reliable=False, now=0.0)
    t.take_outbox()
    assert t.receive_response(response(t.request, 180), now=0.3)
    assert t.get_timer() is None  # ringing: the TU decides how long
    t.cancel_sent(now=10.0)
    t.cancel_sent(now=20.0)  # a second call keeps the first deadline
    assert t.get_timer() == 10.0 + 64 * 0.5
    t.handle_timer(41.9)
    assert state(t) is S.PROCEEDING
    t.handle_timer(42.0)
    assert state(t) is S.TERMINATED and t.timed_out and t.take_outbox() == []


def test_invite_client_cancelled_then_final_keeps_its_own_timers() -> None:
    t = InviteClientTransaction(request(), reliable=False, now=0.0)
    t.receive_response(response(t.request, 180), now=0.3)
    t.cancel_sent(now=1.0)
    t.receive_response(response(t.request, 487), now=1.2)
    assert state(t) is S.COMPLETED and t.get_timer() == 1.2 + 32.0  # Timer D, not the cancel's
    accepted = InviteClientTransaction(request(), reliable=False, now=0.0)
    accepted.receive_response(response(accepted.request, 180), now=0.3)
    accepted.cancel_sent(now=1.0)
    accepted.receive_response(response(accepted.request, 200), now=1.2)  # crossed the CANCEL
    assert state(accepted) is S.ACCEPTED and accepted.get_timer() == 1.2 + 32.0  # Timer M
    accepted.take_outbox()
    assert walk(accepted) == [(33.2, 0)] and not accepted.timed_out
    done = InviteClientTransaction(request(), reliable=True, now=0.0)
    done.receive_response(response(done.request, 486), now=0.1)
    done.cancel_sent(now=0.2)  # over already: nothing armed
    assert state(done) is S.TERMINATED and done.get_timer() is None


def test_invite_server_answered_once_a_final_went_out() -> None:
    t = InviteServerTransaction(request(), reliable=True, now=0.0)
    assert not t.answered
    t.send_response(response(t.request, 180), now=0.1)
    assert not t.answered
    t.send_response(response(t.request, 480), now=0.2)
    assert t.answered
