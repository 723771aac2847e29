"""RFC 4475 and RFC 5118 torture messages through the whole UAS core, as the manifests say.

The parser-level verdicts are in test_torture.py; here each message goes through
Endpoint.receive() and we check what a UAS answers on the wire (or that it stays silent).
"""

from __future__ import annotations

import csv
import random
from pathlib import Path

import pytest

from intercom.sip.core import Address
from intercom.sip.endpoint import Endpoint, EndpointConfig
from intercom.sip.events import IncomingCallReceived
from intercom.sip.message import Response, parse_message

VECTORS = Path(__file__).parent.parent / "vectors"
SOURCE = Address("udp", "198.51.100.7", 5060)

HANDLED_INVITE = "invite"  # an IncomingCallReceived for the application, 100 Trying 0.2 s later
SILENT = "silent"  # a response matching no transaction: nothing sent

# file -> the status a UAS sends (or HANDLED_INVITE / SILENT), from MANIFEST.tsv's column.
RFC4475 = {
    "wsinv.dat": 481,  # its To has a tag: a re-INVITE for a dialog we do not have (§12.2.2)
    "intmeth.dat": 501,
    "esc01.dat": HANDLED_INVITE,
    "escnull.dat": 405,
    "esc02.dat": 501,
    "lwsdisp.dat": 200,
    "longreq.dat": HANDLED_INVITE,
    "dblreq.dat": 405,
    "semiuri.dat": 200,
    "transports.dat": 200,
    "mpart01.dat": 405,
    "unreason.dat": SILENT,
    "noreason.dat": SILENT,
    "badinv01.dat": 400,
    "clerr.dat": 400,
    "ncl.dat": 400,
    "scalar02.dat": 400,
    "scalarlg.dat": SILENT,
    "quotbal.dat": 400,
    "ltgtruri.dat": 400,
    "lwsruri.dat": 400,
    "lwsstart.dat": 400,
    "trws.dat": 400,
    "escruri.dat": 400,
    "baddate.dat": HANDLED_INVITE,
    "regbadct.dat": 400,
    "badaspec.dat": 400,
    "baddn.dat": 400,
    "badvers.dat": 505,
    "mismatch01.dat": 400,
    "mismatch02.dat": 400,
    "bigcode.dat": SILENT,
    "badbranch.dat": 400,
    "insuf.dat": 400,
    "unkscm.dat": 416,
    "novelsc.dat": 416,
    "unksm2.dat": 405,
    "bext01.dat": 420,
    "invut.dat": 415,
    "regaut01.dat": 405,
    "multi01.dat": 400,
    "mcl01.dat": 400,
    "bcast.dat": SILENT,
    "zeromf.dat": 200,
    "cparam01.dat": 405,
    "cparam02.dat": 405,
    "regescrt.dat": 405,
    "sdp01.dat": 406,
    "inv2543.dat": HANDLED_INVITE,
    "test.dat": SILENT,  # no Via: there is nobody to address a response to
    "baddn-terminated.variant": 400,
}
RFC5118 = {
    "ipv6-good": 405,
    "ipv6-bad": 400,
    "port-ambiguous": 405,
    "port-unambiguous": 405,
    "via-received-param-with-delim": 481,
    "via-received-param-no-delim": 200,
    "ipv6-in-sdp": HANDLED_INVITE,
    "mult-ip-in-header": 481,
    "mult-ip-in-sdp": HANDLED_INVITE,
    "ipv4-mapped-ipv6": HANDLED_INVITE,
    "ipv6-bug-abnf-3-colons": 200,
    "ipv6-correct-abnf-2-colons": 200,
}


def manifest(name: str) -> list[dict[str, str]]:
    with open(VECTORS / name / "MANIFEST.tsv", newline="") as handle:
        return list(csv.DictReader(handle, delimiter="\t"))


def new_endpoint() -> Endpoint:
    return Endpoint(
        EndpointConfig(local_host="192.0.2.10", local_port=5060),
        rng=random.Random(7),
        answer_offer=lambda call_id, offer: None,
    )


def status_of(raw: bytes) -> int:
    """The status code of a response we sent. A 400 echoes the request's malformed From/To
    (§8.2.6.1 copies them), so the status line is read without parsing the headers."""
    first = raw.split(b"\r\n", 1)[0].decode()
    assert first.startswith("SIP/2.0 "), f"a UAS answers requests only, sent {first!r}"
    return int(first.split(" ")[1])


def outcome(data: bytes) -> tuple[list[int], list[object], Endpoint]:
    endpoint = new_endpoint()
    endpoint.receive(data, SOURCE, now=0.0)
    statuses = [status_of(raw) for raw, _ in endpoint.datagrams_to_send()]
    events = []
    while (event := endpoint.next_event()) is not None:
        events.append(event)
    return statuses, events, endpoint


def check(expected: int | str, data: bytes) -> None:
    statuses, events, endpoint = outcome(data)
    if expected == SILENT:
        assert statuses == []
    elif expected == HANDLED_INVITE:
        assert statuses == []  # the application has 200 ms to answer before a 100 goes
        assert [type(e) for e in events] == [IncomingCallReceived]
        assert endpoint.get_timer() == 0.2
        endpoint.handle_timer(0.2)
        assert [status_of(raw) for raw, _ in endpoint.datagrams_to_send()] == [100]
    else:
        assert statuses == [expected]
        endpoint.handle_timer(0.2)  # an answered request leaves no 100 pending
        assert 100 not in [status_of(raw) for raw, _ in endpoint.datagrams_to_send()]


def test_tables_cover_the_manifests() -> None:
    assert set(RFC4475) == {row["file"] for row in manifest("rfc4475")}
    assert set(RFC5118) == {row["file"] for row in manifest("rfc5118")}


@pytest.mark.parametrize("name", sorted(RFC4475))
def test_rfc4475_uas_answer(name: str) -> None:
    check(RFC4475[name], (VECTORS / "rfc4475" / name).read_bytes())


@pytest.mark.parametrize("name", sorted(RFC5118))
def test_rfc5118_uas_answer(name: str) -> None:
    rows = {row["file"]: row for row in manifest("rfc5118")}
    check(RFC5118[name], (VECTORS / "rfc5118" / rows[name]["wire_file"]).read_bytes())


def test_bext01_lists_both_unsupported_extensions() -> None:
    endpoint = new_endpoint()
    endpoint.receive((VECTORS / "rfc4475" / "bext01.dat").read_bytes(), SOURCE, now=0.0)
    [(raw, _)] = endpoint.datagrams_to_send()
    response = parse_message(raw)
    assert isinstance(response, Response) and response.status == 420
    unsupported = response.headers.get_list("Unsupported")
    assert sorted(unsupported) == ["nothingSupportsThis", "nothingSupportsThisEither"]


def test_transports_answered_to_the_top_via() -> None:
    endpoint = new_endpoint()
    endpoint.receive((VECTORS / "rfc4475" / "transports.dat").read_bytes(), SOURCE, now=0.0)
    [(raw, destination)] = endpoint.datagrams_to_send()
    response = parse_message(raw)
    assert isinstance(response, Response) and response.status == 200
    via = response.top_via
    assert via.transport == "UDP"
    # §18.2.2: the address the request came from (received), port of the Via sent-by.
    assert destination == Address("udp", SOURCE.host, via.port or 5060)


def test_every_raw_rfc5118_file_is_survived() -> None:
    for row in manifest("rfc5118"):
        statuses, _, _ = outcome((VECTORS / "rfc5118" / row["file"]).read_bytes())
        assert all(100 <= status < 700 for status in statuses)
