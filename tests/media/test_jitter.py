"""The adaptive jitter buffer, driven by scripted arrivals and a 20 ms playout clock.

Each packet's payload is its logical frame number, so the sequence of ``get`` results says
exactly what played when; the latency of a frame is the tick it played at minus the time it was
sent. Arrivals at the same millisecond as a tick are put before that tick's ``get``.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass
from itertools import pairwise

import pytest

from intercom.media.jitter import JitterBuffer

SSRC_A = 0x1234ABCD
SSRC_B = 0x0BADCAFE
FRAME_MS = 20


@dataclass(frozen=True)
class Pkt:
    frame: int  # logical frame number, also the payload
    sent_ms: float
    at_ms: float
    seq: int
    ts: int
    marker: bool = False
    ssrc: int = SSRC_A


def stream(
    n: int,
    *,
    first: int = 0,
    seq0: int = 1000,
    ts0: int = 80_000,
    sent0_ms: float = 0.0,
    delay_ms: float = 0.0,
    ssrc: int = SSRC_A,
    marker_first: bool = False,
) -> list[Pkt]:
    """``n`` consecutive 20 ms frames, each arriving ``delay_ms`` after it was sent."""
    return [
        Pkt(
            frame=first + k,
            sent_ms=sent0_ms + FRAME_MS * k,
            at_ms=sent0_ms + FRAME_MS * k + delay_ms,
            seq=(seq0 + k) & 0xFFFF,
            ts=(ts0 + 160 * k) & 0xFFFFFFFF,
            marker=marker_first and k == 0,
            ssrc=ssrc,
        )
        for k in range(n)
    ]


def arrive_at(packets: list[Pkt], changes: dict[int, float]) -> list[Pkt]:
    """The same packets with some arrival times (by frame number) changed."""
    return [
        Pkt(p.frame, p.sent_ms, changes.get(p.frame, p.at_ms), p.seq, p.ts, p.marker, p.ssrc)
        for p in packets
    ]


def ticks(start_ms: int, end_ms: int) -> range:
    return range(start_ms, end_ms, FRAME_MS)


class Player:
    """Delivers packets in arrival order (stable) up to each tick, then calls ``get``."""

    def __init__(self, jb: JitterBuffer, packets: Iterable[Pkt]) -> None:
        self.jb = jb
        self.order = sorted(packets, key=lambda p: p.at_ms)
        self.next = 0
        self.out: list[tuple[int, int | None]] = []  # (tick, frame played or None)

    def run(self, tick_ms: Iterable[int]) -> list[tuple[int, int | None]]:
        jb, order = self.jb, self.order
        for tick in tick_ms:
            while self.next < len(order) and order[self.next].at_ms <= tick:
                p = order[self.next]
                jb.put(p.seq, p.ts, p.ssrc, p.marker, str(p.frame).encode(), p.at_ms / 1000)
                self.next += 1
            got = jb.get(tick / 1000)
            self.out.append((tick, None if got is None else int(got)))
        return self.out

    @property
    def done(self) -> bool:
        return self.next == len(self.order)


def play(
    jb: JitterBuffer, packets: Iterable[Pkt], tick_ms: Iterable[int]
) -> list[tuple[int, int | None]]:
    player = Player(jb, packets)
    out = player.run(tick_ms)
    assert player.done, "script ended before every packet was delivered"
    return out


def frames_played(out: list[tuple[int, int | None]]) -> list[int]:
    return [f for _, f in out if f is not None]


def latencies(out: list[tuple[int, int | None]], packets: list[Pkt]) -> dict[int, float]:
    sent = {p.frame: p.sent_ms for p in packets}
    return {f: tick - sent[f] for tick, f in out if f is not None}


def waits(out: list[tuple[int, int | None]], packets: list[Pkt]) -> dict[int, float]:
    """How long each played frame waited in the buffer."""
    arrival = {p.frame: p.at_ms for p in packets}
    return {f: tick - arrival[f] for tick, f in out if f is not None}


def counters(jb: JitterBuffer) -> dict[str, int]:
    return {
        "received": jb.received,
        "duplicates": jb.duplicates,
        "late": jb.late,
        "lost": jb.lost,
        "dropped": jb.dropped,
        "ssrc_changes": jb.ssrc_changes,
    }


def ok(received: int, **changes: int) -> dict[str, int]:
    base = {"received": received, "duplicates": 0, "late": 0, "lost": 0, "dropped": 0}
    return base | {"ssrc_changes": 0} | changes


# --- construction -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"clock_rate": 0}, "clock_rate must be positive, not 0"),
        ({"frame_ticks": -160}, "frame_ticks must be positive, not -160"),
        ({"min_delay_ms": -1}, "need 0 <= min_delay_ms <= max_delay_ms, not -1 and 300"),
        ({"min_delay_ms": 400}, "need 0 <= min_delay_ms <= max_delay_ms, not 400 and 300"),
    ],
)
def test_bad_parameters(kwargs: dict[str, int], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        JitterBuffer(**kwargs)


def test_empty_buffer_and_defaults() -> None:
    jb = JitterBuffer()
    assert [jb.get(t / 1000) for t in ticks(0, 100)] == [None] * 5
    assert (jb.depth, jb.target_delay_ms, jb.jitter_ms, jb.capacity) == (0, 40, 0, 20)
    assert counters(jb) == ok(0)


# --- steady stream, reordering, duplicates ------------------------------------------------------


@pytest.mark.parametrize(("phase_ms", "latency_ms"), [(0, 40), (7, 53), (19.5, 40.5)])
def test_steady_stream_plays_every_frame_once_at_the_minimum_delay(
    phase_ms: float, latency_ms: float
) -> None:
    """Zero jitter: prefetch for the target, then one frame per tick; the latency is the
    target rounded up to the next tick of the playout clock."""
    jb = JitterBuffer()
    packets = stream(100, delay_ms=phase_ms)
    out = play(jb, packets, ticks(0, 2200))
    assert frames_played(out) == list(range(100))
    assert set(waits(out, packets).values()) == {latency_ms}
    first_tick = next(t for t, f in out if f is not None)
    assert first_tick == phase_ms + latency_ms  # nothing before the prefetch elapsed
    assert counters(jb) == ok(100)
    assert (jb.target_delay_ms, jb.depth) == (40, 0)
    assert jb.jitter_ms == pytest.approx(0, abs=1e-6)


@pytest.mark.parametrize(
    "arrivals",
    [
        pytest.param({3: 81, 4: 80}, id="adjacent swap"),
        pytest.param({2: 79, 3: 78, 4: 80}, id="three shuffled"),
        pytest.param({5: 139}, id="one delayed to its deadline"),
        pytest.param({1: 20, 0: 25}, id="first two swapped, anchor moves back"),
        pytest.param({6: 160, 7: 150, 8: 160}, id="overtaken twice"),
    ],
)
def test_reordering_within_the_delay_plays_in_order(arrivals: dict[int, float]) -> None:
    jb = JitterBuffer()
    packets = arrive_at(stream(12), arrivals)
    out = play(jb, packets, ticks(0, 400))
    assert frames_played(out) == list(range(12))
    assert counters(jb) == ok(12)


@pytest.mark.parametrize(
    ("extra", "played_before"),
    [
        pytest.param([(5, 101)], False, id="twin while buffered"),
        pytest.param([(5, 101), (5, 102), (5, 120)], False, id="triplets while buffered"),
        pytest.param([(5, 300)], True, id="again after it played"),
        pytest.param([(0, 2000)], True, id="two seconds later"),
        pytest.param([(9, 180), (3, 500), (9, 900)], False, id="mixed"),
    ],
)
def test_duplicates_are_dropped_and_counted(
    extra: list[tuple[int, float]], played_before: bool
) -> None:
    packets = stream(120)
    by_frame = {p.frame: p for p in packets}
    copies = [arrive_at([by_frame[f]], {f: at})[0] for f, at in extra]
    jb = JitterBuffer()
    out = play(jb, packets + copies, ticks(0, 2600))
    assert frames_played(out) == list(range(120))
    assert counters(jb) == ok(120, duplicates=len(extra))


def test_same_timestamp_different_sequence_keeps_the_first() -> None:
    packets = stream(10)
    rogue = Pkt(99, 60, 61, seq=2000, ts=packets[3].ts)  # another packet for frame 3's slot
    jb = JitterBuffer()
    out = play(jb, [*packets, rogue], ticks(0, 300))
    assert frames_played(out) == list(range(10))
    assert counters(jb) == ok(10, duplicates=1)


# --- late and lost ------------------------------------------------------------------------------


def test_late_packet_is_dropped_counted_and_grows_the_delay() -> None:
    """Frame 5 is due at 140 ms but arrives at 200 ms: the tick at 140 is empty, frame 5 is
    late (not lost, although it was missing when frame 6 played), the target grows and the
    next tick inserts one gap so that the following frames play a frame later."""
    packets = arrive_at(stream(30), {5: 200})
    jb = JitterBuffer()
    player = Player(jb, packets)
    out = player.run(ticks(0, 170))
    assert out[-2:] == [(140, None), (160, 6)]
    assert (jb.lost, jb.late, jb.target_delay_ms) == (1, 0, 40)  # missing when frame 6 played

    out = player.run(ticks(180, 900))
    assert player.done
    assert (jb.lost, jb.late) == (0, 1)  # it arrived after all: late, not lost
    # one frame up at once, then down 2.5 ms/s (0.05 ms per packet; 20 packets followed), the
    # single 100 ms outlier not counting in the spread
    assert jb.target_delay_ms == pytest.approx(60 - 20 * 0.05)
    assert [f for _, f in out[:12]] == [None, None, 0, 1, 2, 3, 4, None, 6, 7, None, 8]
    lat = latencies(out, packets)
    assert {lat[f] for f in range(5)} == {40} == {lat[6], lat[7]}
    assert {lat[f] for f in range(8, 30)} == {60}
    assert counters(jb) == ok(30, late=1)


@pytest.mark.parametrize(
    ("missing", "lost"),
    [
        pytest.param({10}, 1, id="one"),
        pytest.param({10, 11, 12}, 3, id="burst of three"),
        pytest.param({3, 7, 15}, 3, id="scattered"),
        pytest.param({0}, 0, id="the first, never known to exist"),
        pytest.param({19}, 0, id="the last, nothing plays after it"),
    ],
)
def test_lost_frames_leave_a_gap_at_their_tick(missing: set[int], lost: int) -> None:
    packets = [p for p in stream(20) if p.frame not in missing]
    jb = JitterBuffer()
    out = play(jb, packets, ticks(0, 500))
    expected = [(40 + FRAME_MS * f, None if f in missing else f) for f in range(20)]
    assert [x for x in out if x[0] >= 40 and x[0] < 440] == expected
    assert counters(jb) == ok(20 - len(missing), lost=lost)


# --- wrap ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("seq0", "ts0", "swap"),
    [
        pytest.param(65530, 80_000, None, id="sequence wrap"),
        pytest.param(1000, 2**32 - 5 * 160, None, id="timestamp wrap"),
        pytest.param(65533, 2**32 - 3 * 160, None, id="both wrap"),
        pytest.param(65530, 2**32 - 6 * 160, (5, 6), id="both wrap, reordered across"),
        pytest.param(65535, 2**32 - 160, (1, 2), id="wrap right after the anchor"),
    ],
)
def test_wrap_is_seamless(seq0: int, ts0: int, swap: tuple[int, int] | None) -> None:
    packets = stream(40, seq0=seq0, ts0=ts0)
    if swap:
        a, b = swap
        packets = arrive_at(packets, {a: FRAME_MS * b + 1, b: FRAME_MS * b})
    jb = JitterBuffer()
    out = play(jb, packets, ticks(0, 900))
    assert frames_played(out) == list(range(40))
    assert set(latencies(out, packets).values()) == {40}
    assert counters(jb) == ok(40)


def test_loss_across_the_sequence_wrap_is_counted_once() -> None:
    packets = [p for p in stream(20, seq0=65533) if p.seq not in (65535, 0)]
    jb = JitterBuffer()
    out = play(jb, packets, ticks(0, 500))
    assert frames_played(out) == [f for f in range(20) if f not in (2, 3)]
    assert counters(jb) == ok(18, lost=2)


# --- SSRC change, talkspurts, restarts ----------------------------------------------------------


def test_ssrc_change_resets_and_reanchors() -> None:
    """Source B takes over at 1000 ms with unrelated sequence numbers and timestamps: A's two
    buffered frames are discarded, B starts after a fresh prefetch."""
    a = stream(50)
    b = stream(30, first=100, seq0=7, ts0=123_456_789, sent0_ms=1000, ssrc=SSRC_B)
    jb = JitterBuffer()
    out = play(jb, a + b, ticks(0, 1800))
    assert frames_played(out) == list(range(48)) + list(range(100, 130))
    assert [f for t, f in out if 1000 <= t <= 1040] == [None, None, 100]
    assert set(latencies(out, a + b).values()) == {40}
    assert counters(jb) == ok(80, dropped=2, ssrc_changes=1)


def test_straggler_of_the_old_ssrc_is_late_not_a_switch_back() -> None:
    a = stream(50)
    b = stream(30, first=100, seq0=7, ts0=123_456_789, sent0_ms=1000, ssrc=SSRC_B)
    straggler = arrive_at([a[49]], {49: 1010})  # a copy of A's last frame, overtaken by B
    back_to_a = stream(20, first=200, seq0=1060, ts0=80_000 + 60 * 160, sent0_ms=2000)
    jb = JitterBuffer()
    out = play(jb, a + b + straggler + back_to_a, ticks(0, 2600))
    assert frames_played(out) == list(range(48)) + list(range(100, 130)) + list(range(200, 220))
    # frame 49's first copy was buffered and discarded at the switch (dropped), not a duplicate
    assert counters(jb) == ok(101, late=1, dropped=2, ssrc_changes=2)


def talkspurts(
    silence_ms: int, ts_advances: bool, marker: bool, extra_delay_ms: float
) -> list[Pkt]:
    """Two 1 s talkspurts (seq continuous) around a silence the sender sent nothing in."""
    first = stream(50, seq0=500, ts0=1_000)
    resume_ms = 50 * FRAME_MS + silence_ms
    ts0 = 1_000 + 50 * 160 + (silence_ms * 8 if ts_advances else 0)
    second = stream(
        50, first=50, seq0=550, ts0=ts0, sent0_ms=resume_ms, delay_ms=extra_delay_ms,
        marker_first=marker,
    )  # fmt: skip
    return first + second


@pytest.mark.parametrize(
    ("silence_ms", "ts_advances", "marker", "extra_delay_ms"),
    [
        pytest.param(2000, True, True, 0, id="DTX, marker"),
        pytest.param(2000, True, True, 80, id="DTX, marker, path got 80 ms slower"),
        pytest.param(600, False, True, 0, id="timestamps paused, marker"),
        pytest.param(2000, False, True, 0, id="timestamps paused long, marker"),
        pytest.param(2000, False, False, 0, id="timestamps paused long, no marker"),
    ],
)
def test_talkspurt_restarts_the_playout_at_the_target_delay(
    silence_ms: int, ts_advances: bool, marker: bool, extra_delay_ms: float
) -> None:
    packets = talkspurts(silence_ms, ts_advances, marker, extra_delay_ms)
    jb = JitterBuffer()
    out = play(jb, packets, ticks(0, 5000))
    assert frames_played(out) == list(range(100))
    wait = waits(out, packets)
    assert wait[0] == wait[50] == 40  # each talkspurt: prefetch of the target, from its arrival
    assert set(wait.values()) == {40}
    assert counters(jb) == ok(100)


def test_timestamps_paused_without_marker_resync_after_ten_late_packets() -> None:
    packets = talkspurts(600, ts_advances=False, marker=False, extra_delay_ms=0)
    jb = JitterBuffer()
    out = play(jb, packets, ticks(0, 3000))
    assert frames_played(out) == list(range(50)) + list(range(59, 100))
    assert jb.late == 9
    assert counters(jb) == ok(100, late=9)


def test_timestamp_jump_ahead_reanchors_but_a_short_one_just_waits() -> None:
    first = stream(20)
    restarted = stream(20, first=20, seq0=30_000, ts0=9_000_000, sent0_ms=400)
    short = stream(20, first=40, seq0=30_020, ts0=9_000_000 + 20 * 160 + 4000, sent0_ms=800)
    jb = JitterBuffer()
    out = play(jb, first + restarted + short, ticks(0, 2000))
    # frames 18 and 19, buffered when the sender restarted, are discarded with the old stream
    assert frames_played(out) == [*range(18), *range(20, 60)]
    lat = latencies(out, first + restarted + short)
    assert {lat[f] for f in range(18)} == {lat[f] for f in range(20, 40)} == {40}
    # half a second of timestamps with no packets: played at the sender's pace, 25 empty ticks
    assert {lat[f] for f in range(40, 60)} == {540}
    assert [f for t, f in out if 1200 <= t < 1340] == [None] * 7
    assert counters(jb) == ok(60, dropped=2)


# --- adaptation ---------------------------------------------------------------------------------


def test_jitter_grows_the_delay_and_a_calm_period_shrinks_it() -> None:
    """10 s calm, 20 s with 0-60 ms of random delay, 60 s calm again."""
    rng = random.Random(1)
    packets = stream(4500)
    packets = arrive_at(packets, {f: FRAME_MS * f + rng.uniform(0, 60) for f in range(500, 1500)})
    jb = JitterBuffer()
    player = Player(jb, packets)
    player.run(ticks(0, 30_000))
    target_in_jitter = jb.target_delay_ms
    out = player.run(ticks(30_000, 90_100))
    assert player.done
    played = frames_played(out)
    lat = latencies(out, packets)

    assert played == sorted(played)  # never out of order
    assert {lat[f] for f in range(500)} == {40}
    assert 60 <= target_in_jitter <= 100  # 0-60 ms of spread, plus half a frame
    settled = {lat[f] for f in range(1000, 1500) if f in lat}
    assert settled == {60}
    assert jb.late <= 5  # only while the estimate catches up
    calm_skipped = set(range(1500, 4500)) - set(played)
    assert len(calm_skipped) == jb.dropped == 1  # one frame back to the minimum
    assert {lat[f] for f in range(4000, 4500)} == {40}
    assert jb.target_delay_ms == 40
    assert jb.received == jb.late + len(played) + jb.dropped + jb.depth


# --- bounds -------------------------------------------------------------------------------------


def test_flood_without_playout_keeps_depth_bounded() -> None:
    jb = JitterBuffer()
    for k in range(10_000):
        jb.put((100 + k) & 0xFFFF, 160 * k, SSRC_A, False, str(k).encode(), 0.0)
        assert jb.depth <= jb.capacity
    assert jb.depth == jb.capacity == 20
    assert counters(jb) == ok(10_000, dropped=10_000 - 20)
    out = [jb.get(t / 1000) for t in ticks(0, 600)]
    assert [int(x) for x in out if x is not None] == list(range(9980, 10_000))


@pytest.mark.parametrize("ssrcs", [1, 3])
def test_random_garbage_keeps_depth_bounded(ssrcs: int) -> None:
    rng = random.Random(7)
    jb = JitterBuffer()
    played: list[bytes | None] = []
    for k in range(10_000):
        jb.put(
            rng.getrandbits(16), rng.getrandbits(32), rng.randrange(ssrcs), rng.random() < 0.1,
            b"x", k * 0.001,
        )  # fmt: skip
        if k % 3 == 0:
            played.append(jb.get(k * 0.001))
        assert jb.depth <= jb.capacity
    assert jb.received + jb.duplicates == 10_000  # every packet accounted for once
    assert jb.received == jb.late + jb.dropped + jb.depth + sum(x is not None for x in played)
    assert 0 <= jb.target_delay_ms <= 300


def test_one_hour_with_jitter_and_loss() -> None:
    """180,000 frames, 0-30 ms random delay, 1% loss: bounded, and every count adds up."""
    frames = 180_000
    rng = random.Random(2024)
    lost = {f for f in range(frames) if rng.random() < 0.01}
    arrivals = sorted(
        (FRAME_MS * f + rng.uniform(0, 30), f) for f in range(frames) if f not in lost
    )
    jb = JitterBuffer()
    put, get = jb.put, jb.get
    played: list[int] = []
    max_depth = 0
    i = 0
    for tick in range(0, FRAME_MS * frames + 1000, FRAME_MS):
        while i < len(arrivals) and arrivals[i][0] <= tick:
            at, f = arrivals[i]
            put((40_000 + f) & 0xFFFF, (3_000_000_000 + 160 * f) & 0xFFFFFFFF, SSRC_A, False,
                f.to_bytes(3, "big"), at / 1000)  # fmt: skip
            i += 1
        got = get(tick / 1000)
        if got is not None:
            played.append(int.from_bytes(got, "big"))
        if jb.depth > max_depth:
            max_depth = jb.depth

    assert all(a < b for a, b in pairwise(played))
    assert jb.received == frames - len(lost)
    assert jb.duplicates == 0
    assert jb.received == len(played) + jb.late + jb.dropped + jb.depth
    assert jb.lost == sum(1 for f in lost if played[0] < f < played[-1])
    assert jb.late <= frames // 10_000
    assert max_depth <= 4 < jb.capacity
    assert 7 <= jb.jitter_ms <= 13  # A.8 of uniform 0-30 ms delays: E|X - Y| = 10 ms
    assert 40 <= jb.target_delay_ms <= 50  # 30 ms spread + half a frame, or the minimum
    assert jb.ssrc_changes == 0
    # no growth over a long call: the ranked window and the seen-sequence bitmap are capped
    assert len(jb._transits) == len(jb._sorted_transits) == 500
    assert jb._seen.bit_length() <= 512


def test_a_late_first_tick_starts_at_the_target_delay_not_behind_it() -> None:
    # A starved CPU: eight packets waited in the socket while the call was set up; the first
    # tick comes 160 ms after the first arrival. Playing frame 0 would leave the playout 120 ms
    # above the target, shrunk one frame per second; it starts at the target instead.
    jb = JitterBuffer()
    for k in range(8):
        jb.put(k, 160 * k, 0x1234, k == 0, bytes([k]), now=0.02 * k)
    assert jb.get(0.16) == bytes([6])  # frame 6 arrived at 0.12: 40 ms ago, the target
    assert jb.dropped == 6
    assert [jb.get(0.16 + 0.02 * n) for n in range(1, 3)] == [bytes([7]), None]
