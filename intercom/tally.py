"""Counts per source that are told once, then once an interval: a flood without a log line each.

A :class:`SourceTally` counts events per source address and kind (a refused INVITE, a dropped
datagram, a TCP connection over its cap). The first event of a kind from a source is to be
logged at once (:meth:`SourceTally.count` says so), at most ``announced`` such lines per
interval whatever the number of sources, so that a flood of spoofed addresses cannot fill the
log with first sightings; the others are counted, and :meth:`SourceTally.report` hands back,
once per interval, the counts of the busiest ``reported`` sources by name and the rest summed
up. At most ``max_sources`` sources are remembered; the least recently seen is forgotten first
and its counts go into that sum. A source may carry notes (the method refused, the last
reason) until its next report.

Bookkeeping only: no logging (a :class:`CountedLog` words its lines), no clock (``now`` is
passed in), no timer (the owner arms one at :meth:`SourceTally.get_timer`).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field

__all__ = ["CountedLog", "Report", "SourceTally", "Tally"]


@dataclass(slots=True)
class Tally:
    """One source: its counts since the last report, the kinds already told, its notes."""

    counts: dict[str, int] = field(default_factory=dict)
    announced: set[str] = field(default_factory=set)
    notes: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Report:
    """What an interval counted: ``span`` ("in the last 60 s"), the busiest sources by name
    (most counted first), and the counts of all the others summed up."""

    span: str
    sources: list[tuple[str, Tally]]
    rest: dict[str, int]
    others: int


class SourceTally:
    def __init__(
        self, *, max_sources: int, interval: float = 60.0, announced: int = 20, reported: int = 20
    ) -> None:
        self.interval = interval
        self._max_sources = max_sources
        self._announced_limit = announced
        self._reported = reported
        self._tallies: OrderedDict[str, Tally] = OrderedDict()
        self._window_start: float | None = None  # first unreported count since the last report
        self._announced = 0  # immediate lines in the current interval
        self._announce_reset_at = 0.0
        self._evicted: dict[str, int] = {}
        self._evicted_sources = 0

    @property
    def sources(self) -> int:
        """Sources remembered now."""
        return len(self._tallies)

    def count(self, host: str, kind: str, now: float) -> tuple[Tally, bool]:
        """One event of ``kind`` from ``host``: its tally, and whether to tell it at once
        (then it is not counted for the report)."""
        tallies = self._tallies
        tally = tallies.get(host)
        if tally is None:
            if len(tallies) >= self._max_sources:
                _, oldest = tallies.popitem(last=False)
                if oldest.counts:
                    _add(self._evicted, oldest.counts)
                    self._evicted_sources += 1
            tally = tallies[host] = Tally()
        else:
            tallies.move_to_end(host)
        if now >= self._announce_reset_at:
            self._announce_reset_at = now + self.interval
            self._announced = 0
        if kind not in tally.announced and self._announced < self._announced_limit:
            tally.announced.add(kind)
            self._announced += 1
            return tally, True
        tally.counts[kind] = tally.counts.get(kind, 0) + 1
        if self._window_start is None:
            self._window_start = now
        return tally, False

    def get_timer(self) -> float | None:
        """When the counts are due to be reported; None: nothing is pending."""
        start = self._window_start
        return None if start is None else start + self.interval

    def report(self, now: float) -> Report | None:
        """What was counted since the last report (None: nothing), and a new interval."""
        start = self._window_start
        if start is None:
            return None
        self._window_start = None
        pending = [(host, t) for host, t in self._tallies.items() if t.counts]
        pending.sort(key=lambda item: -sum(item[1].counts.values()))
        named: list[tuple[str, Tally]] = []
        rest, others = self._evicted, self._evicted_sources
        for rank, (host, tally) in enumerate(pending):
            told = Tally(tally.counts, tally.announced, tally.notes)
            if rank < self._reported:
                named.append((host, told))
            else:
                _add(rest, tally.counts)
                others += 1
            tally.counts, tally.notes = {}, {}
        self._evicted, self._evicted_sources = {}, 0
        span = f"in the last {max(1, round(now - start))} s"
        return Report(span, named, rest, others)


def _add(into: dict[str, int], counts: dict[str, int]) -> None:
    for kind, n in counts.items():
        into[kind] = into.get(kind, 0) + n


class CountedLog:
    """A log that counts instead of repeating itself: a :class:`SourceTally` and its report
    timer; a subclass words the immediate lines and the report (:meth:`_tell`)."""

    def __init__(self, tally: SourceTally) -> None:
        self._tally = tally

    @property
    def sources(self) -> int:
        return self._tally.sources

    def get_timer(self) -> float | None:
        """When the counts are due to be reported; None: nothing is pending."""
        return self._tally.get_timer()

    def handle_timer(self, now: float) -> None:
        timer = self._tally.get_timer()
        if timer is not None and now >= timer:
            self.flush(now)

    def flush(self, now: float) -> None:
        """Log every pending count now (the interval's end, or shutdown)."""
        report = self._tally.report(now)
        if report is not None:
            self._tell(report)

    def _tell(self, report: Report) -> None:
        raise NotImplementedError
