"""Property tests: the parser and the framer never fail with anything but RemoteProtocolError.

``parse_message`` and ``StreamFramer.feed`` face the network: any other exception (IndexError,
ValueError, UnicodeError ...) escaping them is a bug. Also: well-formed requests survive
parse -> encode -> parse unchanged.
"""

from __future__ import annotations

from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from intercom.sip.errors import RemoteProtocolError
from intercom.sip.framing import PING, StreamFramer
from intercom.sip.message import Message, Request, Response, parse_message
from intercom.sip.uri import parse_uri

VECTORS = Path(__file__).resolve().parent.parent / "vectors"
CORPUS = [
    p.read_bytes()
    for p in sorted((VECTORS / "rfc4475").iterdir()) + sorted((VECTORS / "rfc5118").rglob("*"))
    if p.is_file() and p.suffix not in (".tsv", ".md")
]
LINES = sorted({line for data in CORPUS for line in data.split(b"\r\n")[1:] if b":" in line})

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Octet soup that reaches deep into the grammar far more often than uniform bytes.
PIECES = [
    b"\r\n", b"\r\n\r\n", b"\n", b"\r", b" ", b"\t", b":", b";", b",", b"=", b"<", b">", b'"',
    b"\\", b"@", b"[", b"]", b"?", b"&", b"%", b"/", b"0", b"9", b"65536", b"\xb2", b"\xff",
    b"\xc2\xb2", b"\xd9\xa3", b"9" * 4400, b"SIP/2.0", b"SIP/2.0/UDP ", b"sip:", b"INVITE ",
    b"Via: ", b"v:", b"From: ", b"To: ", b"t:", b"Call-ID: ", b"CSeq: ", b"Content-Length: ",
    b"l:", b"Max-Forwards: ", b"Contact: ", b"Route: ", b"Expires: ", b"branch=z9hG4bK",
    b"tag=", b"rport", b"received=", b"SIP/2.0 200 OK", b"host.example.com", b"[::1]",
]  # fmt: skip
SOUP = st.lists(st.sampled_from(PIECES) | st.binary(max_size=8), max_size=60).map(b"".join)

# Header values that have broken parsers: empty, non-ASCII digits, digit strings past Python's
# int/str conversion limit, unbalanced quotes and brackets, bare magic cookies.
NASTY = [
    b"", b" ", b",", b" , ,", b"0", b"-1", b"\xc2\xb2", b"1\xc2\xb9", b"\xd9\xa3", b"\xb2",
    b"9" * 4400, b"0" * 4400 + b"1", b"9" * 4400 + b" INVITE", b"1 \xc2\xb2", b"\xc2\xb2 INVITE",
    b"SIP/2.0/UDP h:" + b"9" * 4400, b"SIP/2.0/UDP h:\xc2\xb2", b"SIP/2.0/UDP h;rport=\xc2\xb2",
    b"SIP/2.0/UDP h;rport=" + b"9" * 4400, b"SIP/2.0/UDP h;branch=z9hG4bK", b"SIP/2.0/UDP [::1",
    b"<sip:a@h:" + b"9" * 4400 + b">", b"<sip:a@h:\xc2\xb2>", b"sip:a@[::1]:\xd9\xa3", b'"',
    b'"a\\"', b"<", b">", b"<sip:a@h", b"*", b"sip:", b"sip:@", b";tag", b"a;=b",
]  # fmt: skip
NAMES = [
    b"Via", b"v", b"From", b"f", b"To", b"t", b"Call-ID", b"i", b"CSeq", b"Content-Length", b"l",
    b"Max-Forwards", b"Contact", b"m", b"Route", b"Record-Route", b"Expires", b"Content-Type",
    b"X-Other",
]  # fmt: skip
STARTS = [
    b"INVITE sip:bob@example.com SIP/2.0", b"OPTIONS sip:[::1]:5060 SIP/2.0",
    b"SIP/2.0 200 OK", b"SIP/2.0 100 ", b"BYE tel:+1 SIP/2.0",
]  # fmt: skip


@st.composite
def header_soup(draw: st.DrawFn) -> bytes:
    """A start line and header fields whose values are drawn from NASTY and SOUP."""
    lines = [draw(st.sampled_from(STARTS))]
    for _ in range(draw(st.integers(1, 12))):
        value = draw(st.sampled_from(NASTY) | st.sampled_from(NASTY) | SOUP)
        colon = draw(st.sampled_from([b":", b": ", b" :"]))
        lines.append(draw(st.sampled_from(NAMES)) + colon + value)
    return b"\r\n".join(lines) + b"\r\n\r\n" + draw(st.binary(max_size=20))


def outcome(data: bytes, *, stream: bool) -> Message | None:
    """The parse result, None for RemoteProtocolError; anything else propagates and fails."""
    try:
        message = parse_message(data, stream=stream)
    except RemoteProtocolError as exc:
        assert exc.status_hint in (400, 413, 505, 513)
        return None
    assert isinstance(message, Request | Response)
    return message


def check_parse(data: bytes) -> None:
    for stream in (False, True):
        message = outcome(data, stream=stream)
        if message is not None:
            # A parsed message must serialise and parse back to the same thing.
            again = parse_message(message.encode(), stream=True)
            assert again.encode() == message.encode()


# ---------------------------------------------------------------------------------------------
# (a) arbitrary bytes


@FUZZ
@given(st.binary(max_size=2000))
def test_arbitrary_bytes(data: bytes) -> None:
    check_parse(data)


@FUZZ
@given(header_soup())
def test_header_soup(data: bytes) -> None:
    check_parse(data)


@FUZZ
@given(SOUP)
def test_sip_flavoured_soup(data: bytes) -> None:
    check_parse(data)
    check_parse(CORPUS[0].split(b"\r\n", 1)[0] + b"\r\n" + data)


# ---------------------------------------------------------------------------------------------
# (b) mutated vectors


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(CORPUS)))
    for _ in range(draw(st.integers(1, 6))):
        op = draw(st.sampled_from(["flip", "insert", "delete", "splice", "dup", "piece", "value"]))
        pos = draw(st.integers(0, len(data)))
        if op == "flip" and data:
            index = min(pos, len(data) - 1)
            data[index] ^= 1 << draw(st.integers(0, 7))
        elif op == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=8))
        elif op == "delete":
            del data[pos : pos + draw(st.integers(1, 40))]
        elif op == "splice":
            line = draw(st.sampled_from(LINES))
            start = data.find(b"\r\n", pos)
            data[start + 2 if start >= 0 else len(data) : start + 2] = line + b"\r\n"
        elif op == "dup":
            end = data.find(b"\r\n", pos)
            begin = data.rfind(b"\r\n", 0, pos)
            if 0 <= begin < end:
                data[end:end] = data[begin:end]
        elif op == "value":  # replace a header value with a nasty one
            colon = data.find(b":", pos)
            end = data.find(b"\r\n", colon)
            if colon >= 0 and end >= 0:
                data[colon + 1 : end] = b" " + draw(st.sampled_from(NASTY))
        else:
            data[pos:pos] = draw(st.sampled_from(PIECES))
    return bytes(data)


@FUZZ
@given(mutated())
def test_mutated_vectors(data: bytes) -> None:
    check_parse(data)


def test_unmutated_corpus_is_well_behaved() -> None:
    assert len(CORPUS) == 51 + 12 + 12
    assert len(LINES) > 300
    for data in CORPUS:
        check_parse(data)


# ---------------------------------------------------------------------------------------------
# (c) the framer


def feed_all(chunks: list[bytes]) -> tuple[list[bytes], bool, int]:
    """Frames produced until the first error, whether one occurred, the most ever buffered."""
    framer = StreamFramer()
    frames: list[bytes] = []
    most = 0
    try:
        for chunk in chunks:
            frames.extend(framer.feed(chunk))
            most = max(most, framer.buffered)
    except RemoteProtocolError as exc:
        assert exc.status_hint in (400, 413, 513)
        return frames, True, most
    return frames, False, most


def chunked(data: bytes, sizes: list[int]) -> list[bytes]:
    chunks, i = [], 0
    for size in sizes:
        chunks.append(data[i : i + size])
        i += size
    return [*chunks, data[i:]]


STREAMS = st.lists(
    st.sampled_from(CORPUS)
    | st.sampled_from([PING, b"\r\n", b"\r", b"\n", b"\r\n\r"])
    | SOUP
    | st.binary(max_size=50),
    max_size=5,
).map(b"".join)


@FUZZ
@given(STREAMS, st.lists(st.integers(0, 300), max_size=40))
def test_framer_any_chunking(data: bytes, sizes: list[int]) -> None:
    whole, whole_failed, _ = feed_all([data])
    pieces, pieces_failed, most = feed_all(chunked(data, sizes))
    assert pieces_failed == whole_failed
    if not whole_failed:
        assert pieces == whole  # framing does not depend on how the octets arrive
    # whatever happened, the frames are in the input, in order, and parsing them is safe
    position = 0
    for frame in pieces:
        if frame != PING:
            position = data.index(frame, position) + len(frame)
            outcome(frame, stream=True)
    assert most <= 16 * 1024 + 64 * 1024 + 4 + 300


@FUZZ
@given(STREAMS, st.lists(st.integers(0, 300), max_size=10))
def test_framer_never_stalls(data: bytes, sizes: list[int]) -> None:
    """Whatever came before, 80 KB without an empty line must end in 413/513: the framer may not
    wait (and buffer) forever."""
    tail = b"a" * (16 * 1024 + 64 * 1024 + 10)
    _, failed, most = feed_all([*chunked(data, sizes), tail[:40000], tail[40000:]])
    assert failed
    assert most <= 16 * 1024 + 64 * 1024 + 4


@FUZZ
@given(st.lists(st.binary(max_size=400), max_size=30))
def test_framer_random_chunks_of_random_bytes(chunks: list[bytes]) -> None:
    frames, _, most = feed_all(chunks)
    assert all(isinstance(f, bytes) and f for f in frames)
    assert most <= 16 * 1024 + 64 * 1024 + 4 + 400


# ---------------------------------------------------------------------------------------------
# (d) well-formed requests round-trip


TOKEN = st.text("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.!%*_+`'~",
                min_size=1, max_size=12)  # fmt: skip
LABEL = st.text("abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=10)
HOST = (
    st.lists(LABEL, min_size=1, max_size=3).map(".".join)
    | st.tuples(*[st.integers(0, 255)] * 4).map(lambda t: ".".join(map(str, t)))
    | st.sampled_from(["[2001:db8::1]", "[::1]", "[::ffff:192.0.2.1]"])
)
USER = st.text("abcdefghijklmnopqrstuvwxyz0123456789-_.!~*'()&=+$,;?/%", min_size=1, max_size=10)
PARAM = TOKEN | st.tuples(TOKEN, TOKEN).map("=".join)
PORT = st.none() | st.integers(1, 65535)
VALUE = st.text(
    st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp"), max_codepoint=0x2FFF)
    | st.sampled_from(["\udc80", "\udcff", "\t"]),
    max_size=30,
).map(lambda s: s.strip(" \t"))


@st.composite
def sip_uri(draw: st.DrawFn) -> str:
    user = draw(st.none() | USER)
    port = draw(PORT)
    params = draw(st.lists(PARAM, max_size=3))
    text = "sip:" + (f"{user}@" if user else "") + draw(HOST)
    text += f":{port}" if port else ""
    return text + "".join(f";{p}" for p in params)


@st.composite
def requests(draw: st.DrawFn) -> bytes:
    method = draw(st.sampled_from(["INVITE", "OPTIONS", "BYE", "MESSAGE"]) | TOKEN)
    uri = draw(sip_uri())
    branch = "z9hG4bK" + draw(TOKEN)
    via_host = draw(HOST)
    headers = [
        f"Via: SIP/2.0/{draw(st.sampled_from(['UDP', 'TCP', 'TLS']))} {via_host};branch={branch}",
        f"From: {draw(st.none() | TOKEN) or ''} <{draw(sip_uri())}>;tag={draw(TOKEN)}",
        f"To: <{draw(sip_uri())}>",
        f"Call-ID: {draw(TOKEN)}@{draw(HOST)}",
        f"CSeq: {draw(st.integers(0, 2**31 - 1))} {method}",
        f"Max-Forwards: {draw(st.integers(0, 255))}",
    ]
    for _ in range(draw(st.integers(0, 4))):
        headers.insert(draw(st.integers(1, len(headers))), f"X-{draw(TOKEN)}: {draw(VALUE)}")
    headers = draw(st.permutations(headers))
    body = draw(st.binary(max_size=200))
    if body or draw(st.booleans()):
        headers.append(f"{draw(st.sampled_from(['Content-Length', 'l']))}: {len(body)}")
    head = f"{method} {uri} SIP/2.0\r\n" + "".join(h + "\r\n" for h in headers) + "\r\n"
    return head.encode("utf-8", "surrogateescape") + body


@FUZZ
@given(requests())
def test_generated_requests_round_trip(data: bytes) -> None:
    first = parse_message(data)
    assert isinstance(first, Request)
    method, uri, version = data.split(b"\r\n", 1)[0].decode().split(" ")
    assert (first.method, first.uri, version) == (method, parse_uri(uri), "SIP/2.0")
    assert data.endswith(first.body)
    again = parse_message(first.encode(), stream=True)
    assert isinstance(again, Request)
    assert (again.method, again.uri, again.body) == (first.method, first.uri, first.body)
    assert [h for h in again.headers if h[0] != "Content-Length"] == [
        h for h in first.headers if h[0] != "Content-Length"
    ]
    assert again.headers.get("Content-Length") == str(len(first.body))
    assert again.encode() == first.encode()
    assert again.cseq == first.cseq
    assert again.vias == first.vias
    assert again.from_ == first.from_


@FUZZ
@given(requests(), st.lists(st.integers(1, 97), max_size=20))
def test_generated_requests_frame_back(data: bytes, sizes: list[int]) -> None:
    wire_form = parse_message(data).encode()
    frames, failed, _ = feed_all(chunked(wire_form + wire_form, sizes))
    assert not failed
    assert frames == [wire_form, wire_form]
