"""DTMF digits: RFC 4733 telephone-event packets in RTP, and SIP INFO bodies.

Theory of operation
===================

RFC 4733 §2.3 sends a key press as 4-byte payloads: event code (0-9, * = 10, # = 11, A-D =
12-15, §3.2), an end bit, a 6-bit volume (-dBm0) and a 16-bit duration in RTP clock ticks. All
packets of one event carry the RTP timestamp of the event's start, which is therefore its
identity; the first has the marker bit (§2.5.1.2); the sender repeats an update every packet
interval with the duration so far, and ends with the final duration and the end bit, sent three
times because there is no retransmission (§2.5.1.4).

:class:`DtmfReceiver` reports each digit once, at its first end packet, and ignores every later
packet of that event (redundant ends, stragglers, duplicates). Updates can be reordered: the
longest duration seen wins. When all end packets are lost the digit is reported as soon as a
packet of another event arrives (§2.5.2.2: a new timestamp ends the previous event), with the
longest duration seen; :meth:`DtmfReceiver.flush` reports it at the end of a call. Events that
are not digits (16 and up, §3.2 tones like flash) are ignored. Long events whose duration would
overflow 16 bits (§2.5.1.3, above 8 s at 8 kHz) are not supported by the sender.

:func:`parse_info_dtmf` reads the two SIP INFO conventions that phones use instead:
``application/dtmf-relay`` ("Signal=5" and "Duration=160" lines, a de facto Cisco format) and
``application/dtmf`` (the body is the key or its event code). These bodies come from the
network: anything malformed is dropped (``None``), logged at debug level.
"""

from __future__ import annotations

import logging
import struct
from collections import deque
from dataclasses import dataclass

__all__ = [
    "DIGIT_FOR_EVENT",
    "EVENT_FOR_DIGIT",
    "INFO_DEFAULT_DURATION_MS",
    "DtmfDigit",
    "DtmfReceiver",
    "DtmfSender",
    "check_digits",
    "encode_event",
    "parse_event",
    "parse_info_dtmf",
]

logger = logging.getLogger(__name__)

EVENT_FOR_DIGIT: dict[str, int] = {digit: code for code, digit in enumerate("0123456789*#ABCD")}
DIGIT_FOR_EVENT: dict[int, str] = {code: digit for digit, code in EVENT_FOR_DIGIT.items()}


def check_digits(digits: str) -> None:
    """ValueError naming the first character that is not a DTMF digit (0-9, *, #, A-D)."""
    for digit in digits:
        if digit.upper() not in EVENT_FOR_DIGIT:
            raise ValueError(f"{digit!r} is not a DTMF digit (0-9, *, #, A-D)")


_EVENT = struct.Struct("!BBH")
_END_BIT = 0x80
_END_REPEATS = 3
INFO_DEFAULT_DURATION_MS = 250
"""Duration reported for a SIP INFO digit that does not say how long it was."""


@dataclass(frozen=True, slots=True)
class DtmfDigit:
    """A key pressed by the remote party; ``source`` is "rtp" (RFC 4733) or "info" (SIP INFO)."""

    digit: str
    duration_ms: int
    source: str


def encode_event(event: int, end: bool, volume: int, duration: int) -> bytes:
    """The 4-byte telephone-event payload (RFC 4733 §2.3)."""
    if not 0 <= event <= 255:
        raise ValueError(f"telephone-event code {event} is not in 0..255")
    if not 0 <= volume <= 63:
        raise ValueError(f"telephone-event volume {volume} is not in 0..63")
    if not 0 <= duration <= 0xFFFF:
        raise ValueError(f"telephone-event duration {duration} is not in 0..65535")
    return _EVENT.pack(event, (_END_BIT if end else 0) | volume, duration)


def parse_event(payload: bytes) -> tuple[int, bool, int, int]:
    """(event, end, volume, duration) from a telephone-event payload (RFC 4733 §2.3)."""
    if len(payload) < _EVENT.size:
        raise ValueError(f"telephone-event payload has {len(payload)} bytes, needs 4")
    event, flags, duration = _EVENT.unpack_from(payload)
    return event, bool(flags & _END_BIT), flags & 0x3F, duration


class DtmfReceiver:
    """Turns the telephone-event packets of one RTP stream into digits, each reported once."""

    __slots__ = ("_current", "_duration", "_event", "_finished", "clock_rate")

    def __init__(self, clock_rate: int = 8000) -> None:
        if clock_rate <= 0:
            raise ValueError(f"telephone-event clock rate {clock_rate} is not positive")
        self.clock_rate = clock_rate
        self._current: int | None = None  # timestamp of the event in progress (no end seen yet)
        self._event = 0
        self._duration = 0
        self._finished: deque[int] = deque(maxlen=4)  # timestamps of events already reported

    def feed(self, timestamp: int, payload: bytes) -> DtmfDigit | None:
        """Take one telephone-event payload; the digit it completes, if any.

        A payload shorter than 4 bytes raises ``ValueError`` (see :func:`parse_event`).
        """
        event, end, _volume, duration = parse_event(payload)
        if event not in DIGIT_FOR_EVENT or timestamp in self._finished:
            return None
        if timestamp != self._current:
            previous = self.flush()
            self._current, self._event, self._duration = timestamp, event, duration
            if previous is not None:
                # This packet's end bit, if set, is repeated (§2.5.1.4): a copy reports it.
                logger.debug("x a telephone-event lost its end packets")  # the key: never logged
                return previous
        elif event == self._event:
            self._duration = max(self._duration, duration)
        else:
            return None
        return self.flush() if end else None

    def flush(self) -> DtmfDigit | None:
        """Report the event in progress, whose end packets may all have been lost."""
        if self._current is None:
            return None
        self._finished.append(self._current)
        self._current = None
        return DtmfDigit(
            DIGIT_FOR_EVENT[self._event], self._duration * 1000 // self.clock_rate, "rtp"
        )


class DtmfSender:
    """Builds the telephone-event payloads of one digit (RFC 4733 §2.5.1)."""

    __slots__ = ("clock_rate", "frame_ticks")

    def __init__(self, clock_rate: int = 8000, frame_ticks: int = 160) -> None:
        if clock_rate <= 0 or frame_ticks <= 0:
            raise ValueError(f"bad telephone-event clock {clock_rate} / interval {frame_ticks}")
        self.clock_rate = clock_rate
        self.frame_ticks = frame_ticks

    def packets(
        self, digit: str, duration_ms: int = 160, volume: int = 10
    ) -> list[tuple[bytes, bool]]:
        """(payload, marker) for each packet interval of ``digit``, then the end packet 3 times.

        Updates carry the duration so far (one ``frame_ticks`` more each); every packet goes out
        with the RTP timestamp of the event's start, which the caller supplies.
        """
        event = EVENT_FOR_DIGIT.get(digit.upper()) if len(digit) == 1 else None
        if event is None:
            raise ValueError(f"{digit!r} is not a DTMF digit (0-9, *, #, A-D)")
        total = duration_ms * self.clock_rate // 1000
        if not 0 < total <= 0xFFFF:
            raise ValueError(f"DTMF duration {duration_ms} ms does not fit one telephone-event")
        packets = [
            (encode_event(event, False, volume, ticks), False)
            for ticks in range(self.frame_ticks, total, self.frame_ticks)
        ]
        packets += [(encode_event(event, True, volume, total), False)] * _END_REPEATS
        packets[0] = (packets[0][0], True)
        return packets


def _digit(value: str) -> str | None:
    """The key named by "5", "*", "a", or by its event code "10"."""
    value = value.strip().upper()
    if value in EVENT_FOR_DIGIT:
        return value
    if value.isascii() and value.isdigit() and len(value) <= 2:
        return DIGIT_FOR_EVENT.get(int(value))
    return None


def parse_info_dtmf(content_type: str, body: bytes) -> DtmfDigit | None:
    """The digit in a SIP INFO body, or None if it is not a DTMF type or is malformed."""
    kind = content_type.split(";", 1)[0].strip().lower()
    if kind not in ("application/dtmf-relay", "application/dtmf"):
        return None
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        logger.debug("x INFO %s body is not text", kind)
        return None
    fields = {"signal": text} if kind == "application/dtmf" else {}
    if kind == "application/dtmf-relay":
        for line in text.splitlines():
            key, sep, value = line.partition("=")
            if sep:
                fields[key.strip().lower()] = value.strip()
    digit = _digit(fields.get("signal", ""))
    duration = fields.get("duration", str(INFO_DEFAULT_DURATION_MS))
    if digit is None or not (duration.isascii() and duration.isdigit() and len(duration) < 10):
        logger.debug("x INFO %s body not understood (%d bytes)", kind, len(body))  # no digits
        return None
    return DtmfDigit(digit, int(duration), "info")
