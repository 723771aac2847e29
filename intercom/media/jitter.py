"""Adaptive jitter buffer for one received audio stream (RFC 3550 §6.4.1, Appendix A.8).

Theory of operation
===================

Packets go in with :meth:`JitterBuffer.put` as they arrive (``now`` is the arrival time in
monotonic seconds); the speaker's playout clock calls :meth:`JitterBuffer.get` once per frame
(20 ms) and decodes what it returns, or conceals when it returns ``None``. The buffer has no
clock of its own, so a test can script arrivals and ticks exactly.

Positions. Sequence numbers (16 bits) and timestamps (32 bits) are *extended* to unbounded
integers: each new value is taken as the one nearest to the highest seen so far, so a wrap
(65535 -> 0, 2**32 - 160 -> 0) just keeps counting. The playout position is an extended RTP
timestamp; every ``get`` that plays (or skips) a frame advances it by ``frame_ticks``. Frames
are stored in a dict keyed by their extended timestamp rounded to that frame grid, holding the
extended sequence number and the payload; it never holds more than :attr:`JitterBuffer.capacity`
frames.

Anchoring and prefetch. The first packet (and every re-anchor) sets the playout position to its
timestamp and the start time to ``arrival + target delay``: ``get`` returns ``None`` until then,
after which the frame plays exactly ``target delay`` after it arrived (rounded up to the next
tick). A first ``get`` a frame or more after the start time (the packets waited while the CPU
was busy) skips the frames that would put the playout above the target delay (``dropped``).
A packet that arrives during prefetch with an earlier timestamp (the first two packets
reordered) moves the anchor back to it, so it is not counted late. Re-anchoring happens on:

* an SSRC change (counted in ``ssrc_changes``): everything but the counters and the target
  delay (the network path is likely the same) is reset; buffered frames of the old source are
  discarded (counted in ``dropped``);
* a marker bit (start of a talkspurt, RFC 3551 §4.1) while the buffer is empty: the playout
  restarts at the target delay after the silence, whatever the sender's clock did during it;
* a timestamp more than one second (or twice the buffer's span, if larger) ahead of or behind
  the playout position, marker or not: a restarted sender. The sequence space is reset too;
* the tenth late packet in a row (200 ms of stream, no packet in time between): the sender's
  timestamps moved back by less than a second without a marker, and waiting would drop
  everything. The late packets before it stay counted as late.

Packets from the previous SSRC that arrive within ``max_delay`` (plus a frame) of the switch
are reordered stragglers: received and late, not a switch back. Later ones are a switch back.

Delay. For every packet the transit time ``arrival - timestamp / clock_rate`` is computed
(its constant offset is meaningless, only differences matter):

* ``jitter_ms`` is the RFC 3550 A.8 estimate ``J += (|D| - J) / 16`` over successive arrivals,
  reported as RTCP would (it does not steer the buffer);
* the last 500 transits (10 s) are kept ranked. The smallest is the *base*: the fastest recent
  packet, so the current playout delay is ``tick time - position / clock_rate - base``, how
  long the fastest packets wait in the buffer. A packet whose transit exceeds the base by more
  than that is late. The 99th percentile minus the base is the *spread* of the delays (in a
  window of up to 101 packets, the second largest: one outlier alone does not count).

Target. ``target = clamp(spread + half a frame, min_delay, max_delay)``: the delay that lets 99%
of recent packets arrive in time. It follows the estimate up at once and down slowly (2.5 ms per
second of packets, after the window has forgotten the jitter). A late packet raises it by one
frame straight away (up to ``max_delay``). The playout delay follows the target:

* grow: when the delay is more than half a frame below the target, ``get`` returns ``None``
  without advancing (one gap for the caller to conceal) instead of stalling or playing late;
* shrink: when the delay stays at least one frame above the target for 50 ticks in a row (1 s),
  the frame after the one returned is skipped (counted in ``dropped`` if it was buffered).

Accounting, decided so that every sequence number ends in exactly one bin:

* ``received``: every packet but duplicates, late ones included;
* ``duplicates``: a sequence number already received (buffered, played, late or dropped) within
  the last 512, or a second packet for a frame slot that is already buffered;
* ``late``: arrived after its frame's playout time: discarded;
* ``lost``: missing when a later packet was played and not arrived since. It is counted when
  the next packet plays (by sequence gaps, so silence suppression is never loss); a missing
  packet that turns up later moves from ``lost`` to ``late``. Losses right before a re-anchor
  that resets the sequence space, or at the end of the stream, are not counted;
* ``dropped``: received but discarded unplayed: overflow (the oldest frame goes, and the
  playout skips to the next one), shrink, flushes on a re-anchor.

So, between the first and last frames played, ``played + lost + late + dropped`` covers every
sequence number, and ``received == played + late + dropped + depth``.
"""

from __future__ import annotations

import bisect
import logging
import math
from collections import deque

__all__ = ["JitterBuffer"]

logger = logging.getLogger(__name__)

WINDOW = 500
"""Packets (10 s) over which the transit times are ranked."""
QUANTILE = 0.99
"""Share of the window's packets the target delay lets arrive in time."""
TARGET_DECAY_PER_S = 0.0025
"""How fast the target delay comes down (seconds per second of packets)."""
SHRINK_AFTER = 50
"""Consecutive ticks with the delay a frame above target before one frame is skipped."""
SEEN_WINDOW = 512
"""Sequence numbers remembered behind the highest one (duplicates, loss accounting)."""
_SEEN_MASK = (1 << SEEN_WINDOW) - 1
EXTRA_FRAMES = 5
"""Capacity above ``max_delay`` in frames."""
MAX_JUMP_S = 1.0
"""A timestamp this far from the playout position is a restarted sender."""
LATE_RESYNC = 10
"""Consecutive late packets that re-anchor the playout on the last of them."""
_EPS = 1e-6


class JitterBuffer:
    """Reorders, times and adapts one RTP audio stream; see the module docstring."""

    __slots__ = (
        "_clock_rate",
        "_excess",
        "_frame_s",
        "_frame_ticks",
        "_frames",
        "_half_frame_s",
        "_jitter",
        "_jump_ticks",
        "_last_played",
        "_last_transit",
        "_late_run",
        "_max_delay",
        "_max_seq",
        "_max_ts",
        "_min_delay",
        "_played_from",
        "_playout",
        "_previous_ssrc",
        "_seen",
        "_sorted_transits",
        "_ssrc",
        "_start_at",
        "_started",
        "_straggler_until",
        "_target",
        "_target_decay",
        "_transits",
        "capacity",
        "dropped",
        "duplicates",
        "late",
        "lost",
        "received",
        "ssrc_changes",
    )

    def __init__(
        self,
        clock_rate: int = 8000,
        frame_ticks: int = 160,
        min_delay_ms: int = 40,
        max_delay_ms: int = 300,
    ) -> None:
        if clock_rate <= 0:
            raise ValueError(f"clock_rate must be positive, not {clock_rate}")
        if frame_ticks <= 0:
            raise ValueError(f"frame_ticks must be positive, not {frame_ticks}")
        if min_delay_ms < 0 or max_delay_ms < min_delay_ms:
            raise ValueError(
                f"need 0 <= min_delay_ms <= max_delay_ms, not {min_delay_ms} and {max_delay_ms}"
            )
        self._clock_rate = clock_rate
        self._frame_ticks = frame_ticks
        self._frame_s = frame_ticks / clock_rate
        self._half_frame_s = self._frame_s / 2
        self._min_delay = min_delay_ms / 1000
        self._max_delay = max_delay_ms / 1000
        self._target_decay = TARGET_DECAY_PER_S * self._frame_s
        self.capacity = math.ceil(self._max_delay / self._frame_s) + EXTRA_FRAMES
        """Most frames ever buffered."""
        self._jump_ticks = max(round(MAX_JUMP_S * clock_rate), 2 * self.capacity * frame_ticks)

        self.received = 0
        self.duplicates = 0
        self.late = 0
        self.lost = 0
        self.dropped = 0
        self.ssrc_changes = 0

        self._frames: dict[int, tuple[int, bytes]] = {}
        self._ssrc: int | None = None
        self._previous_ssrc: int | None = None
        self._straggler_until = 0.0  # packets of _previous_ssrc before this are stragglers
        self._late_run = 0
        self._max_seq = 0  # highest extended sequence number
        self._seen = 0  # bit i: sequence number _max_seq - i was received
        self._max_ts = 0  # highest extended timestamp
        self._last_played: int | None = None  # extended sequence number of the last frame played
        self._played_from: int | None = None  # ... of the first one in this sequence space
        self._playout = 0  # extended timestamp of the next frame to play
        self._start_at = 0.0  # prefetch: the first tick at or after this plays
        self._started = False
        self._target = self._min_delay
        self._jitter = 0.0
        self._last_transit: float | None = None
        self._transits: deque[float] = deque()  # the window, in arrival order
        self._sorted_transits: list[float] = []  # the same, ascending
        self._excess = 0

    @property
    def target_delay_ms(self) -> float:
        """The playout delay the buffer aims at, above the fastest recent packet."""
        return self._target * 1000

    @property
    def jitter_ms(self) -> float:
        """RFC 3550 A.8 interarrival jitter estimate."""
        return self._jitter * 1000

    @property
    def depth(self) -> int:
        """Frames buffered now."""
        return len(self._frames)

    def put(
        self, sequence: int, timestamp: int, ssrc: int, marker: bool, payload: bytes, now: float
    ) -> None:
        """One packet arrived at ``now`` (monotonic seconds)."""
        if ssrc != self._ssrc:
            if ssrc == self._previous_ssrc and now < self._straggler_until:
                self.received += 1
                self.late += 1
                return
            if self._ssrc is not None:
                self.ssrc_changes += 1
                logger.debug("jitter buffer: SSRC %08x -> %08x, re-anchored", self._ssrc, ssrc)
                self._straggler_until = now + self._max_delay + self._frame_s
            self._previous_ssrc = self._ssrc
            self._ssrc = ssrc
            self._restart(sequence, timestamp, now)
            self.received += 1
            self._store(self._max_ts, self._max_seq, payload)
            return

        delta = (sequence - self._max_seq) & 0xFFFF
        if delta >= 0x8000:
            delta -= 0x10000
        seq = self._max_seq + delta
        if delta > 0:
            self._seen = ((self._seen << delta) | 1) & _SEEN_MASK
            self._max_seq = seq
        elif -delta < SEEN_WINDOW:
            bit = 1 << -delta
            if self._seen & bit:
                self.duplicates += 1
                return
            self._seen |= bit
        self.received += 1

        tdelta = (timestamp - self._max_ts) & 0xFFFFFFFF
        if tdelta >= 0x80000000:
            tdelta -= 0x100000000
        ts = self._max_ts + tdelta
        if tdelta > 0:
            self._max_ts = ts

        offset = ts - self._playout
        if offset > self._jump_ticks or offset < -self._jump_ticks:
            logger.debug("jitter buffer: timestamp jump of %d ticks, re-anchored", offset)
            self._restart(sequence, timestamp, now)
            self._store(self._max_ts, self._max_seq, payload)
            return
        if marker and not self._frames:
            self._anchor(ts, now)
            offset = 0

        self._measure(ts, now)

        phase = offset % self._frame_ticks
        if phase:  # off the frame grid: take the nearest frame slot
            offset += self._frame_ticks - phase if 2 * phase >= self._frame_ticks else -phase
        if offset < 0:
            if not self._started and -offset <= self._target * self._clock_rate + _EPS:
                self._playout += offset  # reordered before the anchor: start from it
                offset = 0
            elif self._late_run + 1 < LATE_RESYNC:
                self._late(seq)
                return
            else:
                logger.debug("jitter buffer: %d late packets in a row, re-anchored", LATE_RESYNC)
                self._anchor(ts, now)
                self._measure(ts, now)
                offset = 0
        self._late_run = 0
        self._store(self._playout + offset, seq, payload)

    def get(self, now: float) -> bytes | None:
        """The payload to decode at this tick, or ``None`` (conceal): called once per frame."""
        if self._ssrc is None:
            return None
        playout = self._playout
        if not self._started:
            if now + _EPS < self._start_at:
                return None  # prefetch
            self._started = True
            # The first tick came late (the packets waited in the socket while a starved CPU
            # set the call up): start at the target delay, not behind it, rather than shrink a
            # frame a second for as long.
            for _ in range(int((now - self._start_at) / self._frame_s + _EPS)):
                if self._frames.pop(playout, None) is not None:
                    self.dropped += 1
                playout += self._frame_ticks
            self._playout = playout
        delay = now - playout / self._clock_rate - self._sorted_transits[0]
        target = self._target
        if delay < target - self._half_frame_s:
            return None  # grow: one gap, the playout falls one frame further behind
        frames = self._frames
        entry = frames.pop(playout, None)
        playout += self._frame_ticks

        if delay + _EPS >= target + self._frame_s:
            self._excess += 1
            if self._excess >= SHRINK_AFTER:  # shrink: skip the next frame
                self._excess = 0
                if frames.pop(playout, None) is not None:
                    self.dropped += 1
                playout += self._frame_ticks
        else:
            self._excess = 0
        self._playout = playout

        if entry is None:
            return None
        seq, payload = entry
        last = self._last_played
        if last is None:
            self._played_from = seq
        elif seq > last + 1:
            self.lost += self._missing_between(last, seq)
        if last is None or seq > last:
            self._last_played = seq
        return payload

    def _missing_between(self, low: int, high: int) -> int:
        """Sequence numbers strictly between ``low`` and ``high`` never received."""
        count = high - low - 1
        first_bit = self._max_seq - high + 1  # bit of high - 1
        if first_bit >= SEEN_WINDOW:
            return count
        width = min(count, SEEN_WINDOW - first_bit)
        return count - ((self._seen >> first_bit) & ((1 << width) - 1)).bit_count()

    def _late(self, seq: int) -> None:
        self.late += 1
        self._late_run += 1
        first, last = self._played_from, self._last_played
        if first is not None and last is not None and first < seq < last and self.lost > 0:
            self.lost -= 1  # counted lost when a later packet played; it did arrive after all
        self._target = min(self._max_delay, self._target + self._frame_s)

    def _store(self, key: int, seq: int, payload: bytes) -> None:
        frames = self._frames
        if key in frames:
            self.received -= 1
            self.duplicates += 1
            return
        frames[key] = (seq, payload)
        if len(frames) > self.capacity:
            oldest = min(frames)
            del frames[oldest]
            self.dropped += 1
            self._playout = oldest + self._frame_ticks

    def _measure(self, ts: int, now: float) -> None:
        """Update the jitter estimate, the base transit and the target for one packet."""
        transit = now - ts / self._clock_rate
        last = self._last_transit
        if last is not None:
            self._jitter += (abs(transit - last) - self._jitter) / 16
        self._last_transit = transit

        window, ranked = self._transits, self._sorted_transits
        if len(window) == WINDOW:
            del ranked[bisect.bisect_left(ranked, window.popleft())]
        window.append(transit)
        bisect.insort(ranked, transit)

        spread = ranked[int((len(ranked) - 1) * QUANTILE)] - ranked[0]
        wanted = min(self._max_delay, max(self._min_delay, spread + self._half_frame_s))
        target = self._target
        if wanted > target:
            self._target = wanted
        elif target > wanted:
            self._target = max(wanted, target - self._target_decay)

    def _anchor(self, ts: int, now: float) -> None:
        """Play the frame at ``ts`` one target delay after ``now``."""
        self.dropped += len(self._frames)
        self._frames.clear()
        self._playout = ts
        self._start_at = now + self._target
        self._started = False
        self._excess = 0
        self._late_run = 0
        self._last_transit = None
        self._transits.clear()
        self._sorted_transits.clear()

    def _restart(self, sequence: int, timestamp: int, now: float) -> None:
        """New sequence and timestamp spaces (SSRC change, restarted sender), then anchor."""
        self._max_seq = sequence & 0xFFFF
        self._seen = 1
        self._max_ts = timestamp & 0xFFFFFFFF
        self._last_played = None
        self._played_from = None
        self._jitter = 0.0
        self._anchor(self._max_ts, now)
        self._measure(self._max_ts, now)
