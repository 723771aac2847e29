"""The doorbell state machine with a fake clock: every path of intercom/app/doorbell.py."""

from __future__ import annotations

import ipaddress
import json
import logging

import pytest

from intercom.app.actions import (
    AcceptCall,
    Action,
    HangUp,
    PlaceCall,
    PlayTone,
    PulseRelay,
    RejectCall,
    SetLed,
    StopTone,
)
from intercom.app.door_lock import ENTRY_TIMEOUT
from intercom.app.doorbell import (
    ENDING_TIMEOUT,
    FEEDBACK_TIME,
    TIMEOUTS,
    TRANSITIONS,
    CallState,
    Doorbell,
)
from intercom.app.outcome import outcome_of
from intercom.app.policy import AllowedCaller
from intercom.app.settings import Settings, SettingsError
from intercom.app.status import iso_time, render_status
from intercom.media.dtmf import DtmfDigit
from intercom.media.stream import StreamStats
from intercom.sip.events import (
    CallAnswered,
    CallEnded,
    CallFailed,
    CallProgressed,
    Event,
    IncomingCallCancelled,
    IncomingCallReceived,
    InfoReceived,
    RegistrationFailed,
    RegistrationSucceeded,
    Unregistered,
)
from intercom.sip.locate import HostPort
from intercom.sip.uri import SipUri

TARGET = SipUri.parse("sip:family@pbx.example")
PLACE = PlaceCall(TARGET, "c1")
SERVER = "192.0.2.10"
STRANGER = "203.0.113.66"
ALICE = '"Alice" <sip:alice@pbx.example>;tag=a1'
CODE = "1234"


WALL = 1_800_000_000.0
"""The Unix time of the fake clock's 0."""


class Bell:
    """A doorbell, a fake clock, and what it asked for."""

    def __init__(self, **overrides: object) -> None:
        options: dict[str, object] = {
            "call_target": TARGET,
            "door_code": CODE,
            "door_relay_pin": 22,
            "allowed_callers": (AllowedCaller("alice", "pbx.example"),),
            "trusted_hosts": (ipaddress.ip_network("10.0.0.0/24"),),
            "answer_delay": 2.0,
        }
        options.update(overrides)
        self.settings = Settings(**options)  # type: ignore[arg-type]
        self.next_call_id = "c1"  # the Call-ID of the next call placed
        self.bell = Doorbell(self.settings, lambda: self.next_call_id, lambda now: WALL + now)
        self.bell.set_server_addresses([SERVER])
        self.now = 0.0
        self.initial = self.drain()

    def drain(self) -> list[Action]:
        actions = []
        while (action := self.bell.next_action()) is not None:
            actions.append(action)
        return actions

    def at(self, now: float) -> Bell:
        """Move the clock to ``now``, firing every timer due on the way, in order."""
        assert now >= self.now
        while (timer := self.bell.get_timer()) is not None and timer <= now:
            self.now = max(self.now, timer)
            self.bell.handle_timer(self.now)
        self.now = now
        return self

    def advance(self, to: float) -> list[Action]:
        self.at(to)
        return self.drain()

    def press(self) -> list[Action]:
        self.bell.press(self.now)
        return self.drain()

    def event(self, event: Event) -> list[Action]:
        self.bell.on_event(event, self.now)
        return self.drain()

    def key(self, call_id: str, keys: str) -> list[Action]:
        for key in keys:
            self.bell.on_digit(call_id, DtmfDigit(key, 160, "rtp"), self.now)
        return self.drain()

    def status(self) -> dict:
        return render_status(self.bell.snapshot())

    @property
    def state(self) -> str:
        return str(self.status()["call"]["state"])

    # -- whole scenarios -------------------------------------------------------------------

    def placed(self, call_id: str = "c1") -> list[Action]:
        self.next_call_id = call_id
        actions = self.press()
        assert PlaceCall(TARGET, call_id) in actions
        return actions

    def connected(self, call_id: str = "c1") -> list[Action]:
        actions = self.placed(call_id)
        actions += self.event(CallProgressed(call_id, 180, "Ringing", 1))
        actions += self.event(CallAnswered(call_id, b"v=0\r\n", "<sip:family@pbx.example>"))
        assert self.state == "connected"
        return actions

    def incoming(
        self, call_id: str = "in1", source: str = SERVER, caller: str = ALICE, pai=None
    ) -> list[Action]:
        return self.event(IncomingCallReceived(call_id, caller, pai, source, 5060, b"v=0\r\n"))


@pytest.fixture
def bell() -> Bell:
    return Bell()


def stats(**overrides) -> StreamStats:
    values = dict(
        codec="PCMU", packets_sent=600, packets_received=598, packets_lost=2, late=0,
        concealed=2, jitter_ms=1.4444, dropped=0, skipped=0,
    )  # fmt: skip
    values.update(overrides)
    return StreamStats(**values)  # type: ignore[arg-type]


# ---- start, registration, LED -------------------------------------------------------------


def test_initial_led_and_status(bell):
    assert bell.initial == [SetLed("registered")]  # no server: direct calls, ready
    assert bell.status() == {
        "registration": {"state": "disabled", "last_status": None},
        "call": {"state": "idle"},
        "last_call": {
            "outcome": None, "codec": None, "duration": None, "packets_sent": None,
            "packets_received": None, "packets_lost": None, "jitter_ms": None,
        },
        "last_ring": None,
        "door": {"opened_count": 0, "locked_out": False},
        "history": [],
    }  # fmt: skip
    assert bell.bell.get_timer() is None


def test_registration_states_and_led():
    b = Bell(sip_server=HostPort("pbx.example"))
    assert b.initial == [SetLed("registering")]
    assert b.status()["registration"] == {"state": "registering", "last_status": None}
    assert b.event(RegistrationFailed("pbx", 401, "401 Unauthorized", 60.0)) == [SetLed("error")]
    assert b.status()["registration"] == {
        "state": "failed", "last_status": 401, "reason": "401 Unauthorized; retrying in 60 s"
    }  # fmt: skip
    assert b.event(RegistrationFailed("pbx", None, "timeout", 60.0)) == []  # LED unchanged
    assert b.status()["registration"] == {
        "state": "failed", "last_status": None, "reason": "timeout; retrying in 60 s"
    }  # fmt: skip
    assert b.event(RegistrationSucceeded("pbx", 600)) == [SetLed("registered")]
    assert b.event(RegistrationSucceeded("pbx", 600)) == []  # a refresh: no new SetLed
    assert b.status()["registration"] == {
        "state": "registered", "last_status": 200, "since": iso_time(WALL)
    }  # fmt: skip
    assert b.event(Unregistered("pbx")) == []  # "disabled" shows as ready too
    assert b.status()["registration"] == {"state": "disabled", "last_status": 200}


def test_registration_change_during_a_call_leaves_the_call_led(bell):
    bell.connected()
    assert bell.event(RegistrationFailed("pbx", 503, "503 Service Unavailable", 30.0)) == []
    assert bell.status()["registration"]["state"] == "failed"
    bell.event(CallEnded("c1", "BYE from peer", True))
    assert bell.drain() == []
    assert bell.status()["call"]["state"] == "idle"


# ---- press ---------------------------------------------------------------------------------


def test_press_places_one_call(bell):
    assert bell.press() == [SetLed("ringing"), PLACE]
    assert bell.state == "calling"
    assert bell.bell.get_timer() == 30.0  # the ring timeout counts from the press


def test_bounce_makes_one_call(bell):
    assert bell.bell.press(0.0) is True
    assert bell.bell.press(0.010) is False
    actions = bell.drain()
    assert actions.count(PLACE) == 1


@pytest.mark.parametrize("stage", ["calling", "ringing", "connected", "ending"])
def test_press_during_a_call_does_nothing(bell, stage, caplog):
    bell.press()
    if stage != "calling":
        bell.event(CallProgressed("c1", 180, "Ringing", 1))
    if stage in ("connected", "ending"):
        bell.event(CallAnswered("c1", None, "<sip:family@pbx.example>"))
    if stage == "ending":
        bell.bell.hangup_request(bell.now)
    bell.drain()
    assert bell.state == stage
    with caplog.at_level(logging.INFO, "intercom.app.doorbell"):
        assert bell.press() == []
    assert f"button pressed while {stage}: ignored" in caplog.text
    assert bell.state == stage


def test_press_without_target_gives_error_feedback(caplog):
    b = Bell(call_target=None)
    with caplog.at_level(logging.ERROR, "intercom.app.doorbell"):
        assert b.press() == [PlayTone("error"), SetLed("error")]
    assert "no call target is configured (INTERCOM_CALL_TARGET)" in caplog.text
    assert b.state == "idle"
    assert b.bell.get_timer() == FEEDBACK_TIME
    assert b.advance(FEEDBACK_TIME - 0.01) == []
    assert b.advance(FEEDBACK_TIME) == [SetLed("registered")]


def test_cooldown_after_a_call():
    b = Bell(cooldown=5.0)
    b.connected()
    b.at(10.0)
    b.event(CallEnded("c1", "BYE from peer", True))
    assert b.state == "idle"
    b.at(14.99)
    assert b.press() == []
    b.at(15.0)
    assert PLACE in b.press()


def test_cooldown_after_a_failed_call():
    b = Bell(cooldown=5.0)
    b.placed()
    b.at(1.0)
    b.event(CallFailed("c1", 486, "busy"))
    b.at(5.9)
    assert PLACE not in b.press()
    b.at(6.0)
    assert PLACE in b.press()


def test_zero_cooldown():
    b = Bell(cooldown=0.0)
    b.connected()
    b.event(CallEnded("c1", "BYE from peer", True))
    assert PLACE in b.press()


# ---- ringing, answer, failure --------------------------------------------------------------


def test_ringback_while_ringing(bell):
    bell.placed()
    assert bell.event(CallProgressed("c1", 180, "Ringing", 1)) == [PlayTone("ringback")]
    assert bell.state == "ringing"
    assert bell.event(CallProgressed("c1", 180, "Ringing", 2)) == []  # a second phone: no restart


def test_early_media_owns_the_speaker(bell):
    bell.placed()
    assert bell.event(CallProgressed("c1", 183, "Session Progress", 1, b"v=0\r\n")) == []
    assert bell.state == "ringing"
    assert bell.event(CallProgressed("c1", 180, "Ringing", 2)) == [PlayTone("ringback")]
    assert bell.event(CallProgressed("c1", 183, "Session Progress", 2, b"v=1\r\n")) == [StopTone()]


def test_answer_stops_ringback_and_starts_call_limit(bell):
    bell.placed()
    bell.event(CallProgressed("c1", 180, "Ringing", 1))
    bell.at(4.0)
    assert bell.event(CallAnswered("c1", None, "<sip:family@pbx.example>")) == [
        StopTone(),
        SetLed("in-call"),
    ]
    assert bell.state == "connected"
    assert bell.bell.get_timer() == 184.0  # max call duration from the answer; no ring timeout


def test_max_call_duration_ends_the_call(bell):
    bell.placed()
    bell.at(2.0)
    bell.event(CallAnswered("c1", None, "<sip:family@pbx.example>"))
    assert bell.advance(181.99) == []
    assert bell.advance(182.0) == [HangUp("c1", "max call duration")]
    assert bell.state == "ending"
    assert bell.event(CallEnded("c1", "max call duration", False)) == [SetLed("registered")]
    assert bell.state == "idle"
    assert bell.status()["last_call"]["outcome"] == "answered"
    assert bell.status()["last_call"]["duration"] == 180.0


def test_ring_timeout_cancels_as_no_answer(bell):
    bell.placed()
    bell.event(CallProgressed("c1", 180, "Ringing", 1))
    assert bell.advance(29.9) == []
    assert bell.advance(30.0) == [StopTone(), HangUp("c1", "ring timeout")]
    assert bell.state == "ending"
    assert bell.bell.press(30.5) is False
    # the CANCEL's 487 (RFC 3261 §9.1) ends it
    bell.at(30.2)
    assert bell.event(CallFailed("c1", 487, "cancelled")) == [
        PlayTone("error"),
        SetLed("error"),
    ]
    assert bell.status()["last_call"] == {
        "outcome": "no-answer", "codec": None, "duration": 0.0, "packets_sent": None,
        "packets_received": None, "packets_lost": None, "jitter_ms": None,
    }  # fmt: skip
    assert bell.advance(30.2 + FEEDBACK_TIME) == [SetLed("registered")]


def test_ring_timeout_before_anything_was_heard(bell):
    bell.placed("late")
    assert bell.advance(30.0) == [HangUp("late", "ring timeout")]  # no tone was playing
    assert bell.state == "ending"
    bell.event(CallFailed("late", 487, "cancelled"))
    assert bell.status()["last_call"]["outcome"] == "no-answer"


@pytest.mark.parametrize(
    ("status", "reason", "outcome", "tone"),
    [
        (486, "busy", "busy", "busy"),
        (600, "busy", "busy", "busy"),
        (603, "declined", "declined", "busy"),
        (480, "unavailable", "no-answer", "error"),
        (408, "timeout", "no-answer", "error"),
        (404, "unavailable", "failed", "error"),
        (503, "503 Service Unavailable", "failed", "error"),
        (None, "timeout", "failed", "error"),  # Timer B: nobody there
        (None, "unreachable", "failed", "error"),
    ],
)
def test_failures_give_feedback(bell, status, reason, outcome, tone):
    bell.placed()
    bell.event(CallProgressed("c1", 180, "Ringing", 1))
    bell.at(3.0)
    assert bell.event(CallFailed("c1", status, reason)) == [PlayTone(tone), SetLed("error")]
    assert bell.state == "idle"
    assert bell.status()["last_call"]["outcome"] == outcome
    assert outcome_of(status, reason) == outcome
    assert bell.advance(3.0 + FEEDBACK_TIME) == [SetLed("registered")]


def test_call_failed_to_start(bell, caplog):
    bell.press()
    with caplog.at_level(logging.ERROR, "intercom.app.doorbell"):
        bell.bell.call_failed_to_start("c1", "no free RTP port in 10000-10001", 0.0)
    assert bell.drain() == [PlayTone("error"), SetLed("error")]
    assert "could not start: no free RTP port in 10000-10001" in caplog.text
    assert bell.state == "idle"
    assert bell.status()["last_call"]["outcome"] == "failed"


def test_call_failed_to_start_without_a_call_is_ignored(bell):
    bell.bell.call_failed_to_start("c1", "whatever", 0.0)
    assert bell.drain() == []
    assert bell.status()["last_call"]["outcome"] is None


def test_the_call_id_is_known_from_the_press(bell):
    bell.next_call_id = "early"
    assert bell.press() == [SetLed("ringing"), PlaceCall(TARGET, "early")]
    assert bell.event(CallProgressed("early", 180, "Ringing", 1)) == [PlayTone("ringback")]
    assert bell.drain() == []
    bell.event(CallAnswered("early", None, "<sip:family@pbx.example>"))
    assert bell.state == "connected"


def test_events_of_other_calls_are_ignored(bell):
    bell.placed("c1")
    assert bell.event(CallProgressed("other", 180, "Ringing", 1)) == []
    assert bell.event(CallAnswered("other", None, "x")) == []
    assert bell.event(CallFailed("other", 486, "busy")) == []
    assert bell.event(CallEnded("other", "BYE from peer", True)) == []
    assert bell.event(IncomingCallCancelled("other")) == []
    assert bell.event(InfoReceived("c1", "application/dtmf", b"5")) == []  # DTMF: on_digit
    assert bell.state == "calling"


def test_events_of_a_call_not_placed_are_ignored(bell):
    assert bell.event(CallAnswered("stray", None, "x")) == []
    assert bell.state == "idle"


def test_ending_gives_up_waiting(bell):
    bell.connected()
    bell.bell.hangup_request(bell.now)
    assert bell.drain() == [HangUp("c1", "hung up")]
    assert bell.bell.get_timer() == ENDING_TIMEOUT
    assert bell.advance(ENDING_TIMEOUT) == [SetLed("registered")]
    assert bell.state == "idle"
    assert bell.status()["last_call"]["outcome"] == "answered"


# ---- hangup and media timeout --------------------------------------------------------------


def test_hangup_when_idle_does_nothing(bell):
    assert bell.bell.hangup_request(0.0) is False
    assert bell.drain() == []


def test_hangup_while_ringing_cancels(bell):
    bell.placed()
    bell.event(CallProgressed("c1", 180, "Ringing", 1))
    assert bell.bell.hangup_request(1.0) is True
    assert bell.drain() == [StopTone(), HangUp("c1", "hung up")]
    assert bell.state == "ending"
    assert bell.event(CallFailed("c1", 487, "cancelled")) == [SetLed("registered")]  # no tone
    assert bell.status()["last_call"]["outcome"] == "cancelled"


def test_hangup_before_anything_was_heard(bell):
    bell.placed("c9")
    assert bell.bell.hangup_request(0.0) is True
    assert bell.drain() == [HangUp("c9", "hung up")]
    bell.event(CallFailed("c9", 487, "cancelled"))
    assert bell.status()["last_call"]["outcome"] == "cancelled"


def test_hangup_when_connected_sends_bye(bell):
    bell.connected()
    bell.at(7.5)
    assert bell.bell.hangup_request(7.5) is True
    assert bell.drain() == [HangUp("c1", "hung up")]
    assert bell.bell.hangup_request(7.6) is False  # already ending
    bell.event(CallEnded("c1", "hung up", False))
    assert bell.status()["last_call"]["outcome"] == "answered"
    assert bell.status()["last_call"]["duration"] == 7.5


def test_media_timeout_hangs_up(bell):
    bell.connected()
    bell.bell.on_media_timeout("other", 1.0)
    assert bell.drain() == []
    bell.bell.on_media_timeout("c1", 1.0)
    assert bell.drain() == [HangUp("c1", "media timeout")]
    assert bell.state == "ending"


def test_an_answer_without_the_required_srtp_ends_the_call_as_failed(bell):
    bell.placed()
    bell.bell.on_media_refused("other", "SRTP refused", 1.0)
    assert bell.drain() == []
    # the media side refuses the answer of the 200 before the doorbell sees CallAnswered
    bell.bell.on_media_refused("c1", "SRTP refused: the answer has no a=crypto line", 1.0)
    assert bell.drain() == [HangUp("c1", "SRTP refused: the answer has no a=crypto line")]
    bell.event(CallAnswered("c1", b"v=0\r\n", "<sip:family@pbx.example>"))
    assert bell.state == "ending"  # not connected: the call never goes on in clear
    bell.event(CallEnded("c1", "SRTP refused", False))
    assert bell.status()["last_call"]["outcome"] == "failed"


def test_media_timeout_while_ringing_is_left_to_the_ring_timeout(bell):
    bell.placed()
    bell.bell.on_media_timeout("c1", 1.0)
    assert bell.drain() == []


# ---- door code ----------------------------------------------------------------------------


def test_correct_code_opens(bell):
    bell.connected()
    assert bell.key("c1", "123") == []
    assert bell.key("c1", "4") == [PulseRelay(3.0), PlayTone("opened")]
    assert bell.status()["door"] == {"opened_count": 1, "locked_out": False}


def test_hash_judges_early_and_star_clears(bell):
    bell.connected()
    assert bell.key("c1", "12#") == [PlayTone("error")]  # short entry: a wrong code
    assert bell.key("c1", "#") == []  # an empty entry is not judged
    assert bell.key("c1", "99*1234") == [PulseRelay(3.0), PlayTone("opened")]


def test_wrong_code_counts(bell, caplog):
    bell.connected()
    with caplog.at_level(logging.WARNING):
        assert bell.key("c1", "9999") == [PlayTone("error")]
    assert "wrong door code (1 of 3)" in caplog.text
    assert "9999" not in caplog.text  # the entry is never logged
    assert bell.bell.lock.failures == 1


def test_digits_only_count_in_the_connected_call(bell):
    bell.placed()
    bell.event(CallProgressed("c1", 183, "Session Progress", 1, b"v=0\r\n"))
    assert bell.key("c1", CODE) == []  # early media: not yet answered
    bell.event(CallAnswered("c1", None, "x"))
    assert bell.key("other", CODE) == []
    assert bell.status()["door"]["opened_count"] == 0
    assert bell.key("c1", CODE) == [PulseRelay(3.0), PlayTone("opened")]


def test_digits_when_idle_are_ignored(bell):
    assert bell.key("c1", CODE) == []


def test_digit_entry_times_out_after_5_s_idle(bell):
    bell.connected()
    for t, key in ((0.0, "1"), (4.9, "2"), (9.8, "3")):  # idle time counts, not entry time
        bell.advance(t)
        assert bell.key("c1", key) == []
    bell.advance(14.7)
    assert bell.key("c1", "4") == [PulseRelay(3.0), PlayTone("opened")]
    assert bell.key("c1", "12") == []
    assert bell.bell.get_timer() == 14.7 + ENTRY_TIMEOUT
    bell.advance(14.7 + ENTRY_TIMEOUT)  # "12" dropped, unjudged
    assert bell.key("c1", "34") == []
    assert bell.bell.lock.failures == 0
    assert bell.key("c1", "12") == [PlayTone("error")]  # "3412"


def test_digit_entry_does_not_outlive_the_call():
    b = Bell(cooldown=0.0)
    b.connected("c1")
    b.key("c1", "12")
    b.event(CallEnded("c1", "BYE from peer", True))
    b.at(1.0)  # well within the 5 s entry timeout
    b.connected("c2")
    assert b.key("c2", "34") == []
    assert b.bell.lock.failures == 0
    assert b.key("c2", "12") == [PlayTone("error")]  # "3412"


def test_lockout_spans_two_calls(caplog):
    b = Bell(door_code_attempts=3, door_lockout=300.0)
    b.connected("c1")
    assert b.key("c1", "0000") == [PlayTone("error")]
    assert b.key("c1", "1111") == [PlayTone("error")]
    with caplog.at_level(logging.WARNING):
        assert b.key("c1", "2222") == [PlayTone("error")]
    assert "wrong door code (3 of 3): locked out for 300 s" in caplog.text
    assert b.status()["door"] == {"opened_count": 0, "locked_out": True}
    assert b.key("c1", CODE) == []  # ignored, even the right code
    b.at(20.0)
    b.event(CallEnded("c1", "BYE from peer", True))
    # the visitor calls again: still locked out
    b.at(30.0)
    b.connected("c2")
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        assert b.key("c2", CODE + CODE) == []
    assert caplog.text.count("door code keys in call c2 ignored: locked out for 270 s") == 1
    assert b.status()["door"] == {"opened_count": 0, "locked_out": True}
    assert b.bell.get_timer() == 210.0  # max call duration comes first
    b.event(CallEnded("c2", "BYE from peer", True))
    assert b.bell.get_timer() == 300.0  # the lockout's end
    b.advance(300.0)
    assert b.status()["door"]["locked_out"] is False
    b.connected("c3")
    assert b.key("c3", CODE) == [PulseRelay(3.0), PlayTone("opened")]


def test_wrong_codes_accumulate_across_calls():
    b = Bell(door_code_attempts=3)
    b.connected("c1")
    b.key("c1", "00000000")
    b.event(CallEnded("c1", "BYE from peer", True))
    b.at(10.0)
    b.connected("c2")
    b.key("c2", "0000")
    assert b.status()["door"]["locked_out"] is True


def test_correct_code_resets_the_count():
    b = Bell(door_code_attempts=2)
    b.connected()
    b.key("c1", "0000")
    b.key("c1", CODE)
    b.key("c1", "0000")
    assert b.status()["door"]["locked_out"] is False


def test_no_code_configured_ignores_digits():
    b = Bell(door_code=None)
    b.connected()
    assert b.key("c1", "1234#") == []
    assert b.status()["door"]["opened_count"] == 0


# ---- intercom open -------------------------------------------------------------------------


def test_open_request_pulses_the_relay(bell, caplog):
    with caplog.at_level(logging.INFO, "intercom.app.doorbell"):
        assert bell.bell.open_request(0.0) is True
    assert bell.drain() == [PulseRelay(3.0), PlayTone("opened")]
    assert "door opened from the control socket" in caplog.text
    assert bell.status()["door"]["opened_count"] == 1


def test_open_request_during_lockout_still_opens():
    b = Bell(door_code_attempts=1)
    b.connected()
    b.key("c1", "0000")
    assert b.bell.open_request(1.0) is True  # the control socket is the house's own
    assert PulseRelay(3.0) in b.drain()


def test_open_without_a_relay(caplog):
    b = Bell(door_relay_pin=None, door_code=None)
    with caplog.at_level(logging.ERROR, "intercom.app.doorbell"):
        assert b.bell.open_request(0.0) is False
    assert b.drain() == []
    assert "no door relay is configured (INTERCOM_DOOR_RELAY_PIN)" in caplog.text
    assert b.status()["door"]["opened_count"] == 0


# ---- incoming calls ------------------------------------------------------------------------


def test_forged_from_is_refused_while_the_same_caller_through_the_server_is_answered(bell, caplog):
    with caplog.at_level(logging.WARNING, "intercom.app.doorbell"):
        assert bell.incoming("forged", source=STRANGER) == [RejectCall("forged", 403)]
    assert "untrusted source 203.0.113.66" in caplog.text
    assert bell.state == "idle"
    assert bell.status()["last_call"]["outcome"] is None  # refusals leave no trace
    # the same From, sent by the SIP server
    assert bell.incoming("real", source=SERVER) == [SetLed("ringing")]
    assert bell.state == "ringing"
    assert bell.bell.get_timer() == 2.0  # answer_delay
    assert bell.advance(1.99) == []
    assert bell.advance(2.0) == [AcceptCall("real"), SetLed("in-call")]
    assert bell.state == "connected"
    assert bell.bell.get_timer() == 182.0  # the call limit applies too


def test_incoming_without_delay_is_answered_at_once():
    b = Bell(answer_delay=0.0)
    assert b.incoming("in1") == [SetLed("ringing"), AcceptCall("in1"), SetLed("in-call")]


def test_incoming_from_trusted_network(bell):
    assert bell.incoming("in1", source="10.0.0.7") == [SetLed("ringing")]


def test_incoming_from_a_host_outside_the_server_addresses_after_a_change(bell):
    bell.bell.set_server_addresses(["198.51.100.1"])
    assert bell.incoming("in1", source=SERVER) == [RejectCall("in1", 403)]


def test_asserted_identity_takes_precedence(bell):
    mallory = "<sip:mallory@pbx.example>;tag=m"
    assert bell.incoming("a", caller=mallory, pai="<sip:alice@pbx.example>") == [SetLed("ringing")]
    bell.event(IncomingCallCancelled("a"))
    assert bell.incoming("b", caller=ALICE, pai="<sip:mallory@pbx.example>") == [
        RejectCall("b", 403)
    ]


def test_caller_not_allowed_is_refused(bell, caplog):
    with caplog.at_level(logging.WARNING, "intercom.app.doorbell"):
        assert bell.incoming("in1", caller="<sip:bob@pbx.example>;tag=b") == [
            RejectCall("in1", 403)
        ]
    assert "'<sip:bob@pbx.example>;tag=b'" in caplog.text
    assert "caller not allowed" in caplog.text


def test_empty_allow_list_refuses_every_call():
    b = Bell(allowed_callers=())
    assert b.incoming("in1") == [RejectCall("in1", 403)]


def test_allowed_incoming_while_busy_gets_486(bell):
    bell.placed("c1")
    assert bell.incoming("in1") == [RejectCall("in1", 486)]
    assert bell.incoming("in2", source=STRANGER) == [RejectCall("in2", 403)]  # nothing more
    assert bell.state == "calling"


def test_press_during_incoming_call_does_nothing(bell):
    bell.incoming("in1")
    assert bell.press() == []


def test_incoming_cancelled_before_the_answer(bell):
    bell.incoming("in1")
    bell.at(1.0)
    assert bell.event(IncomingCallCancelled("in1", "answered elsewhere")) == [SetLed("registered")]
    assert bell.state == "idle"
    assert bell.bell.get_timer() is None  # no AcceptCall will come
    assert bell.status()["last_call"]["outcome"] == "cancelled"
    assert PLACE in bell.press()  # no cooldown after a call never answered


def test_hangup_during_answer_delay_refuses(bell):
    bell.incoming("in1")
    assert bell.bell.hangup_request(0.5) is True
    assert bell.drain() == [RejectCall("in1", 480), SetLed("registered")]
    assert bell.state == "idle"
    assert bell.advance(5.0) == []


def test_door_code_in_an_accepted_incoming_call(bell):
    bell.incoming("in1")
    bell.advance(2.0)
    assert bell.key("in1", CODE) == [PulseRelay(3.0), PlayTone("opened")]


def test_door_code_in_a_refused_call_is_ignored(bell):
    bell.incoming("evil", source=STRANGER)
    assert bell.key("evil", CODE) == []
    assert bell.bell.lock.failures == 0


def test_accepted_incoming_call_ends(bell):
    bell.incoming("in1")
    bell.advance(2.0)
    bell.at(12.0)
    assert bell.event(CallEnded("in1", "BYE from peer", True)) == [SetLed("registered")]
    assert bell.status()["last_call"]["outcome"] == "answered"
    assert bell.status()["last_call"]["duration"] == 10.0


# ---- status --------------------------------------------------------------------------------


def test_status_json_after_an_answered_call(bell):
    bell.event(RegistrationSucceeded("pbx", 600))
    bell.connected("c1")
    bell.bell.call_stats("c1", stats(packets_sent=100))  # during the call
    assert bell.status()["last_call"]["outcome"] is None  # not over yet
    bell.at(12.34)
    bell.event(CallEnded("c1", "BYE from peer", True))
    bell.bell.call_stats("c1", stats())  # the final figures, once the media closed
    bell.bell.call_stats("unknown", stats(codec="G722"))
    status = json.loads(json.dumps(bell.status()))
    assert status == {
        "registration": {"state": "registered", "last_status": 200, "since": iso_time(WALL)},
        "call": {"state": "idle"},
        "last_call": {
            "outcome": "answered", "codec": "PCMU", "duration": 12.3, "packets_sent": 600,
            "packets_received": 598, "packets_lost": 2, "jitter_ms": 1.4,
        },
        "last_ring": iso_time(WALL),
        "door": {"opened_count": 0, "locked_out": False},
        "history": [{
            "time": iso_time(WALL), "direction": "outgoing", "outcome": "answered",
            "duration": 12.3, "codec": "PCMU", "answered_by": "<sip:family@pbx.example>",
        }],
    }  # fmt: skip


def test_status_keeps_stats_reported_during_the_call(bell):
    bell.connected("c1")
    bell.bell.call_stats("c1", stats(packets_sent=42))
    bell.event(CallEnded("c1", "BYE from peer", True))
    assert bell.status()["last_call"]["packets_sent"] == 42


@pytest.mark.parametrize(
    ("stage", "expected"),
    [("calling", "calling"), ("ringing", "ringing"), ("connected", "connected"),
     ("ending", "ending")],
)  # fmt: skip
def test_status_call_states(bell, stage, expected):
    bell.press()
    if stage != "calling":
        bell.event(CallProgressed("c1", 180, "Ringing", 1))
    if stage in ("connected", "ending"):
        bell.event(CallAnswered("c1", None, "x"))
    if stage == "ending":
        bell.bell.hangup_request(0.0)
    assert bell.status()["call"] == {"state": expected}


def test_status_is_a_copy(bell):
    bell.status()["door"]["opened_count"] = 99
    bell.status()["last_call"]["outcome"] = "busy"
    assert bell.status()["door"]["opened_count"] == 0
    assert bell.status()["last_call"]["outcome"] is None


# ---- the table -----------------------------------------------------------------------------


def test_every_state_but_idle_has_a_timeout_with_a_row():
    assert set(TIMEOUTS) == set(CallState) - {CallState.IDLE}
    assert all(TIMEOUTS[state] in TRANSITIONS[state] for state in TIMEOUTS)


def test_an_input_a_state_has_no_row_for_is_ignored(bell, caplog):
    with caplog.at_level(logging.DEBUG, "intercom.app.doorbell"):
        bell.bell.on_media_timeout("c1", 0.0)  # no call
        bell.placed()
        bell.bell.on_media_timeout("c1", 0.0)  # not connected yet
    assert bell.drain() == [] and bell.state == "calling"
    assert "media timeout while CALLING: ignored" in caplog.text


def test_the_doorbell_takes_its_part_of_the_settings():
    settings = Settings(
        call_target=TARGET, door_code="4711", door_code_attempts=5, door_lockout=600.0,
        allowed_callers=(AllowedCaller("alice"),),
        trusted_hosts=(ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("192.0.2.1")),
        door_relay_pin=27, sip_server=HostPort("pbx.example"),
        sip_outbound_proxy=HostPort("2001:db8::5", 5070),
    )  # fmt: skip
    bell = Doorbell(settings, lambda: "c1")
    assert (bell.lock.code, bell.lock.attempts, bell.lock.lockout) == ("4711", 5, 600.0)
    assert bell.policy.trusted_networks == (
        ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("192.0.2.1/32"),
    )  # fmt: skip
    assert bell.policy.home_domains == {"pbx.example", "2001:db8::5"}
    assert bell.snapshot().registration == "registering"
    bare = Doorbell(Settings(), lambda: "c1")
    assert (bare.lock.code, bare.snapshot().registration, bare.policy.home_domains) == (
        None, "disabled", frozenset(),
    )  # fmt: skip
    assert bare.open_request(0.0) is False  # no relay


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("INTERCOM_RING_TIMEOUT", "0", "'0' must be more than 0 seconds"),
        ("INTERCOM_MAX_CALL_DURATION", "-1", "'-1' must be more than 0 seconds"),
        ("INTERCOM_DOOR_PULSE", "0.0", "'0.0' must be more than 0 seconds"),
        ("INTERCOM_CALL_COOLDOWN", "-0.5", "'-0.5' must not be negative"),
        ("INTERCOM_DOOR_LOCKOUT", "-1", "'-1' must not be negative"),
        ("INTERCOM_ANSWER_DELAY", "-1", "'-1' must not be negative"),
        ("INTERCOM_DOOR_CODE_ATTEMPTS", "0", "'0' must be between 1 and 1000"),
    ],
)
def test_impossible_doorbell_settings_never_reach_the_doorbell(key, value, message):
    with pytest.raises(SettingsError) as info:
        Settings.from_env({key: value})
    assert info.value.problems == [f"{key}: {message}"]


def test_bad_door_code_or_caller_is_refused():
    with pytest.raises(ValueError, match="door code key 'x' is not a DTMF digit"):
        Doorbell(Settings(door_code="12x4"), lambda: "c1")
    with pytest.raises(ValueError, match="names no user"):
        Doorbell(Settings(allowed_callers=(AllowedCaller.parse("sip:pbx.example"),)), lambda: "c1")
