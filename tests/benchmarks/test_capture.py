"""The capture's pure parts: frames from lo, and picking packets out of a capture."""

from __future__ import annotations

import socket
import struct

from benchmarks.capture import Packet, first, parse_frame, rtp_times


def frame(src: tuple[str, int], dst: tuple[str, int], payload: bytes, proto: int = 17) -> bytes:
    ethernet = bytes(12) + b"\x08\x00"
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 28 + len(payload), 0, 0, 64, proto, 0,
                     socket.inet_aton(src[0]), socket.inet_aton(dst[0]))  # fmt: skip
    udp = struct.pack("!HHHH", src[1], dst[1], 8 + len(payload), 0)
    return ethernet + ip + udp + payload


def test_parse_frame_reads_addresses_and_payload() -> None:
    parsed = parse_frame(frame(("127.0.0.1", 5070), ("127.0.0.2", 6000), b"REGISTER sip:x"))
    assert parsed == (("127.0.0.1", 5070), ("127.0.0.2", 6000), b"REGISTER sip:x")
    assert parse_frame(frame(("127.0.0.1", 1), ("127.0.0.1", 2), b"x" * 20, proto=6)) is None
    assert parse_frame(b"\x00" * 10) is None


def rtp(at: float, port: int, payload_type: int = 0) -> Packet:
    head = bytes([0x80, payload_type]) + bytes(10)
    return Packet(at, ("127.0.0.1", 4000), ("127.0.0.1", port), head)


def test_rtp_times_keep_one_stream_in_the_window() -> None:
    packets = [
        rtp(1.00, 6000),
        rtp(1.02, 6000),
        rtp(1.04, 6000, payload_type=101),  # a telephone-event
        rtp(1.03, 6001),  # RTCP's port
        Packet(1.05, ("127.0.0.1", 4000), ("127.0.0.1", 6000), b"\x00" * 12),  # not RTP v2
        rtp(1.06, 6000),
        rtp(2.00, 6000),  # after the window
    ]
    assert rtp_times(packets, 6000, 1.0, 2.0) == [1.00, 1.02, 1.06]


def test_first_finds_the_earliest_request_after_a_mark() -> None:
    def sip(at: float, text: bytes) -> Packet:
        return Packet(at, ("127.0.0.1", 5070), ("127.0.0.1", 5999), text)

    packets = [sip(3.0, b"INVITE sip:b"), sip(1.0, b"REGISTER sip:a"), sip(2.0, b"INVITE sip:a")]
    assert first(packets, 5999, b"INVITE ", 1.5) == packets[2]
    assert first(packets, 5999, b"INVITE ", 3.5) is None
    assert first(packets, 5998, b"REGISTER ", 0.0) is None
