"""The gate and responses: a stranger's stray responses are limited, dropped and counted
before the parser sees them; the server's and our callee's go on.

A response matters only to a request of ours. From a trusted source (the server) it goes to the
parser at once; from anyone else only when its top Via's branch, read without parsing, is one a
request of ours carried to that very address (the callee of a direct call).
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable

import pytest

from benchmarks.flood import measure_stray_responses
from intercom.sip import endpoint as endpoint_module
from intercom.sip.core import Address
from intercom.sip.endpoint import Endpoint, EndpointConfig
from intercom.sip.gate import top_via_branch
from intercom.sip.message import Message, Request, Response, parse_message
from intercom.sip.uas import RATE_BURST
from intercom.sip.uri import SipUri

SERVER = Address("udp", "192.0.2.5", 5060)
CALLEE = Address("udp", "198.51.100.20", 5060)
STRANGER = Address("udp", "203.0.113.66", 40000)


def new_endpoint() -> Endpoint:
    return Endpoint(
        EndpointConfig(local_host="192.0.2.10", local_port=5060, user="door"),
        rng=random.Random(5),
        answer_offer=lambda call_id, offer: None,
        is_trusted_source=lambda host: host == SERVER.host,
    )


def response(
    status: int, branch: str, *, call_id: str = "c1", from_tag: str = "d1", via: str = ""
) -> bytes:
    via = via or f"Via: SIP/2.0/UDP 192.0.2.10:5060;branch={branch};rport=40000\r\n"
    return (
        f"SIP/2.0 {status} OK\r\n{via}From: <sip:door@192.0.2.10>;tag={from_tag}\r\n"
        f"To: <sip:family@198.51.100.20>;tag=p1\r\nCall-ID: {call_id}\r\nCSeq: 1 INVITE\r\n"
        f"Contact: <sip:family@198.51.100.20>\r\nContent-Length: 0\r\n\r\n"
    ).encode()


class CountingParser:
    """parse_message of the endpoint, counting its calls: the gate must spare it."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, data: bytes, *, stream: bool = False) -> Message:
        self.calls += 1
        return parse_message(data, stream=stream)


@pytest.fixture
def parser(monkeypatch: pytest.MonkeyPatch) -> CountingParser:
    counting = CountingParser()
    monkeypatch.setattr(endpoint_module, "parse_message", counting)
    return counting


def direct_call(endpoint: Endpoint) -> Request:
    """The door calls CALLEE directly (no server): its INVITE as sent."""
    endpoint.call(SipUri(CALLEE.host, "family"), None, 0.0)
    [(data, destination)] = endpoint.datagrams_to_send()
    assert destination == CALLEE
    invite = parse_message(data)
    assert isinstance(invite, Request)
    return invite


# -- strangers' stray responses ----------------------------------------------------------------


def test_a_strangers_responses_are_dropped_unparsed(parser: CountingParser) -> None:
    endpoint = new_endpoint()
    invite = direct_call(endpoint)
    for n in range(50):
        endpoint.receive(response(200, f"z9hG4bKguess{n}", call_id=invite.call_id), STRANGER, 0.1)
        endpoint.receive(response(183, f"z9hG4bKguess{n}", call_id=invite.call_id), STRANGER, 0.1)
    assert parser.calls == 0
    assert endpoint.datagrams_to_send() == [] and endpoint.next_event() is None


@pytest.mark.parametrize(
    "disguise",
    [
        lambda data: b"\r\n\r\n" + data,  # CRLFs before the start line (§7.5)
        lambda data: b"sip/2.0" + data[7:],  # another case of SIP/2.0
        lambda data: data.replace(b"\r\n", b"\n"),  # bare LF line ends
    ],
    ids=["leading CRLFs", "lower case", "bare LF"],
)
def test_a_response_in_any_form_the_parser_reads_is_screened_alike(
    parser: CountingParser, disguise: Callable[[bytes], bytes]
) -> None:
    endpoint = new_endpoint()
    invite = direct_call(endpoint)
    ok = response(200, invite.top_via.branch or "", call_id=invite.call_id,
                  from_tag=invite.from_.tag or "")  # fmt: skip
    assert isinstance(parse_message(disguise(ok)), Response)  # the parser reads it
    endpoint.receive(disguise(ok), STRANGER, 0.1)
    endpoint.receive(disguise(response(183, "z9hG4bKguess")), STRANGER, 0.1)
    assert parser.calls == 0 and endpoint.datagrams_to_send() == []
    endpoint.receive(disguise(ok), CALLEE, 0.2)  # the callee's own still counts
    assert parser.calls == 1
    assert endpoint.datagrams_to_send()[0][0].startswith(b"ACK ")


def test_our_branch_from_another_address_is_dropped_unparsed(parser: CountingParser) -> None:
    """The branch alone is not enough: it must come back from where the request went."""
    endpoint = new_endpoint()
    invite = direct_call(endpoint)
    ok = response(200, invite.top_via.branch or "", call_id=invite.call_id,
                  from_tag=invite.from_.tag or "")  # fmt: skip
    endpoint.receive(ok, STRANGER, 0.1)
    assert parser.calls == 0 and endpoint.datagrams_to_send() == []
    endpoint.receive(ok, CALLEE, 0.2)
    assert parser.calls == 1  # the callee's own: parsed and ACKed (then BYEd: no SDP in it)
    answers = endpoint.datagrams_to_send()
    assert answers[0][0].startswith(b"ACK ")
    assert {destination for _, destination in answers} == {CALLEE}


def test_an_ipv4_mapped_source_is_the_same_callee(parser: CountingParser) -> None:
    """A dual-stack socket reports an IPv4 peer as ::ffff:a.b.c.d."""
    endpoint = new_endpoint()
    invite = direct_call(endpoint)
    mapped = Address("udp", f"::ffff:{CALLEE.host}", CALLEE.port)
    endpoint.receive(
        response(180, invite.top_via.branch or "", call_id=invite.call_id), mapped, 0.1
    )
    assert parser.calls == 1


def test_the_servers_responses_go_straight_to_the_parser(parser: CountingParser) -> None:
    endpoint = new_endpoint()
    for n in range(int(RATE_BURST) * 2):  # never rate-limited, whatever they are
        endpoint.receive(response(200, f"z9hG4bKlate{n}"), SERVER, 0.0)
    assert parser.calls == int(RATE_BURST) * 2
    assert endpoint.datagrams_to_send() == []  # stray all the same: the endpoint drops them


def test_stray_responses_spend_the_strangers_rate_limit() -> None:
    endpoint = new_endpoint()
    options = (
        b"OPTIONS sip:door@192.0.2.10 SIP/2.0\r\n"
        b"Via: SIP/2.0/UDP 203.0.113.66:40000;branch=z9hG4bKo1\r\n"
        b"From: <sip:m@203.0.113.66>;tag=m1\r\nTo: <sip:door@192.0.2.10>\r\n"
        b"Call-ID: o1\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
    )
    for n in range(int(RATE_BURST)):
        endpoint.receive(response(200, f"z9hG4bKguess{n}"), STRANGER, 0.0)
    endpoint.receive(options, STRANGER, 0.0)
    assert endpoint.datagrams_to_send() == []  # its budget is spent: the OPTIONS is dropped
    endpoint.receive(options, STRANGER, 1.0)  # the bucket refills
    [(data, destination)] = endpoint.datagrams_to_send()
    assert data.startswith(b"SIP/2.0 200 ") and destination == STRANGER


def test_stray_responses_are_counted_and_logged_once_a_minute(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    endpoint = new_endpoint()
    for n in range(1000):  # 100/s, over the rate limit too: all counted as stray
        endpoint.receive(response(200, f"z9hG4bKguess{n}"), STRANGER, n * 0.01)
    lines = [r.getMessage() for r in caplog.records if r.name.startswith("intercom.sip")]
    assert lines == [
        "x stray response from 203.0.113.66 dropped: not for a request of ours; more are"
        " counted and logged once a minute"
    ]
    assert endpoint.get_timer() == pytest.approx(0.01 + 60.0)
    endpoint.handle_timer(60.01)
    lines = [r.getMessage() for r in caplog.records if r.name.startswith("intercom.sip")]
    assert lines[1:] == [
        "x dropped 999 stray responses from 203.0.113.66 in the last 60 s: not for a request"
        " of ours"
    ]


def test_the_stray_response_benchmark_runs_on_a_tiny_count() -> None:
    figures = measure_stray_responses(200)
    assert figures.dropped == figures.responses == 200
    assert "dropped per CPU-second" in figures.lines()[0]


# -- reading the top Via's branch without parsing ------------------------------------------------


@pytest.mark.parametrize(
    ("via", "branch"),
    [
        ("Via: SIP/2.0/UDP 192.0.2.10;branch=z9hG4bKa1;rport\r\n", "z9hG4bKa1"),
        ("v: SIP/2.0/UDP 192.0.2.10 ; BRANCH = z9hG4bKa2\r\n", "z9hG4bKa2"),  # compact, spaces
        ("VIA : SIP/2.0/UDP 192.0.2.10;rport=5;branch=z9hG4bKa3\r\n", "z9hG4bKa3"),
        ("Via: SIP/2.0/UDP [2001:db8::1]:5060;branch=z9hG4bKa4\r\n", "z9hG4bKa4"),
        ("Via: SIP/2.0/UDP 192.0.2.10\r\n ;branch=z9hG4bKa5\r\n", "z9hG4bKa5"),  # folded
        ("Via: SIP/2.0/UDP 192.0.2.10;branch=z9hG4bKa6, SIP/2.0/UDP x;branch=b\r\n", "z9hG4bKa6"),
        ("Via: SIP/2.0/UDP 192.0.2.10\n\t;branch=z9hG4bKa7\n", "z9hG4bKa7"),  # bare LF, folded
        ("Via: SIP/2.0/UDP 192.0.2.10, SIP/2.0/UDP x;branch=z9hG4bKb\r\n", None),  # not the top
        ("Via: SIP/2.0/UDP 192.0.2.10\r\nVia: SIP/2.0/UDP x;branch=z9hG4bKb\r\n", None),
        ("X-Via: SIP/2.0/UDP x;branch=z9hG4bKx\r\n", None),
        ("Vias: SIP/2.0/UDP x;branch=z9hG4bKx\r\n", None),
        ("", None),
    ],
)
def test_the_top_via_branch_is_read_without_parsing(via: str, branch: str | None) -> None:
    assert top_via_branch(response(200, "", via=via or "X: y\r\n")) == branch


def test_a_via_in_the_body_is_not_the_top_via() -> None:
    data = response(200, "", via="X: y\r\n") + b"Via: SIP/2.0/UDP 192.0.2.10;branch=z9hG4bKbody\r\n"
    assert top_via_branch(data) is None
    assert top_via_branch(b"SIP/2.0 200 OK") is None
