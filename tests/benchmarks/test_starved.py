"""The pure parts of benchmarks.starved: quota arithmetic, RTP gap analysis, the verdict."""

from __future__ import annotations

import pytest

from benchmarks.starved import CallResult, analyse_rtp, quota_us, smallest_clean


def test_quota_is_a_share_of_the_period_never_below_the_kernel_minimum() -> None:
    assert quota_us(6, 100_000) == 6000
    assert quota_us(0.5, 100_000) == 1000
    with pytest.raises(ValueError):
        quota_us(0, 100_000)


def test_a_paced_stream_has_no_gap_even_across_the_wraps() -> None:
    packets = [(0.02 * k, (65530 + k) & 0xFFFF, (2**32 - 320 + 160 * k) % 2**32) for k in range(20)]
    report = analyse_rtp(packets, 160)
    assert (report.packets, report.gaps, report.stalls) == (20, 0, 0)


def test_missing_skipped_and_stalled_frames_are_told_apart() -> None:
    packets = [(0.0, 1, 0), (0.02, 2, 160), (0.04, 4, 480), (0.06, 5, 960), (0.16, 6, 1120)]
    report = analyse_rtp(packets, 160)
    assert report.missing == 1  # sequence 3
    assert report.skipped_frames == 2  # 5 came 480 ticks after 4
    assert report.stalls == 1 and report.max_interval_ms == pytest.approx(100)
    assert report.gaps_at == (0.04, 0.06, 0.16)


def _result(percent: float, clean: bool) -> CallResult:
    rtp = analyse_rtp([(0.0, 1, 0), (0.02, 2, 160)], 160)
    return CallResult("PCMU", percent, rtp, 0.999 if clean else 0.5, 0.999, "")


def test_the_smallest_clean_quota_lies_above_every_broken_one() -> None:
    results = [_result(12, True), _result(6, False), _result(4, True), _result(3, False)]
    assert smallest_clean(results, 0.99) == 12
    assert smallest_clean([_result(6, True), _result(3, True)], 0.99) == 3
    assert smallest_clean([_result(6, False)], 0.99) is None
