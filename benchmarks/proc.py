"""What /proc tells about a caller's processes: CPU time, resident memory, the process tree.

CPU time comes from the scheduler's per-thread nanosecond counters (``task/TID/schedstat``,
first field), which resolve an idle span's few milliseconds; a thread that exits between two
samples takes its counter with it, so when one did, the delta falls back to ``stat``'s
utime+stime, which keeps dead threads' time but counts in clock ticks (10 ms).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

TICK = 1.0 / os.sysconf("SC_CLK_TCK")


def tree(pid: int) -> list[int]:
    """``pid`` and its descendants that are alive now."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(parent, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        if Path(f"/proc/{current}").exists():
            found.append(current)
        todo.extend(children.get(current, []))
    return found


@dataclass(frozen=True, slots=True)
class CpuSample:
    threads: dict[tuple[int, int], int]  #: (pid, tid) -> nanoseconds on a CPU
    ticks: dict[int, int]  #: pid -> utime + stime in clock ticks


def cpu_sample(pids: list[int]) -> CpuSample:
    threads: dict[tuple[int, int], int] = {}
    ticks: dict[int, int] = {}
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            ticks[pid] = int(fields[11]) + int(fields[12])
            for task in Path(f"/proc/{pid}/task").iterdir():
                threads[(pid, int(task.name))] = int((task / "schedstat").read_text().split()[0])
        except (OSError, ValueError):
            continue
    return CpuSample(threads, ticks)


def cpu_seconds(before: CpuSample, after: CpuSample) -> float:
    """CPU seconds spent between two samples of the same processes (see the module doc)."""
    if set(before.threads) <= set(after.threads):
        return sum(ns - before.threads.get(key, 0) for key, ns in after.threads.items()) / 1e9
    return sum(t - before.ticks.get(pid, 0) for pid, t in after.ticks.items()) * TICK


def memory_kib(pids: list[int], field: str) -> int:
    """``VmRSS`` or ``VmHWM`` summed over ``pids``, in KiB."""
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith(field + ":"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total
