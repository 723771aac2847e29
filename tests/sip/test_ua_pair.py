"""Two of our endpoints over a fake UDP link that drops, duplicates and reorders.

Time is stepped by hand to the earliest deadline of either side (aioquic's roundtrip style), so
retransmission timers fire exactly as they would on a bad network, without sleeping.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

from intercom.sip.core import Address
from intercom.sip.endpoint import Endpoint, EndpointConfig
from intercom.sip.events import (
    CallAnswered,
    CallEnded,
    CallFailed,
    Event,
    IncomingCallCancelled,
    IncomingCallReceived,
    MediaUpdated,
)
from intercom.sip.incoming import UNDECIDED_LIMIT
from intercom.sip.message import Request, Response, parse_message
from intercom.sip.uri import SipUri

A = Address("udp", "192.0.2.1", 5060)
B = Address("udp", "192.0.2.2", 5060)
OFFER = b"v=0\r\no=a 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n"
ANSWER = b"v=0\r\no=b 1 1 IN IP4 192.0.2.2\r\ns=-\r\nc=IN IP4 192.0.2.2\r\nt=0 0\r\n"

# A rule sees (sender, first line of the message, how many such lines this sender sent before)
# and says what the link does with it: "drop", "dup" (deliver twice) or "hold" (deliver after
# the next message: reordering).
Rule = Callable[[str, str, int], str | None]


@dataclass
class Link:
    rule: Rule = lambda who, line, n: None
    now: float = 0.0
    trace: list[tuple[float, str, str]] = field(default_factory=list)
    events: dict[str, list[Event]] = field(default_factory=lambda: {"a": [], "b": []})
    _counts: dict[tuple[str, str], int] = field(default_factory=dict)
    _held: list[tuple[str, bytes]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.a = new_endpoint(A)
        self.b = new_endpoint(B)
        self.on_event: Callable[[str, Event], None] = lambda who, event: None

    def endpoint(self, who: str) -> Endpoint:
        return self.a if who == "a" else self.b

    def pump(self) -> None:
        """Move every queued datagram, applying the rule, until both sides are quiet."""
        moved = True
        while moved:
            moved = False
            for who in ("a", "b"):
                endpoint = self.endpoint(who)
                for data, destination in endpoint.datagrams_to_send():
                    moved = True
                    self._carry(who, data, destination)
                while (event := endpoint.next_event()) is not None:
                    moved = True
                    self.events[who].append(event)
                    self.on_event(who, event)

    def _carry(self, who: str, data: bytes, destination: Address) -> None:
        peer = "b" if who == "a" else "a"
        assert destination == (B if peer == "b" else A)
        line = data.split(b"\r\n", 1)[0].decode()
        n = self._counts.get((who, line), 0)
        self._counts[(who, line)] = n + 1
        self.trace.append((self.now, who, line))
        verdict = self.rule(who, line, n)
        if verdict == "drop":
            return
        if verdict == "hold":
            self._held.append((who, data))
            return
        copies = 2 if verdict == "dup" else 1
        for _ in range(copies):
            self.endpoint(peer).receive(data, A if who == "a" else B, self.now)
        for held_who, held in self._held:
            target = "b" if held_who == "a" else "a"
            self.endpoint(target).receive(held, A if held_who == "a" else B, self.now)
        self._held.clear()

    def run_until(self, done: Callable[[], bool], limit: float = 120.0) -> None:
        self.pump()
        while not done():
            deadlines = [t for t in (self.a.get_timer(), self.b.get_timer()) if t is not None]
            assert deadlines, "both sides idle before the expected outcome"
            self.now = max(self.now, min(deadlines))
            assert self.now <= limit, "no outcome within the time limit"
            self.a.handle_timer(self.now)
            self.b.handle_timer(self.now)
            self.pump()

    def settle(self) -> None:
        """Run every timer out: afterwards neither side may hold a transaction."""
        self.run_until(lambda: self.a.get_timer() is None and self.b.get_timer() is None, 400)

    def moves(self) -> list[tuple[float, str, str]]:
        """(time, sender, method or status code) of every message put on the link."""
        return [
            (t, who, line.split(" ")[1] if line.startswith("SIP/2.0 ") else line.split(" ")[0])
            for t, who, line in self.trace
        ]

    def sent(self, who: str, line_start: str) -> int:
        return sum(1 for _, w, line in self.trace if w == who and line.startswith(line_start))

    def of(self, who: str, kind: type[Event]) -> list[Event]:
        return [e for e in self.events[who] if isinstance(e, kind)]


def new_endpoint(address: Address) -> Endpoint:
    return Endpoint(
        EndpointConfig(local_host=address.host, local_port=address.port, user="door"),
        rng=random.Random(address.host),
        answer_offer=lambda call_id, offer: ANSWER,
    )


def answering(link: Link, *, ring: bool = True) -> None:
    def on_event(who: str, event: Event) -> None:
        if who == "b" and isinstance(event, IncomingCallReceived):
            assert event.sdp == OFFER
            if ring:
                link.b.ring(event.call_id)
            link.b.accept(event.call_id, ANSWER, link.now)

    link.on_event = on_event


def call(link: Link) -> str:
    return link.a.call(SipUri(B.host, "phone"), OFFER, link.now).call_id


def test_call_survives_a_lost_invite_and_duplicated_200() -> None:
    def rule(who: str, line: str, n: int) -> str | None:
        if line.startswith("INVITE") and n == 0:
            return "drop"
        if line.startswith("SIP/2.0 200") and n == 0:
            return "dup"
        return None

    link = Link(rule)
    answering(link)
    call_id = call(link)
    link.run_until(lambda: bool(link.of("a", CallAnswered)))
    assert link.sent("a", "INVITE") == 2  # Timer A retransmission after the loss
    assert link.now == 0.5
    [answered] = link.of("a", CallAnswered)
    assert isinstance(answered, CallAnswered) and answered.sdp == ANSWER
    assert answered.call_id == call_id
    # The duplicated 200 is ACKed again, yet reported once.
    assert link.sent("a", "ACK") == 2
    link.a.hangup(call_id, link.now)
    link.run_until(lambda: bool(link.of("b", CallEnded)))
    [ended] = link.of("b", CallEnded)
    assert isinstance(ended, CallEnded) and ended.by_peer
    link.settle()
    assert link.of("a", CallFailed) == []
    assert link.sent("b", "SIP/2.0 200") >= 2  # 200 to INVITE (one copy) and to BYE


def test_lost_ack_makes_the_callee_retransmit_its_200() -> None:
    link = Link(lambda who, line, n: "drop" if line.startswith("ACK") and n == 0 else None)
    answering(link, ring=False)
    call(link)
    link.run_until(lambda: link.sent("a", "ACK") == 2)
    # The 200 came again at T1 = 0.5 s and was ACKed again: the callee is confirmed.
    assert link.sent("b", "SIP/2.0 200") == 2
    link.settle()
    assert link.of("b", CallEnded) == []  # no "no ACK" hang-up


def test_bye_from_the_callee_is_retransmitted_until_answered() -> None:
    link = Link(lambda who, line, n: "drop" if line.startswith("BYE") and n < 2 else None)
    answering(link)
    call_id = call(link)
    link.run_until(lambda: bool(link.of("a", CallAnswered)))
    link.b.hangup(call_id, link.now)
    start = link.now
    link.run_until(lambda: bool(link.of("a", CallEnded)))
    assert link.sent("b", "BYE") == 3
    assert link.now == start + 1.5  # Timer E: 0.5, then 1.0 later
    [ended] = link.of("a", CallEnded)
    assert isinstance(ended, CallEnded) and ended.by_peer
    link.settle()


def test_cancel_of_a_ringing_call() -> None:
    link = Link(lambda who, line, n: "hold" if line.startswith("SIP/2.0 180") else None)

    def on_event(who: str, event: Event) -> None:
        if who == "b" and isinstance(event, IncomingCallReceived):
            link.b.ring(event.call_id)

    link.on_event = on_event
    call_id = call(link)
    link.pump()
    link.a.hangup(call_id, link.now)  # CANCEL waits for a provisional (§9.1): the 180 is held
    link.run_until(lambda: bool(link.of("a", CallFailed)))
    # b rang at once, so it sent no 100; the held 180 arrives behind the INVITE retransmitted
    # at 0.5 (Timer A), and only then does the CANCEL go.
    assert link.sent("b", "SIP/2.0 100") == 0
    assert link.moves() == [
        (0.0, "a", "INVITE"), (0.0, "b", "180"),
        (0.5, "a", "INVITE"), (0.5, "b", "180"), (0.5, "a", "CANCEL"),
        (0.5, "b", "487"), (0.5, "b", "200"), (0.5, "a", "ACK"),
    ]  # fmt: skip
    [failed] = link.of("a", CallFailed)
    assert isinstance(failed, CallFailed) and failed.status == 487
    [cancelled] = link.of("b", IncomingCallCancelled)
    assert isinstance(cancelled, IncomingCallCancelled) and cancelled.reason == "cancelled"
    assert link.sent("a", "CANCEL") == 1
    assert link.sent("a", "ACK") == 1  # the 487 is ACKed by the transaction
    link.settle()


def test_busy_callee_with_lost_486() -> None:
    link = Link(lambda who, line, n: "drop" if line.startswith("SIP/2.0 486") and n == 0 else None)

    def on_event(who: str, event: Event) -> None:
        if who == "b" and isinstance(event, IncomingCallReceived):
            link.b.reject(event.call_id, 486, link.now)

    link.on_event = on_event
    call(link)
    link.run_until(lambda: bool(link.of("a", CallFailed)))
    [failed] = link.of("a", CallFailed)
    assert isinstance(failed, CallFailed) and failed.status == 486
    # Refused at once: no 100 ever, so at 0.5 a's Timer A retransmits the INVITE, which gets
    # the 486 again, as Timer G retransmits it; both are ACKed.
    assert link.sent("b", "SIP/2.0 100") == 0
    assert link.moves() == [
        (0.0, "a", "INVITE"), (0.0, "b", "486"),
        (0.5, "a", "INVITE"), (0.5, "b", "486"), (0.5, "b", "486"),
        (0.5, "a", "ACK"), (0.5, "a", "ACK"),
    ]  # fmt: skip
    link.settle()
    assert len(link.of("a", CallFailed)) == 1


def test_reordered_provisional_and_final() -> None:
    # The 180 is held back and arrives after the 200: the call is answered once, not revived.
    link = Link(lambda who, line, n: "hold" if line.startswith("SIP/2.0 180") else None)
    answering(link)
    call(link)
    link.run_until(lambda: bool(link.of("a", CallAnswered)))
    link.settle()
    assert len(link.of("a", CallAnswered)) == 1
    assert link.of("a", CallFailed) == []


def test_requests_carry_what_rfc3261_requires() -> None:
    link = Link()
    answering(link)
    call(link)
    invite_bytes = next(d for d, _ in link.a.datagrams_to_send())
    invite = parse_message(invite_bytes)
    assert isinstance(invite, Request)
    via = invite.top_via
    assert via.branch is not None and via.branch.startswith("z9hG4bK")
    assert "rport" in via.params
    assert invite.headers.get("Max-Forwards") == "70"
    assert invite.from_.tag
    assert invite.to.tag is None
    assert invite.contacts[0].uri == SipUri("192.0.2.1", "door", 5060)
    assert invite.content_type == "application/sdp"
    link.b.receive(invite_bytes, A, 0.0)
    assert link.b.datagrams_to_send() == []  # b's application may still answer at once
    assert link.b.get_timer() == 0.2
    link.b.handle_timer(0.2)
    [(data, destination)] = link.b.datagrams_to_send()
    b_response = parse_message(data)
    assert destination == A
    assert isinstance(b_response, Response) and b_response.status == 100
    assert b_response.to.tag is None


def test_cancel_answered_elsewhere_is_told_apart() -> None:
    # A forking proxy CANCELs the losing branches with Reason: SIP;cause=200 (RFC 3326).
    link = Link()
    b_incoming: list[str] = []

    def on_event(who: str, event: Event) -> None:
        if who == "b" and isinstance(event, IncomingCallReceived):
            b_incoming.append(event.call_id)

    link.on_event = on_event
    call(link)
    link.pump()
    [call_id] = b_incoming
    invite = link.b._incoming(call_id).invite
    cancel = (
        f"CANCEL {invite.uri} SIP/2.0\r\nVia: {invite.headers.get_list('Via')[0]}\r\n"
        f"From: {invite.headers.get('From')}\r\nTo: {invite.headers.get('To')}\r\n"
        f"Call-ID: {call_id}\r\nCSeq: {invite.cseq.seq} CANCEL\r\nMax-Forwards: 70\r\n"
        'Reason: SIP;cause=200;text="Call completed elsewhere"\r\nContent-Length: 0\r\n\r\n'
    ).encode()
    link.b.receive(cancel, A, link.now)
    statuses = [parse_message(d) for d, _ in link.b.datagrams_to_send()]
    assert sorted(r.status for r in statuses if isinstance(r, Response)) == [200, 487]
    link.pump()
    [cancelled] = link.of("b", IncomingCallCancelled)
    assert isinstance(cancelled, IncomingCallCancelled)
    assert cancelled.reason == "answered elsewhere"


def test_offerless_invite_gets_our_offer_and_the_answer_arrives_in_the_ack() -> None:
    """RFC 3261 §13.2.1: no SDP in the INVITE, so the 200 carries the offer, the ACK the answer."""
    link = Link()

    def on_event(who: str, event: Event) -> None:
        if who == "b" and isinstance(event, IncomingCallReceived):
            assert event.sdp is None
            link.b.accept(event.call_id, OFFER, link.now)

    link.on_event = on_event
    call_id = link.a.call(SipUri(B.host, "phone"), None, link.now).call_id
    link.run_until(lambda: bool(link.of("b", MediaUpdated)))
    [updated] = link.of("b", MediaUpdated)
    assert updated == MediaUpdated(call_id, OFFER, ANSWER)  # ANSWER: a's answer_offer hook
    [answered] = link.of("a", CallAnswered)
    assert isinstance(answered, CallAnswered) and answered.sdp == OFFER


def test_hangup_reason_is_reported_in_call_ended() -> None:
    link = Link()
    answering(link, ring=False)
    call_id = call(link)
    link.run_until(lambda: bool(link.of("a", CallAnswered)))
    link.a.hangup(call_id, link.now, reason="media timeout")
    link.pump()
    [ended] = link.of("a", CallEnded)
    assert ended == CallEnded(call_id, "media timeout", by_peer=False)


def test_slow_callee_sends_100_at_200_ms_and_the_caller_stops_retransmitting() -> None:
    link = Link()
    incoming: list[str] = []

    def on_event(who: str, event: Event) -> None:
        if who == "b" and isinstance(event, IncomingCallReceived):
            incoming.append(event.call_id)

    link.on_event = on_event
    call(link)
    link.run_until(lambda: link.sent("b", "SIP/2.0 100") == 1)
    assert link.now == 0.2  # TRYING_DELAY: the application had not decided
    # The 100 stopped Timer A (§17.1.1.2) and was b's last pending timer: both sides wait.
    assert link.a.get_timer() is None and link.b.get_timer() == UNDECIDED_LIMIT
    link.now = 2.0
    link.b.accept(incoming[0], ANSWER, link.now)
    link.run_until(lambda: bool(link.of("a", CallAnswered)))
    assert link.moves() == [
        (0.0, "a", "INVITE"),
        (0.2, "b", "100"),
        (2.0, "b", "200"),
        (2.0, "a", "ACK"),
    ]
