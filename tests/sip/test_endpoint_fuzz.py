"""Property test: random and mutated messages against a whole Endpoint with live dialogs.

The corpus is the RFC 4475 / RFC 5118 torture messages (read at test time from the shared test
data, ``../shared/testdata`` beside the repository) plus the project's own messages, built with
the identifiers of two real dialogs set up on the wire first: a call the door answered and a
call the door placed. Each example sends a few of them, mutated (header deleted or duplicated,
a numeric field made huge, negative or not a number, ``Contact: *``, truncation, byte flips,
tags swapped or dropped), each from its own source so that no rate limit hides anything, to
an application that refuses, answers, rings or ignores every new call. Then every timer runs
out. What must hold:

* nothing raises out of ``receive`` or ``handle_timer``;
* every request that starts a transaction (it parses, is not an ACK, and is not a
  retransmission of one seen before) gets at least one final response;
* afterwards no timer is armed and the endpoint holds no transaction and no call, except the
  two set-up calls while they are still live confirmed sessions.

The property runs twice: once with no trusted-source predicate (everyone may call), and once
with a door that trusts only ``TRUSTED`` (its server: the set-up incoming call came through
it, and the first message of each example comes from it); every other source is a stranger
and the gate judges it. Then, in addition: no IncomingCallReceived from a stranger, and a
stranger's message that names neither set-up call, or names one without the door's tag
(a CANCEL aside: it matches an INVITE transaction, not a dialog), gives no event at all and
leaves no server transaction and no call.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from intercom.sip.core import Address
from intercom.sip.endpoint import Endpoint
from intercom.sip.errors import RemoteProtocolError
from intercom.sip.events import Event, IncomingCallReceived
from intercom.sip.message import Request, Response, parse_message
from intercom.sip.transaction import server_key
from tests.sip.dialog_peer import (
    ANSWER,
    OFFER,
    PHONE,
    Dialog,
    Media,
    door,
    in_dialog,
    incoming_call,
    outgoing_call,
    reply,
    run_out,
)

ROOT = Path(__file__).resolve().parents[2]
SHARED = ROOT.parent / "shared" / "testdata"
VECTORS = SHARED if SHARED.is_dir() else ROOT / "tests" / "vectors"
TORTURE = [
    path.read_bytes()
    for path in sorted((VECTORS / "rfc4475").iterdir()) + sorted((VECTORS / "rfc5118").rglob("*"))
    if path.is_file() and path.suffix in (".dat", ".variant", "")
]

TRUSTED = Address("udp", "203.0.113.1", 5070)
"""The one trusted source of the gated door: the first message of each example comes from it."""
DTMF = b"Signal=5\r\nDuration=160\r\n"
DTMF_TYPE = "application/dtmf-relay"
TIMER = "Supported: timer\r\nSession-Expires: 120;refresher=uac\r\n"


def own_messages(incoming: Dialog, outgoing: Dialog, invite: Request) -> list[bytes]:
    """The project's own traffic, with the live dialogs' Call-IDs and tags."""

    def fresh(method: str, branch: str, body: bytes = b"", extra: str = "") -> bytes:
        return in_dialog(
            method, call_id="fresh-1", from_tag="caller9", to_tag=None, cseq=1, branch=branch,
            body=body, extra=extra,
        )  # fmt: skip

    messages = [
        fresh("INVITE", "z9hG4bKnew", OFFER),
        fresh("CANCEL", "z9hG4bKnew"),
        fresh("ACK", "z9hG4bKnew"),
        fresh("INVITE", "z9hG4bKnewt", OFFER, TIMER),
        in_dialog("OPTIONS", call_id="opt-1", from_tag="o", to_tag=None, cseq=1, branch="z9hG4bKo"),
    ]
    for dialog in (incoming, outgoing):
        messages += [
            dialog.request("BYE", "z9hG4bKbye"),
            dialog.request("INVITE", "z9hG4bKreinv", body=OFFER),
            dialog.request("INVITE", "z9hG4bKreinv0"),  # offerless: our offer, answer in ACK
            dialog.request("ACK", "z9hG4bKreack", body=OFFER),
            dialog.request("UPDATE", "z9hG4bKupd", body=OFFER, extra=TIMER),
            dialog.request("UPDATE", "z9hG4bKupd0", extra=TIMER),
            dialog.request("INFO", "z9hG4bKinfo", body=DTMF, content_type=DTMF_TYPE),
            dialog.request("OPTIONS", "z9hG4bKopt"),
            dialog.request("CANCEL", "z9hG4bKreinv"),
        ]
    messages += [
        reply(invite, 200, to_tag="kitchen", body=OFFER),  # a retransmitted 2xx
        reply(invite, 200, to_tag="attic", body=OFFER),  # a second answer from the fork
        reply(invite, 180, to_tag="hall"),
        reply(invite, 487, to_tag="kitchen"),
    ]
    return messages


NASTY = ["9" * 5000, "-1", "abc", "", "4294967296", "0", "1.5", "٣", "*"]
KINDS = ["delete", "duplicate", "number", "contact-star", "session-expires", "truncate",
         "flip", "swap-tags", "drop-tag", "fold"]  # fmt: skip
MUTATION = st.tuples(st.sampled_from(KINDS), st.integers(0, 2**16), st.sampled_from(NASTY))
NUMBER = re.compile(rb"\d+")


def mutate(data: bytes, kind: str, n: int, nasty: str) -> bytes:
    head, sep, body = data.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    pick = 1 + n % max(1, len(lines) - 1)  # a header line, never the start line
    if kind == "delete" and len(lines) > 1:
        del lines[pick]
    elif kind == "duplicate" and len(lines) > 1:
        lines.insert(pick, lines[pick])
    elif kind == "number":
        numbers = list(NUMBER.finditer(head))
        if numbers:
            m = numbers[n % len(numbers)]
            head = head[: m.start()] + nasty.encode() + head[m.end() :]
            return head + sep + body
    elif kind == "contact-star":
        lines = [line for line in lines if not line.lower().startswith((b"contact:", b"m:"))]
        lines.insert(pick if len(lines) > 1 else 1, b"Contact: *")
    elif kind == "session-expires":
        lines.insert(pick, b"Session-Expires: " + nasty.encode() + b";refresher=uas")
    elif kind == "truncate":
        return data[: n % (len(data) + 1)]
    elif kind == "flip":
        if data:
            at = n % len(data)
            return data[:at] + bytes([data[at] ^ (1 + n % 255)]) + data[at + 1 :]
    elif kind == "swap-tags":
        tags = re.findall(rb"tag=([^;>\r\n ]+)", head)
        if len(tags) >= 2:
            head = head.replace(tags[0], b"\0").replace(tags[1], tags[0]).replace(b"\0", tags[1])
            return head + sep + body
    elif kind == "drop-tag":
        head = re.sub(rb";tag=[^;>\r\n ]+", b"", head, count=1 + n % 2)
        return head + sep + body
    elif kind == "fold":
        lines.insert(pick, b" " + nasty.encode())
    return b"\r\n".join(lines) + sep + body


SENDS = st.lists(
    st.tuples(
        st.tuples(st.booleans(), st.integers(0, 10**6)),  # own message or torture, which one
        st.lists(MUTATION, max_size=3),
        st.booleans(),  # over TCP
    ),
    min_size=1,
    max_size=6,
)


def trusted_only(trusted: str) -> Callable[[str], bool]:
    return lambda host: host == trusted


class Harness:
    """The door with two live calls, an application deciding by Call-ID, and what went out.

    ``trusted``: the one source the door trusts (its server, which brought the incoming call),
    or None for a door without a trusted-source predicate (the incoming call from the phone).
    """

    def __init__(self, trusted: Address | None = None) -> None:
        self.now = 0.0
        self.endpoint: Endpoint = door(
            Media(), is_trusted_source=None if trusted is None else trusted_only(trusted.host)
        )
        self.incoming = incoming_call(self.endpoint, source=trusted or PHONE)
        self.outgoing, self.invite = outgoing_call(self.endpoint)
        self.sent: list[Request | Response] = []
        self.collect()
        self.own = own_messages(self.incoming, self.outgoing, self.invite)
        # The set-up INVITE's transaction is still alive: a copy of its branch is no new one.
        self.seen: set[tuple[str, str, str]] = {("z9hG4bKin-1", "198.51.100.9:5060", "INVITE")}

    def collect(self) -> list[Event]:
        """Parse what went out, let the application decide new calls; the events seen."""
        seen: list[Event] = []
        for data, _ in self.endpoint.datagrams_to_send():
            try:
                self.sent.append(parse_message(data))
            except RemoteProtocolError:  # a 400 echoing a broken header
                continue
        while (event := self.endpoint.next_event()) is not None:
            seen.append(event)
            if isinstance(event, IncomingCallReceived):
                self.decide(event.call_id)
        for data, _ in self.endpoint.datagrams_to_send():
            try:
                self.sent.append(parse_message(data))
            except RemoteProtocolError:
                continue
        return seen

    def of_a_setup_dialog(self, data: bytes, source: Address) -> bool:
        """Whether ``data`` names a set-up call with the door's tag as its To tag (or is a
        CANCEL naming one): only such a stranger's message may reach a call."""
        try:
            message = parse_message(data, stream=source.reliable)
        except RemoteProtocolError:
            return False
        for dialog in (self.incoming, self.outgoing):
            if message.call_id != dialog.call_id:
                continue
            if isinstance(message, Response):
                return True  # a response to the door's own requests of that call
            return message.method == "CANCEL" or message.to.tag == dialog.ours
        return False

    def decide(self, call_id: str) -> None:
        choice = zlib.crc32(call_id.encode("utf-8", "surrogateescape")) % 4
        if choice == 0:
            self.endpoint.reject(call_id, 403, self.now)
        elif choice == 1:
            self.endpoint.accept(call_id, ANSWER, self.now)
        elif choice == 2:
            self.endpoint.ring(call_id)  # and never decides: the core's bound must act
        # choice 3: the application says nothing at all

    def starts_transaction(self, data: bytes, source: Address) -> Request | None:
        """The request ``data`` is, when it must get a final response of its own."""
        try:
            message = parse_message(data, stream=source.reliable)
        except RemoteProtocolError:
            return None  # malformed: answered when salvageable, not our property
        if not isinstance(message, Request) or message.method == "ACK":
            return None
        key = server_key(message)
        if key in self.seen:
            return None  # a retransmission of an earlier one
        self.seen.add(key)
        return message

    def answered(self, request: Request) -> bool:
        branch = request.top_via.branch
        for message in self.sent:
            if not isinstance(message, Response) or message.status < 200:
                continue
            try:
                same = (
                    message.call_id == request.call_id
                    and message.cseq == request.cseq
                    and message.top_via.branch == branch
                )
            except RemoteProtocolError:
                continue
            if same:
                return True
        return False


def test_the_corpus_holds_the_torture_messages_and_our_own() -> None:
    assert len(TORTURE) >= 60, VECTORS  # RFC 4475 and RFC 5118, read from the shared data
    harness = Harness()
    assert len(harness.own) == 27
    for data in harness.own:  # unmutated, every one of ours parses
        parse_message(data)


@pytest.mark.parametrize("trusted", [None, TRUSTED], ids=["open-door", "gated-door"])
@settings(
    derandomize=True, database=None, max_examples=300, deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)  # fmt: skip
@given(SENDS)
def test_endpoint_survives_answers_and_forgets(
    trusted: Address | None,
    sends: list[tuple[tuple[bool, int], list[tuple[str, int, str]], bool]],
) -> None:
    harness = Harness(trusted)
    endpoint = harness.endpoint
    expected: list[Request] = []
    for i, ((torture, which), mutations, tcp) in enumerate(sends):
        corpus = TORTURE if torture else harness.own
        data = corpus[which % len(corpus)]
        for kind, n, nasty in mutations:
            data = mutate(data, kind, n, nasty)
        source = Address("tcp" if tcp else "udp", f"203.0.113.{i + 1}", 5070 + i)
        harness.now += 0.05
        starting = harness.starts_transaction(data, source)
        before = endpoint.held()
        endpoint.receive(data, source, harness.now)  # nothing may escape
        events = harness.collect()
        if starting is not None:
            expected.append(starting)
        if trusted is None or source.host == trusted.host:
            continue
        # A stranger: never a new call; and nothing at all unless it is of a set-up dialog.
        assert not [e for e in events if isinstance(e, IncomingCallReceived)], events
        if not harness.of_a_setup_dialog(data, source):
            assert events == [], (data, events)
            after = endpoint.held()
            assert after.server_transactions <= before.server_transactions, data
            assert set(after.calls) <= set(before.calls), data
    end = run_out(endpoint, harness.now, horizon=2.0**32)
    harness.now = end
    harness.collect()
    assert endpoint.get_timer() is None
    for request in expected:
        assert harness.answered(request), f"no final response to {request!r}"
    held = endpoint.held()
    assert (held.server_transactions, held.client_transactions) == (0, 0)
    kept = {harness.incoming.call_id: "confirmed", harness.outgoing.call_id: "connected"}
    for call_id, state in held.calls.items():
        assert kept.get(call_id) == state, (call_id, state)
