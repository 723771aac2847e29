"""RTP data packets: parsing what arrives, building what we send (RFC 3550 §5).

Theory of operation
===================

Every RTP packet starts with the 12-octet fixed header of RFC 3550 §5.1::

     0                   1                   2                   3
     0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |V=2|P|X|  CC   |M|     PT      |       sequence number         |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |                           timestamp                           |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |           synchronization source (SSRC) identifier            |
    +=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+
    |            contributing source (CSRC) identifiers             |
    |                    (CC words, mixers only)                    |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+

followed, when X is set, by one header extension (§5.3.1: a 16-bit profile-defined value, a
16-bit length in 32-bit words not counting its own 4 octets, then that many words) and, when P
is set, by padding at the very end whose last octet counts the padding octets including itself
(§5.1). :func:`parse_rtp` skips CSRCs and the extension (we are an end point, nothing here
mixes) and returns the payload without padding. Anything that does not add up raises
:class:`RtpHeaderError` with the reason; the runtime logs it with ``x`` and drops the datagram.

:class:`RtpSender` owns the sending side of one stream: the SSRC, the sequence number (+1 per
packet, modulo 2^16, §5.1) and the media timestamp (moved by :meth:`RtpSender.advance`,
modulo 2^32). The random initial values are handed in (§5.1: "SHOULD be random"); nothing here
draws random numbers. The per-packet path packs into one preallocated 12-octet header.
"""

from __future__ import annotations

import struct
from typing import NamedTuple

RTP_VERSION = 2
RTP_HEADER = struct.Struct("!BBHII")
"""Fixed header (RFC 3550 §5.1): V/P/X/CC, M/PT, sequence number, timestamp, SSRC."""
RTP_HEADER_SIZE = RTP_HEADER.size
_EXTENSION_HEADER = struct.Struct("!HH")
"""Header extension preamble (RFC 3550 §5.3.1): profile-defined 16 bits, length in words."""

_SEQUENCE_MOD = 1 << 16
_TIMESTAMP_MASK = 0xFFFFFFFF


class RtpHeaderError(ValueError):
    """A datagram that is not a valid RTP packet (RFC 3550 §5.1, §5.3.1, Appendix A.1)."""


class RtpPacket(NamedTuple):
    """One received RTP packet, reduced to what an end point uses (RFC 3550 §5.1)."""

    payload_type: int
    marker: bool
    sequence: int
    timestamp: int
    ssrc: int
    payload: bytes


def parse_rtp(data: bytes) -> RtpPacket:
    """Parse one RTP datagram.

    Args:
        data: the whole UDP payload.

    Returns:
        The fixed-header fields and the payload, CSRCs, extension and padding removed.

    Raises:
        RtpHeaderError: version other than 2, a datagram shorter than its fixed header, CSRC
            list or header extension, or a padding count of zero or larger than what follows
            the headers (RFC 3550 §5.1, §5.3.1).
    """
    size = len(data)
    if size < RTP_HEADER_SIZE:
        raise RtpHeaderError(
            f"RTP packet of {size} bytes is shorter than the {RTP_HEADER_SIZE}-byte fixed header"
        )
    first, second, sequence, timestamp, ssrc = RTP_HEADER.unpack_from(data)
    if first >> 6 != RTP_VERSION:
        raise RtpHeaderError(f"RTP version {first >> 6} is not 2")
    offset = RTP_HEADER_SIZE + 4 * (first & 0x0F)
    if offset > size:
        raise RtpHeaderError(
            f"RTP packet has truncated CSRC list: {first & 0x0F} CSRCs need {offset} bytes, "
            f"got {size}"
        )
    if first & 0x10:
        if offset + 4 > size:
            raise RtpHeaderError(
                f"RTP packet has truncated header extension: no room for its 4-byte preamble "
                f"at offset {offset} of {size}"
            )
        words = _EXTENSION_HEADER.unpack_from(data, offset)[1]
        offset += 4 + 4 * words
        if offset > size:
            raise RtpHeaderError(
                f"RTP header extension of {words} words runs past the end: needs {offset} "
                f"bytes, got {size}"
            )
    end = size
    if first & 0x20:
        padding = data[-1]
        if padding == 0:
            raise RtpHeaderError("RTP padding bit set but the padding count is 0")
        if padding > size - offset:
            raise RtpHeaderError(
                f"RTP padding count {padding} exceeds the {size - offset} bytes after the headers"
            )
        end -= padding
    return RtpPacket(second & 0x7F, bool(second & 0x80), sequence, timestamp, ssrc,
                     data[offset:end])  # fmt: skip


def _check_field(name: str, value: int, bits: int) -> int:
    if not 0 <= value < 1 << bits:
        raise ValueError(f"RTP {name} {value} is outside 0..{(1 << bits) - 1}")
    return value


class RtpSender:
    """The sending half of one RTP stream: SSRC, sequence number and timestamp (RFC 3550 §5.1).

    Args:
        ssrc: our synchronisation source, chosen at random by the caller (§8.1).
        payload_type: the payload type of the negotiated codec (what the remote side expects).
        sequence: the random initial sequence number.
        timestamp: the random initial media timestamp.

    One call of :meth:`packet` per 20 ms frame, then :meth:`advance` by the frame's clock ticks.
    RFC 4733 telephone-events pass ``payload_type`` and ``timestamp`` (the event start) for the
    packets of one event while the media clock goes on advancing.
    """

    __slots__ = ("_header", "_octets_sent", "_packets_sent", "_payload_type", "_sequence",
                 "_ssrc", "_timestamp")  # fmt: skip

    def __init__(self, ssrc: int, payload_type: int, sequence: int, timestamp: int) -> None:
        self._ssrc = _check_field("SSRC", ssrc, 32)
        self._payload_type = _check_field("payload type", payload_type, 7)
        self._sequence = _check_field("sequence number", sequence, 16)
        self._timestamp = _check_field("timestamp", timestamp, 32)
        self._header = bytearray(RTP_HEADER_SIZE)
        self._packets_sent = 0
        self._octets_sent = 0

    @property
    def ssrc(self) -> int:
        return self._ssrc

    @property
    def payload_type(self) -> int:
        """The default payload type; settable when a re-INVITE changes the codec."""
        return self._payload_type

    @payload_type.setter
    def payload_type(self, value: int) -> None:
        self._payload_type = _check_field("payload type", value, 7)

    @property
    def sequence(self) -> int:
        """The sequence number the next packet will carry."""
        return self._sequence

    @property
    def timestamp(self) -> int:
        """The current media timestamp (the next frame's, once :meth:`advance` was called)."""
        return self._timestamp

    @property
    def packets_sent(self) -> int:
        """Packets built so far (RTCP SR "sender's packet count", §6.4.1, before mod 2^32)."""
        return self._packets_sent

    @property
    def octets_sent(self) -> int:
        """Payload octets built so far, headers and padding excluded (SR "octet count")."""
        return self._octets_sent

    def packet(self, payload: bytes, marker: bool = False, payload_type: int | None = None,
               timestamp: int | None = None) -> bytes:  # fmt: skip
        """Build the next packet and step the sequence number (mod 2^16).

        Args:
            payload: the encoded frame (or a 4-octet RFC 4733 event).
            marker: the M bit: first packet of a talkspurt or of a telephone-event (RFC 3551
                §4.1, RFC 4733 §2.5.1.3).
            payload_type: overrides the default for this packet only (telephone-event).
            timestamp: overrides the current timestamp for this packet only (every packet of a
                telephone-event carries the event's start, RFC 4733 §2.5.1.2); taken mod 2^32.

        Raises:
            ValueError: an override payload type outside 0..127.
        """
        if payload_type is None:
            payload_type = self._payload_type
        elif not 0 <= payload_type <= 0x7F:
            raise ValueError(f"RTP payload type {payload_type} is outside 0..127")
        if timestamp is None:
            timestamp = self._timestamp
        header = self._header
        RTP_HEADER.pack_into(header, 0, 0x80, payload_type | 0x80 if marker else payload_type,
                             self._sequence, timestamp & _TIMESTAMP_MASK, self._ssrc)  # fmt: skip
        self._sequence = (self._sequence + 1) % _SEQUENCE_MOD
        self._packets_sent += 1
        self._octets_sent += len(payload)
        return bytes(header) + payload

    def next_packet(self, payload: bytes, marker: bool, ticks: int) -> bytes:
        """The per-frame path: :meth:`packet` with the default payload type and the current
        timestamp, then :meth:`advance` by ``ticks``, in one call."""
        header = self._header
        sequence = self._sequence
        timestamp = self._timestamp
        RTP_HEADER.pack_into(header, 0, 0x80, self._payload_type | 0x80 if marker
                             else self._payload_type, sequence, timestamp, self._ssrc)  # fmt: skip
        self._sequence = (sequence + 1) % _SEQUENCE_MOD
        self._timestamp = (timestamp + ticks) & _TIMESTAMP_MASK
        self._packets_sent += 1
        self._octets_sent += len(payload)
        return bytes(header) + payload

    def advance(self, ticks: int) -> None:
        """Move the media timestamp by ``ticks`` clock units (mod 2^32), e.g. 160 per 20 ms."""
        self._timestamp = (self._timestamp + ticks) & _TIMESTAMP_MASK
