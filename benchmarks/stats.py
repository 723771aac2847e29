"""Pure figures of the side-by-side benchmark: RTP send intervals and spreads over runs.

No clock, no socket: everything here takes the numbers the capture and the /proc samples gave
and returns figures, so that tests/benchmarks can check it with exact inputs.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

PTIME = 0.020
"""The packet time of every caller's G.711 stream: one RTP packet per 20 ms."""
GAP_FACTOR = 1.5
"""An interval longer than this many packet times is a gap: a packet came half a frame late."""


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100) with linear interpolation between ranks (numpy's
    default); ValueError for no values."""
    if not values:
        raise ValueError("percentile of no values")
    if not 0.0 <= q <= 100.0:
        raise ValueError(f"percentile {q} is outside 0-100")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100.0
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


@dataclass(frozen=True, slots=True)
class IntervalStats:
    """Send pacing of one RTP stream, in milliseconds, from packet times seen on the wire."""

    packets: int
    mean_ms: float
    sd_ms: float  #: population standard deviation of the intervals
    p99_dev_ms: float  #: 99th percentile of |interval - ptime|
    max_dev_ms: float  #: largest |interval - ptime|
    gaps: int  #: intervals longer than GAP_FACTOR packet times


def intervals(times: Sequence[float]) -> list[float]:
    """Seconds between consecutive packet times (sorted first: capture order may differ)."""
    ordered = sorted(times)
    return [b - a for a, b in itertools.pairwise(ordered)]


def interval_stats(times: Sequence[float], ptime: float = PTIME) -> IntervalStats:
    """Pacing of packets sent at ``times`` (seconds); ValueError for fewer than two."""
    gaps_s = intervals(times)
    if not gaps_s:
        raise ValueError("pacing needs at least two packets")
    mean = sum(gaps_s) / len(gaps_s)
    variance = sum((g - mean) ** 2 for g in gaps_s) / len(gaps_s)
    deviations = [abs(g - ptime) for g in gaps_s]
    return IntervalStats(
        packets=len(times),
        mean_ms=mean * 1e3,
        sd_ms=math.sqrt(variance) * 1e3,
        p99_dev_ms=percentile(deviations, 99.0) * 1e3,
        max_dev_ms=max(deviations) * 1e3,
        gaps=sum(g > GAP_FACTOR * ptime for g in gaps_s),
    )


@dataclass(frozen=True, slots=True)
class Spread:
    """The median of a figure over runs, with its smallest and largest value."""

    median: float
    low: float
    high: float
    runs: int


def spread(values: Sequence[float]) -> Spread:
    """Median, min and max of ``values``; ValueError for none."""
    if not values:
        raise ValueError("spread of no values")
    return Spread(percentile(values, 50.0), min(values), max(values), len(values))
