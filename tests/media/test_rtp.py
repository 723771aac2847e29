"""Tests for intercom.media.rtp: parse_rtp and RtpSender (RFC 3550 §5.1, §5.3.1).

tests/vectors/rtp/baresip_pcmu.rtp is the first packet baresip 1.0.0 sent in a PCMU call over
loopback (marker set, 160 octets of mu-law silence).
"""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from intercom.media.rtp import RTP_HEADER, RtpHeaderError, RtpPacket, RtpSender, parse_rtp

VECTORS = Path(__file__).parent.parent / "vectors" / "rtp"


def header(first: int = 0x80, second: int = 0x00, seq: int = 1, ts: int = 0x10,
           ssrc: int = 0xDEADBEEF) -> bytes:  # fmt: skip
    return bytes.fromhex(f"{first:02x}{second:02x}{seq:04x}{ts:08x}{ssrc:08x}")


# --- parsing: known answers -------------------------------------------------------------------


def test_parse_minimal_packet():
    data = bytes.fromhex("80 00 0001 00000010 deadbeef 0102")
    assert parse_rtp(data) == RtpPacket(0, False, 1, 0x10, 0xDEADBEEF, b"\x01\x02")


def test_parse_marker_and_payload_type():
    data = bytes.fromhex("80 e5 ffff ffffffff 00000001 aa")
    packet = parse_rtp(data)
    assert packet.marker is True
    assert packet.payload_type == 101
    assert packet.sequence == 0xFFFF
    assert packet.timestamp == 0xFFFFFFFF
    assert packet.ssrc == 1
    assert packet.payload == b"\xaa"


def test_parse_skips_csrc_list():
    data = header(first=0x82) + bytes.fromhex("11111111 22222222") + b"audio"
    assert parse_rtp(data).payload == b"audio"


def test_parse_skips_header_extension():
    # RFC 8285 one-byte form: 0xBEDE, length 1 word, then the word itself.
    data = header(first=0x90) + bytes.fromhex("bede 0001 10ff0000") + b"audio"
    assert parse_rtp(data).payload == b"audio"


def test_parse_empty_header_extension():
    data = header(first=0x90) + bytes.fromhex("1234 0000") + b"x"
    assert parse_rtp(data).payload == b"x"


def test_parse_strips_padding():
    data = header(first=0xA0) + b"abc" + b"\x00\x00\x03"
    assert parse_rtp(data).payload == b"abc"


def test_parse_padding_may_fill_the_whole_payload():
    data = header(first=0xA0) + b"\x00\x00\x00\x04"
    assert parse_rtp(data).payload == b""


def test_parse_csrc_extension_and_padding_together():
    data = (header(first=0xB1, second=0x89, seq=0x1234, ts=0xCAFEBABE, ssrc=7)
            + bytes.fromhex("01020304")  # one CSRC
            + bytes.fromhex("abcd 0002 00000000 00000000")  # two-word extension
            + b"payload" + b"\x00" * 3 + b"\x04")  # fmt: skip
    assert parse_rtp(data) == RtpPacket(9, True, 0x1234, 0xCAFEBABE, 7, b"payload")


def test_parse_header_only_packet_has_empty_payload():
    assert parse_rtp(header()).payload == b""


def test_parse_baresip_packet():
    data = (VECTORS / "baresip_pcmu.rtp").read_bytes()
    packet = parse_rtp(data)
    assert packet == RtpPacket(0, True, 0x244C, 0xC725, 0x7B4AE4F7, b"\xff" * 160)


# --- parsing: rejections ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "RTP packet of 0 bytes is shorter than the 12-byte fixed header"),
        (header()[:11], "RTP packet of 11 bytes is shorter than the 12-byte fixed header"),
        (header(first=0x40) + b"x", "RTP version 1 is not 2"),
        (header(first=0x00), "RTP version 0 is not 2"),
        (header(first=0xC0), "RTP version 3 is not 2"),
        (header(first=0x83) + bytes(8),
         "RTP packet has truncated CSRC list: 3 CSRCs need 24 bytes, got 20"),
        (header(first=0x90) + b"\xbe\xde\x00",
         "RTP packet has truncated header extension: no room for its 4-byte preamble at "
         "offset 12 of 15"),
        (header(first=0x90) + bytes.fromhex("bede 0002 00000000"),
         "RTP header extension of 2 words runs past the end: needs 24 bytes, got 20"),
        (header(first=0xA0) + b"abc\x00", "RTP padding bit set but the padding count is 0"),
        (header(first=0xA0) + b"ab\x04",
         "RTP padding count 4 exceeds the 3 bytes after the headers"),
        (header(first=0xA1) + bytes.fromhex("01020304") + b"\x05",
         "RTP padding count 5 exceeds the 1 bytes after the headers"),
    ],
)  # fmt: skip
def test_parse_rejects(data, message):
    with pytest.raises(RtpHeaderError) as info:
        parse_rtp(data)
    assert str(info.value) == message


def test_rtp_header_error_is_a_value_error():
    assert issubclass(RtpHeaderError, ValueError)


@given(st.binary(max_size=64))
def test_parse_arbitrary_bytes_raises_only_header_error(data):
    try:
        packet = parse_rtp(data)
    except RtpHeaderError:
        return
    assert len(packet.payload) <= len(data) - 12


# --- RtpSender -------------------------------------------------------------------------------


def test_sender_packet_bytes_known_answer():
    sender = RtpSender(ssrc=0x01020304, payload_type=8, sequence=0x1000, timestamp=0x20000)
    assert sender.packet(b"\xd5\xd5") == bytes.fromhex("80 08 1000 00020000 01020304 d5d5")


def test_sender_sequence_steps_and_timestamp_waits_for_advance():
    sender = RtpSender(ssrc=1, payload_type=0, sequence=10, timestamp=500)
    first = parse_rtp(sender.packet(b"a"))
    second = parse_rtp(sender.packet(b"b"))
    assert (first.sequence, second.sequence) == (10, 11)
    assert first.timestamp == second.timestamp == 500
    sender.advance(160)
    third = parse_rtp(sender.packet(b"c"))
    assert (third.sequence, third.timestamp) == (12, 660)
    assert sender.sequence == 13
    assert sender.timestamp == 660


def test_sender_next_packet_is_packet_then_advance():
    """The per-frame shortcut builds the same bytes and leaves the same state, across the
    wrap of both the sequence number and the timestamp."""
    fast = RtpSender(ssrc=0xDEADBEEF, payload_type=9, sequence=65534, timestamp=0xFFFFFF00)
    slow = RtpSender(ssrc=0xDEADBEEF, payload_type=9, sequence=65534, timestamp=0xFFFFFF00)
    for n in range(4):
        payload = bytes([n]) * (n + 1)
        built = slow.packet(payload, n == 0)
        slow.advance(160)
        assert fast.next_packet(payload, n == 0, 160) == built
    state = (fast.sequence, fast.timestamp, fast.packets_sent, fast.octets_sent)
    assert state == (slow.sequence, slow.timestamp, slow.packets_sent, slow.octets_sent)
    assert (fast.sequence, fast.timestamp) == (2, 0x180)


def test_sender_sequence_wraps_from_65535_to_0():
    sender = RtpSender(ssrc=1, payload_type=0, sequence=65534, timestamp=0)
    sequences = [parse_rtp(sender.packet(b"")).sequence for _ in range(4)]
    assert sequences == [65534, 65535, 0, 1]


def test_sender_timestamp_wraps_mod_2_32():
    sender = RtpSender(ssrc=1, payload_type=0, sequence=0, timestamp=0xFFFFFF00)
    sender.advance(0x100)
    assert sender.timestamp == 0
    sender.advance(0xFFFFFFFF + 161)
    assert sender.timestamp == 160
    assert parse_rtp(sender.packet(b"")).timestamp == 160


def test_sender_marker_bit():
    sender = RtpSender(ssrc=1, payload_type=9, sequence=0, timestamp=0)
    marked = sender.packet(b"x", marker=True)
    plain = sender.packet(b"x")
    assert marked[1] == 0x89
    assert plain[1] == 0x09
    assert parse_rtp(marked).marker is True
    assert parse_rtp(plain).marker is False


def test_sender_payload_type_override_applies_to_one_packet():
    sender = RtpSender(ssrc=1, payload_type=0, sequence=0, timestamp=0)
    event = parse_rtp(sender.packet(b"\x05\x0a\x00\xa0", marker=True, payload_type=101))
    audio = parse_rtp(sender.packet(b"\xff"))
    assert (event.payload_type, event.marker) == (101, True)
    assert audio.payload_type == 0
    assert (event.sequence, audio.sequence) == (0, 1)


def test_sender_timestamp_override_keeps_the_event_start():
    sender = RtpSender(ssrc=1, payload_type=0, sequence=0, timestamp=8000)
    start = sender.timestamp
    stamps = []
    for _ in range(3):
        stamps.append(parse_rtp(sender.packet(b"ev", payload_type=101, timestamp=start)).timestamp)
        sender.advance(160)
    assert stamps == [8000, 8000, 8000]
    assert sender.timestamp == 8480
    assert parse_rtp(sender.packet(b"a")).timestamp == 8480


def test_sender_timestamp_override_is_taken_mod_2_32():
    sender = RtpSender(ssrc=1, payload_type=0, sequence=0, timestamp=0)
    assert parse_rtp(sender.packet(b"", timestamp=(1 << 32) + 5)).timestamp == 5


def test_sender_counters_count_packets_and_payload_octets():
    sender = RtpSender(ssrc=1, payload_type=0, sequence=0, timestamp=0)
    assert (sender.packets_sent, sender.octets_sent) == (0, 0)
    sender.packet(b"\xff" * 160)
    sender.packet(b"\x00" * 4, payload_type=101)
    assert (sender.packets_sent, sender.octets_sent) == (2, 164)


def test_sender_payload_type_setter():
    sender = RtpSender(ssrc=1, payload_type=0, sequence=0, timestamp=0)
    sender.payload_type = 9
    assert parse_rtp(sender.packet(b"")).payload_type == 9
    with pytest.raises(ValueError, match=r"RTP payload type 128 is outside 0\.\.127"):
        sender.payload_type = 128


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"ssrc": 1 << 32}, "RTP SSRC 4294967296 is outside 0..4294967295"),
        ({"payload_type": 128}, "RTP payload type 128 is outside 0..127"),
        ({"sequence": 65536}, "RTP sequence number 65536 is outside 0..65535"),
        ({"timestamp": -1}, "RTP timestamp -1 is outside 0..4294967295"),
    ],
)
def test_sender_rejects_out_of_range_initial_values(kwargs, message):
    values = {"ssrc": 1, "payload_type": 0, "sequence": 0, "timestamp": 0} | kwargs
    with pytest.raises(ValueError) as info:
        RtpSender(**values)
    assert str(info.value) == message


def test_sender_rejects_out_of_range_payload_type_override():
    sender = RtpSender(ssrc=1, payload_type=0, sequence=0, timestamp=0)
    with pytest.raises(ValueError, match=r"RTP payload type 200 is outside 0\.\.127"):
        sender.packet(b"", payload_type=200)
    assert sender.packets_sent == 0
    assert sender.sequence == 0


def test_sender_packets_are_independent_bytes():
    sender = RtpSender(ssrc=1, payload_type=0, sequence=0, timestamp=0)
    first = sender.packet(b"a")
    sender.packet(b"b")
    assert isinstance(first, bytes)
    assert RTP_HEADER.unpack_from(first)[2] == 0  # not overwritten by the next packet


@given(
    ssrc=st.integers(0, 2**32 - 1),
    payload_type=st.integers(0, 127),
    sequence=st.integers(0, 2**16 - 1),
    timestamp=st.integers(0, 2**32 - 1),
    marker=st.booleans(),
    payload=st.binary(max_size=200),
)
def test_sender_output_round_trips_through_parse(ssrc, payload_type, sequence, timestamp, marker,
                                                 payload):  # fmt: skip
    sender = RtpSender(ssrc, payload_type, sequence, timestamp)
    data = sender.packet(payload, marker=marker)
    assert len(data) == 12 + len(payload)
    assert parse_rtp(data) == RtpPacket(payload_type, marker, sequence, timestamp, ssrc, payload)
    assert struct.unpack_from("!B", data)[0] == 0x80
