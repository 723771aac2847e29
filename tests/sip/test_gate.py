"""The gate in front of the endpoint: strangers refused cheaply, floods counted, not logged.

Every test drives a whole :class:`Endpoint` with exact bytes and times; the endpoint trusts
``SERVER`` only (as the daemon hands it the policy's predicate) unless a test says otherwise.
"""

from __future__ import annotations

import logging
import random
import re
from pathlib import Path

import pytest

from benchmarks.flood import VARIANTS, invite, measure_endpoint
from intercom.sip import gate as gate_module
from intercom.sip.core import Address
from intercom.sip.endpoint import Endpoint, EndpointConfig, Held
from intercom.sip.events import Event, IncomingCallCancelled, IncomingCallReceived
from intercom.sip.gate import REPORT_INTERVAL, scan_request
from intercom.sip.message import Request, Response, parse_message
from intercom.sip.uas import RATE_BURST, RateLimiter, response_destination
from intercom.sip.uri import SipUri

SERVER = Address("udp", "192.0.2.5", 5060)
STRANGER = Address("udp", "198.51.100.9", 40000)
ELSEWHERE = "203.0.113.77"  # the host a stranger names in its Via: nothing may go there
VECTORS = Path(__file__).parent.parent / "vectors"
SDP = b"v=0\r\no=- 1 1 IN IP4 192.0.2.10\r\ns=-\r\nc=IN IP4 192.0.2.10\r\nt=0 0\r\n"


def new_endpoint(trusted: tuple[str, ...] | None = (SERVER.host,)) -> Endpoint:
    return Endpoint(
        EndpointConfig(local_host="192.0.2.10", local_port=5060, user="door"),
        rng=random.Random(5),
        answer_offer=lambda call_id, offer: None,
        is_trusted_source=None if trusted is None else (lambda host: host in trusted),
    )


def request(method: str, n: int = 0, *, user: str = "door", via_host: str = ELSEWHERE,
            to_tag: str = "", call_id: str = "", extra: str = "") -> bytes:  # fmt: skip
    to = f"<sip:{user}@192.0.2.10>" + (f";tag={to_tag}" if to_tag else "")
    return (
        f"{method} sip:{user}@192.0.2.10 SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP {via_host}:5070;branch=z9hG4bKg{n};rport\r\n"
        f'From: "Mallory" <sip:mallory@evil.example>;tag=f{n}\r\nTo: {to}\r\n'
        f"Call-ID: {call_id or f'flood-{n}'}\r\nCSeq: 1 {method}\r\nMax-Forwards: 70\r\n"
        f"Contact: <sip:mallory@{via_host}:5070>\r\n{extra}Content-Length: 0\r\n\r\n"
    ).encode()


def sent(endpoint: Endpoint) -> list[tuple[Request | Response, Address]]:
    return [(parse_message(data), dest) for data, dest in endpoint.datagrams_to_send()]


def statuses(endpoint: Endpoint) -> list[int]:
    return [m.status for m, _ in sent(endpoint) if isinstance(m, Response)]


def events(endpoint: Endpoint) -> list[Event]:
    out = []
    while (event := endpoint.next_event()) is not None:
        out.append(event)
    return out


# -- strangers' INVITEs: a stateless 403, nothing held --------------------------------------


def test_an_untrusted_invite_gets_a_stateless_403_and_leaves_nothing_behind() -> None:
    endpoint = new_endpoint()
    endpoint.receive(request("INVITE"), STRANGER, 0.0)
    [(response, destination)] = sent(endpoint)
    assert isinstance(response, Response) and response.status == 403
    assert destination == STRANGER  # the packet's source, not the Via's 203.0.113.77:5070
    via = response.top_via
    assert via.params["received"] == STRANGER.host and via.params["rport"] == "40000"
    assert via.branch == "z9hG4bKg0" and response.call_id == "flood-0"
    assert response.cseq.method == "INVITE" and response.to.tag
    assert response.from_.tag == "f0"
    # Nothing held: no server transaction, no call, no event, no timer (no 100, no 403 resends).
    assert endpoint.held().server_transactions == 0 and endpoint.active_call_ids() == []
    assert events(endpoint) == []
    assert endpoint.get_timer() is None
    endpoint.handle_timer(5.0)
    assert sent(endpoint) == []


def test_a_retransmitted_invite_gets_the_same_403_again() -> None:
    endpoint = new_endpoint()
    endpoint.receive(request("INVITE"), STRANGER, 0.0)
    first = endpoint.datagrams_to_send()
    endpoint.receive(request("INVITE"), STRANGER, 0.5)
    assert endpoint.datagrams_to_send() == first  # same To tag: a stateless UAS (§8.2.7)


@pytest.mark.parametrize("scanned", [True, False], ids=["light-scan", "after-the-parser"])
def test_a_stateless_answer_echoes_the_requests_octets_exactly(
    scanned: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = request("INVITE").replace(b"flood-0", b"flood-\xf5\xff").replace(b"Mallory", b"M\xe9")
    if not scanned:
        monkeypatch.setattr(gate_module, "scan_request", lambda data: None)
    endpoint = new_endpoint()
    endpoint.receive(data, STRANGER, 0.0)
    [(answer, _)] = endpoint.datagrams_to_send()
    assert answer.startswith(b"SIP/2.0 403 ")
    assert b"\r\nCall-ID: flood-\xf5\xff\r\n" in answer  # its sender can match it (§8.2.6.2)
    assert b'\r\nFrom: "M\xe9" <sip:mallory@evil.example>;tag=f0\r\n' in answer


@pytest.mark.parametrize("method", ["SUBSCRIBE", "REFER"])
def test_other_dialog_creating_requests_from_strangers_get_403(method: str) -> None:
    endpoint = new_endpoint()
    endpoint.receive(request(method), STRANGER, 0.0)
    assert statuses(endpoint) == [403]
    assert endpoint.held().server_transactions == 0


def test_a_trusted_invite_still_reaches_the_application() -> None:
    endpoint = new_endpoint()
    endpoint.receive(request("INVITE", via_host=SERVER.host), SERVER, 0.0)
    assert sent(endpoint) == []  # the application has 200 ms to answer
    [event] = events(endpoint)
    assert isinstance(event, IncomingCallReceived) and event.source_host == SERVER.host
    assert endpoint.held().server_transactions == 1


def test_without_a_predicate_everyone_may_call() -> None:
    endpoint = new_endpoint(trusted=None)
    endpoint.receive(request("INVITE"), STRANGER, 0.0)
    assert [type(e) for e in events(endpoint)] == [IncomingCallReceived]


def test_options_from_a_stranger_is_answered_the_same_for_every_user() -> None:
    answers = []
    for user in ("door", "admin", "nobody"):
        endpoint = new_endpoint()
        endpoint.receive(request("OPTIONS", user=user), STRANGER, 0.0)
        [(response, destination)] = sent(endpoint)
        assert isinstance(response, Response) and response.status == 200
        assert destination == STRANGER
        assert response.headers.get("Allow") and response.headers.get("Supported")
        assert endpoint.held().server_transactions == 0  # stateless: nothing held for 32 s
        answers.append([(n, v) for n, v in response.headers if n != "To"])
    assert answers[0] == answers[1] == answers[2]


def test_other_requests_from_strangers_are_answered_statelessly() -> None:
    endpoint = new_endpoint()
    for n, method in enumerate(["REGISTER", "MESSAGE", "PUBLISH", "FOO"]):
        endpoint.receive(request(method, n), STRANGER, n * 0.1)
    out = sent(endpoint)
    assert [m.status for m, _ in out if isinstance(m, Response)] == [405, 405, 405, 501]
    assert all("INVITE" in (m.headers.get("Allow") or "") for m, _ in out)
    assert endpoint.held().server_transactions == 0 and endpoint.get_timer() is None


def test_an_options_flood_from_fifty_strangers_holds_nothing() -> None:
    endpoint = new_endpoint()
    for n in range(5000):
        source = Address("udp", f"198.51.100.{n % 50 + 1}", 5060)
        endpoint.receive(request("OPTIONS", n), source, n * 0.001)
    assert statuses(endpoint) == [200] * 5000
    assert endpoint.held().server_transactions == 0 and endpoint.get_timer() is None


def test_strangers_requests_for_no_call_get_a_stateless_481_and_their_acks_vanish() -> None:
    endpoint = new_endpoint()
    endpoint.receive(request("BYE", 1, to_tag="x"), STRANGER, 0.0)
    endpoint.receive(request("CANCEL", 2), STRANGER, 0.0)
    endpoint.receive(request("INVITE", 3, to_tag="x"), STRANGER, 0.0)  # a fake re-INVITE
    endpoint.receive(request("ACK", 4, to_tag="x"), STRANGER, 0.0)
    assert statuses(endpoint) == [481, 481, 481]
    assert endpoint.held().server_transactions == 0


def test_the_callee_of_a_direct_call_is_a_stranger_whose_traffic_still_gets_through() -> None:
    endpoint = new_endpoint()
    callee = Address("udp", "198.51.100.20", 5060)
    call = endpoint.call(SipUri(callee.host, "family"), None, 0.0)
    [(invite, _)] = sent(endpoint)
    assert isinstance(invite, Request)
    # Its in-dialog requests pass the gate to the call (which judges them)...
    bye = request("BYE", 9, to_tag="door-tag", call_id=call.call_id)
    assert endpoint.gate.screen(bye, callee, 0.05) is None
    assert endpoint.gate.screen(request("BYE", 9, to_tag="t"), callee, 0.05) != b""  # 481
    ok = (
        f"SIP/2.0 200 OK\r\nVia: {invite.headers.get('Via')}\r\n"
        f"From: {invite.headers.get('From')}\r\nTo: <sip:family@{callee.host}>;tag=c1\r\n"
        f"Call-ID: {call.call_id}\r\nCSeq: 1 INVITE\r\n"
        f"Contact: <sip:family@{callee.host}>\r\nContent-Length: 0\r\n\r\n"
    ).encode()
    for n in range(int(RATE_BURST) + 5):  # ...its bucket is empty...
        endpoint.receive(request("OPTIONS", 100 + n), callee, 0.1)
    endpoint.datagrams_to_send()
    endpoint.receive(ok, callee, 0.2)  # ...and its response still reaches the call: ACKed
    assert [m.method for m, _ in sent(endpoint) if isinstance(m, Request)][:1] == ["ACK"]


# -- what the light scan cannot read: the same answer once the parser has read it -----------

JUDGED = [
    ("INVITE", "", 403), ("SUBSCRIBE", "", 403), ("OPTIONS", "", 200), ("BYE", "x", 481),
    ("CANCEL", "", 481), ("INVITE", "y", 481), ("REGISTER", "", 405), ("FOO", "", 501),
    ("ACK", "x", None), ("invite", "", 403),
]  # fmt: skip


@pytest.mark.parametrize(("method", "to_tag", "status"), JUDGED)
def test_a_request_the_scan_cannot_read_gets_the_same_stateless_answer_after_the_parser(
    method: str, to_tag: str, status: int | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = request(method, to_tag=to_tag)
    cheap = new_endpoint()
    cheap.receive(data, STRANGER, 0.0)
    expected = cheap.datagrams_to_send()
    monkeypatch.setattr(gate_module, "scan_request", lambda data: None)
    endpoint = new_endpoint()
    endpoint.receive(data, STRANGER, 0.0)
    out = endpoint.datagrams_to_send()
    assert out == expected  # byte for byte, To tag included
    answers = [parse_message(data) for data, _ in out]
    assert [m.status for m in answers if isinstance(m, Response)] == ([status] if status else [])
    assert len(answers) == (1 if status else 0)
    assert endpoint.held() == Held(0, 0, {}) and events(endpoint) == []
    assert endpoint.get_timer() is None


def test_a_method_the_scan_does_not_read_is_answered_statelessly() -> None:
    endpoint = new_endpoint()
    endpoint.receive(request("X-FOO"), STRANGER, 0.0)  # a token, not letters only
    [(response, destination)] = sent(endpoint)
    assert isinstance(response, Response) and response.status == 501
    assert destination == STRANGER and response.headers.get("Allow")
    assert endpoint.held() == Held(0, 0, {}) and endpoint.get_timer() is None


def test_refusals_after_the_parser_are_counted_like_the_scans(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    caplog.set_level(logging.DEBUG)
    monkeypatch.setattr(gate_module, "scan_request", lambda data: None)
    endpoint = new_endpoint()
    for n in range(30):
        endpoint.receive(request("INVITE", n), STRANGER, n * 0.1)
    assert statuses(endpoint) == [403] * 30
    endpoint.gate.log.flush(3.0)
    lines = flood_log(caplog)
    assert len(lines) == 2 and "INVITE from 198.51.100.9 refused with 403" in lines[0]
    assert lines[1] == "x refused 29 INVITEs from 198.51.100.9 in the last 3 s: untrusted source"
    assert [r for r in caplog.records if r.name == "intercom.sip.endpoint"] == []


def answered_direct_call(endpoint: Endpoint, callee: Address) -> tuple[str, str]:
    """The door calls ``callee`` (a stranger) directly and it answers with To tag ``f9``, the
    From tag of :func:`request` number 9: the Call-ID and the door's tag."""
    call = endpoint.call(SipUri(callee.host, "family"), SDP, 0.0)
    [(invite, _)] = sent(endpoint)
    assert isinstance(invite, Request) and invite.from_.tag
    ok = (
        f"SIP/2.0 200 OK\r\nVia: {invite.headers.get('Via')}\r\n"
        f"From: {invite.headers.get('From')}\r\nTo: <sip:family@{callee.host}>;tag=f9\r\n"
        f"Call-ID: {call.call_id}\r\nCSeq: 1 INVITE\r\n"
        f"Contact: <sip:family@{callee.host}>\r\nContent-Type: application/sdp\r\n"
        f"Content-Length: {len(SDP)}\r\n\r\n"
    ).encode() + SDP
    endpoint.receive(ok, callee, 0.1)
    assert [m.method for m, _ in sent(endpoint) if isinstance(m, Request)] == ["ACK"]
    events(endpoint)
    return call.call_id, invite.from_.tag


def test_a_stranger_who_knows_a_call_id_but_not_its_tags_gets_a_stateless_481(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    endpoint = new_endpoint()
    callee = Address("udp", "198.51.100.20", 5060)
    call_id, ours = answered_direct_call(endpoint, callee)
    held = endpoint.held()
    forged = [
        request("BYE", 10, to_tag=ours, call_id=call_id),  # another From tag
        request("INFO", 9, to_tag="guess", call_id=call_id),  # a guessed To tag
        request("INVITE", 9, to_tag=ours, call_id=call_id).replace(b";tag=f9", b""),
        request("UPDATE", 11, to_tag=ours, call_id=call_id),
        request("CANCEL", 12, call_id=call_id),  # no INVITE transaction of that branch
    ]
    for n in range(20):
        for data in forged:
            endpoint.receive(data, STRANGER if n % 2 else callee, 1.0 + n * 0.1)
    out = sent(endpoint)
    assert [m.status for m, _ in out if isinstance(m, Response)] == [481] * 100
    assert {destination for _, destination in out} == {STRANGER, callee}
    assert endpoint.held() == held and events(endpoint) == []  # no transaction, no change
    assert [r for r in caplog.records if r.name == "intercom.sip.endpoint"] == []
    endpoint.gate.log.flush(5.0)
    lines = flood_log(caplog)
    assert len(lines) == 4, lines  # per source: once at first sight, once with a count
    assert "x refused 49 requests from 198.51.100.9 in the last 4 s: untrusted source" in lines
    # The callee's own BYE, tags and all, still ends the call (and holds its transaction).
    endpoint.receive(request("BYE", 9, to_tag=ours, call_id=call_id), callee, 6.0)
    assert statuses(endpoint) == [200]
    assert endpoint.active_call_ids() == [] and endpoint.held().server_transactions == 1


def test_a_stranger_cannot_cancel_a_call_from_the_server_even_with_its_branch() -> None:
    endpoint = new_endpoint()
    endpoint.receive(request("INVITE", 5, via_host=SERVER.host), SERVER, 0.0)
    [received] = events(endpoint)
    assert isinstance(received, IncomingCallReceived)
    endpoint.ring(received.call_id)
    sent(endpoint)
    forged = request("CANCEL", 5, via_host=SERVER.host)  # the INVITE's own branch and sent-by
    endpoint.receive(forged, STRANGER, 0.1)
    [(response, destination)] = sent(endpoint)
    assert isinstance(response, Response) and response.status == 481
    assert destination == STRANGER and events(endpoint) == []
    assert endpoint.held() == Held(1, 0, {received.call_id: "received"})  # still ringing
    endpoint.receive(forged, SERVER, 0.2)  # the server's own CANCEL (§9.2) still works
    assert sorted(statuses(endpoint)) == [200, 487]
    assert [type(e) for e in events(endpoint)] == [IncomingCallCancelled]


# -- rate limits ----------------------------------------------------------------------------


def test_trusted_sources_are_never_rate_limited() -> None:
    endpoint = new_endpoint()
    for n in range(int(RATE_BURST) * 3):
        endpoint.receive(request("OPTIONS", n, via_host=SERVER.host), SERVER, 0.0)
    assert statuses(endpoint) == [200] * (int(RATE_BURST) * 3)


def test_a_strangers_flood_is_limited_refusals_included() -> None:
    endpoint = new_endpoint()
    for n in range(int(RATE_BURST) + 40):
        endpoint.receive(request("INVITE", n), STRANGER, 0.0)
    assert statuses(endpoint) == [403] * int(RATE_BURST)
    endpoint.receive(request("INVITE", 999), STRANGER, 1.0)  # the bucket refills
    assert statuses(endpoint) == [403]


def test_malformed_requests_count_against_the_limit_and_are_answered_to_their_source() -> None:
    endpoint = new_endpoint()
    broken = request("OPTIONS", extra="a header line without a colon\r\n")  # 400
    for _ in range(int(RATE_BURST) + 10):
        endpoint.receive(broken, STRANGER, 0.0)
    out = endpoint.datagrams_to_send()
    assert len(out) == int(RATE_BURST)
    assert {destination for _, destination in out} == {STRANGER}
    assert all(data.startswith(b"SIP/2.0 400 ") for data, _ in out)
    assert all(ELSEWHERE.encode() not in repr(dest).encode() for _, dest in out)


def test_a_forged_received_parameter_does_not_redirect_the_answer() -> None:
    endpoint = new_endpoint()
    forged = request("OPTIONS", via_host=STRANGER.host).replace(
        b";rport\r\n", f";received={ELSEWHERE}\r\n".encode()
    )
    endpoint.receive(forged, STRANGER, 0.0)
    [(response, destination)] = sent(endpoint)
    assert isinstance(response, Response) and response.status == 200
    assert destination.host == STRANGER.host
    assert response_destination(response, STRANGER) == Address("udp", STRANGER.host, 5070)


def test_rate_limiter_forgets_the_least_recently_seen_source_first() -> None:
    limiter = RateLimiter(max_sources=3)
    for _ in range(int(RATE_BURST)):
        assert limiter.allow("a", 0.0)
    assert not limiter.allow("a", 0.0)
    for host in ("b", "c", "d", "e"):  # "a" keeps sending between the newcomers
        assert limiter.allow(host, 0.0)
        assert not limiter.allow("a", 0.0)
    assert len(limiter) == 3


def test_a_spoofed_flood_neither_grows_memory_nor_resets_anyones_limit() -> None:
    endpoint = new_endpoint()
    for n in range(int(RATE_BURST)):
        endpoint.receive(request("INVITE", n), STRANGER, 0.0)
    endpoint.datagrams_to_send()
    for n in range(10_000):
        spoofed = Address("udp", f"10.{n // 65536}.{n // 256 % 256}.{n % 256}", 5060)
        endpoint.receive(request("INVITE", n), spoofed, 0.0)
        if n % 100 == 0:
            endpoint.receive(request("INVITE", n), STRANGER, 0.0)
    answered_to_stranger = [d for _, d in endpoint.datagrams_to_send() if d == STRANGER]
    assert answered_to_stranger == []
    assert len(endpoint.gate.limiter) <= 4096
    assert endpoint.gate.log.sources <= gate_module.MAX_SOURCES


# -- logging: once per source and minute, with counts ---------------------------------------


def flood_log(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "intercom.sip.gate"]


def test_refusals_are_logged_at_once_then_once_a_minute_with_a_count(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    endpoint = new_endpoint()
    for n in range(200):  # 10/s: under the rate limit
        endpoint.receive(request("INVITE", n), STRANGER, n * 0.1)
        endpoint.datagrams_to_send()
    lines = flood_log(caplog)
    assert len(lines) == 1, lines
    assert "INVITE from 198.51.100.9 refused with 403: untrusted source 198.51.100.9" in lines[0]
    assert endpoint.get_timer() == pytest.approx(0.1 + REPORT_INTERVAL)
    endpoint.handle_timer(60.1)
    assert flood_log(caplog)[1:] == [
        "x refused 199 INVITEs from 198.51.100.9 in the last 60 s: untrusted source"
    ]
    assert endpoint.get_timer() is None  # nothing pending: no wake-ups
    assert "Mallory" not in caplog.text and "flood-1" not in caplog.text  # no per-message lines


def test_drops_are_logged_once_with_a_count_and_flushed_at_shutdown(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    endpoint = new_endpoint()
    for n in range(int(RATE_BURST) + 500):
        endpoint.receive(request("OPTIONS", n), STRANGER, n * 0.001)
    lines = flood_log(caplog)
    assert len(lines) == 1 and "dropping requests from 198.51.100.9: over 20/s" in lines[0]
    endpoint.gate.log.flush(4.0)
    [summary] = flood_log(caplog)[1:]
    assert summary.startswith("x dropped ") and summary.endswith(
        " requests from 198.51.100.9 in the last 4 s: over 20/s"
    )
    dropped = int(summary.split()[2])
    answered = len(endpoint.datagrams_to_send())
    assert dropped + 1 + answered == int(RATE_BURST) + 500  # the first drop was announced


def test_malformed_messages_are_counted_not_logged_one_by_one(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    endpoint = new_endpoint()
    broken = request("OPTIONS", extra="Content-Length: 12\r\n")
    for n in range(30):
        endpoint.receive(broken, SERVER, n * 0.5)  # trusted: answered, but not logged each
    assert len(statuses(endpoint)) == 30
    lines = flood_log(caplog)
    assert len(lines) == 1 and lines[0].startswith("x malformed message from udp:192.0.2.5")
    endpoint.handle_timer(REPORT_INTERVAL + 1)
    [summary] = flood_log(caplog)[1:]
    assert summary.startswith("x 29 malformed messages from 192.0.2.5 in the last 60 s (last:")


def test_a_flood_from_many_sources_logs_a_bounded_number_of_lines(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    endpoint = new_endpoint()
    for n in range(5000):
        source = Address("udp", f"10.0.{n // 256}.{n % 256}", 5060)
        endpoint.receive(request("INVITE", n), source, n * 0.001)
        endpoint.receive(request("INVITE", n), source, n * 0.001)
    endpoint.datagrams_to_send()
    endpoint.handle_timer(REPORT_INTERVAL + 5)
    lines = flood_log(caplog)
    assert len(lines) <= 2 * gate_module.ANNOUNCED_PER_INTERVAL + 1, len(lines)
    assert re.fullmatch(
        r"x from \d+ other sources in the last 65 s: \d+ refused \(untrusted source\)", lines[-1]
    ), lines[-1]


# -- the light scan -------------------------------------------------------------------------


def test_the_light_scan_reads_what_a_stateless_answer_needs() -> None:
    data = (
        b"INVITE sip:door@192.0.2.10 SIP/2.0\r\nv: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK1\r\n"
        b"Via: SIP/2.0/UDP 10.0.0.2\r\nf: <sip:a@b>;tag=1\r\nt: sip:door@192.0.2.10\r\n"
        b"i: abc\r\nCSeq: 7 INVITE\r\nContent-Length: 3\r\n\r\nv=0"
    )
    scan = scan_request(data)
    assert scan is not None
    assert scan.method == "INVITE" and scan.call_id == "abc" and scan.cseq == "7 INVITE"
    assert scan.vias == ["SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK1", "SIP/2.0/UDP 10.0.0.2"]
    assert not scan.to_tag
    assert scan_request(data.replace(b"t: sip:door@192.0.2.10", b"t: <sip:d@x>;tag=9"))
    assert scan_request(b"SIP/2.0 200 OK\r\n\r\n") is None
    assert scan_request(data.replace(b"i: abc\r\n", b"")) is None  # no Call-ID: the parser's


def folded(data: bytes) -> bytes:
    """``data`` with a folded line of its own and its From and To folded (§7.3.1)."""
    return (
        data.replace(b"Max-Forwards: 70\r\n", b"Subject: hi\r\n there\r\nMax-Forwards: 70\r\n")
        .replace(b'From: "Mallory" <', b'From: "Mallory"\r\n\t <')
        .replace(b"To: <", b"To:\r\n  <")
    )


def lf_only(data: bytes) -> bytes:
    head, _, body = data.partition(b"\r\n\r\n")
    return head.replace(b"\r\n", b"\n") + b"\n\n" + body


def lowercase_version(data: bytes) -> bytes:
    return data.replace(b" SIP/2.0\r\n", b" sip/2.0\r\n", 1)


DISGUISES = {"folded": folded, "lf-only": lf_only, "lowercase-version": lowercase_version}


@pytest.mark.parametrize("disguise", DISGUISES)
def test_the_light_scan_reads_what_the_parser_accepts(disguise: str) -> None:
    plain = request("INVITE", 3, to_tag="t3")
    data = DISGUISES[disguise](plain)
    parsed = parse_message(data)
    assert isinstance(parsed, Request)
    scan, expected = scan_request(data), scan_request(plain)
    assert scan is not None and expected is not None
    assert scan == expected  # folded lines joined by one space, as the parser joins them
    assert scan.from_ == parsed.headers.get("From") and scan.to == parsed.headers.get("To")
    assert scan.vias == parsed.headers.get_all("Via") and scan.call_id == parsed.call_id


def test_the_light_scan_leaves_to_the_parser_what_it_would_refuse() -> None:
    plain = request("INVITE")
    assert scan_request(b"\r\n\r\n" + plain) == scan_request(plain)  # §7.5
    no_blank_line = plain.removesuffix(b"\r\n")  # the datagram's end ends the headers
    assert scan_request(no_blank_line) == scan_request(plain)
    refused = [
        plain.replace(b" SIP/2.0\r\n", b" SIP/2.0\r\n continued\r\n", 1),  # folded start
        plain.replace(b"Call-ID: flood-0", b"Call-ID: flood-0\r\n and more"),  # a blank
        plain.replace(b"Call-ID: flood-0", b"Call-ID: a,b"),
        plain.replace(b"INVITE sip:", b"INVITE  sip:", 1),
        plain.replace(b" SIP/2.0\r\n", b" SIP/3.0\r\n", 1),
        plain.replace(b"INVITE sip:", "INVITÉ sip:".encode(), 1),
        plain.replace(b"CSeq: 1 INVITE\r\n", b"CSeq: 1 INVITE\r\nt: <sip:x@y>\r\n"),
    ]
    for data in refused:
        assert scan_request(data) is None, data
    # A header the stack does not read may be folded at will; a scanned one reaches its end.
    data = plain.replace(b"CSeq: 1 INVITE", b"CSeq: 1\r\n INVITE")
    scan = scan_request(data)
    assert scan is not None and scan.cseq == "1 INVITE"


@pytest.mark.parametrize("disguise", DISGUISES)
@pytest.mark.parametrize(("method", "to_tag", "status"), [
    ("INVITE", "", 403), ("OPTIONS", "", 200), ("BYE", "x", 481),
])  # fmt: skip
def test_disguised_requests_from_strangers_get_the_plain_ones_stateless_answer(
    disguise: str, method: str, to_tag: str, status: int, caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    caplog.set_level(logging.DEBUG)
    parsed_path = []
    screen_parsed = gate_module.Gate.screen_parsed
    monkeypatch.setattr(
        gate_module.Gate, "screen_parsed",
        lambda self, *args: parsed_path.append(args) or screen_parsed(self, *args),
    )  # fmt: skip
    endpoint = new_endpoint()
    for n in range(5):
        endpoint.receive(DISGUISES[disguise](request(method, n, to_tag=to_tag)), STRANGER, 1.0 * n)
    out = sent(endpoint)
    assert [m.status for m, _ in out if isinstance(m, Response)] == [status] * 5
    assert {destination for _, destination in out} == {STRANGER}
    assert parsed_path == []  # the light scan answered every one: no full parse
    assert endpoint.held() == Held(0, 0, {}) and events(endpoint) == []
    endpoint.gate.log.flush(5.0)
    if status == 200:
        assert flood_log(caplog) == []  # an answer, not a refusal
    else:
        assert flood_log(caplog)[1:] == [
            f"x refused 4 {method}s from 198.51.100.9 in the last 4 s: untrusted source"
        ]


def test_torture_messages_from_strangers_never_raise() -> None:
    files = sorted(p for p in (VECTORS / "rfc4475").iterdir() if p.suffix == ".dat")
    assert files
    rng = random.Random(11)
    for path in files:
        data = path.read_bytes()
        for sample in (data, data[: rng.randrange(1, len(data))], bytes(rng.sample(data, 40))):
            endpoint = new_endpoint()
            endpoint.receive(sample, STRANGER, 0.0)
            for _, destination in endpoint.datagrams_to_send():
                assert destination.host == STRANGER.host, path.name


@pytest.mark.parametrize("variant", VARIANTS)
def test_the_flood_benchmark_runs_on_a_tiny_count(variant: str) -> None:
    figures = measure_endpoint(200, variant)
    assert figures.refused == figures.invites == 200  # 1000/s from 50 sources: none dropped
    assert "refused per CPU-second" in figures.lines()[0]
    written, plain = invite("127.0.1.1", 5070, 1, variant=variant), invite("127.0.1.1", 5070, 1)
    assert (written == plain) == (variant == "plain")
    parsed, expected = parse_message(written), parse_message(plain)  # the parser takes it
    assert isinstance(parsed, Request) and isinstance(expected, Request)
    assert (parsed.body, parsed.call_id) == (expected.body, expected.call_id)


def test_a_strangers_own_method_names_are_neither_logged_nor_kept(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    endpoint = new_endpoint()
    for n in range(30):
        name = "X" * 2000 + "ABCDEFGHIJKLMNOPQRSTUVWXYZ"[n % 26]
        endpoint.receive(request(name, n, to_tag="t"), STRANGER, n * 0.1)
    assert statuses(endpoint) == [481] * 30
    endpoint.gate.log.flush(10.0)
    assert "XXXX" not in caplog.text
    assert flood_log(caplog)[-1] == (
        "x refused 29 requests from 198.51.100.9 in the last 10 s: untrusted source"
    )


def test_a_malformed_messages_reason_is_kept_short(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    endpoint = new_endpoint()
    huge = request("OPTIONS").replace(b"Call-ID: flood-0", b"Call-ID: " + b"a b" * 2000)
    for n in range(3):
        endpoint.receive(huge, STRANGER, n * 0.1)
    endpoint.gate.log.flush(1.0)
    assert all(len(line) < 300 for line in flood_log(caplog)), flood_log(caplog)
