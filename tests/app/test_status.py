"""The call history, the line systemd shows and the events ``intercom watch`` follows, from the
doorbell driven by hand (the fake clock and wall of tests/app/test_doorbell.py)."""

from __future__ import annotations

from intercom.app.call_record import HISTORY_SIZE, CallSummary
from intercom.app.status import (
    CALL_STATES,
    REGISTRATION_STATES,
    CallState,
    changes,
    iso_time,
    status_line,
)
from intercom.sip.events import (
    CallAnswered,
    CallEnded,
    CallFailed,
    RegistrationFailed,
    RegistrationSucceeded,
)
from intercom.sip.locate import HostPort

from .test_doorbell import WALL, Bell, stats

LINE = {"user": "door", "server": "pbx.example (UDP)", "target": "sip:**9@pbx.example"}


def test_the_states_status_shows_are_the_state_enums_with_answering_shown_as_ringing() -> None:
    assert CALL_STATES == ("idle", "calling", "ringing", "connected", "ending")
    assert REGISTRATION_STATES == ("registered", "registering", "failed", "disabled")
    bell = Bell()
    bell.incoming("in1")  # allowed, waiting for its answer delay
    assert bell.bell.state is CallState.ANSWERING
    assert bell.status()["call"] == {"state": "ringing"}


def test_the_history_keeps_the_last_calls_newest_first_with_who_answered() -> None:
    bell = Bell()
    for n in range(HISTORY_SIZE + 3):
        bell.next_call_id = f"c{n}"
        bell.at(n * 100.0)
        bell.connected(f"c{n}")
        bell.bell.call_stats(f"c{n}", stats(codec="G722"))
        bell.at(n * 100.0 + 7.5)
        bell.event(CallEnded(f"c{n}", "BYE from peer", True))
    history = bell.status()["history"]
    assert len(history) == HISTORY_SIZE
    assert history[0] == {
        "time": iso_time(WALL + (HISTORY_SIZE + 2) * 100.0), "direction": "outgoing",
        "outcome": "answered", "duration": 7.5, "codec": "G722",
        "answered_by": "<sip:family@pbx.example>",
    }  # fmt: skip
    assert history[-1]["time"] == iso_time(WALL + 300.0)  # the 3 oldest fell off


def test_an_unanswered_and_an_incoming_call_in_the_history() -> None:
    bell = Bell()
    bell.placed("c1")
    bell.event(CallFailed("c1", 486, "Busy Here"))
    bell.at(10.0)
    bell.incoming("in1", caller='"Alice" <sip:alice@pbx.example>;tag=x')
    bell.at(12.0)  # answered after the delay
    bell.at(15.0)
    bell.event(CallEnded("in1", "BYE from peer", True))
    newest, oldest = bell.status()["history"]
    assert (oldest["direction"], oldest["outcome"], oldest["duration"]) == ("outgoing", "busy", 0.0)
    assert oldest["answered_by"] is None
    assert newest["direction"] == "incoming" and newest["duration"] == 3.0
    assert newest["answered_by"] == '"Alice" <sip:alice@pbx.example>'
    assert newest["time"] == iso_time(WALL + 10.0)


def test_history_entries_round_trip_and_damaged_ones_are_refused() -> None:
    entry = CallSummary(1.5, "outgoing", "answered", 3.0, "PCMU", "<sip:a@b>")
    assert CallSummary.from_json(entry.to_json()) == entry
    assert CallSummary.from_json({"at": "x"}) is None
    assert CallSummary.from_json({**entry.to_json(), "codec": 7}) is None


def test_the_status_line_tells_registration_and_call() -> None:
    bell = Bell(sip_server=HostPort("pbx.example"))
    line = lambda: status_line(bell.bell.snapshot(), **LINE)  # noqa: E731
    assert line() == "registering as door at pbx.example (UDP)"
    bell.event(RegistrationFailed("pbx", 403, "403 Forbidden", 60.0))
    assert line() == (
        "registration as door at pbx.example (UDP) failed: 403 Forbidden; retrying in 60 s"
    )
    bell.event(RegistrationSucceeded("pbx", 600))
    assert line() == "registered as door at pbx.example (UDP)"
    bell.placed("c1")
    assert line() == "calling sip:**9@pbx.example"
    bell.event(CallAnswered("c1", None, "<sip:kitchen@pbx.example>;tag=9"))
    assert line() == "in a call with <sip:kitchen@pbx.example>"
    no_server = Bell()
    assert status_line(no_server.bell.snapshot(), **{**LINE, "server": None}) == (
        "no SIP server: direct calls only"
    )


def test_changes_are_the_events_watch_shows() -> None:
    bell = Bell(sip_server=HostPort("pbx.example"))
    seen = []
    shown = bell.bell.snapshot()
    assert changes(None, shown) == []

    def step() -> None:
        nonlocal shown
        now = bell.bell.snapshot()
        seen.extend(changes(shown, now))
        shown = now

    bell.event(RegistrationSucceeded("pbx", 600))
    step()
    bell.placed("c1")
    step()
    bell.event(CallAnswered("c1", None, "<sip:kitchen@pbx.example>"))
    step()
    bell.bell.open_request(0.0)
    step()
    bell.at(4.0)
    bell.event(CallEnded("c1", "BYE from peer", True))
    step()
    step()  # nothing new
    assert seen == [
        {"event": "registration", "state": "registered"},
        {"event": "ring"},
        {"event": "call", "state": "calling", "direction": "outgoing"},
        {"event": "call", "state": "connected", "direction": "outgoing",
         "peer": "<sip:kitchen@pbx.example>"},
        {"event": "door opened", "count": 1},
        {"event": "call ended", "direction": "outgoing", "outcome": "answered", "duration": 4.0,
         "codec": None, "answered_by": "<sip:kitchen@pbx.example>"},
    ]  # fmt: skip
