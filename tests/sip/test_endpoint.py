"""Endpoint behaviour at the wire: ordering, routing, UAS checks, rate limiting."""

from __future__ import annotations

import random

import pytest

from intercom.sip.core import Address
from intercom.sip.endpoint import Endpoint, EndpointConfig
from intercom.sip.events import (
    AddressNeeded,
    CallFailed,
    Event,
    IncomingCallCancelled,
    IncomingCallReceived,
)
from intercom.sip.incoming import UNDECIDED_LIMIT
from intercom.sip.message import Request, Response, parse_message
from intercom.sip.uas import RATE_BURST
from intercom.sip.uri import SipUri

PEER = Address("udp", "198.51.100.9", 5060)


def new_endpoint() -> Endpoint:
    return Endpoint(
        EndpointConfig(local_host="192.0.2.10", local_port=5062, user="door"),
        rng=random.Random(3),
        answer_offer=lambda call_id, offer: None,
        credentials=("door", "secret"),
    )


def sent(endpoint: Endpoint) -> list[tuple[Request | Response, Address]]:
    return [(parse_message(data), dest) for data, dest in endpoint.datagrams_to_send()]


def request(method: str, *, user: str = "door", via_branch: str = "z9hG4bKpeer1", extra: str = "",
            to_tag: str = "", call_id: str = "c1", cseq: int = 1) -> bytes:  # fmt: skip
    to = f"<sip:{user}@192.0.2.10>" + (f";tag={to_tag}" if to_tag else "")
    return (
        f"{method} sip:{user}@192.0.2.10:5062 SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 10.0.0.5:5070;branch={via_branch};rport\r\n"
        f"From: <sip:caller@198.51.100.9>;tag=f1\r\nTo: {to}\r\nCall-ID: {call_id}\r\n"
        f"CSeq: {cseq} {method}\r\nMax-Forwards: 70\r\n"
        f"Contact: <sip:caller@198.51.100.9>\r\n{extra}Content-Length: 0\r\n\r\n"
    ).encode()


def response_to(invite: Request, status: int, extra: str = "", to_tag: str = "t9") -> bytes:
    head = [f"SIP/2.0 {status} Whatever", *(f"Via: {v}" for v in invite.headers.get_all("Via"))]
    head += [
        f"From: {invite.headers.get('From')}",
        f"To: {invite.headers.get('To')};tag={to_tag}",
        f"Call-ID: {invite.call_id}",
        f"CSeq: {invite.headers.get('CSeq')}",
    ]
    return ("\r\n".join(head) + "\r\n" + extra + "Content-Length: 0\r\n\r\n").encode()


def test_ack_for_a_challenge_goes_before_the_authenticated_invite() -> None:
    endpoint = new_endpoint()
    endpoint.call(SipUri(PEER.host, "family"), None, 0.0)
    [(invite, _)] = sent(endpoint)
    assert isinstance(invite, Request)
    challenge = 'Proxy-Authenticate: Digest realm="r", nonce="n1", qop="auth"\r\n'
    endpoint.receive(response_to(invite, 407, challenge), PEER, 0.1)
    out = [m for m, _ in sent(endpoint)]
    assert [m.method for m in out if isinstance(m, Request)] == ["ACK", "INVITE"]
    reinvite = out[1]
    assert isinstance(reinvite, Request)
    assert reinvite.cseq.seq == 2 and reinvite.headers.get("Proxy-Authorization")


def test_options_answer_is_the_same_for_every_user() -> None:
    answers = []
    for user in ("door", "admin", "nobody"):
        endpoint = new_endpoint()
        endpoint.receive(request("OPTIONS", user=user), PEER, 0.0)
        [(response, _)] = sent(endpoint)
        assert isinstance(response, Response) and response.status == 200
        answers.append(
            [(n, v) for n, v in response.headers if n not in ("To",)] + [("status", "200")]
        )
    assert answers[0] == answers[1] == answers[2]


def test_responses_follow_received_and_rport() -> None:
    endpoint = new_endpoint()
    endpoint.receive(request("OPTIONS"), PEER, 0.0)
    [(response, destination)] = sent(endpoint)
    assert isinstance(response, Response)
    via = response.top_via
    assert via.params["received"] == PEER.host and via.params["rport"] == str(PEER.port)
    assert destination == PEER  # not the Via's 10.0.0.5:5070 behind the NAT


def test_our_own_branch_in_via_is_a_loop() -> None:
    endpoint = new_endpoint()
    endpoint.call(SipUri(PEER.host, "family"), None, 0.0)
    [(invite, _)] = sent(endpoint)
    assert isinstance(invite, Request)
    ours = invite.top_via.branch
    looped = request("INVITE", extra=f"Via: SIP/2.0/UDP 192.0.2.10:5062;branch={ours}\r\n")
    endpoint.receive(looped, PEER, 0.1)
    assert [m.status for m, _ in sent(endpoint) if isinstance(m, Response)] == [482]


def test_merged_request_is_a_loop() -> None:
    endpoint = new_endpoint()
    endpoint.receive(request("INVITE", via_branch="z9hG4bKone"), PEER, 0.0)
    sent(endpoint)
    endpoint.receive(request("INVITE", via_branch="z9hG4bKtwo"), PEER, 0.1)
    assert [m.status for m, _ in sent(endpoint) if isinstance(m, Response)] == [482]


def test_max_forwards_zero() -> None:
    endpoint = new_endpoint()
    invite = request("INVITE").replace(b"Max-Forwards: 70", b"Max-Forwards: 0")
    endpoint.receive(invite, PEER, 0.0)
    assert [m.status for m, _ in sent(endpoint) if isinstance(m, Response)] == [483]
    options = request("OPTIONS", via_branch="z9hG4bKo").replace(b"Forwards: 70", b"Forwards: 0")
    endpoint.receive(options, PEER, 0.0)
    assert [m.status for m, _ in sent(endpoint) if isinstance(m, Response)] == [200]


def test_requests_outside_dialogs() -> None:
    endpoint = new_endpoint()
    for i, (method, status) in enumerate(
        [("BYE", 481), ("CANCEL", 481), ("REGISTER", 405), ("FOO", 501), ("INFO", 481)]
    ):
        endpoint.receive(request(method, via_branch=f"z9hG4bK{i}", call_id=f"x{i}"), PEER, 0.0)
        [(response, _)] = sent(endpoint)
        assert isinstance(response, Response) and response.status == status, method
        if status in (405, 501):
            assert "INVITE" in (response.headers.get("Allow") or "")


def test_flood_from_one_source_is_dropped() -> None:
    endpoint = new_endpoint()
    answered = 0
    for i in range(int(RATE_BURST) + 40):
        endpoint.receive(request("OPTIONS", via_branch=f"z9hG4bKf{i}", call_id=f"f{i}"), PEER, 0.0)
        answered += len(sent(endpoint))
    assert answered == int(RATE_BURST)
    other = Address("udp", "198.51.100.10", 5060)
    endpoint.receive(request("OPTIONS", via_branch="z9hG4bKo", call_id="o"), other, 0.0)
    assert len(sent(endpoint)) == 1  # another source is unaffected
    endpoint.receive(request("OPTIONS", via_branch="z9hG4bKl", call_id="l"), PEER, 5.0)
    assert len(sent(endpoint)) == 1  # the bucket refills with time


def test_unroutable_target_fails_the_call_cleanly() -> None:
    endpoint = new_endpoint()
    endpoint.call(SipUri("pbx.unknown.example", "family"), None, 0.0)
    assert sent(endpoint) == []
    assert endpoint.next_event() == AddressNeeded("pbx.unknown.example")  # the runtime's DNS
    endpoint.address_failed("pbx.unknown.example", 0.5)
    events = []
    while (event := endpoint.next_event()) is not None:
        events.append(event)
    assert [type(e) for e in events] == [CallFailed]
    assert events[0] == CallFailed(events[0].call_id, None, "unreachable")  # type: ignore[attr-defined]
    assert endpoint.active_call_ids() == []


# -- 100 Trying only when the application is slow (RFC 3261 §17.2.1) ------------------------------


def answers(endpoint: Endpoint) -> list[tuple[int, str]]:
    """(status, CSeq method) of every response sent since the last call."""
    return [(m.status, m.cseq.method) for m, _ in sent(endpoint) if isinstance(m, Response)]


def events(endpoint: Endpoint) -> list[Event]:
    out = []
    while (event := endpoint.next_event()) is not None:
        out.append(event)
    return out


def run_timers(endpoint: Endpoint, until: float) -> list[tuple[float, int, str]]:
    """Fire every deadline up to ``until`` at its exact time; (time, status, method) sent."""
    out = []
    while (when := endpoint.get_timer()) is not None and when <= until:
        endpoint.handle_timer(when)
        out += [(when, status, method) for status, method in answers(endpoint)]
    return out


@pytest.mark.parametrize("transport", ["udp", "tcp", "tls"])
def test_invite_gets_100_after_200_ms_when_the_application_is_silent(transport: str) -> None:
    endpoint = new_endpoint()
    source = Address(transport, PEER.host, PEER.port)
    invite = request("INVITE")
    if transport != "udp":  # over TLS, the connection the request came in on (RFC 5923)
        invite = invite.replace(b"SIP/2.0/UDP", f"SIP/2.0/{transport.upper()}".encode())
    endpoint.receive(invite, source, 5.0)
    assert sent(endpoint) == []  # the application decides first
    [received] = events(endpoint)
    assert isinstance(received, IncomingCallReceived) and received.call_id == "c1"
    assert endpoint.get_timer() == 5.2
    endpoint.handle_timer(5.19)
    assert sent(endpoint) == []
    endpoint.handle_timer(5.2)
    [(trying, destination)] = sent(endpoint)
    assert isinstance(trying, Response) and trying.status == 100
    assert trying.to.tag is None and trying.cseq.method == "INVITE"
    assert destination == source
    # nothing else pending while the call waits, but the bound on the application's decision
    assert endpoint.get_timer() == 5.0 + UNDECIDED_LIMIT
    endpoint.accept("c1", None, 7.0)  # the application answers late: only the 200 now
    assert answers(endpoint) == [(200, "INVITE")]


@pytest.mark.parametrize("at", [5.0, 5.15], ids=["at-once", "within-200ms"])
@pytest.mark.parametrize(
    ("decision", "status"),
    [("ring", 180), ("accept", 200), ("reject", 403), ("reject", 486), ("reject", 488)],
)
def test_application_deciding_within_200_ms_sends_no_100(
    decision: str, status: int, at: float
) -> None:
    endpoint = new_endpoint()
    endpoint.receive(request("INVITE"), PEER, 5.0)
    events(endpoint)
    if at > 5.0:
        endpoint.handle_timer(at)  # not due yet: nothing
        assert sent(endpoint) == []
    if decision == "ring":
        endpoint.ring("c1")
    elif decision == "accept":
        endpoint.accept("c1", None, at)
    else:
        endpoint.reject("c1", status, at)
    assert answers(endpoint) == [(status, "INVITE")]
    later = run_timers(endpoint, 10.0)
    assert all(status != 100 for _, status, _ in later), later
    if status >= 300:  # Timer G retransmits the refusal alone
        assert [t - at for t, _, _ in later] == pytest.approx([0.5, 1.5, 3.5])
        assert {s for _, s, _ in later} == {status}


def test_retransmitted_invite_before_any_response_gets_100_at_once() -> None:
    endpoint = new_endpoint()
    endpoint.receive(request("INVITE"), PEER, 0.0)
    assert sent(endpoint) == []
    assert [type(e) for e in events(endpoint)] == [IncomingCallReceived]
    endpoint.receive(request("INVITE"), PEER, 0.1)  # the peer's Timer A is shorter than ours
    assert answers(endpoint) == [(100, "INVITE")]
    assert events(endpoint) == []  # the same call, not a new one
    assert endpoint.get_timer() == UNDECIDED_LIMIT  # the pending 100 went: no second at 0.2
    endpoint.handle_timer(0.2)
    assert sent(endpoint) == []
    endpoint.receive(request("INVITE"), PEER, 0.6)
    assert answers(endpoint) == [(100, "INVITE")]  # the last provisional, again
    endpoint.reject("c1", 403, 0.7)
    assert answers(endpoint) == [(403, "INVITE")]
    endpoint.receive(request("INVITE"), PEER, 0.8)
    assert answers(endpoint) == [(403, "INVITE")]


def test_cancel_before_the_100() -> None:
    endpoint = new_endpoint()
    endpoint.receive(request("INVITE"), PEER, 0.0)
    events(endpoint)
    endpoint.receive(request("CANCEL"), PEER, 0.1)
    assert answers(endpoint) == [(487, "INVITE"), (200, "CANCEL")]
    [cancelled] = events(endpoint)
    assert isinstance(cancelled, IncomingCallCancelled) and cancelled.call_id == "c1"
    later = run_timers(endpoint, 2.0)
    assert later == [(0.6, 487, "INVITE"), (1.6, 487, "INVITE")]  # Timer G; never a 100


class _Silent:
    def on_response(self, request: Request, response: Response, now: float) -> None:
        pass

    def on_transaction_failed(self, request: Request, reason: str, now: float) -> None:
        pass


def test_send_request_returns_the_request_as_sent_and_leaves_the_tus_own_alone() -> None:
    endpoint = new_endpoint()
    options = Request(method="OPTIONS", uri=SipUri("198.51.100.7", "peer"))
    for name, value in (("From", "<sip:door@192.0.2.10>;tag=a"), ("To", "<sip:peer@198.51.100.7>"),
                        ("Call-ID", "c1"), ("CSeq", "1 OPTIONS")):  # fmt: skip
        options.headers.add(name, value)
    as_sent = endpoint.send_request(options, _Silent())
    assert options.headers.get("Via") is None and "Max-Forwards" not in options.headers
    assert as_sent.top_via.branch and as_sent.top_via.host == "192.0.2.10"
    assert as_sent.headers.get("Max-Forwards") == "70"
    [(message, destination)] = sent(endpoint)
    assert destination == Address("udp", "198.51.100.7", 5060)
    assert message.encode() == as_sent.encode()


@pytest.mark.parametrize("uri", ["sip:peer@phone.example", "sip:peer@phone.example;transport=tls"])
def test_a_held_request_is_returned_as_it_will_be_sent_and_never_edited_later(uri: str) -> None:
    endpoint = new_endpoint()
    options = Request(method="OPTIONS", uri=SipUri.parse(uri))
    for name, value in (("From", "<sip:door@192.0.2.10>;tag=a"), ("To", f"<{uri}>"),
                        ("Call-ID", "c1"), ("CSeq", "1 OPTIONS")):  # fmt: skip
        options.headers.add(name, value)
    as_sent = endpoint.send_request(options, _Silent())
    transport = "tls" if "tls" in uri else "udp"
    asked = AddressNeeded("phone.example", None, "tls" if transport == "tls" else None)
    assert sent(endpoint) == [] and events(endpoint) == [asked]  # looked up for TLS: RFC 3263
    before = as_sent.encode()
    assert as_sent.top_via.transport == transport.upper() and as_sent.top_via.branch
    endpoint.learn_address("phone.example", Address(transport, "198.51.100.7", 5060))
    [(message, destination)] = sent(endpoint)
    assert destination.host == "198.51.100.7" and destination.transport == transport
    assert as_sent.encode() == before == message.encode()
    assert options.headers.get("Via") is None


def test_an_unacked_200_is_resent_as_a_re_invites_and_given_up_at_64_t1() -> None:
    endpoint = new_endpoint()
    endpoint.receive(request("INVITE"), PEER, 0.0)
    events(endpoint)
    endpoint.accept("c1", None, 0.0)
    assert answers(endpoint) == [(200, "INVITE")]
    fired = []
    while (when := endpoint.get_timer()) is not None and when <= 32.0:
        endpoint.handle_timer(when)
        fired += [
            (when, m.status if isinstance(m, Response) else m.method) for m, _ in sent(endpoint)
        ]
    resends = [0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5]
    assert fired == [*((t, 200) for t in resends), (32.0, "BYE")]
