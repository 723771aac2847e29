"""Tests for intercom.sip.framing: cutting a TCP byte stream into SIP messages.

RFC 3261 §18.3 (Content-Length framing), RFC 5626 §4.4.1 (CRLF keepalives). Every vector is
framed three ways, as h11's tests do: all at once, one byte at a time, and followed by more.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from intercom.sip.errors import RemoteProtocolError
from intercom.sip.framing import PING, PONG, StreamFramer
from intercom.sip.message import MAX_BODY_BYTES, MAX_HEADER_BYTES, parse_message

VECTORS = Path(__file__).resolve().parent.parent / "vectors"


def _framable(path: Path) -> bool:
    """Parses on a stream, and Content-Length covers exactly the rest of the file."""
    data = path.read_bytes()
    try:
        message = parse_message(data, stream=True)
    except RemoteProtocolError:
        return False
    end = data.find(b"\r\n\r\n")
    return end >= 0 and len(data) == end + 4 + len(message.body)


ALL_FILES = sorted(
    [p for p in (VECTORS / "rfc4475").iterdir() if p.suffix in (".dat", ".variant")]
    + list((VECTORS / "rfc5118" / "wire").iterdir())
)
FRAMABLE = [p for p in ALL_FILES if _framable(p)]
IDS = [p.name for p in FRAMABLE]

SIMPLE = (
    b"OPTIONS sip:bob@example.com SIP/2.0\r\n"
    b"Via: SIP/2.0/TCP h.example.com;branch=z9hG4bK1\r\n"
    b"To: <sip:bob@example.com>\r\nFrom: <sip:a@example.com>;tag=1\r\n"
    b"Call-ID: simple\r\nCSeq: 1 OPTIONS\r\nl: 5\r\n\r\nhello"
)


def feed_bytewise(framer: StreamFramer, data: bytes) -> list[list[bytes]]:
    return [framer.feed(data[i : i + 1]) for i in range(len(data))]


def same_message(frame: bytes, original: bytes) -> None:
    framed = parse_message(frame, stream=True)
    datagram = parse_message(original)
    assert framed.encode() == datagram.encode()


def test_the_framable_set() -> None:
    names = set(IDS)
    assert len(names) == 36  # 25 from RFC 4475, 11 from RFC 5118
    assert {"wsinv.dat", "mpart01.dat", "longreq.dat", "unreason.dat", "esc01.dat"} <= names
    assert {"ipv6-in-sdp.sip", "port-ambiguous.sip"} <= names
    # trailing octets, no Content-Length, Content-Length too large, malformed
    assert not {"dblreq.dat", "inv2543.dat", "clerr.dat", "ncl.dat", "ipv6-bad.sip"} & names


@pytest.mark.parametrize("path", FRAMABLE, ids=IDS)
def test_all_at_once(path: Path) -> None:
    data = path.read_bytes()
    framer = StreamFramer()
    assert framer.feed(data) == [data]
    assert framer.buffered == 0
    same_message(data, data)


@pytest.mark.parametrize("path", FRAMABLE, ids=IDS)
def test_one_byte_at_a_time(path: Path) -> None:
    data = path.read_bytes()
    framer = StreamFramer()
    results = feed_bytewise(framer, data)
    assert results[-1] == [data]
    assert all(r == [] for r in results[:-1])
    assert framer.buffered == 0


@pytest.mark.parametrize("path", FRAMABLE, ids=IDS)
def test_followed_by_garbage(path: Path) -> None:
    data = path.read_bytes()
    framer = StreamFramer()
    assert framer.feed(data + b"GARBAGE") == [data]
    assert framer.buffered == len(b"GARBAGE")


@pytest.mark.parametrize("path", FRAMABLE, ids=IDS)
def test_followed_by_a_second_message(path: Path) -> None:
    data = path.read_bytes()
    stream = data + SIMPLE + data
    framer = StreamFramer()
    assert framer.feed(stream) == [data, SIMPLE, data]
    assert framer.buffered == 0
    framer = StreamFramer()
    frames = [f for i in range(0, len(stream), 7) for f in framer.feed(stream[i : i + 7])]
    assert frames == [data, SIMPLE, data]
    same_message(frames[1], SIMPLE)


def test_malformed_but_well_framed_messages_keep_their_verdict() -> None:
    """The framer only counts octets; parse_message still refuses what it refused."""
    for name, status in [("badvers.dat", 505), ("mismatch01.dat", 400), ("quotbal.dat", 400)]:
        data = (VECTORS / "rfc4475" / name).read_bytes()
        assert StreamFramer().feed(data) == [data]
        with pytest.raises(RemoteProtocolError) as info:
            parse_message(data, stream=True)
        assert info.value.status_hint == status


def test_dblreq_on_a_stream_is_two_messages() -> None:
    """RFC 4475 §3.1.1.8 is about datagrams; on a stream the second request is framed too, and
    the 5 octets its Content-Length leaves over are an unparseable third "message"."""
    data = (VECTORS / "rfc4475" / "dblreq.dat").read_bytes()
    framer = StreamFramer()
    first, second = framer.feed(data[:-5])
    assert framer.buffered == 0
    assert parse_message(first, stream=True).cseq.method == "REGISTER"
    invite = parse_message(second, stream=True)
    assert invite.cseq.method == "INVITE"
    assert len(invite.body) == 150
    assert first + b"\r\n" + second == data[:-5]  # the CRLF between them skipped as a pong
    assert data[-5:] == b"C\r\n\r\n"
    with pytest.raises(RemoteProtocolError, match="exactly one Content-Length"):
        framer.feed(data[-5:])


# ---------------------------------------------------------------------------------------------
# Keepalives (RFC 5626 §4.4.1)


def test_ping_is_reported() -> None:
    framer = StreamFramer()
    assert PONG == b"\r\n"
    assert framer.feed(PING) == [PING]
    assert framer.feed(PING * 3) == [PING, PING, PING]
    assert framer.feed(SIMPLE + PING + SIMPLE) == [SIMPLE, PING, SIMPLE]
    assert framer.buffered == 0


def test_ping_one_byte_at_a_time() -> None:
    framer = StreamFramer()
    assert feed_bytewise(framer, PING) == [[], [], [], [PING]]
    assert framer.buffered == 0


def test_lone_crlf_pong_is_skipped() -> None:
    framer = StreamFramer()
    assert framer.feed(PONG) == []
    assert framer.buffered == 2  # might still become a ping
    assert framer.feed(SIMPLE) == [SIMPLE]
    assert framer.buffered == 0
    assert framer.feed(PONG + SIMPLE) == [SIMPLE]
    assert framer.feed(PING + PONG + SIMPLE + PONG) == [PING, SIMPLE]
    assert framer.buffered == 2


def test_pong_then_cr_does_not_stall() -> None:
    """``\\r\\n\\r`` + a non-LF octet is a pong followed by junk, not a ping in progress; the junk
    must count against the header limit instead of being buffered forever."""
    framer = StreamFramer()
    assert framer.feed(b"\r\n\r") == []
    assert framer.feed(b"X") == []
    assert framer.buffered == 2
    with pytest.raises(RemoteProtocolError) as info:
        for _ in range(100):
            framer.feed(b"a" * 1024)
    assert info.value.status_hint == 513
    assert framer.buffered <= MAX_HEADER_BYTES + 1024


# ---------------------------------------------------------------------------------------------
# Limits and Content-Length


@pytest.mark.parametrize("chunk", [1000, 4096, 70000])
def test_endless_header_raises_513_with_bounded_buffer(chunk: int) -> None:
    framer = StreamFramer()
    data = b"INVITE sip:a@b SIP/2.0\r\nX-Pad: " + b"a" * (64 * 1024)
    most = 0
    with pytest.raises(RemoteProtocolError) as info:
        for i in range(0, len(data), chunk):
            framer.feed(data[i : i + chunk])
            most = max(most, framer.buffered)
    assert info.value.status_hint == 513
    assert str(info.value) == "header section too large"
    assert most <= MAX_HEADER_BYTES
    assert framer.buffered <= MAX_HEADER_BYTES + chunk


def test_header_end_beyond_the_limit() -> None:
    head = b"INVITE sip:a@b SIP/2.0\r\nX-Pad: "
    too_long = head + b"a" * (MAX_HEADER_BYTES + 1 - len(head)) + b"\r\n\r\n"
    with pytest.raises(RemoteProtocolError) as info:
        StreamFramer().feed(too_long)
    assert info.value.status_hint == 513
    exact = SIMPLE.replace(b"l: 5\r\n", b"X-Pad: \r\nl: 5\r\n")
    pad = MAX_HEADER_BYTES - exact.index(b"\r\n\r\n")
    exact = exact.replace(b"X-Pad: ", b"X-Pad: " + b"a" * pad)
    assert exact.index(b"\r\n\r\n") == MAX_HEADER_BYTES
    assert StreamFramer().feed(exact) == [exact]


def test_large_header_fed_byte_by_byte_completes() -> None:
    big = SIMPLE.replace(b"l: 5\r\n", b"l: 5\r\nX-Pad: " + b"a" * 15000 + b"\r\n")
    framer = StreamFramer()
    results = feed_bytewise(framer, big)
    assert results[-1] == [big]
    assert sum(len(r) for r in results) == 1


def test_body_waits_for_content_length() -> None:
    framer = StreamFramer()
    assert framer.feed(SIMPLE[:-2]) == []
    assert framer.buffered == len(SIMPLE) - 2
    assert framer.feed(SIMPLE[-2:] + SIMPLE[:10]) == [SIMPLE]
    assert framer.buffered == 10


def test_largest_body() -> None:
    message = SIMPLE.replace(b"l: 5", f"l: {MAX_BODY_BYTES}".encode()).replace(
        b"hello", b"b" * MAX_BODY_BYTES
    )
    assert StreamFramer().feed(message) == [message]


@pytest.mark.parametrize(
    ("replacement", "status", "message"),
    [
        (b"", 400, "a stream message needs exactly one Content-Length"),
        (b"l: 5\r\nContent-Length: 5\r\n", 400,
         "a stream message needs exactly one Content-Length"),
        (b"Content-Length: -5\r\n", 400, "bad Content-Length '-5'"),
        (b"Content-Length: five\r\n", 400, "bad Content-Length 'five'"),
        (b"Content-Length:\r\n", 400, "bad Content-Length ''"),
        (b"Content-Length: \xb2\r\n", 400, "bad Content-Length '\xb2'"),
        (b"Content-Length: 1\xb9\r\n", 400, "bad Content-Length '1\xb9'"),
        (b"Content-Length: " + b"9" * 5000 + b"\r\n", 413, "body too large"),
        (f"Content-Length: {MAX_BODY_BYTES + 1}\r\n".encode(), 413, "body too large"),
    ],
)  # fmt: skip
def test_bad_content_length(replacement: bytes, status: int, message: str) -> None:
    data = SIMPLE.replace(b"l: 5\r\n", replacement)
    with pytest.raises(RemoteProtocolError) as info:
        StreamFramer().feed(data)
    assert info.value.status_hint == status
    assert str(info.value) == message


@pytest.mark.parametrize("line", [b"Content-Length   :   5", b"CONTENT-LENGTH: 5", b"L:5",
                                  b"content-length: 0005"])  # fmt: skip
def test_content_length_spellings(line: bytes) -> None:
    data = SIMPLE.replace(b"l: 5", line)
    assert StreamFramer().feed(data + b"tail") == [data]


def test_ncl_vector_is_refused() -> None:
    data = (VECTORS / "rfc4475" / "ncl.dat").read_bytes()
    with pytest.raises(RemoteProtocolError, match="bad Content-Length '-999'"):
        StreamFramer().feed(data)


def test_mcl01_vector_is_refused() -> None:
    data = (VECTORS / "rfc4475" / "mcl01.dat").read_bytes()
    with pytest.raises(RemoteProtocolError, match="exactly one Content-Length"):
        StreamFramer().feed(data)
