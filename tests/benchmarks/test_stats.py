"""The side-by-side benchmark's pure figures: intervals, percentiles, spreads."""

from __future__ import annotations

import pytest

from benchmarks.stats import interval_stats, intervals, percentile, spread


def test_percentile_interpolates_between_ranks() -> None:
    assert percentile([4.0, 1.0, 3.0, 2.0], 50.0) == 2.5
    assert percentile([1.0, 2.0, 3.0, 4.0, 5.0], 99.0) == pytest.approx(4.96)
    assert percentile([7.0], 99.0) == 7.0
    assert percentile([1.0, 9.0], 0.0) == 1.0
    assert percentile([1.0, 9.0], 100.0) == 9.0


@pytest.mark.parametrize("values, q", [([], 50.0), ([1.0], 101.0), ([1.0], -1.0)])
def test_percentile_refuses_nonsense(values: list[float], q: float) -> None:
    with pytest.raises(ValueError):
        percentile(values, q)


def test_intervals_sort_the_capture_first() -> None:
    assert intervals([0.04, 0.0, 0.02]) == pytest.approx([0.02, 0.02])


def test_perfect_pacing_has_no_deviation() -> None:
    stats = interval_stats([n * 0.020 for n in range(101)])
    assert stats.packets == 101
    assert stats.mean_ms == pytest.approx(20.0)
    assert stats.sd_ms == pytest.approx(0.0, abs=1e-9)
    assert stats.p99_dev_ms == pytest.approx(0.0, abs=1e-9)
    assert stats.max_dev_ms == pytest.approx(0.0, abs=1e-9)
    assert stats.gaps == 0


def test_one_late_packet_and_one_gap() -> None:
    # 0, 20, 40, 63 (3 ms late), 80, 140 (a 60 ms hole: two packets missing)
    stats = interval_stats([0.0, 0.020, 0.040, 0.063, 0.080, 0.140])
    assert stats.mean_ms == pytest.approx(28.0)
    assert stats.max_dev_ms == pytest.approx(40.0)
    assert stats.gaps == 1
    # deviations: 0, 0, 3, 3, 40 -> p99 interpolates between 3 and 40
    assert stats.p99_dev_ms == pytest.approx(3 + 0.96 * 37)


def test_interval_stats_needs_two_packets() -> None:
    with pytest.raises(ValueError):
        interval_stats([1.0])


def test_spread_is_median_with_min_and_max() -> None:
    s = spread([3.0, 1.0, 2.0])
    assert (s.median, s.low, s.high, s.runs) == (2.0, 1.0, 3.0, 3)
    with pytest.raises(ValueError):
        spread([])
