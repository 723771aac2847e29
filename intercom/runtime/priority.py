"""Scheduling priority of the media thread: its 20 ms ticks go first on a busy CPU.

A call's media thread (``runtime/call_media.py``) works well under a millisecond per tick but
must do it on time: on a busy or slow CPU (a Pi Zero 2 running something else too) a tick that
waits behind another process for its time slice sends late and plays late. So the thread asks,
for itself only (Linux schedules threads, and ``0`` names the calling one), in this order:

1. ``SCHED_FIFO`` at :data:`RT_PRIORITY`, a low real-time priority (PortAudio's own callback
   thread, when it gets one, sits above it): allowed to root, or with ``RLIMIT_RTPRIO`` at least
   that high (systemd: ``LimitRTPRIO=``) and realtime not forbidden (``RestrictRealtime=no``).
   A cgroup without realtime runtime (``cpu.rt_runtime_us`` 0) refuses it too.
2. Else the nice value :data:`MEDIA_NICE`, or the lowest ``RLIMIT_NICE`` allows if that is
   higher (systemd: ``LimitNICE=``), when it beats the thread's current nice value.

Whatever the system refuses is skipped quietly: the call runs at normal priority, as before.
The media thread sleeps most of the time, so even real-time it takes well under 5 % of a core;
the kernel's real-time throttling (95 % per second) bounds a runaway thread anyway.
"""

from __future__ import annotations

import logging
import os
import resource
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["MEDIA_NICE", "RT_PRIORITY", "SchedulerCalls", "raise_thread_priority"]

logger = logging.getLogger(__name__)

RT_PRIORITY = 10
"""``SCHED_FIFO`` priority asked for (1 lowest, 99 highest)."""
MEDIA_NICE = -10
"""Nice value asked for when real-time is refused."""


@dataclass(frozen=True, slots=True)
class SchedulerCalls:
    """The OS calls used, replaceable in tests. Each acts on the calling thread."""

    set_fifo: Callable[[int], None]
    get_nice: Callable[[], int]
    set_nice: Callable[[int], None]
    nice_floor: Callable[[], int]  # the lowest nice value RLIMIT_NICE allows without privilege


def _set_fifo(priority: int) -> None:
    os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(priority))


def _get_nice() -> int:
    return os.getpriority(os.PRIO_PROCESS, 0)


def _set_nice(value: int) -> None:
    os.setpriority(os.PRIO_PROCESS, 0, value)


def _nice_floor() -> int:
    soft, _ = resource.getrlimit(resource.RLIMIT_NICE)
    if soft == resource.RLIM_INFINITY:
        return -20
    return 20 - min(int(soft), 40)  # the limit counts 40 - (nice + 20), Linux's encoding


def _linux() -> SchedulerCalls:
    return SchedulerCalls(_set_fifo, _get_nice, _set_nice, _nice_floor)


def raise_thread_priority(calls: SchedulerCalls | None = None) -> str:
    """Raise the calling thread's priority as far as allowed; say what it got (for the log)."""
    calls = calls or _linux()
    try:
        calls.set_fifo(RT_PRIORITY)
        return f"real-time priority {RT_PRIORITY} (SCHED_FIFO)"
    except (OSError, AttributeError):  # refused, or a platform without SCHED_FIFO
        pass
    try:
        current = calls.get_nice()
    except (OSError, AttributeError):
        return "normal priority (no scheduling calls here)"
    wanted = MEDIA_NICE
    for value in (wanted, max(wanted, calls.nice_floor())):
        if value >= current:
            break
        try:
            calls.set_nice(value)
            return f"nice {value}"
        except (OSError, AttributeError):
            continue
    return f"normal priority (nice {current}: a higher one is not permitted)"
