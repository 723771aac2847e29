"""Reception statistics of one RTP source, as RTCP reports them (RFC 3550 §6.4.1, Appendix A).

Theory of operation
===================

:class:`ReceiveStats` is fed every arriving packet of one SSRC with its arrival time ``now``
(monotonic seconds, handed in) and keeps:

* **Sequence validation** (Appendix A.1). The 16-bit sequence number is extended with a cycle
  count. Relative to the highest number seen so far, a packet ``udelta`` ahead (mod 2^16) is
    - ``0 < udelta < MAX_DROPOUT`` (3000): in order, possibly after a gap; a smaller number
      than the highest means the sequence wrapped and one cycle is added;
    - ``udelta`` within ``MAX_MISORDER`` (100) behind: late (reordered) or a duplicate;
    - anything else: a big jump. It is not counted, but remembered: if the next packet is the
      one right after it, the sender restarted its numbering, and the statistics start over
      from that packet (``bad_seq`` resync). Otherwise it was a stray packet.
  Probation is ``MIN_SEQUENTIAL = 1``: the first packet is accepted and sets the base.
  A bit mask over the last 128 extended numbers tells duplicates from late packets, so
  duplicates are counted apart and not as received (A.3 would count them, letting the loss go
  negative). A late packet older than the first one lowers the base, so that ``expected``
  covers it and the cumulative loss never goes negative.
* **Loss** (Appendix A.3): ``expected = extended_max - base + 1``, ``lost = expected -
  received``; the report clamps it to 24 bits signed. The fraction lost covers the interval
  since the previous report: each :meth:`ReceiveStats.report_block` closes an interval.
* **Interarrival jitter** (Appendix A.8, §6.4.1): for consecutive packets i-1, i,
  ``D = (R_i - R_{i-1}) - (S_i - S_{i-1})`` with arrival times ``R`` converted to timestamp
  units and media timestamps ``S`` (their difference taken mod 2^32, signed, so timestamp wrap
  is harmless), then ``J += (|D| - J) / 16``. ``J`` is kept as a float; the report carries it
  truncated to an integer.
"""

from __future__ import annotations

from intercom.media.rtcp import ReportBlock

MAX_DROPOUT = 3000
MAX_MISORDER = 100
MIN_SEQUENTIAL = 1
RTP_SEQ_MOD = 1 << 16
_WINDOW_BITS = 128
"""Duplicate detection window; it must exceed MAX_MISORDER (the largest accepted lateness)."""
_WINDOW_MASK = (1 << _WINDOW_BITS) - 1
_NO_BAD_SEQ = RTP_SEQ_MOD + 1
_LOST_MAX = 0x7FFFFF
_LOST_MIN = -0x800000


class ReceiveStats:
    """RFC 3550 Appendix A.1/A.3/A.8 statistics for one received RTP stream.

    Args:
        clock_rate: the RTP clock of the stream's payload (8000 for PCMU, PCMA and G.722).
    """

    __slots__ = ("_bad_seq", "_base", "_clock_rate", "_duplicates", "_expected_prior",
                 "_highest", "_jitter", "_last_arrival", "_last_timestamp", "_received",
                 "_received_prior", "_seen", "_started")  # fmt: skip

    def __init__(self, clock_rate: int) -> None:
        if clock_rate <= 0:
            raise ValueError(f"RTP clock rate {clock_rate} must be positive")
        self._clock_rate = clock_rate
        self._started = False
        self._base = 0
        self._highest = 0
        """Extended highest sequence number: cycles * 2^16 + max_seq."""
        self._bad_seq = _NO_BAD_SEQ
        self._received = 0
        self._duplicates = 0
        self._seen = 0
        """Bit i set: extended number ``_highest - i`` arrived."""
        self._expected_prior = 0
        self._received_prior = 0
        self._jitter = 0.0
        self._last_arrival: float | None = None
        self._last_timestamp = 0

    # --- A.1 --------------------------------------------------------------------------------

    def _init_seq(self, sequence: int) -> None:
        self._started = True
        self._base = sequence
        self._highest = sequence
        self._bad_seq = _NO_BAD_SEQ
        self._received = 0
        self._seen = 1
        self._expected_prior = 0
        self._received_prior = 0

    def update(self, sequence: int, timestamp: int | None, now: float) -> bool:
        """Account for one arriving packet.

        Args:
            sequence: its 16-bit RTP sequence number.
            timestamp: its 32-bit media timestamp; None for a packet of the same stream whose
                timestamp does not follow the media clock (an RFC 4733 event keeps its start
                time), which counts for loss but not for jitter.
            now: its arrival time, monotonic seconds.

        Returns:
            True when the packet was counted as received; False for a duplicate or for the
            first packet after a big jump (RFC 3550 A.1 ``update_seq`` returning 0).
        """
        if not self._started:
            self._init_seq(sequence)
        else:
            udelta = (sequence - self._highest) % RTP_SEQ_MOD
            if udelta == 0:
                self._duplicates += 1
                return False
            if udelta < MAX_DROPOUT:
                # In order, with a gap of udelta - 1 packets; the extended number carries any
                # wrap past 65535 into the cycle count (A.1 "cycles += RTP_SEQ_MOD").
                self._highest += udelta
                self._seen = (self._seen << udelta | 1) & _WINDOW_MASK
            elif udelta <= RTP_SEQ_MOD - MAX_MISORDER:
                if sequence != self._bad_seq:
                    self._bad_seq = (sequence + 1) % RTP_SEQ_MOD
                    return False
                # Two sequential packets after a big jump: the source restarted (A.1).
                self._init_seq(sequence)
                self._last_arrival = None  # its timestamps most likely jumped too
            else:
                behind = RTP_SEQ_MOD - udelta
                bit = 1 << behind
                if self._seen & bit:
                    self._duplicates += 1
                    return False
                self._seen |= bit
                self._base = min(self._base, self._highest - behind)
        self._received += 1
        if timestamp is None:
            return True
        # A.8, inline (once per packet): the transit difference of this packet and the last.
        last_arrival = self._last_arrival
        self._last_arrival = now
        last_timestamp, self._last_timestamp = self._last_timestamp, timestamp
        if last_arrival is not None:
            media = (timestamp - last_timestamp + 0x80000000) % 0x100000000 - 0x80000000
            d = abs((now - last_arrival) * self._clock_rate - media)
            self._jitter += (d - self._jitter) / 16.0
        return True

    # --- A.3 --------------------------------------------------------------------------------

    @property
    def received(self) -> int:
        """Packets received since the start (or the last resync), duplicates excluded."""
        return self._received

    @property
    def duplicates(self) -> int:
        """Packets that arrived again (within the last 128 sequence numbers)."""
        return self._duplicates

    @property
    def expected(self) -> int:
        """Packets the sender sent from the first to the highest (A.3), 0 before any arrived."""
        return self._highest - self._base + 1 if self._started else 0

    @property
    def lost(self) -> int:
        """Cumulative packets lost (A.3), never negative."""
        return max(0, self.expected - self._received)

    @property
    def highest_sequence(self) -> int:
        """The extended highest sequence number received (cycles in the upper 16 bits)."""
        return self._highest

    @property
    def jitter(self) -> float:
        """Interarrival jitter in timestamp units (A.8)."""
        return self._jitter

    @property
    def jitter_ms(self) -> float:
        """Interarrival jitter in milliseconds."""
        return self._jitter * 1000.0 / self._clock_rate

    def report_block(self, ssrc: int, now: float, last_sr_ntp_middle: int = 0,
                     last_sr_arrival: float | None = None) -> ReportBlock:  # fmt: skip
        """The report block about this source for our next SR/RR (RFC 3550 §6.4.1, A.3).

        Closes the current loss interval: call it once per report sent.

        Args:
            ssrc: the SSRC of the source these statistics describe.
            now: monotonic seconds, the time the report is sent.
            last_sr_ntp_middle: ``ntp_middle`` of the last SR received from the source, 0 if
                none (LSR).
            last_sr_arrival: monotonic arrival time of that SR, None if none; DLSR is the
                delay since then in units of 1/65536 s.
        """
        expected = self.expected
        expected_interval = expected - self._expected_prior
        received_interval = self._received - self._received_prior
        self._expected_prior = expected
        self._received_prior = self._received
        lost_interval = expected_interval - received_interval
        if expected_interval <= 0 or lost_interval <= 0:
            fraction = 0
        else:
            fraction = min((lost_interval << 8) // expected_interval, 255)
        lost = min(max(expected - self._received, _LOST_MIN), _LOST_MAX)
        if last_sr_arrival is None or last_sr_ntp_middle == 0:
            lsr = dlsr = 0
        else:
            lsr = last_sr_ntp_middle & 0xFFFFFFFF
            dlsr = min(max(0, int((now - last_sr_arrival) * 65536.0)), 0xFFFFFFFF)
        return ReportBlock(
            ssrc=ssrc,
            fraction_lost=fraction,
            packets_lost=lost,
            highest_sequence=self._highest & 0xFFFFFFFF,
            jitter=min(int(self._jitter), 0xFFFFFFFF),
            lsr=lsr,
            dlsr=dlsr,
        )
