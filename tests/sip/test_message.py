"""Tests for intercom.sip.message: parsing, serialising, Headers, typed accessors (RFC 3261 §7)."""

from __future__ import annotations

import time
import tracemalloc

import pytest

from intercom.sip import message as message_module
from intercom.sip.errors import RemoteProtocolError
from intercom.sip.message import (
    MAX_BODY_BYTES,
    MAX_HEADER_BYTES,
    CSeq,
    Headers,
    Message,
    Request,
    Response,
    canonical_name,
    parse_message,
)
from intercom.sip.routing import Router
from intercom.sip.uri import OtherUri, SipUri

CRLF = "\r\n"
MANDATORY = [
    "Via: SIP/2.0/UDP pc33.example.com;branch=z9hG4bK776asdhds",
    "Max-Forwards: 70",
    "To: Bob <sip:bob@example.com>",
    'From: "Alice" <sip:alice@example.com>;tag=1928301774',
    "Call-ID: a84b4c76e66710@pc33.example.com",
    "CSeq: 314159 INVITE",
]


def wire(*lines: str, start: str = "INVITE sip:bob@example.com SIP/2.0", body: bytes = b"",
         mandatory: bool = True) -> bytes:  # fmt: skip
    head = [start, *(MANDATORY if mandatory else []), *lines]
    return (CRLF.join(head) + CRLF + CRLF).encode("utf-8", "surrogateescape") + body


def replacing(line: str) -> bytes:
    """The base request with ``line`` instead of the mandatory header of the same name."""
    name = line.split(":", 1)[0].strip().lower()
    kept = [m for m in MANDATORY if m.split(":", 1)[0].lower() != name]
    return wire(*kept, line, mandatory=False)


def request(data: bytes, *, stream: bool = False) -> Request:
    message = parse_message(data, stream=stream)
    assert isinstance(message, Request)
    return message


def rejects(data: bytes, *, stream: bool = False, status: int = 400) -> str:
    with pytest.raises(RemoteProtocolError) as info:
        parse_message(data, stream=stream)
    assert info.value.status_hint == status
    return str(info.value)


# ---------------------------------------------------------------------------------------------
# Round trips


def test_request_round_trip() -> None:
    original = Request(
        method="INVITE",
        uri=SipUri("example.com", "bob", params={"transport": "tcp"}),
        headers=Headers(line.split(": ", 1) for line in MANDATORY),  # type: ignore[misc]
        body=b"v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\n",
    )
    original.headers.add("Content-Type", "application/sdp")
    data = bytes(original)
    assert data.startswith(b"INVITE sip:bob@example.com;transport=tcp SIP/2.0\r\nVia: ")
    assert data.endswith(b"\r\nContent-Length: 31\r\n\r\nv=0\r\no=- 1 1 IN IP4 192.0.2.1\r\n")
    parsed = request(data)
    assert parsed.method == "INVITE"
    assert parsed.uri == original.uri
    assert parsed.body == original.body
    assert list(parsed.headers) == [*original.headers, ("Content-Length", "31")]
    assert bytes(parsed) == data


def test_response_round_trip() -> None:
    original = Response(status=486, reason="Busy Here", headers=Headers([
        ("Via", "SIP/2.0/UDP pc33.example.com;branch=z9hG4bK776asdhds;received=192.0.2.1"),
        ("To", "<sip:bob@example.com>;tag=a6c85cf"),
        ("From", "<sip:alice@example.com>;tag=1928301774"),
        ("Call-ID", "a84b4c76e66710"),
        ("CSeq", "314159 INVITE"),
    ]))  # fmt: skip
    data = original.encode()
    assert data.startswith(b"SIP/2.0 486 Busy Here\r\n")
    parsed = parse_message(data)
    assert isinstance(parsed, Response)
    assert (parsed.status, parsed.reason, parsed.body) == (486, "Busy Here", b"")
    assert parsed.headers.get("Content-Length") == "0"
    assert parsed.to.tag == "a6c85cf"
    assert parsed.encode() == data


def test_non_utf8_octets_survive_a_round_trip() -> None:
    data = (b"SIP/2.0 200 \xff\xfe ok\r\n"
            b"Via: SIP/2.0/UDP h;branch=z9hG4bK1\r\nTo: <sip:b@h>;tag=\xe9t\xe9\r\n"
            b"From: <sip:a@h>;tag=1\r\nCall-ID: c\xc3\x28id\r\nCSeq: 1 INVITE\r\n"
            b"Subject: caf\xc3\xa9 \x80\r\nContent-Length: 3\r\n\r\n\x00\xff\x80")  # fmt: skip
    parsed = parse_message(data)
    assert isinstance(parsed, Response)
    assert parsed.reason == "\udcff\udcfe ok"
    assert parsed.headers.get("Subject") == "café \udc80"
    assert parsed.call_id == "c\udcc3(id"
    assert parsed.body == b"\x00\xff\x80"
    assert parsed.encode() == data


def test_encode_always_sets_content_length() -> None:
    message = request(wire("Content-Length: 0"))
    message.body = b"hello"
    assert message.encode().endswith(b"\r\nContent-Length: 5\r\n\r\nhello")
    assert message.encode().count(b"Content-Length") == 1
    bare = Request(method="OPTIONS", uri=SipUri("h"))
    assert bare.encode() == b"OPTIONS sip:h SIP/2.0\r\nContent-Length: 0\r\n\r\n"
    compact = request(wire("l: 0"))
    compact.body = b"xy"
    assert compact.encode().count(b"Content-Length: 2\r\n") == 1
    assert b"\r\nl:" not in compact.encode()


# ---------------------------------------------------------------------------------------------
# Header names, folding, lists


@pytest.mark.parametrize(
    ("compact", "full"),
    [("i", "Call-ID"), ("m", "Contact"), ("e", "Content-Encoding"), ("l", "Content-Length"),
     ("c", "Content-Type"), ("f", "From"), ("s", "Subject"), ("k", "Supported"), ("t", "To"),
     ("v", "Via"), ("x", "Session-Expires"), ("o", "Event"), ("r", "Refer-To"),
     ("b", "Referred-By"), ("u", "Allow-Events"), ("a", "Accept-Contact"), ("I", "Call-ID"),
     ("V", "Via")],
)  # fmt: skip
def test_compact_names(compact: str, full: str) -> None:
    assert canonical_name(compact) == full


@pytest.mark.parametrize(
    ("name", "canonical"),
    [("call-id", "Call-ID"), ("CSEQ", "CSeq"), ("www-authenticate", "WWW-Authenticate"),
     ("X-Custom-Thing", "X-Custom-Thing"), ("x-custom-thing", "x-custom-thing"), ("q", "q"),
     ("max-forwards", "Max-Forwards"), ("rack", "RAck")],
)  # fmt: skip
def test_canonical_names(name: str, canonical: str) -> None:
    assert canonical_name(name) == canonical


def test_compact_forms_in_a_message() -> None:
    data = wire(
        "v: SIP/2.0/UDP h1;branch=z9hG4bK1",
        "f: <sip:alice@example.com>;tag=9",
        "t: sip:bob@example.com",
        "i: compact-call-id",
        "m: <sip:alice@192.0.2.1>",
        "c: application/sdp",
        "e: gzip",
        "s: hello",
        "k: timer, 100rel",
        "x: 1800",
        "l: 4",
        start="OPTIONS sip:bob@example.com SIP/2.0",
        body=b"v=0\r",
        mandatory=False,
    ).replace(b"h1;branch=z9hG4bK1\r\n", b"h1;branch=z9hG4bK1\r\nCSeq: 1 OPTIONS\r\n")
    msg = request(data)
    assert [n for n, _ in msg.headers] == [
        "Via", "CSeq", "From", "To", "Call-ID", "Contact", "Content-Type", "Content-Encoding",
        "Subject", "Supported", "Session-Expires", "Content-Length",
    ]  # fmt: skip
    assert msg.call_id == "compact-call-id"
    assert msg.from_.tag == "9"
    assert str(msg.to.uri) == "sip:bob@example.com"
    assert msg.content_type == "application/sdp"
    assert msg.headers.get_list("k") == ["timer", "100rel"]
    assert msg.body == b"v=0\r"


def test_header_folding() -> None:
    data = wire(
        "Subject: I know you're there,",
        " pick up the phone",
        "\tand talk to me!",
        "X-Empty:",
        "X-Spaces   :   padded value   ",
    )
    msg = request(data)
    assert msg.headers.get("Subject") == "I know you're there, pick up the phone and talk to me!"
    assert msg.headers.get("X-Empty") == ""
    assert msg.headers.get("X-Spaces") == "padded value"


def test_lf_only_line_ends_and_leading_crlfs() -> None:
    data = b"\r\n\r\n\n" + wire("Content-Length: 2", body=b"ok").replace(b"\r\n", b"\n")
    msg = request(data)
    assert msg.method == "INVITE"
    assert msg.body == b"ok"
    assert msg.cseq == CSeq(314159, "INVITE")


def test_via_across_lines_and_commas() -> None:
    data = wire(
        "Via: SIP/2.0/UDP second.example.com;branch=z9hG4bK2, SIP/2.0/TCP",
        "  third.example.com:5070 ;branch=z9hG4bK3",
        'v: SIP/2.0/TLS [2001:db8::4];branch=z9hG4bK4,SIP/2.0/UDP fifth;branch="z9hG4bK5,x"',
    )
    msg = request(data)
    assert [(v.transport, v.host, v.port, v.branch) for v in msg.vias] == [
        ("UDP", "pc33.example.com", None, "z9hG4bK776asdhds"),
        ("UDP", "second.example.com", None, "z9hG4bK2"),
        ("TCP", "third.example.com", 5070, "z9hG4bK3"),
        ("TLS", "2001:db8::4", None, "z9hG4bK4"),
        ("UDP", "fifth", None, '"z9hG4bK5,x"'),
    ]
    assert msg.top_via.host == "pc33.example.com"
    assert len(msg.headers.get_all("Via")) == 3
    assert len(msg.headers.get_list("Via")) == 5


# ---------------------------------------------------------------------------------------------
# Headers


def test_headers_multimap() -> None:
    h = Headers([("via", "a"), ("To", "t"), ("v", "b"), ("X-Foo", "1")])
    assert list(h) == [("Via", "a"), ("To", "t"), ("Via", "b"), ("X-Foo", "1")]
    assert h.get("VIA") == "a"
    assert h.get("x-foo") == "1"
    assert h.get("missing") is None
    assert h.get("missing", "dflt") == "dflt"
    assert h.get_all("V") == ["a", "b"]
    assert h.get_all("missing") == []
    assert "t" in h and "TO" in h and "From" not in h
    assert 3 not in h
    assert len(h) == 4

    h.add("x-foo", "2")
    assert h.get_all("X-FOO") == ["1", "2"]
    h.prepend("Via", "first")
    assert h.get("via") == "first"
    assert next(iter(h)) == ("Via", "first")

    h.set("via", "only")
    assert list(h) == [("Via", "only"), ("To", "t"), ("X-Foo", "1"), ("x-foo", "2")]
    h.set("Subject", "new")
    assert list(h)[-1] == ("Subject", "new")

    h.remove("X-FOO")
    assert list(h) == [("Via", "only"), ("To", "t"), ("Subject", "new")]
    h.remove("not-there")
    assert len(h) == 3


def test_headers_set_list_replaces_every_field_at_the_place_of_the_first() -> None:
    h = Headers([("To", "t"), ("Via", "a"), ("X-Foo", "1"), ("v", "b, c")])
    h.set_list("VIA", ["1", "2"])
    assert list(h) == [("To", "t"), ("Via", "1"), ("Via", "2"), ("X-Foo", "1")]
    h.set_list("Route", ["<sip:p;lr>"])  # none yet: appended
    assert list(h)[-1] == ("Route", "<sip:p;lr>")
    h.set_list("Via", [])
    assert list(h) == [("To", "t"), ("X-Foo", "1"), ("Route", "<sip:p;lr>")]


def test_headers_get_list_and_copy_and_eq() -> None:
    h = Headers([("Allow", "INVITE, ACK ,BYE"), ("allow", ""), ("Allow", ' "a,b" , ,CANCEL')])
    assert h.get_list("ALLOW") == ["INVITE", "ACK", "BYE", '"a,b"', "CANCEL"]
    clone = h.copy()
    clone.add("X", "y")
    assert "X" not in h
    assert clone != h
    assert Headers([("v", "1")]) == Headers([("Via", "1")])
    assert Headers([("Via", "1")]) != [("Via", "1")]
    assert repr(Headers([("v", "1")])) == "Headers([('Via', '1')])"


# ---------------------------------------------------------------------------------------------
# Content-Length and sizes


def test_body_is_cut_at_content_length() -> None:
    msg = request(wire("Content-Length: 5", body=b"helloEXTRA OCTETS"))
    assert msg.body == b"hello"
    assert request(wire("Content-Length: 0", body=b"junk")).body == b""
    assert request(wire("Content-Length: 005", body=b"hello")).body == b"hello"


def test_datagram_without_content_length_takes_the_rest() -> None:
    assert request(wire(body=b"whole body")).body == b"whole body"


@pytest.mark.parametrize("stream", [False, True])
def test_content_length_larger_than_the_message(stream: bool) -> None:
    error = rejects(wire("Content-Length: 10", body=b"short"), stream=stream)
    assert error == "Content-Length larger than the message"


def test_stream_requires_content_length() -> None:
    assert rejects(wire(), stream=True) == "Content-Length is required on a stream transport"
    assert request(wire("l: 0"), stream=True).body == b""


@pytest.mark.parametrize(
    ("value", "status", "message"),
    [("-5", 400, "bad Content-Length '-5'"), ("5x", 400, "bad Content-Length '5x'"),
     ("", 400, "bad Content-Length ''"), ("\u00b2", 400, "bad Content-Length '\u00b2'"),
     ("\u0665", 400, "bad Content-Length '\u0665'"),
     (str(MAX_BODY_BYTES + 1), 413, "body too large"), ("9" * 5000, 413, "body too large"),
     ("5, 5", 400, "more than one Content-Length"),
     ("5,", 400, "more than one Content-Length")],
)  # fmt: skip
def test_bad_content_length(value: str, status: int, message: str) -> None:
    assert rejects(wire(f"Content-Length: {value}", body=b"hello"), status=status) == message


def test_duplicated_content_length() -> None:
    data = wire("Content-Length: 5", "l: 5", body=b"hello")
    assert rejects(data) == "more than one Content-Length"


def test_body_too_large() -> None:
    body = b"x" * (MAX_BODY_BYTES + 1)
    assert rejects(wire(body=body), status=413) == "body too large"
    ok = request(wire(f"Content-Length: {MAX_BODY_BYTES}", body=body))
    assert len(ok.body) == MAX_BODY_BYTES


def test_header_section_limit() -> None:
    pad = "X-Pad: " + "a" * (MAX_HEADER_BYTES - (len(wire("X-Pad: ")) - 4))
    data = wire(pad)
    assert data.index(b"\r\n\r\n") == MAX_HEADER_BYTES
    assert request(data).headers.get("X-Pad") == pad[7:]
    assert rejects(wire(pad + "a"), status=513) == "header section too large"


@pytest.mark.parametrize("ending", [b"", b"\r\n", b"\r\n\r\nbody"])
def test_64k_header_section_is_refused_quickly_and_without_copies(ending: bytes) -> None:
    data = b"\r\n" * 8 + b"INVITE sip:a@b SIP/2.0\r\nX-Pad: " + b"a" * (64 * 1024) + ending
    tracemalloc.start()
    began = time.perf_counter()
    try:
        rejects(data, status=513)
        elapsed = time.perf_counter() - began
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert elapsed < 0.05
    assert peak < 8 * 1024  # neither copied nor decoded


def test_the_header_section_ends_at_the_first_empty_line() -> None:
    """CRLF CRLF or LF LF, whichever comes first: the rest is the body, whatever it holds."""
    crlf = request(wire(body=b"body\r\n\r\nmore"))
    assert (len(crlf.headers), crlf.body) == (len(MANDATORY), b"body\r\n\r\nmore")
    lf_only = wire().replace(b"\r\n", b"\n")
    assert request(lf_only + b"body").body == b"body"
    assert request(wire(body=b"x\n\ny")).body == b"x\n\ny"
    assert request(lf_only + b"x\r\n\r\ny").body == b"x\r\n\r\ny"
    assert request(wire()[:-2]).body == b""  # no empty line: the datagram's end ends the head


def test_missing_blank_line_in_a_datagram() -> None:
    """RFC 4475 §3.1.2.15: the end of the datagram ends the header section."""
    data = wire("Content-Length: 0")[:-2]
    assert data.endswith(b"Content-Length: 0\r\n")
    assert request(data).headers.get("Content-Length") == "0"
    assert request(data[:-2]).body == b""
    assert request(data.replace(b"\r\n", b"\n")).call_id == "a84b4c76e66710@pc33.example.com"


# ---------------------------------------------------------------------------------------------
# Start lines


def test_response_start_lines() -> None:
    base = wire(start="SIP/2.0 180 Ringing")
    msg = parse_message(base)
    assert isinstance(msg, Response)
    assert (msg.status, msg.reason) == (180, "Ringing")
    for line, status, reason in [("SIP/2.0 200 OK", 200, "OK"), ("sip/2.0 699 x  y ", 699, "x  y "),
                                 ("SIP/2.0 100", 100, ""), ("SIP/2.0 100 ", 100, "")]:  # fmt: skip
        msg = parse_message(base.replace(b"SIP/2.0 180 Ringing", line.encode()))
        assert isinstance(msg, Response)
        assert (msg.status, msg.reason) == (status, reason)


@pytest.mark.parametrize(
    ("line", "status", "message"),
    [("SIP/2.0 099 Low", 400, "bad status code 099"),
     ("SIP/2.0 700 High", 400, "bad status code 700"),
     ("SIP/2.0 4294967301 Big", 400, "bad status line 'SIP/2.0 4294967301 Big'"),
     ("SIP/2.0 2OO OK", 400, "bad status line 'SIP/2.0 2OO OK'"),
     ("SIP/2.0 \u0662\u0660\u0660 OK", 400, "bad status line 'SIP/2.0 \u0662\u0660\u0660 OK'"),
     ("SIP/3.0 200 OK", 505, "unsupported version SIP/3.0"),
     ("SIP/2.0  200 OK", 400, "bad status line 'SIP/2.0  200 OK'")],
)  # fmt: skip
def test_bad_status_lines(line: str, status: int, message: str) -> None:
    assert rejects(wire(start=line), status=status) == message


def test_request_start_lines() -> None:
    msg = request(wire(start="INVITE sip:bob@example.com sip/2.0"))
    assert (msg.method, msg.uri) == ("INVITE", SipUri("example.com", "bob"))
    msg = request(wire(start="INVITE tel:+1555 SIP/2.0"))
    assert msg.uri == OtherUri("tel", "+1555")


@pytest.mark.parametrize(
    ("line", "status", "message"),
    [("INVITE sip:bob@example.com SIP/7.0", 505, "unsupported version SIP/7.0"),
     ("INVITE sip:bob@example.com HTTP/1.1", 505, "unsupported version HTTP/1.1"),
     ("INVITE  sip:bob@example.com SIP/2.0", 400,
      "bad request line 'INVITE  sip:bob@example.com SIP/2.0'"),
     ("INVITE sip:bob@example.com SIP/2.0 ", 400,
      "bad request line 'INVITE sip:bob@example.com SIP/2.0 '"),
     ("INVITE sip:bob@example.com", 400, "bad request line 'INVITE sip:bob@example.com'"),
     ("INV:TE sip:bob@example.com SIP/2.0", 400,
      "bad request line 'INV:TE sip:bob@example.com SIP/2.0'"),
     ("INVITE <sip:bob@example.com> SIP/2.0", 400, "Request-URI must not be enclosed in <>"),
     ("INVITE sip:bob@example.com?Route=x SIP/2.0", 400,
      "headers are not allowed in a Request-URI (§19.1.5)"),
     ("INVITE sip:bob@ SIP/2.0", 400, "bad host in URI: ''"),
     ("   ", 400, "bad request line '   '")],
)  # fmt: skip
def test_bad_request_lines(line: str, status: int, message: str) -> None:
    assert rejects(wire(start=line), status=status) == message


# ---------------------------------------------------------------------------------------------
# The §8.2 checks


@pytest.mark.parametrize("name", ["Via", "From", "To", "Call-ID", "CSeq"])
def test_missing_mandatory_header(name: str) -> None:
    lines = [line for line in MANDATORY if not line.startswith(name + ":")]
    data = (CRLF.join(["INVITE sip:b@h SIP/2.0", *lines]) + CRLF + CRLF).encode()
    assert rejects(data) == f"missing {name}"


@pytest.mark.parametrize(
    "line", ["Call-ID: other", "i: other", "CSeq: 1 INVITE", "From: <sip:x@y>;tag=2",
             "t: <sip:x@y>", "Max-Forwards: 69", "Content-Type: text/plain"],
)  # fmt: skip
def test_single_valued_headers_twice(line: str) -> None:
    assert rejects(wire(line, line)).startswith("more than one ")
    if not line.startswith("Content-Type"):
        assert rejects(wire(line)).startswith("more than one ")


@pytest.mark.parametrize(
    ("line", "message"),
    [("Via:", "empty Via"), ("Via: , ,", "empty Via"),
     ("Call-ID:", "bad Call-ID ''"), ("Call-ID: a b", "bad Call-ID 'a b'"),
     ("Call-ID: a,b", "bad Call-ID 'a,b'"),
     ("Max-Forwards: 256", "bad Max-Forwards '256'"),
     ("Max-Forwards: -1", "bad Max-Forwards '-1'"),
     ("Max-Forwards: \u00b9", "bad Max-Forwards '\u00b9'"),
     ("Expires: soon", "bad Expires 'soon'"), ("Expires: \u0663", "bad Expires '\u0663'"),
     ("From: <sip:a@b>;tag=1, <sip:c@d>", "more than one value in From"),
     ("From:", "empty From"), ("To: ,", "empty To"),
     ("CSeq: 1 OPTIONS", "CSeq method OPTIONS does not match INVITE"),
     ("Contact: <sip:a@b", "missing '>' in '<sip:a@b'"),
     ("Route: sip:a@b?x", "addr-spec with reserved characters: 'sip:a@b?x'"),
     ("Record-Route: <sip:p1;lr>, sip:a@b?x", "addr-spec with reserved characters: 'sip:a@b?x'"),
     ("Via: SIP/2.0/UDP h;branch=z9hG4bK", "Via branch is the bare magic cookie"),
     ("Via: SIP/2.0/UDP h;rport=0", "bad rport in Via 'SIP/2.0/UDP h;rport=0'"),
     ("Foo Bar: baz", "bad header line 'Foo Bar: baz'"),
     ("no colon here", "bad header line 'no colon here'"),
     (": no name", "bad header line ': no name'")],
)  # fmt: skip
def test_validation_failures(line: str, message: str) -> None:
    assert rejects(replacing(line)) == message


def test_valid_optional_values() -> None:
    msg = request(wire("Contact: *", "Expires: 0"))
    assert msg.headers.get("Contact") == "*"
    assert msg.headers.get("Expires") == "0"
    for value in ("0", "0068", "255", "0" * 5000 + "1"):
        assert request(replacing(f"Max-Forwards: {value}")).headers.get("Max-Forwards") == value


# ---------------------------------------------------------------------------------------------
# CSeq


@pytest.mark.parametrize(
    ("text", "expected"),
    [("0 INVITE", CSeq(0, "INVITE")), ("2147483647 BYE", CSeq(2**31 - 1, "BYE")),
     ("0009  INVITE", CSeq(9, "INVITE")), (" 1\tACK ", CSeq(1, "ACK")),
     ("7 NEWMETHOD", CSeq(7, "NEWMETHOD"))],
)  # fmt: skip
def test_cseq_parse(text: str, expected: CSeq) -> None:
    assert CSeq.parse(text) == expected
    assert str(expected) == f"{expected.seq} {expected.method}"


@pytest.mark.parametrize(
    ("text", "message"),
    [("2147483648 INVITE", "CSeq number too large: 2147483648"),
     ("36893488147419103232 INVITE", "CSeq number too large: 36893488147419103232"),
     ("-1 INVITE", "bad CSeq '-1 INVITE'"), ("1", "bad CSeq '1'"), ("", "bad CSeq ''"),
     ("INVITE", "bad CSeq 'INVITE'"), ("1 INVITE x", "bad CSeq '1 INVITE x'"),
     ("1 IN,VITE", "bad CSeq '1 IN,VITE'"), ("\u00b2 INVITE", "bad CSeq '\u00b2 INVITE'"),
     ("\u0661 INVITE", "bad CSeq '\u0661 INVITE'"), ("1x INVITE", "bad CSeq '1x INVITE'"),
     ("1\u3000INVITE", "bad CSeq '1\\u3000INVITE'"), ("1\x0bINVITE", "bad CSeq '1\\x0bINVITE'")],
)  # fmt: skip
def test_cseq_parse_rejects(text: str, message: str) -> None:
    with pytest.raises(RemoteProtocolError) as info:
        CSeq.parse(text)
    assert str(info.value) == message


def test_cseq_of_5000_digits() -> None:
    with pytest.raises(RemoteProtocolError, match=r"^CSeq number too large: 9{40}$"):
        CSeq.parse("9" * 5000 + " INVITE")
    assert rejects(wire().replace(b"314159", b"9" * 5000)).startswith("CSeq number too large")


# ---------------------------------------------------------------------------------------------
# Typed accessors


def test_typed_accessors() -> None:
    data = wire(
        'Contact: "Alice" <sip:alice@192.0.2.1:5062;transport=tcp>;expires=60, <sip:a2@h>',
        "m: sip:alice@[2001:db8::1];q=0.5",
        "Record-Route: <sip:p1.example.com;lr>, <sip:p2.example.com;lr>",
        "Record-Route: <sip:p3.example.com;lr>",
        "Content-Type: Application/SDP ; charset=utf-8",
    )
    msg = request(data)
    assert msg.call_id == "a84b4c76e66710@pc33.example.com"
    assert msg.cseq == CSeq(314159, "INVITE")
    assert msg.top_via.branch == "z9hG4bK776asdhds"
    assert [v.host for v in msg.vias] == ["pc33.example.com"]
    assert msg.from_.display_name == "Alice"
    assert msg.from_.tag == "1928301774"
    assert msg.to.display_name == "Bob"
    assert msg.to.tag is None
    assert msg.to.uri == SipUri("example.com", user="bob")
    contacts = msg.contacts
    assert [str(c.uri) for c in contacts] == [
        "sip:alice@192.0.2.1:5062;transport=tcp", "sip:a2@h", "sip:alice@[2001:db8::1]",
    ]  # fmt: skip
    assert contacts[0].params["expires"] == "60"
    assert contacts[2].params["q"] == "0.5"
    assert [str(r.uri) for r in msg.record_route] == [
        "sip:p1.example.com;lr", "sip:p2.example.com;lr", "sip:p3.example.com;lr",
    ]  # fmt: skip
    assert msg.content_type == "application/sdp"
    assert "Call-ID=a84b4c76e66710@pc33.example.com" in repr(msg)
    assert repr(msg).startswith("Request(INVITE sip:bob@example.com")


def test_accessors_on_a_bare_message() -> None:
    bare = Request(method="OPTIONS", uri=SipUri("h"))
    assert bare.call_id == ""
    assert bare.content_type is None
    assert bare.contacts == ()
    assert bare.record_route == ()
    assert bare.vias == ()
    with pytest.raises(RemoteProtocolError, match="no Via"):
        bare.top_via  # noqa: B018
    with pytest.raises(RemoteProtocolError, match="bad CSeq"):
        bare.cseq  # noqa: B018
    other = Response(status=200, reason="OK", headers=Headers([("To", "<tel:+1>")]))
    assert other.to.uri == OtherUri("tel", "+1")
    assert repr(other) == "Response(200 OK, Call-ID=)"


VIEWS = ("call_id", "cseq", "vias", "top_via", "from_", "to", "contacts", "record_route",
         "content_type")  # fmt: skip


def test_header_views_are_parsed_once_until_their_header_changes() -> None:
    msg = request(wire("Contact: <sip:alice@192.0.2.1>", "Content-Type: application/sdp"))
    views = {name: getattr(msg, name) for name in VIEWS}
    assert all(getattr(msg, name) is value for name, value in views.items())

    def reparsed(*changed: str) -> list[str]:
        """The views, but those of ``changed`` headers, that are no longer the first parse."""
        return [n for n in VIEWS if n not in changed and getattr(msg, n) is not views[n]]

    msg.headers.set_list("Via", ["SIP/2.0/UDP 192.0.2.7;branch=z9hG4bKnew"])
    assert (msg.top_via.host, [v.branch for v in msg.vias]) == ("192.0.2.7", ["z9hG4bKnew"])
    assert reparsed("vias", "top_via") == []
    msg.headers.set("t", "<sip:carol@example.com>")  # the compact name of To
    assert msg.to.uri == SipUri("example.com", "carol")
    assert reparsed("vias", "top_via", "to") == []
    msg.headers.add("Contact", "<sip:a2@h>")
    msg.headers.prepend("Record-Route", "<sip:p0.example.com;lr>")
    msg.headers.remove("Content-Type")
    assert [str(c.uri) for c in msg.contacts] == ["sip:alice@192.0.2.1", "sip:a2@h"]
    assert [str(r.uri) for r in msg.record_route] == ["sip:p0.example.com;lr"]
    assert msg.content_type is None
    assert reparsed("vias", "top_via", "to", "contacts", "record_route", "content_type") == []
    clone = msg.headers.copy()
    clone.set("CSeq", "7 INVITE")
    assert msg.cseq is views["cseq"]  # the copy's change leaves the original's views alone


def test_record_route_and_route_are_parsed_by_the_parser_once_and_kept(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    parsed: list[str] = []
    real = message_module.parse_name_addr_list
    monkeypatch.setattr(
        message_module, "parse_name_addr_list", lambda value: parsed.append(value) or real(value)
    )
    msg = request(wire("Record-Route: <sip:p1.example.com;lr>", "Route: <sip:p2.example.com;lr>"))
    assert [str(r.uri) for r in msg.record_route] == ["sip:p1.example.com;lr"]
    assert [str(r.uri) for r in msg.route] == ["sip:p2.example.com;lr"]
    assert Router("udp", None, {}).next_hop(msg) == msg.route[0].uri  # routing reads the view
    assert sorted(parsed) == ["<sip:p1.example.com;lr>", "<sip:p2.example.com;lr>"]


def test_contacts_are_parsed_by_the_parser_once_and_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    parsed: list[str] = []
    real = message_module.parse_name_addr_list
    monkeypatch.setattr(
        message_module, "parse_name_addr_list", lambda value: parsed.append(value) or real(value)
    )
    msg = request(wire("Contact: <sip:door@192.0.2.10>"))
    assert [str(c.uri) for c in msg.contacts] == ["sip:door@192.0.2.10"]
    assert parsed == ["<sip:door@192.0.2.10>"]


def test_message_types() -> None:
    assert isinstance(parse_message(wire()), Request)
    msg: Message = parse_message(wire(start="SIP/2.0 200 OK"))
    assert isinstance(msg, Response)
