"""The media clock over a 10 s loopback stream: packets leave every 20 ms without drift.

The figures (interval mean, standard deviation, 99th percentile of the deviation, CPU per
call-minute) are the benchmark's to print: ``python -m benchmarks.media_pacing``. This test
asserts only bounds loose enough for a loaded CI machine, so it fails on a real pacing fault
(sleep-accumulated drift, bursts, lost ticks) and not on scheduling noise.
"""

from __future__ import annotations

import asyncio

import pytest

from benchmarks.media_pacing import measure

pytestmark = pytest.mark.timeout(60)


def test_ten_seconds_of_rtp_are_paced_at_20_ms_without_drift() -> None:
    report = asyncio.run(measure(10.0, "PCMU"))
    print("\n".join(report.lines()))
    assert 495 <= report.packets <= 560, report  # 10 s plus the warm-up second, at 50/s
    assert abs(report.mean_ms - 20.0) < 0.05, report  # drifting 0.25 % would show here
    assert abs(report.drift_ms) < 20.0, report
    assert report.p99_dev_ms < 5.0, report
    assert report.stats.packets_lost == 0 and report.stats.late == 0, report.stats
    assert report.stats.packets_received >= report.packets - 2, report.stats


def test_a_call_wakes_the_media_thread_once_per_tick_and_the_event_loop_not_at_all() -> None:
    """The media thread sleeps to each tick's deadline and drains the sockets then, so one
    wake-up per 20 ms does a call's work; nothing of a call wakes the event loop (Linux figures
    from /proc; the loop's own sleep through the run is one wake-up)."""
    report = asyncio.run(measure(3.0, "PCMU"))
    threads = report.threads
    assert threads is not None
    ticks = 3.0 * 50
    assert 0.5 * ticks <= threads.media_wakeups <= 1.5 * ticks, threads
    assert threads.other_wakeups <= 3, threads
