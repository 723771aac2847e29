"""Tests for intercom.runtime.inbound_limits: the pools of connections others open to the door,
and the log that counts refusals instead of repeating them. Time is passed in: no clock."""

from __future__ import annotations

import logging

import pytest

from intercom.runtime import inbound_limits
from intercom.runtime.inbound_limits import (
    ANNOUNCED_PER_INTERVAL,
    MAX_STRANGERS,
    MAX_TRUSTED,
    PER_SOURCE,
    REPORT_INTERVAL,
    REPORTED_SOURCES,
    TRUSTED_PER_SOURCE,
    ConnectionLog,
    InboundLimits,
)

LOGGER = "intercom.runtime.inbound_limits"
REASON = "refused: 4 open from it"


def lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == LOGGER]


def test_the_caps_are_the_documented_ones() -> None:
    assert (PER_SOURCE, MAX_STRANGERS, TRUSTED_PER_SOURCE, MAX_TRUSTED) == (4, 32, 16, 32)


def test_a_stranger_gets_its_share_and_its_place_back_when_one_closes() -> None:
    limits = InboundLimits()  # nobody trusted
    assert [limits.admit("192.0.2.7") for _ in range(PER_SOURCE)] == [(False, None)] * PER_SOURCE
    assert limits.admit("192.0.2.7") == (False, "refused: 4 open from it")
    assert limits.admit("192.0.2.8") == (False, None)
    limits.release("192.0.2.7", False)
    assert limits.admit("192.0.2.7") == (False, None)
    assert limits.held == PER_SOURCE + 1
    limits.release("203.0.113.1", False)  # never admitted: nothing to release
    assert limits.held == PER_SOURCE + 1


def test_strangers_fill_their_pool_not_the_trusted_one() -> None:
    server = "198.51.100.1"
    limits = InboundLimits(lambda host: host == server)
    for n in range(MAX_STRANGERS):
        assert limits.admit(f"192.0.2.{n}") == (False, None)
    assert limits.admit("192.0.2.200") == (False, "refused: 32 open from untrusted sources")
    for _ in range(TRUSTED_PER_SOURCE):
        assert limits.admit(server) == (True, None)
    assert limits.admit(server) == (True, "refused: 16 open from it")
    limits.release(server, True)  # released in its own pool: the strangers' is still full
    assert limits.admit("192.0.2.200")[1] is not None
    assert limits.admit(server) == (True, None)
    limits.release("192.0.2.0", False)
    assert limits.admit("192.0.2.200") == (False, None)


def test_one_source_is_logged_once_then_once_a_minute_with_a_count(
    caplog: pytest.LogCaptureFixture,
) -> None:
    log = ConnectionLog()
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        for n in range(1000):
            log.count("192.0.2.7", REASON, 100.0 + n * 0.05)  # 1000 in 50 s
        assert log.get_timer() == pytest.approx(100.05 + REPORT_INTERVAL)
        log.handle_timer(150.0)  # not yet due: nothing
        assert len(lines(caplog)) == 1
        log.handle_timer(100.05 + REPORT_INTERVAL)
        for n in range(10):  # the next minute: counted again, not announced again
            log.count("192.0.2.7", REASON, 200.0 + n)
        log.flush(230.0)
    assert lines(caplog) == [
        "x tcp connection from 192.0.2.7 refused: 4 open from it; more are counted and logged"
        " once a minute",
        "x 999 tcp connections from 192.0.2.7 in the last 60 s refused: 4 open from it",
        "x 10 tcp connections from 192.0.2.7 in the last 30 s refused: 4 open from it",
    ]
    assert log.get_timer() is None


def test_many_sources_give_a_bounded_number_of_lines(caplog: pytest.LogCaptureFixture) -> None:
    log = ConnectionLog()
    sources = [f"192.0.2.{n}" for n in range(100)]
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        for round_ in range(5):
            for n, host in enumerate(sources):
                log.count(host, REASON, 10.0 + round_ + n * 0.001)
        due = log.get_timer()
        assert due is not None
        log.handle_timer(due)
    text = lines(caplog)
    announced = [line for line in text if "more are counted" in line]
    assert len(announced) == ANNOUNCED_PER_INTERVAL  # not one per source
    named = [line for line in text if line.startswith("x 5 tcp") or line.startswith("x 4 tcp")]
    assert len(named) == REPORTED_SOURCES
    # Named: 20 of the 80 with 5 counted; summed: their 60 others (5 each) and the 20
    # announced ones (4 each).
    assert text[-1] == (
        "x tcp connections from 80 other sources in the last 60 s: 380 refused: 4 open from it"
    )
    assert len(text) == ANNOUNCED_PER_INTERVAL + REPORTED_SOURCES + 1
    counted = sum(int(line.split()[1]) for line in named) + 380
    assert counted + ANNOUNCED_PER_INTERVAL == 500  # every refusal is accounted for


def test_forgotten_sources_are_still_counted(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(inbound_limits, "MAX_SOURCES", 3)
    monkeypatch.setattr(inbound_limits, "ANNOUNCED_PER_INTERVAL", 0)
    log = ConnectionLog()
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        for n in range(10):
            log.count(f"192.0.2.{n}", "closed: no SIP message within 32 s", 1.0)
        assert log.sources == 3
        log.flush(2.0)
    assert lines(caplog)[-1] == (
        "x tcp connections from 7 other sources in the last 1 s:"
        " 7 closed: no SIP message within 32 s"
    )
    assert len(lines(caplog)) == 4


def test_a_detail_is_shown_once_and_cut_short(caplog: pytest.LogCaptureFixture) -> None:
    log = ConnectionLog()
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        log.count("192.0.2.7", "closed: not a SIP stream", 1.0, "x" * 500)
        log.count("192.0.2.7", "closed: not a SIP stream", 2.0, "y" * 500)
        log.flush(3.0)
    first, summary = lines(caplog)
    assert first.endswith(f"({'x' * ConnectionLog.DETAIL_CHARS}...); more are counted and"
                          " logged once a minute")  # fmt: skip
    assert summary == "x 1 tcp connections from 192.0.2.7 in the last 1 s closed: not a SIP stream"
