"""RTCP control packets: sender and receiver reports, SDES CNAME, BYE (RFC 3550 §6).

Theory of operation
===================

Every RTCP packet begins with the common 4-octet header of RFC 3550 §6.4.1::

     0                   1                   2                   3
     0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |V=2|P|    RC   |   PT=SR=200   |             length            |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+

``RC`` counts report blocks (SR, RR) or chunks / sources (SDES, BYE), ``length`` is the packet
size in 32-bit words minus one, header included, padding included. Several packets are stacked
in one datagram, the *compound packet* (§6.1): a report (SR if we sent media since the last
report, RR otherwise) first, then SDES with our CNAME, then BYE last when leaving.

* SR (§6.4.1): sender SSRC, a 64-bit NTP timestamp, the RTP timestamp of the same instant, the
  sender's packet and octet counts (mod 2^32), then report blocks.
* RR (§6.4.2): reporter SSRC, then report blocks.
* Report block (§6.4.1), 24 octets: source SSRC, fraction lost (8 bits, fixed point /256),
  cumulative lost (24 bits, signed), extended highest sequence number, interarrival jitter in
  timestamp units, LSR (middle 32 bits of the last SR's NTP timestamp) and DLSR (delay since
  that SR in 1/65536 s).
* SDES (§6.5): chunks of SSRC plus items (type, length, text) ended by a null octet and padded
  with nulls to a 32-bit boundary. We send CNAME (§6.5.1) only and read CNAME only; other items
  are skipped.
* BYE (§6.6): sources, then an optional reason (length octet and text, padded).

:func:`parse_rtcp` splits a compound packet by the length fields (Appendix A.2 validity: version
2, lengths that add up to the datagram exactly, padding counts that fit) and returns the
packets it knows; other types (APP, feedback, XR) are skipped. Structural damage raises
:class:`RtcpError`. The first-packet-must-be-a-report rule of A.2 is not enforced, so reduced
size RTCP (RFC 5506) parses too.

Time: the caller turns its UNIX wall clock into the SR's NTP timestamp with
:func:`ntp_from_unix` and hands in a random factor for the report interval
(:func:`rtcp_interval`).
"""

from __future__ import annotations

import math
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeAlias

RTCP_VERSION = 2
RTCP_SR = 200
RTCP_RR = 201
RTCP_SDES = 202
RTCP_BYE = 203
RTCP_APP = 204
SDES_END = 0
SDES_CNAME = 1

NTP_UNIX_OFFSET = 2_208_988_800
"""Seconds from the NTP epoch (1900-01-01) to the UNIX epoch (1970-01-01), RFC 868."""

_HEADER = struct.Struct("!BBH")
_SSRC = struct.Struct("!I")
_SENDER_INFO = struct.Struct("!IQIII")
"""SSRC of sender, NTP timestamp (64 bits), RTP timestamp, packet count, octet count."""
_REPORT_BLOCK = struct.Struct("!IIIIII")
"""SSRC, fraction lost << 24 | cumulative lost (24 bits), highest seq, jitter, LSR, DLSR."""
_MAX_COUNT = 31
_LOST_MAX = 0x7FFFFF
_LOST_MIN = -0x800000


class RtcpError(ValueError):
    """A datagram that is not valid RTCP (RFC 3550 §6.4-§6.6, Appendix A.2)."""


@dataclass(frozen=True, slots=True)
class ReportBlock:
    """Reception statistics about one source (RFC 3550 §6.4.1).

    ``packets_lost`` is signed (duplicates can make it negative) and is clamped to 24 bits when
    encoded; ``jitter`` is in timestamp units; ``lsr`` and ``dlsr`` are 0 when no SR was
    received from the source.
    """

    ssrc: int
    fraction_lost: int
    packets_lost: int
    highest_sequence: int
    jitter: int
    lsr: int
    dlsr: int

    def encode(self) -> bytes:
        _check("report block SSRC", self.ssrc, 32)
        _check("fraction lost", self.fraction_lost, 8)
        lost = min(max(self.packets_lost, _LOST_MIN), _LOST_MAX) & 0xFFFFFF
        return _REPORT_BLOCK.pack(
            self.ssrc,
            self.fraction_lost << 24 | lost,
            _check("extended highest sequence number", self.highest_sequence, 32),
            _check("jitter", self.jitter, 32),
            _check("LSR", self.lsr, 32),
            _check("DLSR", self.dlsr, 32),
        )


@dataclass(frozen=True, slots=True)
class SenderReport:
    """SR (RFC 3550 §6.4.1); ``ntp_timestamp`` is the full 64-bit NTP value."""

    ssrc: int
    ntp_timestamp: int
    rtp_timestamp: int
    packet_count: int
    octet_count: int
    reports: tuple[ReportBlock, ...] = ()

    def encode(self) -> bytes:
        _check_report_count(self.reports)
        body = _SENDER_INFO.pack(
            _check("SSRC", self.ssrc, 32),
            _check("NTP timestamp", self.ntp_timestamp, 64),
            _check("RTP timestamp", self.rtp_timestamp, 32),
            self.packet_count & 0xFFFFFFFF,  # the counts wrap (§6.4.1)
            self.octet_count & 0xFFFFFFFF,
        ) + b"".join(block.encode() for block in self.reports)
        return _packet(RTCP_SR, len(self.reports), body)


@dataclass(frozen=True, slots=True)
class ReceiverReport:
    """RR (RFC 3550 §6.4.2): sent instead of an SR when we have not sent media lately."""

    ssrc: int
    reports: tuple[ReportBlock, ...] = ()

    def encode(self) -> bytes:
        _check_report_count(self.reports)
        body = _SSRC.pack(_check("SSRC", self.ssrc, 32)) + b"".join(
            block.encode() for block in self.reports
        )
        return _packet(RTCP_RR, len(self.reports), body)


@dataclass(frozen=True, slots=True)
class SdesChunk:
    """One source's SDES items (RFC 3550 §6.5); only CNAME is kept (None when absent)."""

    ssrc: int
    cname: str | None


@dataclass(frozen=True, slots=True)
class SourceDescription:
    """SDES (RFC 3550 §6.5): one chunk per source."""

    chunks: tuple[SdesChunk, ...]

    def encode(self) -> bytes:
        if len(self.chunks) > _MAX_COUNT:
            raise ValueError(f"SDES with {len(self.chunks)} chunks: at most {_MAX_COUNT} fit")
        parts = []
        for chunk in self.chunks:
            items = b""
            if chunk.cname is not None:
                items = _text_item("CNAME", chunk.cname, prefix=bytes((SDES_CNAME,)))
            # The item list ends with a null octet, then nulls up to a 32-bit boundary (§6.5).
            parts.append(_SSRC.pack(_check("SSRC", chunk.ssrc, 32)) + items
                         + bytes(4 - len(items) % 4))  # fmt: skip
        return _packet(RTCP_SDES, len(self.chunks), b"".join(parts))


@dataclass(frozen=True, slots=True)
class Bye:
    """BYE (RFC 3550 §6.6): these sources are leaving, optionally saying why."""

    sources: tuple[int, ...]
    reason: str | None = None

    def encode(self) -> bytes:
        if len(self.sources) > _MAX_COUNT:
            raise ValueError(f"BYE with {len(self.sources)} sources: at most {_MAX_COUNT} fit")
        body = b"".join(_SSRC.pack(_check("SSRC", ssrc, 32)) for ssrc in self.sources)
        if self.reason is not None:
            reason = _text_item("BYE reason", self.reason)
            body += reason + bytes(-len(reason) % 4)
        return _packet(RTCP_BYE, len(self.sources), body)


RtcpPacket: TypeAlias = SenderReport | ReceiverReport | SourceDescription | Bye


def _check(name: str, value: int, bits: int) -> int:
    if not 0 <= value < 1 << bits:
        raise ValueError(f"RTCP {name} {value} is outside 0..{(1 << bits) - 1}")
    return value


def _check_report_count(reports: Sequence[ReportBlock]) -> None:
    # More sources would need extra RR packets in the compound (§6.4.1); we have one source.
    if len(reports) > _MAX_COUNT:
        raise ValueError(f"{len(reports)} report blocks: at most {_MAX_COUNT} fit in one packet")


def _text_item(name: str, text: str, prefix: bytes = b"") -> bytes:
    data = text.encode("utf-8")
    if len(data) > 255:
        raise ValueError(f"{name} of {len(data)} bytes: at most 255 fit (RFC 3550 §6.5)")
    return prefix + bytes((len(data),)) + data


def _packet(packet_type: int, count: int, body: bytes) -> bytes:
    # Every body built here is a multiple of 4 octets, so no padding bit is ever needed.
    return _HEADER.pack(RTCP_VERSION << 6 | count, packet_type, len(body) // 4) + body


# --- time -----------------------------------------------------------------------------------


def ntp_from_unix(t: float) -> int:
    """The 64-bit NTP timestamp (32.32 fixed point since 1900, RFC 3550 §4) of UNIX time ``t``.

    Wraps into NTP era 1 after 2036-02-07, as the 32-bit seconds field does.
    """
    seconds = math.floor(t)
    fraction = int((t - seconds) * 4294967296.0)
    return ((seconds + NTP_UNIX_OFFSET) << 32 | fraction) & 0xFFFFFFFFFFFFFFFF


def ntp_middle(ntp_timestamp: int) -> int:
    """The middle 32 bits of a 64-bit NTP timestamp: the compact form LSR uses (§6.4.1)."""
    return (ntp_timestamp >> 16) & 0xFFFFFFFF


def round_trip_time(block: ReportBlock, arrival_ntp_middle: int) -> float | None:
    """Round-trip time in seconds from a report block about our stream (RFC 3550 §6.4.1).

    Args:
        block: a report block the peer sent about our SSRC.
        arrival_ntp_middle: :func:`ntp_middle` of our wall clock when it arrived.

    Returns:
        ``A - LSR - DLSR`` in seconds, or None when the peer has not received an SR from us
        (LSR 0) or the result is negative (clocks or a bogus block).
    """
    if block.lsr == 0:
        return None
    delta = (arrival_ntp_middle - block.lsr - block.dlsr) & 0xFFFFFFFF
    if delta >= 0x80000000:
        return None
    return delta / 65536.0


def rtcp_interval(random_factor: float, base: float = 5.0) -> float:
    """The next report interval: ``base`` randomised over [0.5, 1.5) x base (RFC 3550 §6.3.1).

    A two-party call with 5% of 64 kbit/s for RTCP stays at the 5 s minimum (§6.2), so the
    bandwidth-scaled computation reduces to the randomisation that keeps senders from
    synchronising. The division by e - 3/2 of §6.3.1 compensates timer reconsideration, which
    we do not do, so it is left out.

    Args:
        random_factor: uniform in [0, 1), drawn by the caller.
        base: the deterministic interval in seconds.
    """
    if not 0.0 <= random_factor < 1.0:
        raise ValueError(f"RTCP random factor {random_factor} is outside [0, 1)")
    return base * (0.5 + random_factor)


# --- building -------------------------------------------------------------------------------


def build_sender_report(
    ssrc: int,
    ntp_timestamp: int,
    rtp_timestamp: int,
    packet_count: int,
    octet_count: int,
    reports: Sequence[ReportBlock] = (),
) -> bytes:
    """One SR (RFC 3550 §6.4.1).

    Args:
        ssrc: our SSRC.
        ntp_timestamp: the 64-bit NTP timestamp of now, :func:`ntp_from_unix` of the wall clock.
        rtp_timestamp: our media timestamp of the same instant.
        packet_count: packets sent so far (taken mod 2^32).
        octet_count: payload octets sent so far (taken mod 2^32).
        reports: report blocks about the sources we receive.
    """
    return SenderReport(
        ssrc, ntp_timestamp, rtp_timestamp, packet_count, octet_count, tuple(reports)
    ).encode()


def build_receiver_report(ssrc: int, reports: Sequence[ReportBlock] = ()) -> bytes:
    """One RR (RFC 3550 §6.4.2)."""
    return ReceiverReport(ssrc, tuple(reports)).encode()


def build_sdes(ssrc: int, cname: str) -> bytes:
    """One SDES packet carrying our CNAME (RFC 3550 §6.5.1), required in every compound."""
    return SourceDescription((SdesChunk(ssrc, cname),)).encode()


def build_bye(sources: Sequence[int], reason: str | None = None) -> bytes:
    """One BYE (RFC 3550 §6.6) for the sources that leave (ours)."""
    return Bye(tuple(sources), reason).encode()


def build_compound(*packets: bytes) -> bytes:
    """Stack encoded packets into one compound datagram (RFC 3550 §6.1).

    Raises:
        ValueError: no packets, the first is not an SR or RR, or a BYE is not last.
    """
    if not packets:
        raise ValueError("an RTCP compound packet needs at least one packet")
    if any(len(packet) < _HEADER.size for packet in packets):
        raise ValueError("an RTCP compound packet cannot hold a part shorter than 4 bytes")
    types = [packet[1] for packet in packets]
    if types[0] not in (RTCP_SR, RTCP_RR):
        raise ValueError(f"an RTCP compound packet starts with an SR or RR, not type {types[0]}")
    if RTCP_BYE in types[:-1]:
        raise ValueError("BYE must be the last packet of an RTCP compound packet")
    return b"".join(packets)


# --- parsing --------------------------------------------------------------------------------


def parse_rtcp(data: bytes) -> list[RtcpPacket]:
    """Parse a compound RTCP datagram (RFC 3550 §6.1, Appendix A.2).

    Returns:
        The SR, RR, SDES and BYE packets in order; other packet types are skipped.

    Raises:
        RtcpError: a packet shorter than its header or its length field, a version other than
            2, a bad padding count, trailing bytes, or a body too short for its count.
    """
    packets: list[RtcpPacket] = []
    offset = 0
    size = len(data)
    if size == 0:
        raise RtcpError("empty RTCP datagram")
    while offset < size:
        if size - offset < _HEADER.size:
            raise RtcpError(f"RTCP packet at offset {offset} is shorter than its 4-byte header")
        first, packet_type, length = _HEADER.unpack_from(data, offset)
        if first >> 6 != RTCP_VERSION:
            raise RtcpError(f"RTCP version {first >> 6} is not 2 (packet at offset {offset})")
        end = offset + 4 * (length + 1)
        if end > size:
            raise RtcpError(
                f"RTCP packet type {packet_type} at offset {offset}: length field says "
                f"{end - offset} bytes, only {size - offset} left"
            )
        body_end = end
        if first & 0x20:
            padding = data[end - 1]
            if padding == 0 or padding > 4 * length:
                raise RtcpError(
                    f"RTCP packet type {packet_type}: padding count {padding} does not fit in "
                    f"its {4 * length}-byte body"
                )
            body_end -= padding
        body = data[offset + 4 : body_end]
        count = first & 0x1F
        if packet_type == RTCP_SR:
            packets.append(_parse_sender_report(body, count))
        elif packet_type == RTCP_RR:
            packets.append(_parse_receiver_report(body, count))
        elif packet_type == RTCP_SDES:
            packets.append(_parse_sdes(body, count))
        elif packet_type == RTCP_BYE:
            packets.append(_parse_bye(body, count))
        offset = end
    return packets


def _parse_report_blocks(
    body: bytes, offset: int, count: int, kind: str
) -> tuple[ReportBlock, ...]:
    needed = offset + _REPORT_BLOCK.size * count
    if len(body) < needed:
        raise RtcpError(f"RTCP {kind} with {count} report blocks needs {needed} bytes of body, "
                        f"got {len(body)}")  # fmt: skip
    blocks = []
    for ssrc, loss, highest, jitter, lsr, dlsr in _REPORT_BLOCK.iter_unpack(body[offset:needed]):
        lost = loss & 0xFFFFFF
        if lost & 0x800000:
            lost -= 0x1000000  # 24-bit two's complement
        blocks.append(ReportBlock(ssrc, loss >> 24, lost, highest, jitter, lsr, dlsr))
    return tuple(blocks)


def _parse_sender_report(body: bytes, count: int) -> SenderReport:
    if len(body) < _SENDER_INFO.size:
        raise RtcpError(f"RTCP SR body of {len(body)} bytes is shorter than the 24-byte sender "
                        "info")  # fmt: skip
    ssrc, ntp, rtp_timestamp, packet_count, octet_count = _SENDER_INFO.unpack_from(body)
    reports = _parse_report_blocks(body, _SENDER_INFO.size, count, "SR")
    return SenderReport(ssrc, ntp, rtp_timestamp, packet_count, octet_count, reports)


def _parse_receiver_report(body: bytes, count: int) -> ReceiverReport:
    if len(body) < _SSRC.size:
        raise RtcpError(f"RTCP RR body of {len(body)} bytes has no room for the reporter SSRC")
    reports = _parse_report_blocks(body, _SSRC.size, count, "RR")
    return ReceiverReport(_SSRC.unpack_from(body)[0], reports)


def _parse_sdes(body: bytes, count: int) -> SourceDescription:
    chunks = []
    pos = 0
    size = len(body)
    for index in range(count):
        if pos + 4 > size:
            raise RtcpError(f"RTCP SDES chunk {index + 1} of {count} is missing its SSRC")
        ssrc = _SSRC.unpack_from(body, pos)[0]
        pos += 4
        cname: str | None = None
        while True:
            if pos >= size:
                raise RtcpError(f"RTCP SDES chunk {index + 1} is not terminated by a null item")
            item_type = body[pos]
            if item_type == SDES_END:
                pos = (pos + 4) & ~3  # the null octet, then padding to the 32-bit boundary
                break
            if pos + 2 > size or pos + 2 + body[pos + 1] > size:
                raise RtcpError(f"RTCP SDES item type {item_type} in chunk {index + 1} is "
                                "truncated")  # fmt: skip
            length = body[pos + 1]
            if item_type == SDES_CNAME and cname is None:
                cname = body[pos + 2 : pos + 2 + length].decode("utf-8", "replace")
            pos += 2 + length
        chunks.append(SdesChunk(ssrc, cname))
    return SourceDescription(tuple(chunks))


def _parse_bye(body: bytes, count: int) -> Bye:
    needed = 4 * count
    if len(body) < needed:
        raise RtcpError(f"RTCP BYE with {count} sources needs {needed} bytes of body, "
                        f"got {len(body)}")  # fmt: skip
    sources = tuple(_SSRC.unpack_from(body, 4 * index)[0] for index in range(count))
    reason: str | None = None
    if len(body) > needed:
        length = body[needed]
        if needed + 1 + length > len(body):
            raise RtcpError(f"RTCP BYE reason of {length} bytes runs past the packet end")
        reason = body[needed + 1 : needed + 1 + length].decode("utf-8", "replace")
    return Bye(sources, reason)
