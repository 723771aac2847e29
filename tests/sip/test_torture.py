"""RFC 4475 and RFC 5118 torture messages against the parser (intercom.sip.message).

Every row of ``tests/vectors/*/MANIFEST.tsv`` has an entry in an explicit table below giving the
*parser's* verdict: ``OK`` (a Request/Response comes back) or the ``status_hint`` of the
:class:`RemoteProtocolError` it must raise. Rows whose answer is a UAS decision (416, 420, 415,
501, 405, 406, 481, 200) parse OK here; the endpoint decides the response elsewhere.
"""

from __future__ import annotations

import csv
import hashlib
from pathlib import Path
from typing import Final

import pytest

from intercom.sip.errors import RemoteProtocolError
from intercom.sip.message import Message, Request, Response, parse_message
from intercom.sip.uri import OtherUri, SipUri

VECTORS = Path(__file__).resolve().parent.parent / "vectors"
RFC4475 = VECTORS / "rfc4475"
RFC5118 = VECTORS / "rfc5118"

OK: Final = "ok"
ANY: Final = "any"  # no expectation beyond "no crash"
Verdict = str | int

# file -> parser verdict. Written out by hand from RFC 4475 §3 (see the manifest's "expected").
EXPECTED_4475: dict[str, Verdict] = {
    # §3.1.1 valid messages
    "wsinv.dat": OK,
    "intmeth.dat": OK,  # UAS: 501
    "esc01.dat": OK,
    "escnull.dat": OK,  # UAS: 405/501 to REGISTER
    "esc02.dat": OK,  # UAS: 501
    "lwsdisp.dat": OK,
    "longreq.dat": OK,
    "dblreq.dat": OK,  # first request only
    "semiuri.dat": OK,
    "transports.dat": OK,
    "mpart01.dat": OK,
    "unreason.dat": OK,
    "noreason.dat": OK,
    # §3.1.2 invalid messages
    "badinv01.dat": 400,
    "clerr.dat": 400,
    "ncl.dat": 400,
    "scalar02.dat": 400,
    "scalarlg.dat": 400,  # a response: the caller drops it
    "quotbal.dat": 400,
    "ltgtruri.dat": 400,
    "lwsruri.dat": 400,
    "lwsstart.dat": 400,
    "trws.dat": 400,  # we do not tolerate the trailing SP
    "escruri.dat": 400,
    "baddate.dat": OK,  # the Date header is ignored (RFC allows either)
    "regbadct.dat": 400,
    "badaspec.dat": 400,
    "baddn.dat": 400,
    "badvers.dat": 505,
    "mismatch01.dat": 400,
    "mismatch02.dat": 400,  # "501 (400 acceptable)": a CSeq/method mismatch is malformed
    "bigcode.dat": 400,  # a response: the caller drops it
    # §3.2 transaction layer
    "badbranch.dat": 400,
    # §3.3 application layer
    "insuf.dat": 400,
    "unkscm.dat": OK,  # UAS: 416
    "novelsc.dat": OK,  # UAS: 416
    "unksm2.dat": OK,
    "bext01.dat": OK,  # UAS: 420
    "invut.dat": OK,  # UAS: 415
    "regaut01.dat": OK,
    "multi01.dat": 400,
    "mcl01.dat": 400,
    "bcast.dat": OK,
    "zeromf.dat": OK,
    "cparam01.dat": OK,
    "cparam02.dat": OK,
    "regescrt.dat": OK,
    "sdp01.dat": OK,  # UAS: 406
    # §3.4 backward compatibility
    "inv2543.dat": OK,
    # not from any section
    "test.dat": ANY,
    "baddn-terminated.variant": 400,
}

# manifest "file" -> parser verdict for its wire_file (CRLF, blank line, true Content-Length).
EXPECTED_5118: dict[str, Verdict] = {
    "ipv6-good": OK,
    "ipv6-bad": 400,
    "port-ambiguous": OK,
    "port-unambiguous": OK,
    "via-received-param-with-delim": OK,  # UAS: 481
    "via-received-param-no-delim": OK,
    "ipv6-in-sdp": OK,
    "mult-ip-in-header": OK,  # UAS: 481
    "mult-ip-in-sdp": OK,
    "ipv4-mapped-ipv6": OK,
    "ipv6-bug-abnf-3-colons": OK,
    "ipv6-correct-abnf-2-colons": OK,
}


def read_manifest(directory: Path) -> dict[str, dict[str, str]]:
    with (directory / "MANIFEST.tsv").open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    return {row["file"]: row for row in rows}


MANIFEST_4475 = read_manifest(RFC4475)
MANIFEST_5118 = read_manifest(RFC5118)


def verdict_of(data: bytes, *, stream: bool = False) -> Verdict:
    try:
        message = parse_message(data, stream=stream)
    except RemoteProtocolError as exc:
        return exc.status_hint
    assert isinstance(message, Request | Response)
    return OK


def parse(name: str) -> Message:
    return parse_message((RFC4475 / name).read_bytes())


def parse_5118(name: str) -> Message:
    return parse_message((RFC5118 / MANIFEST_5118[name]["wire_file"]).read_bytes())


# ---------------------------------------------------------------------------------------------
# The manifests, the files and the tables agree


def test_table_4475_covers_exactly_the_manifest() -> None:
    assert set(EXPECTED_4475) == set(MANIFEST_4475)
    assert len(MANIFEST_4475) == 51
    on_disk = {p.name for p in RFC4475.iterdir() if p.name not in ("MANIFEST.tsv", "README.md")}
    assert on_disk == set(MANIFEST_4475)


def test_table_5118_covers_exactly_the_manifest() -> None:
    assert set(EXPECTED_5118) == set(MANIFEST_5118)
    assert len(MANIFEST_5118) == 12
    on_disk = {p.name for p in RFC5118.iterdir() if p.is_file()} - {"MANIFEST.tsv", "README.md"}
    assert on_disk == set(MANIFEST_5118)
    wire = {p.name for p in (RFC5118 / "wire").iterdir()}
    assert wire == {Path(row["wire_file"]).name for row in MANIFEST_5118.values()}


@pytest.mark.parametrize("name", sorted(EXPECTED_4475))
def test_table_4475_is_consistent_with_manifest_text(name: str) -> None:
    """A sanity check on the hand-written table, not its source."""
    row = MANIFEST_4475[name]
    expected, text = EXPECTED_4475[name], row["expected"]
    if expected == OK:
        assert row["validity"] == "valid" or "ignore Date" in text
        assert not text.startswith(("respond 400", "respond 505"))
    elif expected == ANY:
        assert "must not crash" in text
    else:
        assert row["validity"] == "invalid"
        assert str(expected) in text or text.startswith("ignore")


@pytest.mark.parametrize("name", sorted(EXPECTED_5118))
def test_table_5118_is_consistent_with_manifest_text(name: str) -> None:
    row = MANIFEST_5118[name]
    if EXPECTED_5118[name] == OK:
        assert row["validity"] == "valid" and row["expected"].startswith("parse OK")
    else:
        assert row["validity"] == "invalid" and row["expected"].startswith("respond 400")


@pytest.mark.parametrize("name", sorted(MANIFEST_4475))
def test_rfc4475_file_is_byte_exact(name: str) -> None:
    """Proves that git (autocrlf, attributes) did not touch the line endings."""
    data = (RFC4475 / name).read_bytes()
    assert len(data) == int(MANIFEST_4475[name]["bytes"])
    assert hashlib.sha256(data).hexdigest() == MANIFEST_4475[name]["sha256"]


@pytest.mark.parametrize("name", sorted(MANIFEST_5118))
def test_rfc5118_file_is_byte_exact(name: str) -> None:
    data = (RFC5118 / name).read_bytes()
    assert len(data) == int(MANIFEST_5118[name]["bytes"])
    assert hashlib.sha256(data).hexdigest() == MANIFEST_5118[name]["sha256"]
    assert b"\r" not in data  # the archive is bare LF


@pytest.mark.parametrize("name", sorted(MANIFEST_5118))
def test_rfc5118_wire_file_is_crlf(name: str) -> None:
    wire = (RFC5118 / MANIFEST_5118[name]["wire_file"]).read_bytes()
    original = (RFC5118 / name).read_bytes()
    assert b"\n" not in wire.replace(b"\r\n", b"")
    assert wire.replace(b"\r\n", b"\n").split(b"\n")[0] == original.split(b"\n")[0]


# ---------------------------------------------------------------------------------------------
# Verdicts


@pytest.mark.parametrize("name", sorted(EXPECTED_4475))
def test_rfc4475_verdict(name: str) -> None:
    verdict = verdict_of((RFC4475 / name).read_bytes())
    if EXPECTED_4475[name] == ANY:
        assert verdict == OK or isinstance(verdict, int)
    else:
        assert verdict == EXPECTED_4475[name]


@pytest.mark.parametrize("name", sorted(EXPECTED_4475))
def test_rfc4475_verdict_on_a_stream(name: str) -> None:
    """TCP gives the datagram's verdict, except that Content-Length becomes mandatory (§18.3)."""
    data = (RFC4475 / name).read_bytes()
    if name == "inv2543.dat":  # the only vector without Content-Length
        with pytest.raises(RemoteProtocolError, match="Content-Length is required"):
            parse_message(data, stream=True)
    elif EXPECTED_4475[name] == ANY:
        assert verdict_of(data, stream=True) == verdict_of(data)
    else:
        assert verdict_of(data, stream=True) == EXPECTED_4475[name]


@pytest.mark.parametrize("name", sorted(EXPECTED_5118))
def test_rfc5118_wire_verdict(name: str) -> None:
    data = (RFC5118 / MANIFEST_5118[name]["wire_file"]).read_bytes()
    assert verdict_of(data) == EXPECTED_5118[name]
    assert verdict_of(data, stream=True) == EXPECTED_5118[name]


@pytest.mark.parametrize("name", sorted(MANIFEST_5118))
@pytest.mark.parametrize("stream", [False, True])
def test_rfc5118_archive_file_does_not_crash(name: str, stream: bool) -> None:
    """Bare LF, missing blank lines and wrong Content-Lengths: any verdict, but no crash."""
    verdict = verdict_of((RFC5118 / name).read_bytes(), stream=stream)
    assert verdict == OK or verdict in (400, 413, 505, 513)


def test_rfc5118_archive_lf_files_parse_where_the_length_is_right() -> None:
    """LF-only line ends are tolerated; the three SDP files declare a wrong Content-Length."""
    verdicts = {name: verdict_of((RFC5118 / name).read_bytes()) for name in MANIFEST_5118}
    assert {n for n, v in verdicts.items() if v != OK} == {
        "ipv6-bad",
        "ipv6-in-sdp",
        "mult-ip-in-sdp",
    }


# ---------------------------------------------------------------------------------------------
# Field checks on the valid messages


def test_wsinv_fields() -> None:
    msg = parse("wsinv.dat")
    assert isinstance(msg, Request)
    assert msg.method == "INVITE"
    assert str(msg.uri) == "sip:vivekg@chair-dnrc.example.com;unknownparam"
    vias = msg.vias
    assert [(v.transport, v.host, v.branch) for v in vias] == [
        ("UDP", "192.0.2.2", "390skdjuw"),
        ("TCP", "spindle.example.com", "z9hG4bK9ikj8"),
        ("UDP", "192.168.255.111", "z9hG4bK30239"),
    ]
    assert msg.to.tag == "1918181833n"
    assert msg.to.display_name is None
    assert str(msg.to.uri) == "sip:vivekg@chair-dnrc.example.com"
    assert msg.from_.tag == "98asjd8"
    assert msg.from_.display_name == 'J Rosenberg \\"'
    assert msg.headers.get("Max-Forwards") == "0068"
    assert msg.cseq.seq == 9
    assert msg.cseq.method == "INVITE"
    assert msg.call_id == "wsinv.ndaksdj@192.0.2.1"
    assert msg.headers.get("Subject") == ""
    assert msg.headers.get("NewFangledHeader") == "newfangled value continued newfangled value"
    assert msg.headers.get("UnknownHeaderWithUnusualValue") == ";;,,;;,;"
    assert len(msg.body) == 150
    assert msg.body.startswith(b"v=0\r\n")
    assert msg.content_type == "application/sdp"
    [contact] = msg.contacts
    assert contact.display_name == 'Quoted string ""'
    assert dict(contact.params) == {"newparam": "newvalue", "secondparam": None, "q": "0.33"}
    assert msg.headers.get_all("Route") == [
        "<sip:services.example.com;lr;unknownwith=value;unknown-no-value>"
    ]


def test_intmeth_fields() -> None:
    msg = parse("intmeth.dat")
    assert isinstance(msg, Request)
    assert msg.method == "!interesting-Method0123456789_*+`.%indeed'~"
    assert msg.cseq.method == msg.method
    assert msg.call_id == "intmeth.word%ZK-!.*_+'@word`~)(><:\\/\"][?}{"


def test_esc01_escapes_are_preserved() -> None:
    msg = parse("esc01.dat")
    assert isinstance(msg, Request)
    assert str(msg.uri) == "sip:sips%3Auser%40example.com@example.net"
    assert msg.uri == SipUri("example.net", user="sips%3Auser%40example.com")
    assert str(msg.to.uri) == "sip:%75se%72@example.com"
    assert str(msg.from_.uri) == "sip:I%20have%20spaces@example.net"
    [contact] = msg.contacts
    assert str(contact.uri) == "sip:cal%6Cer@host5.example.net;%6c%72;n%61me=v%61lue%25%34%31"
    assert len(msg.body) == 150


def test_escnull_keeps_percent_00() -> None:
    msg = parse("escnull.dat")
    assert str(msg.to.uri) == "sip:null-%00-null@example.com"
    assert str(msg.from_.uri) == "sip:null-%00-null@example.com"
    assert [str(c.uri) for c in msg.contacts] == [
        "sip:%00@host5.example.com",
        "sip:%00%00@host5.example.com",
    ]
    assert msg.body == b""


def test_esc02_method_is_not_unescaped() -> None:
    msg = parse("esc02.dat")
    assert isinstance(msg, Request)
    assert msg.method == "RE%47IST%45R"
    assert msg.cseq.method == "RE%47IST%45R"


def test_lwsdisp_display_name_without_space() -> None:
    msg = parse("lwsdisp.dat")
    assert msg.from_.display_name == "caller"
    assert msg.from_.tag == "323"


def test_longreq_long_values() -> None:
    msg = parse("longreq.dat")
    assert msg.call_id.startswith("longreq.onereallyreally")
    assert msg.from_.tag is not None and len(msg.from_.tag) == 155
    vias = msg.vias
    assert len(vias) == 34  # 34 lines, names in every case and compact form
    assert [v.host for v in vias[:3]] == ["sip33.example.com", "sip32.example.com",
                                          "sip31.example.com"]  # fmt: skip
    assert vias[-1].branch is not None and vias[-1].branch.endswith("longbranchvalue")
    assert msg.to.display_name is not None and msg.to.display_name.endswith("proportion")
    assert isinstance(msg.to.uri, SipUri) and msg.to.uri.port == 6000
    assert [v for k, v in msg.to.uri.params.items() if k.startswith("longparamname")] == [
        "shortvalue"
    ]
    assert len(msg.body) == 150


def test_dblreq_takes_the_first_request_only() -> None:
    msg = parse("dblreq.dat")
    assert isinstance(msg, Request)
    assert msg.method == "REGISTER"
    assert msg.call_id == "dblreq.0ha0isndaksdj99sdfafnl3lk233412"
    assert msg.body == b""
    assert "INVITE" not in str(list(msg.headers))


def test_semiuri_user_part_with_semicolon() -> None:
    msg = parse("semiuri.dat")
    assert isinstance(msg, Request)
    uri = msg.uri
    assert isinstance(uri, SipUri)
    assert uri.user == "user;par=u%40example.net"
    assert uri.host == "example.com"
    assert dict(uri.params) == {}


def test_transports_vias_with_odd_transports() -> None:
    msg = parse("transports.dat")
    assert [(v.transport, v.host) for v in msg.vias] == [
        ("UDP", "t1.example.com"),
        ("SCTP", "t2.example.com"),
        ("TLS", "t3.example.com"),
        ("UNKNOWN", "t4.example.com"),
        ("TCP", "t5.example.com"),
    ]
    assert msg.top_via.transport == "UDP"
    assert msg.call_id == "transports.kijh4akdnaqjkwendsasfdj"


def test_mpart01_binary_body_is_cut_at_content_length() -> None:
    data = (RFC4475 / "mpart01.dat").read_bytes()
    msg = parse_message(data)
    length = int(msg.headers.get("Content-Length") or "-1")
    assert length == 553
    assert len(msg.body) == length
    assert msg.body == data[data.index(b"\r\n\r\n") + 4 :]
    assert msg.body.endswith(b"--7a9cbec02ceef655--\r\n")
    assert msg.content_type == "multipart/mixed"


def test_unreason_utf8_reason_phrase() -> None:
    msg = parse("unreason.dat")
    assert isinstance(msg, Response)
    assert msg.status == 200
    assert msg.reason == "= 2**3 * 5**2 но сто девяносто девять - простое"
    assert len(msg.body) == 154


def test_noreason_empty_reason_phrase() -> None:
    msg = parse("noreason.dat")
    assert isinstance(msg, Response)
    assert msg.status == 100
    assert msg.reason == ""
    assert msg.to.tag == "902jndnke3"


@pytest.mark.parametrize(("name", "scheme"), [("unkscm.dat", "nobodyknowsthisscheme"),
                                              ("novelsc.dat", "soap.beep")])  # fmt: skip
def test_unknown_request_uri_schemes_parse(name: str, scheme: str) -> None:
    msg = parse(name)
    assert isinstance(msg, Request)
    uri = msg.uri
    assert isinstance(uri, OtherUri)
    assert uri.scheme == scheme


def test_unksm2_unknown_schemes_in_headers() -> None:
    msg = parse("unksm2.dat")
    assert msg.to.uri == OtherUri("isbn", "2983792873")
    assert msg.from_.uri == OtherUri("http", "//www.example.com")
    assert [c.uri for c in msg.contacts] == [OtherUri("name", "John_Smith")]


def test_bext01_require_headers() -> None:
    msg = parse("bext01.dat")
    assert msg.headers.get_list("Require") == ["nothingSupportsThis", "nothingSupportsThisEither"]
    assert msg.headers.get_list("Proxy-Require") == [
        "noProxiesSupportThis",
        "norDoAnyProxiesSupportThis",
    ]


def test_zeromf_max_forwards_zero() -> None:
    assert parse("zeromf.dat").headers.get("Max-Forwards") == "0"


def test_bcast_response_via() -> None:
    msg = parse("bcast.dat")
    assert isinstance(msg, Response)
    assert msg.status == 200
    assert [v.host for v in msg.vias] == ["192.0.2.198", "255.255.255.255"]


def test_cparam_params() -> None:
    """Without <> the parameter belongs to the header field; inside <> to the URI."""
    [c1] = parse("cparam01.dat").contacts
    assert dict(c1.params) == {"unknownparam": None}
    assert str(c1.uri) == "sip:+19725552222@gw1.example.net"
    [c2] = parse("cparam02.dat").contacts
    assert isinstance(c2.uri, SipUri)
    assert dict(c2.uri.params) == {"unknownparam": None}
    assert dict(c2.params) == {}


def test_regescrt_contact_uri_header() -> None:
    [contact] = parse("regescrt.dat").contacts
    assert isinstance(contact.uri, SipUri)
    assert contact.uri.headers == (("Route", "%3Csip:sip.example.com%3E"),)


def test_inv2543_rfc2543_syntax() -> None:
    msg = parse("inv2543.dat")
    assert isinstance(msg, Request)
    assert msg.top_via.branch is None
    assert msg.from_.tag is None
    assert "Content-Length" not in msg.headers
    data = (RFC4475 / "inv2543.dat").read_bytes()
    assert msg.body == data[data.index(b"\r\n\r\n") + 4 :]  # a datagram's end ends the body
    assert len(msg.body) == 105


def test_baddate_date_is_left_alone() -> None:
    assert parse("baddate.dat").headers.get("Date") == "Fri, 01 Jan 2010 16:00:00 EST"


# ---------------------------------------------------------------------------------------------
# RFC 5118


def test_ipv6_good_request_uri() -> None:
    msg = parse_5118("ipv6-good")
    assert isinstance(msg, Request)
    uri = msg.uri
    assert isinstance(uri, SipUri)
    assert (uri.host, uri.port) == ("2001:db8::10", None)
    assert (msg.top_via.host, msg.top_via.port) == ("2001:db8::9:1", None)
    assert [str(c.uri) for c in msg.contacts] == ["sip:caller@[2001:db8::1]"]


def test_ipv6_bad_request_uri() -> None:
    with pytest.raises(RemoteProtocolError, match="bad port in URI") as info:
        parse_5118("ipv6-bad")
    assert info.value.status_hint == 400


def test_port_ambiguous() -> None:
    msg = parse_5118("port-ambiguous")
    assert isinstance(msg, Request)
    uri = msg.uri
    assert isinstance(uri, SipUri)
    assert uri.host == "2001:db8::10:5070"
    assert uri.port is None
    assert str(uri) == "sip:[2001:db8::10:5070]"


def test_port_unambiguous() -> None:
    msg = parse_5118("port-unambiguous")
    assert isinstance(msg, Request)
    uri = msg.uri
    assert isinstance(uri, SipUri)
    assert uri.host == "2001:db8::10"
    assert uri.port == 5070
    assert uri.hostport == "[2001:db8::10]:5070"


@pytest.mark.parametrize("name", ["via-received-param-with-delim", "via-received-param-no-delim"])
def test_via_received_ipv6(name: str) -> None:
    via = parse_5118(name).top_via
    assert via.params.get("received") == "2001:db8::9:255"
    assert via.host == "2001:db8::9:1"


def test_mult_ip_in_header() -> None:
    msg = parse_5118("mult-ip-in-header")
    assert [(v.transport, v.host, v.port) for v in msg.vias] == [
        ("UDP", "2001:db8::9:1", 6050),
        ("UDP", "192.0.2.1", None),
        ("TCP", "2001:db8::9:255", None),
    ]
    assert msg.vias[2].params.get("received") == "192.0.2.200"


@pytest.mark.parametrize(("name", "length"), [("ipv6-in-sdp", 251), ("mult-ip-in-sdp", 189),
                                              ("ipv4-mapped-ipv6", 245)])  # fmt: skip
def test_sdp_bodies(name: str, length: int) -> None:
    msg = parse_5118(name)
    assert len(msg.body) == length
    assert msg.body.startswith(b"v=0\r\n")


def test_ipv4_mapped_ipv6() -> None:
    msg = parse_5118("ipv4-mapped-ipv6")
    assert [(v.host, v.port) for v in msg.vias] == [
        ("::ffff:192.0.2.10", 19823),
        ("::ffff:192.0.2.2", None),
    ]
    [contact] = msg.contacts
    assert contact.display_name == "T. desk phone"


@pytest.mark.parametrize(
    ("name", "host"),
    [
        ("ipv6-bug-abnf-3-colons", "2001:db8:::192.0.2.1"),
        ("ipv6-correct-abnf-2-colons", "2001:db8::192.0.2.1"),
    ],
)
def test_ipv6_abnf_colons(name: str, host: str) -> None:
    msg = parse_5118(name)
    assert isinstance(msg, Request)
    assert isinstance(msg.uri, SipUri) and msg.uri.host == host
    assert isinstance(msg.to.uri, SipUri) and msg.to.uri.host == host
