"""SourceTally: first sightings told at once (bounded), the rest counted and reported once an
interval, the busiest by name, the rest and the forgotten summed."""

from __future__ import annotations

from intercom.tally import CountedLog, Report, SourceTally


def test_the_first_of_each_kind_is_told_then_counted_until_the_report() -> None:
    tally = SourceTally(max_sources=8, interval=60.0)
    assert tally.count("192.0.2.1", "refused", 0.0)[1] is True
    assert tally.count("192.0.2.1", "refused", 1.0)[1] is False
    assert tally.count("192.0.2.1", "dropped", 2.0)[1] is True  # another kind: told too
    assert tally.get_timer() == 61.0  # from the first counted event
    report = tally.report(61.0)
    assert report is not None and report.span == "in the last 60 s"
    assert [(host, t.counts) for host, t in report.sources] == [("192.0.2.1", {"refused": 1})]
    assert tally.get_timer() is None and tally.report(62.0) is None
    assert tally.count("192.0.2.1", "refused", 70.0)[1] is False  # told once, ever


def test_first_sightings_are_bounded_per_interval_whatever_the_sources() -> None:
    tally = SourceTally(max_sources=100, interval=60.0, announced=3)
    told = [tally.count(f"192.0.2.{n}", "refused", 1.0)[1] for n in range(10)]
    assert told == [True] * 3 + [False] * 7
    assert tally.count("192.0.2.50", "refused", 61.0)[1] is True  # a new interval


def test_the_busiest_are_named_and_the_rest_and_the_forgotten_summed() -> None:
    tally = SourceTally(max_sources=4, interval=60.0, announced=0, reported=2)
    for n, times in enumerate([5, 1, 3, 2]):
        for _ in range(times):
            tally.count(f"192.0.2.{n}", "refused", 1.0)
    tally.count("192.0.2.9", "refused", 2.0)  # forgets 192.0.2.0, the least recently seen
    assert tally.sources == 4
    report = tally.report(3.0)
    assert report is not None
    assert [(host, t.counts["refused"]) for host, t in report.sources] == [
        ("192.0.2.2", 3),
        ("192.0.2.3", 2),
    ]
    assert (report.rest, report.others) == ({"refused": 5 + 1 + 1}, 3)


def test_notes_last_until_the_report() -> None:
    tally = SourceTally(max_sources=4, interval=60.0, announced=0)
    entry, _ = tally.count("192.0.2.1", "malformed", 1.0)
    entry.notes["reason"] = "bad Via"
    report = tally.report(61.0)
    assert report is not None and report.sources[0][1].notes == {"reason": "bad Via"}
    assert tally.count("192.0.2.1", "malformed", 62.0)[0].notes == {}


class _Told(CountedLog):
    def __init__(self) -> None:
        super().__init__(SourceTally(max_sources=4, interval=60.0, announced=0))
        self.told: list[Report] = []

    def _tell(self, report: Report) -> None:
        self.told.append(report)


def test_a_counted_log_tells_its_report_when_due_or_flushed() -> None:
    log = _Told()
    log._tally.count("192.0.2.1", "refused", 1.0)
    assert log.get_timer() == 61.0 and log.sources == 1
    log.handle_timer(60.0)
    assert log.told == []
    log.handle_timer(61.0)
    assert [r.sources[0][1].counts for r in log.told] == [{"refused": 1}]
    log._tally.count("192.0.2.1", "refused", 70.0)
    log.flush(75.0)  # at shutdown, before the interval ends
    assert len(log.told) == 2 and log.told[1].span == "in the last 5 s"
    log.flush(80.0)
    assert len(log.told) == 2  # nothing pending: nothing told
