"""The media thread's priority: real-time when allowed, else a lower nice value, else as is."""

from __future__ import annotations

import os
import threading

import pytest

from intercom.runtime.priority import (
    MEDIA_NICE,
    RT_PRIORITY,
    SchedulerCalls,
    raise_thread_priority,
)


class FakeScheduler:
    """Records what was asked; refuses what it is told to refuse."""

    def __init__(self, *, fifo: bool, nice: int = 0, floor: int = 20, root: bool = False) -> None:
        self.fifo_allowed = fifo
        self.nice = nice
        self.floor = floor  # RLIMIT_NICE's lowest value
        self.root = root
        self.fifo: int | None = None
        self.asked: list[int] = []

    def calls(self) -> SchedulerCalls:
        return SchedulerCalls(self.set_fifo, lambda: self.nice, self.set_nice, lambda: self.floor)

    def set_fifo(self, priority: int) -> None:
        if not self.fifo_allowed:
            raise PermissionError(1, "Operation not permitted")
        self.fifo = priority

    def set_nice(self, value: int) -> None:
        self.asked.append(value)
        if value < self.nice and value < self.floor and not self.root:
            raise PermissionError(13, "Permission denied")
        self.nice = value


def test_real_time_when_allowed() -> None:
    fake = FakeScheduler(fifo=True)
    assert raise_thread_priority(fake.calls()) == f"real-time priority {RT_PRIORITY} (SCHED_FIFO)"
    assert fake.fifo == RT_PRIORITY and fake.asked == []


def test_nice_when_real_time_is_refused() -> None:
    fake = FakeScheduler(fifo=False, root=True)
    assert raise_thread_priority(fake.calls()) == f"nice {MEDIA_NICE}"
    assert fake.nice == MEDIA_NICE


def test_nice_as_low_as_the_limit_allows() -> None:
    fake = FakeScheduler(fifo=False, floor=-5)  # systemd LimitNICE=-5
    assert raise_thread_priority(fake.calls()) == "nice -5"
    assert fake.asked == [MEDIA_NICE, -5]


def test_nothing_permitted_leaves_the_thread_as_it_was() -> None:
    fake = FakeScheduler(fifo=False, nice=0, floor=20)
    assert "normal priority" in raise_thread_priority(fake.calls())
    assert fake.nice == 0 and fake.fifo is None


def test_a_thread_already_nicer_than_asked_is_not_lowered() -> None:
    fake = FakeScheduler(fifo=False, nice=-15, root=True)
    assert "normal priority" in raise_thread_priority(fake.calls())
    assert fake.asked == [] and fake.nice == -15


def test_on_this_system_only_the_calling_thread_changes() -> None:
    """The real calls: whatever this machine permits, other threads keep their priority."""
    before = os.getpriority(os.PRIO_PROCESS, 0), os.sched_getscheduler(0)
    got: list[str] = []
    thread = threading.Thread(target=lambda: got.append(raise_thread_priority()))
    thread.start()
    thread.join(timeout=5)
    assert got and got[0], got
    assert (os.getpriority(os.PRIO_PROCESS, 0), os.sched_getscheduler(0)) == before


@pytest.mark.parametrize("error", [OSError, AttributeError])
def test_a_platform_without_the_calls_is_quiet(error: type[Exception]) -> None:
    def refuse(*_: object) -> int:
        raise error("no")

    calls = SchedulerCalls(refuse, refuse, refuse, refuse)
    assert raise_thread_priority(calls) == "normal priority (no scheduling calls here)"
