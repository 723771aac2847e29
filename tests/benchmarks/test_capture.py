"""The capture's pure parts: frames from lo, and picking packets out of a capture."""

from __future__ import annotations

import socket
import struct

from benchmarks.capture import Packet, first, parse_frame, rtp_numbers, rtp_times


def frame(src: tuple[str, int], dst: tuple[str, int], payload: bytes, proto: int = 17) -> bytes:
    ethernet = bytes(12) + b"\x08\x00"
    if proto == 17:
        transport = struct.pack("!HHHH", src[1], dst[1], 8 + len(payload), 0)
    else:  # a TCP header of 24 bytes (data offset 6: one option word)
        transport = struct.pack("!HHIIBBHHH", src[1], dst[1], 0, 0, 6 << 4, 0, 0, 0, 0) + bytes(4)
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(transport) + len(payload), 0, 0, 64,
                     proto, 0, socket.inet_aton(src[0]), socket.inet_aton(dst[0]))  # fmt: skip
    return ethernet + ip + transport + payload + bytes(6)  # lo pads nothing; a trailer is cut


def test_parse_frame_reads_addresses_and_payload() -> None:
    parsed = parse_frame(frame(("127.0.0.1", 5070), ("127.0.0.2", 6000), b"REGISTER sip:x"))
    assert parsed == ("udp", ("127.0.0.1", 5070), ("127.0.0.2", 6000), b"REGISTER sip:x")
    tcp = frame(("127.0.0.1", 1), ("127.0.0.1", 2), b"x" * 100, proto=6)
    assert parse_frame(tcp) == ("tcp", ("127.0.0.1", 1), ("127.0.0.1", 2), b"x" * 64)
    assert parse_frame(tcp, keep=None) == ("tcp", ("127.0.0.1", 1), ("127.0.0.1", 2), b"x" * 100)
    assert parse_frame(frame(("127.0.0.1", 1), ("127.0.0.1", 2), b"x" * 20, proto=1)) is None
    assert parse_frame(b"\x00" * 10) is None


def rtp(at: float, port: int, payload_type: int = 0, sequence: int = 0, src: int = 4000) -> Packet:
    head = (
        bytes([0x80, payload_type])
        + sequence.to_bytes(2, "big")
        + (160 * sequence).to_bytes(4, "big")
        + bytes(4)
    )
    return Packet(at, "udp", ("127.0.0.1", src), ("127.0.0.1", port), head)


def test_rtp_times_keep_one_stream_in_the_window() -> None:
    packets = [
        rtp(1.00, 6000),
        rtp(1.02, 6000),
        rtp(1.04, 6000, payload_type=101),  # a telephone-event
        rtp(1.03, 6001),  # RTCP's port
        Packet(1.05, "udp", ("127.0.0.1", 4000), ("127.0.0.1", 6000), b"\x00" * 12),  # not v2
        rtp(1.06, 6000),
        rtp(2.00, 6000),  # after the window
    ]
    assert rtp_times(packets, 6000, 1.0, 2.0) == [1.00, 1.02, 1.06]


def test_first_finds_the_earliest_request_after_a_mark() -> None:
    def sip(at: float, text: bytes) -> Packet:
        return Packet(at, "udp", ("127.0.0.1", 5070), ("127.0.0.1", 5999), text)

    packets = [sip(3.0, b"INVITE sip:b"), sip(1.0, b"REGISTER sip:a"), sip(2.0, b"INVITE sip:a")]
    assert first(packets, 5999, b"INVITE ", 1.5) == packets[2]
    assert first(packets, 5999, b"INVITE ", 3.5) is None
    assert first(packets, 5998, b"REGISTER ", 0.0) is None


def test_rtp_numbers_keep_the_doors_rtp_to_the_phone() -> None:
    packets = [
        rtp(1.00, 6000, sequence=7),
        rtp(1.01, 6000, payload_type=200 & 0x7F, src=4001),  # RTCP from the odd port
        rtp(1.02, 6000, payload_type=72, src=4000),  # an RTCP packet type read as RTP
        rtp(1.03, 7000, sequence=8),  # not to the phone
        rtp(1.04, 6000, sequence=9, src=5000),  # not from the door
        rtp(1.05, 6000, sequence=10),
    ]
    assert rtp_numbers(packets, range(4000, 4002), range(6000, 6002)) == [
        (1.00, 7, 1120),
        (1.05, 10, 1600),
    ]
