"""Tests for intercom.media.stats: RFC 3550 Appendix A.1 (sequence), A.3 (loss), A.8 (jitter)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from intercom.media.rtcp import ReportBlock
from intercom.media.stats import MAX_DROPOUT, ReceiveStats

STEP = 160  # 20 ms at 8 kHz
PERIOD = 0.02


def feed(stats: ReceiveStats, sequences, start_time: float = 100.0) -> list[bool]:
    """Feed sequence numbers paced at 20 ms, timestamps following the sequence numbers."""
    return [stats.update(seq, (seq * STEP) & 0xFFFFFFFF, start_time + i * PERIOD)
            for i, seq in enumerate(sequences)]  # fmt: skip


def test_nothing_received_yet():
    stats = ReceiveStats(8000)
    assert (stats.received, stats.expected, stats.lost, stats.duplicates) == (0, 0, 0, 0)
    assert stats.jitter_ms == 0.0
    assert stats.report_block(5, now=1.0) == ReportBlock(5, 0, 0, 0, 0, 0, 0)


def test_clock_rate_must_be_positive():
    with pytest.raises(ValueError, match="RTP clock rate 0 must be positive"):
        ReceiveStats(0)


def test_in_order_stream():
    stats = ReceiveStats(8000)
    assert all(feed(stats, range(100, 150)))
    assert (stats.received, stats.expected, stats.lost, stats.duplicates) == (50, 50, 0, 0)
    assert stats.highest_sequence == 149
    assert stats.report_block(0xABC, now=200.0) == ReportBlock(0xABC, 0, 0, 149, 0, 0, 0)


def test_gap_counts_loss_and_fraction_per_interval():
    stats = ReceiveStats(8000)
    feed(stats, [*range(0, 10), *range(12, 20)])
    assert (stats.received, stats.expected, stats.lost) == (18, 20, 2)
    block = stats.report_block(1, now=10.0)
    assert block.fraction_lost == (2 << 8) // 20  # 25, i.e. 10 %
    assert block.packets_lost == 2
    assert block.highest_sequence == 19
    # Next interval without loss: the fraction drops to 0, the cumulative figure stays.
    feed(stats, range(20, 40), start_time=200.0)
    block = stats.report_block(1, now=11.0)
    assert (block.fraction_lost, block.packets_lost) == (0, 2)
    # An interval with 1 of 4 lost.
    feed(stats, [40, 42, 43], start_time=300.0)
    block = stats.report_block(1, now=12.0)
    assert (block.fraction_lost, block.packets_lost) == (64, 3)


def test_reordered_packet_fills_the_gap():
    stats = ReceiveStats(8000)
    feed(stats, [0, 1, 3])
    assert stats.lost == 1
    assert stats.update(2, 2 * STEP, 100.07) is True
    feed(stats, [4], start_time=100.08)
    assert (stats.received, stats.expected, stats.lost, stats.duplicates) == (5, 5, 0, 0)
    assert stats.highest_sequence == 4


def test_packet_older_than_the_first_lowers_the_base():
    stats = ReceiveStats(8000)
    feed(stats, [10, 11, 9])
    assert (stats.received, stats.expected, stats.lost) == (3, 3, 0)
    assert stats.report_block(1, now=1.0).packets_lost == 0


def test_duplicates_are_counted_apart():
    stats = ReceiveStats(8000)
    assert feed(stats, [0, 1, 1, 2, 0, 2, 3]) == [True, True, False, True, False, False, True]
    assert (stats.received, stats.expected, stats.lost, stats.duplicates) == (4, 4, 0, 3)


def test_duplicate_of_a_late_packet():
    stats = ReceiveStats(8000)
    assert feed(stats, [0, 2, 1, 1, 3]) == [True, True, True, False, True]
    assert (stats.received, stats.lost, stats.duplicates) == (4, 0, 1)


def test_sequence_wrap_across_65535():
    stats = ReceiveStats(8000)
    assert all(feed(stats, [*range(65530, 65536), *range(0, 6)]))
    assert (stats.received, stats.expected, stats.lost) == (12, 12, 0)
    assert stats.highest_sequence == 65536 + 5
    assert stats.report_block(1, now=1.0).highest_sequence == 0x0001_0005


def test_reordering_across_the_wrap():
    stats = ReceiveStats(8000)
    feed(stats, [65533, 65534, 0, 65535, 1])
    assert (stats.received, stats.expected, stats.lost) == (5, 5, 0)
    assert stats.highest_sequence == 65537


def test_loss_across_the_wrap():
    stats = ReceiveStats(8000)
    feed(stats, [65534, 1])
    assert (stats.expected, stats.lost) == (4, 2)


def test_gap_just_under_max_dropout_is_loss():
    stats = ReceiveStats(8000)
    assert feed(stats, [0, MAX_DROPOUT - 1]) == [True, True]
    assert stats.lost == MAX_DROPOUT - 2


def test_jump_of_exactly_max_dropout_is_not_counted():
    stats = ReceiveStats(8000)
    assert feed(stats, [0, MAX_DROPOUT]) == [True, False]
    assert (stats.received, stats.expected, stats.lost) == (1, 1, 0)


def test_big_jump_then_two_sequential_packets_resyncs():
    stats = ReceiveStats(8000)
    feed(stats, range(0, 10))
    assert stats.update(5000, 5000 * STEP, 101.0) is False  # a jump of 4991 > MAX_DROPOUT
    assert (stats.received, stats.expected) == (10, 10)
    assert stats.update(5001, 5001 * STEP, 101.02) is True  # sequential: the source restarted
    assert (stats.received, stats.expected, stats.lost) == (1, 1, 0)
    assert stats.highest_sequence == 5001
    feed(stats, [5002, 5004], start_time=101.04)
    assert (stats.received, stats.expected, stats.lost) == (3, 4, 1)


def test_stray_packet_after_big_jump_is_ignored():
    stats = ReceiveStats(8000)
    feed(stats, range(0, 10))
    assert stats.update(30000, 0, 101.0) is False
    assert feed(stats, [10, 11], start_time=101.02) == [True, True]
    assert (stats.received, stats.expected, stats.lost) == (12, 12, 0)
    assert stats.highest_sequence == 11


def test_big_jump_backwards_is_a_jump_too():
    stats = ReceiveStats(8000)
    feed(stats, range(5000, 5010))
    assert stats.update(100, 0, 101.0) is False  # 4910 behind: beyond MAX_MISORDER
    assert stats.update(101, 160, 101.02) is True
    assert (stats.received, stats.highest_sequence) == (1, 101)


def test_resync_does_not_spike_jitter():
    stats = ReceiveStats(8000)
    feed(stats, range(0, 10))
    stats.update(40000, 123456789, 101.0)
    stats.update(40001, 123456789 + STEP, 101.02)
    stats.update(40002, 123456789 + 2 * STEP, 101.04)
    assert stats.jitter == pytest.approx(0.0, abs=1e-6)


def test_cumulative_loss_is_clamped_to_24_bits_in_the_report():
    stats = ReceiveStats(8000)
    seq = 0
    for i in range(3000):
        stats.update(seq, 0, float(i))
        seq = (seq + MAX_DROPOUT - 1) % 65536
    assert stats.lost > 0x7FFFFF
    block = stats.report_block(1, now=0.0)
    assert block.packets_lost == 0x7FFFFF
    assert block.fraction_lost == 255  # (2997/2998 * 256) truncated: everything is lost
    assert block.highest_sequence == stats.highest_sequence & 0xFFFFFFFF


# --- jitter (A.8) ------------------------------------------------------------------------------


def test_jitter_of_a_perfectly_paced_stream_is_zero():
    stats = ReceiveStats(8000)
    # a constant network delay of 37 ms changes nothing
    for i in range(200):
        stats.update(i, 1000 + i * STEP, 50.037 + i * PERIOD)
    assert stats.jitter == pytest.approx(0.0, abs=1e-6)
    assert stats.jitter_ms == pytest.approx(0.0, abs=1e-6)
    assert stats.report_block(1, now=60.0).jitter == 0


def test_jitter_converges_for_alternating_5ms_offsets():
    stats = ReceiveStats(8000)
    for i in range(400):
        offset = 0.005 if i % 2 else -0.005
        stats.update(i, i * STEP, 10.0 + i * PERIOD + offset)
    # Every |D| is 10 ms = 80 ticks, so J -> 80 ticks = 10 ms.
    assert stats.jitter == pytest.approx(80.0, abs=1e-6)
    assert stats.jitter_ms == pytest.approx(10.0, abs=1e-6)
    assert stats.report_block(1, now=20.0).jitter in (79, 80)  # truncated to an integer


def test_jitter_first_steps_known_answers():
    stats = ReceiveStats(8000)
    stats.update(0, 0, 1.0)
    assert stats.jitter == 0.0  # one packet: no difference yet
    stats.update(1, 160, 1.03)  # 10 ms late: D = 80
    assert stats.jitter == pytest.approx(5.0)  # 80 / 16
    stats.update(2, 320, 1.04)  # back on time: D = -80
    assert stats.jitter == pytest.approx(5.0 + (80.0 - 5.0) / 16)
    assert stats.jitter_ms == pytest.approx((5.0 + 75.0 / 16) / 8)


def test_jitter_ignores_timestamp_wrap():
    stats = ReceiveStats(8000)
    start = 0xFFFFFFFF - 5 * STEP
    for i in range(12):
        stats.update(i, (start + i * STEP) & 0xFFFFFFFF, 3.0 + i * PERIOD)
    assert stats.jitter == pytest.approx(0.0, abs=1e-6)


def test_jitter_ms_uses_the_clock_rate():
    stats = ReceiveStats(16000)
    stats.update(0, 0, 1.0)
    stats.update(1, 320, 1.036)  # 16 ms late at 16 kHz: D = 256 ticks
    assert stats.jitter == pytest.approx(16.0)
    assert stats.jitter_ms == pytest.approx(1.0)


def test_duplicates_do_not_move_jitter():
    stats = ReceiveStats(8000)
    feed(stats, range(0, 5))
    stats.update(4, 4 * STEP, 500.0)  # a duplicate arriving absurdly late
    assert stats.jitter == pytest.approx(0.0, abs=1e-6)


# --- LSR / DLSR ------------------------------------------------------------------------------


def test_report_block_lsr_and_dlsr():
    stats = ReceiveStats(8000)
    feed(stats, range(3))
    block = stats.report_block(7, now=15.25, last_sr_ntp_middle=0xB7052000,
                               last_sr_arrival=10.0)  # fmt: skip
    assert (block.lsr, block.dlsr) == (0xB7052000, 0x00054000)  # 5.25 s in 1/65536 s


def test_report_block_without_sender_report_has_zero_lsr_dlsr():
    stats = ReceiveStats(8000)
    feed(stats, range(3))
    block = stats.report_block(7, now=15.0)
    assert (block.lsr, block.dlsr) == (0, 0)
    block = stats.report_block(7, now=15.0, last_sr_ntp_middle=0, last_sr_arrival=None)
    assert (block.lsr, block.dlsr) == (0, 0)


# --- property: any bounded shuffle with drops and duplicates -----------------------------------


@given(
    first=st.integers(0, 65535),
    keep=st.lists(st.booleans(), min_size=1, max_size=300),
    duplicate=st.lists(st.booleans(), max_size=300),
    delays=st.lists(st.integers(0, 40), max_size=300),
)
def test_counts_match_a_model(first, keep, duplicate, delays):
    kept = [i for i, k in enumerate(keep) if k] or [0]
    sent = []
    for n, i in enumerate(kept):
        sent.append(i)
        if n < len(duplicate) and duplicate[n]:
            sent.append(i)
    # Bounded reordering: each packet may arrive after packets up to 40 sequence numbers later
    # (well within MAX_MISORDER); gaps stay far below MAX_DROPOUT.
    order = sorted(range(len(sent)),
                   key=lambda n: sent[n] + (delays[n] if n < len(delays) else 0))  # fmt: skip
    stats = ReceiveStats(8000)
    for arrival, n in enumerate(order):
        offset = sent[n]
        stats.update((first + offset) % 65536, offset * STEP, arrival * PERIOD)
    distinct = set(sent)
    assert stats.received == len(distinct)
    assert stats.duplicates == len(sent) - len(distinct)
    assert stats.expected == max(distinct) - min(distinct) + 1
    assert stats.lost == stats.expected - stats.received
