"""The doorbell: button presses and SIP events in, calls, tones, LED and relay pulses out.

Theory of operation
===================

:class:`Doorbell` is the product's policy as a pure state machine, shaped like the SIP cores
(and aioquic): the runtime hands it inputs with ``now`` (monotonic seconds) and drains
:meth:`Doorbell.next_action` after each, carrying the actions of :mod:`intercom.app.actions`
out; it arms one timer on :meth:`Doorbell.get_timer` and calls :meth:`Doorbell.handle_timer`
when it is due. Nothing here touches a socket, a pin, a clock or a thread; the Call-ID of a call
it places comes from the injected ``new_call_id``; logging is the only side effect.

One call at a time. Every transition is a row of :data:`TRANSITIONS`, as in h11's
``_state.py``: state -> input -> (next state, the handler queuing the row's actions); the table
is the diagram. An input a state has no row for is ignored with a debug line. Each state but
IDLE has one deadline; when it passes, the state's input of :data:`TIMEOUTS` arrives.

The rules the handlers and the few explicit checks add:

* **Press.** A press during a call, or within ``cooldown`` seconds after one, does nothing (a
  bouncing button never makes two calls); without a target it only shows the error feedback.
* **Outgoing.** The ring timeout counts from the press and, like ``intercom hangup``, cancels
  the call: ``HangUp``, a CANCEL (RFC 3261 §9.1). A 180/183 plays the ringback unless it brings
  early media. The answer arms ``max_call_duration``; it, a media timeout or ``intercom hangup``
  end the call with a BYE (RFC 3261 §15.1.1). ENDING waits for the 487 or the end, at most
  :data:`ENDING_TIMEOUT`. A failure plays its outcome's tone (:mod:`intercom.app.outcome`).
* **Incoming** (design.md, "Security"). Only from the SIP server's addresses or
  ``trusted_hosts``, and only an allowed identity (P-Asserted-Identity, else From): else 403
  (:mod:`intercom.app.policy`); 486 while busy; neither leaves a trace in ``status``. An allowed
  call rings for ``answer_delay`` (ANSWERING, shown as "ringing") and is then accepted.
* **Door code.** Keys count only in the connected call; a correct code pulses the relay, wrong
  ones count towards a lockout that outlives the call (:mod:`intercom.app.door_lock`).
* **LED.** Idle, the registration ("registered" also without a server); in a call "ringing"
  or "in-call". A ``SetLed`` is queued only when the pattern changes.

What is kept of a call is in :mod:`intercom.app.call_record`; the status object is rendered by
:mod:`intercom.app.status` from :meth:`Doorbell.snapshot`.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Iterable
from enum import Enum
from typing import TYPE_CHECKING, Any

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
from intercom.app.call_record import CallHistory, CallRecord, LastCall
from intercom.app.door_lock import DoorLock, KeyResult
from intercom.app.outcome import feedback_tone, outcome_of
from intercom.app.policy import CallPolicy
from intercom.app.settings import Settings
from intercom.app.status import CallState, DoorbellStatus, RegistrationState, call_status
from intercom.feedback import LedPattern, Tone
from intercom.sip.events import (
    CallAnswered,
    CallEnded,
    CallFailed,
    CallProgressed,
    Event,
    IncomingCallCancelled,
    IncomingCallReceived,
    RegistrationFailed,
    RegistrationSucceeded,
    Unregistered,
)

if TYPE_CHECKING:  # types only: the media stack loads when the daemon has started
    from intercom.media.dtmf import DtmfDigit
    from intercom.media.stream import StreamStats

__all__ = [
    "BUSY_HERE",
    "ENDING_TIMEOUT",
    "FEEDBACK_TIME",
    "TIMEOUTS",
    "TRANSITIONS",
    "CallState",
    "Doorbell",
    "Input",
    "RegistrationState",
]

logger = logging.getLogger(__name__)

FEEDBACK_TIME = 3.0
"""Seconds the LED shows "error" after a failed call or a press without a target."""
ENDING_TIMEOUT = 40.0
"""Seconds to wait for the end of a call we hung up (a CANCEL's final response can take
64*T1 = 32 s, RFC 3261 §9.1) before considering it over anyway."""
BUSY_HERE = 486
"""The answer to an allowed incoming call while the doorbell is busy (RFC 3261 §21.4.24)."""
TEMPORARILY_UNAVAILABLE = 480
"""The answer to an incoming call still waiting for its answer delay when hung up."""


class Input(Enum):
    PRESS = "press"  #: the button or ``intercom press``
    INCOMING = "incoming call"  #: an IncomingCallReceived the policy allows
    PROGRESSED = "progress"  #: CallProgressed of our call
    ANSWERED = "answer"  #: CallAnswered of our call
    FAILED = "failure"  #: CallFailed of our call
    START_FAILED = "start failed"  #: the runtime could not send our INVITE
    ENDED = "end"  #: CallEnded of the call
    CANCELLED = "caller cancelled"  #: IncomingCallCancelled of the call
    HANGUP = "hangup request"  #: ``intercom hangup``
    MEDIA_TIMEOUT = "media timeout"
    MEDIA_REFUSED = "media refused"  #: the answer lacks what the call requires (SRTP)
    RING_TIMEOUT = "ring timeout"
    ANSWER_DELAY = "answer delay"
    MAX_DURATION = "max call duration"
    GIVE_UP = "ending timeout"


TIMEOUTS = {
    CallState.CALLING: Input.RING_TIMEOUT,
    CallState.RINGING: Input.RING_TIMEOUT,
    CallState.ANSWERING: Input.ANSWER_DELAY,
    CallState.CONNECTED: Input.MAX_DURATION,
    CallState.ENDING: Input.GIVE_UP,
}
"""The input that arrives when the call's deadline in each state passes."""

_EVENT_INPUT: dict[type[Event], Input] = {
    CallProgressed: Input.PROGRESSED,
    CallAnswered: Input.ANSWERED,
    CallFailed: Input.FAILED,
    CallEnded: Input.ENDED,
    IncomingCallCancelled: Input.CANCELLED,
}
_CallEvent = CallProgressed | CallAnswered | CallFailed | CallEnded | IncomingCallCancelled
_OUTGOING_ONLY = frozenset({Input.PROGRESSED, Input.ANSWERED, Input.FAILED})

_IDLE_LED = {
    RegistrationState.DISABLED: LedPattern.REGISTERED,
    RegistrationState.REGISTERING: LedPattern.REGISTERING,
    RegistrationState.REGISTERED: LedPattern.REGISTERED,
    RegistrationState.FAILED: LedPattern.ERROR,
}


class Doorbell:
    """The doorbell state machine (see the module docstring).

    Args:
        settings: the validated settings (``intercom.app.settings``).
        new_call_id: draws the Call-ID of the next call placed (the user agent's).
        wall: turns a ``now`` into Unix time, for the times people see (``intercom status``,
            the call history); the default keeps ``now`` as it is (tests).
    """

    def __init__(
        self,
        settings: Settings,
        new_call_id: Callable[[], str],
        wall: Callable[[float], float] | None = None,
    ) -> None:
        self.settings = settings
        self._new_call_id = new_call_id
        self._wall = wall or (lambda now: now)
        servers = (settings.sip_server, settings.sip_outbound_proxy)
        self.policy = CallPolicy(
            settings.allowed_callers,
            settings.trusted_hosts,
            [server.host for server in servers if server is not None],  # a bare name's home
        )
        self.lock = DoorLock(settings.door_code, settings.door_code_attempts, settings.door_lockout)
        self.state = CallState.IDLE
        self.registration = (
            RegistrationState.REGISTERING if settings.sip_server else RegistrationState.DISABLED
        )
        self.last_status: int | None = None
        self.registration_reason: str | None = None  #: why it failed, while it retries
        self.opened_count = 0
        self.last_call = LastCall()
        self.registered_since: float | None = None  #: Unix time of the registration's start
        self.last_ring: float | None = None  #: Unix time of the last press that called
        self.history = CallHistory()
        self._call: CallRecord | None = None
        self._last_call_id: str | None = None
        self._cooldown_until: float | None = None
        self._feedback_until: float | None = None
        self._led: LedPattern | None = None
        self._tone: Tone | None = None  # the last tone started (None: stopped or never)
        self._actions: deque[Action] = deque()
        self._refresh_led()

    # -- output ---------------------------------------------------------------------------

    def next_action(self) -> Action | None:
        """The next action to carry out, in order; None when there is none."""
        return self._actions.popleft() if self._actions else None

    def get_timer(self) -> float | None:
        """The next deadline at which :meth:`handle_timer` has something to do."""
        call = self._call.deadline if self._call is not None else None
        deadlines = [self._feedback_until, self.lock.get_timer(), call]
        return min((t for t in deadlines if t is not None), default=None)

    @property
    def led(self) -> LedPattern | None:
        """The pattern the LED shows (the last :class:`SetLed`), for an LED opened late."""
        return self._led

    def snapshot(self) -> DoorbellStatus:
        """What ``intercom status`` shows (:func:`intercom.app.status.render_status`)."""
        call = self._call
        return DoorbellStatus(
            self.registration.value, self.last_status, call_status(self.state), self.last_call,
            self.opened_count, self.lock.locked_out, self.registration_reason,
            registered_since=self.registered_since, last_ring=self.last_ring,
            history=self.history.calls,
            call_outgoing=call.outgoing if call is not None else None,
            call_peer=call.remote if call is not None else None,
        )  # fmt: skip

    # -- inputs ---------------------------------------------------------------------------

    def press(self, now: float) -> bool:
        """The doorbell button (or ``intercom press``). True when it places a call."""
        if Input.PRESS not in TRANSITIONS[self.state]:
            logger.info("button pressed while %s: ignored", call_status(self.state))
            return False
        if self._cooldown_until is not None and now < self._cooldown_until:
            logger.info("button pressed %.1f s before the cooldown after the last call ends: "
                        "ignored", self._cooldown_until - now)  # fmt: skip
            return False
        if self.settings.call_target is None:
            logger.error("button pressed, but no call target is configured "
                         "(INTERCOM_CALL_TARGET)")  # fmt: skip
            self._feedback(Tone.ERROR, now)
            return False
        return self._step(Input.PRESS, now)

    def hangup_request(self, now: float) -> bool:
        """``intercom hangup``: end the current call (CANCEL while ringing, BYE when
        connected, 480 to a caller still waiting). True when there was a call to end."""
        if Input.HANGUP not in TRANSITIONS[self.state]:
            logger.info("hangup requested with no call to end")
            return False
        logger.info("hangup requested from the control socket")
        return self._step(Input.HANGUP, now)

    def open_request(self, now: float, how: str = "from the control socket") -> bool:
        """``intercom open`` (or Home Assistant's button, ``how`` "over MQTT"): pulse the
        relay as a correct code would. True when it did."""
        return self._open(how)

    def set_server_addresses(self, addresses: Iterable[str]) -> None:
        """The SIP server's and outbound proxy's resolved IP addresses: incoming calls from them
        are trusted, and only they may assert a caller's identity."""
        self.policy.set_server_addresses(addresses)

    def call_failed_to_start(self, call_id: str, reason: str, now: float) -> None:
        """Our ``PlaceCall`` could not even send an INVITE (no RTP port, ...)."""
        if self._ours(call_id, outgoing=True):
            self._step(Input.START_FAILED, now, reason)
        else:
            logger.warning("call failure reported with no call being placed: %s", reason)

    def on_event(self, event: Event, now: float) -> None:
        """Follow one event of the user agent (hand every event here; others are ignored)."""
        follow = _ON_EVENT.get(type(event))
        if follow is not None:
            follow(self, event, now)
        if self.state is CallState.IDLE:
            self._refresh_led()

    def on_digit(self, call_id: str, digit: DtmfDigit, now: float) -> None:
        """A DTMF key of call ``call_id``; only the current, connected call's keys count."""
        call = self._call
        if call is None or call.call_id != call_id or self.state is not CallState.CONNECTED:
            logger.debug("DTMF key outside the current call ignored")
            return
        result = self.lock.key(digit.digit, now)
        if result is KeyResult.OPENED:
            self._open(f"by the door code in {call.label}")
        elif result in (KeyResult.WRONG, KeyResult.LOCKED_OUT):
            self._play(Tone.ERROR)
        elif self.lock.locked_until is not None and not call.lockout_logged:
            call.lockout_logged = True  # once per call: the keys themselves are not logged
            logger.warning("door code keys in %s ignored: locked out for %.0f s more",
                           call.label, self.lock.locked_until - now)  # fmt: skip

    def on_media_timeout(self, call_id: str, now: float) -> None:
        """No RTP arrived for the media timeout: end the call (when connected)."""
        if self._ours(call_id):
            self._step(Input.MEDIA_TIMEOUT, now)

    def on_media_refused(self, call_id: str, reason: str, now: float) -> None:
        """The answer of our call lacks what the settings require (INTERCOM_SRTP=mandatory
        and no SRTP): the call ends as "failed", never goes on in clear."""
        if self._ours(call_id):
            self._step(Input.MEDIA_REFUSED, now, reason)

    def call_stats(self, call_id: str, stats: StreamStats) -> None:
        """The media figures of a call (during it, or once its media closed)."""
        if call_id == self._last_call_id:
            self.last_call = self.last_call.with_stats(stats)
            if stats.codec:
                self.history.set_codec(stats.codec)
        elif self._call is not None and self._call.call_id == call_id:
            self._call.stats = stats

    def handle_timer(self, now: float) -> None:
        """Fire every deadline that is due at ``now``."""
        self.lock.handle_timer(now)
        call = self._call
        if call is not None and call.deadline is not None and now >= call.deadline:
            call.deadline = None
            self._step(TIMEOUTS[self.state], now)
        if self._feedback_until is not None and now >= self._feedback_until:
            self._feedback_until = None
            if self.state is CallState.IDLE:
                self._refresh_led()

    # -- the table ------------------------------------------------------------------------

    def _step(self, kind: Input, now: float, detail: Any = None) -> bool:
        """Take the transition of ``kind`` in the current state; False when there is none."""
        row = TRANSITIONS[self.state].get(kind)
        if row is None:
            logger.debug("%s while %s: ignored", kind.value, self.state.name)
            return False
        self.state, handler = row
        handler(self, now, detail)
        return True

    def _ours(self, call_id: str, outgoing: bool | None = None) -> bool:
        call = self._call
        if call is None or call.call_id != call_id:
            return False
        return outgoing is None or call.outgoing == outgoing

    # -- the events: the registration's (in any call state), then the calls' -------------

    def _registered(self, event: RegistrationSucceeded, now: float) -> None:
        if self.registration is not RegistrationState.REGISTERED:
            self.registered_since = self._wall(now)  # a refresh keeps the first time
        self.registration, self.last_status = RegistrationState.REGISTERED, 200
        self.registration_reason = None

    def _registration_failed(self, event: RegistrationFailed, now: float) -> None:
        self.registration, self.last_status = RegistrationState.FAILED, event.status
        self.registration_reason = f"{event.reason}; retrying in {event.retry_in:.0f} s"
        self.registered_since = None

    def _unregistered(self, event: Unregistered, now: float) -> None:
        self.registration, self.registration_reason = RegistrationState.DISABLED, None
        self.registered_since = None

    def _call_event(self, event: _CallEvent, now: float) -> None:
        kind = _EVENT_INPUT[type(event)]
        if self._ours(event.call_id, outgoing=True if kind in _OUTGOING_ONLY else None):
            self._step(kind, now, event)
        else:
            logger.debug("event of another call %s ignored", event.call_id[:8])

    def _incoming(self, event: IncomingCallReceived, now: float) -> None:
        """The policy first, then busy or not (explicit: they answer without a transition)."""
        verdict = self.policy.decide(event)
        label = f"incoming call {event.call_id[:8]}"
        if not verdict.allowed:
            logger.warning("x %s from %r (sent by %s) refused with %d: %s", label,
                           verdict.identity, event.source_host, verdict.status,
                           verdict.reason)  # fmt: skip
            self._actions.append(RejectCall(event.call_id, verdict.status))
        elif Input.INCOMING not in TRANSITIONS[self.state]:
            logger.info("x %s from %r refused with %d: busy (%s)", label, verdict.identity,
                        BUSY_HERE, call_status(self.state))  # fmt: skip
            self._actions.append(RejectCall(event.call_id, BUSY_HERE))
        else:
            logger.info("%s from %r allowed; answering in %.1f s", label, verdict.identity,
                        self.settings.answer_delay)  # fmt: skip
            self._step(Input.INCOMING, now, event)
            if self.settings.answer_delay == 0:
                self._step(Input.ANSWER_DELAY, now)

    # -- handlers: each queues the actions of one row -------------------------------------

    @property
    def _current(self) -> CallRecord:
        assert self._call is not None  # every state but IDLE has its call
        return self._call

    def _place_call(self, now: float, _: None) -> None:
        target = self.settings.call_target
        assert target is not None  # press() checked
        logger.info("button pressed: calling %s", target)
        call_id = self._new_call_id()
        self.last_ring = self._wall(now)
        self._call = CallRecord(
            True, call_id, deadline=now + self.settings.ring_timeout, started_wall=self.last_ring
        )
        self._set_led(LedPattern.RINGING)
        self._actions.append(PlaceCall(target, call_id))

    def _ring_in(self, now: float, event: IncomingCallReceived) -> None:
        deadline = now + self.settings.answer_delay
        caller = _party(event.asserted_identity or event.caller)
        self._call = CallRecord(
            False, event.call_id, deadline=deadline, started_wall=self._wall(now), remote=caller
        )
        self._set_led(LedPattern.RINGING)

    def _ringback(self, now: float, event: CallProgressed) -> None:
        # Early media (183 with SDP) brings the callee's own ringback: the speaker is theirs.
        self._play(None if event.sdp else Tone.RINGBACK)

    def _answered(self, now: float, event: CallAnswered) -> None:
        self._current.remote = _party(event.remote)
        logger.info("%s answered", self._current.label)
        self._connect(now)

    def _accept(self, now: float, _: None) -> None:
        self._actions.append(AcceptCall(self._current.call_id))
        self._connect(now)

    def _failed(self, now: float, event: CallFailed) -> None:
        call = self._current
        outcome = call.outcome or outcome_of(event.status, event.reason)
        logger.info("%s failed: %s (%s)", call.label, outcome,
                    event.status if event.status is not None else event.reason)  # fmt: skip
        self._finish(now, outcome)

    def _not_started(self, now: float, reason: str) -> None:
        logger.error("call to %s could not start: %s", self.settings.call_target, reason)
        self._finish(now, self._current.outcome or "failed")

    def _ended(self, now: float, event: CallEnded) -> None:
        call = self._current
        logger.info("%s ended: %s", call.label, event.reason)
        self._finish(now, call.outcome or "answered")

    def _caller_cancelled(self, now: float, event: IncomingCallCancelled) -> None:
        logger.info("incoming %s %s before it was answered", self._current.label, event.reason)
        self._finish(now, "cancelled", cooldown=False)

    def _refuse(self, now: float, _: None) -> None:
        self._actions.append(RejectCall(self._current.call_id, TEMPORARILY_UNAVAILABLE))
        self._finish(now, "cancelled", cooldown=False)  # no event will follow a refusal

    def _no_answer(self, now: float, _: None) -> None:
        call = self._current
        logger.info("%s: no answer after %.0f s, cancelling",
                    call.label, self.settings.ring_timeout)  # fmt: skip
        call.outcome = "no-answer"
        self._hang_up(now, "ring timeout")

    def _cancel(self, now: float, _: None) -> None:
        self._current.outcome = "cancelled"
        self._hang_up(now, "hung up")

    def _hang_up_on_request(self, now: float, _: None) -> None:
        self._hang_up(now, "hung up")

    def _time_up(self, now: float, _: None) -> None:
        logger.info("%s reached the maximum duration of %.0f s, hanging up",
                    self._current.label, self.settings.max_call_duration)  # fmt: skip
        self._hang_up(now, "max call duration")

    def _no_media(self, now: float, _: None) -> None:
        logger.warning("%s: no media, hanging up", self._current.label)
        self._hang_up(now, "media timeout")

    def _media_refused(self, now: float, reason: str) -> None:
        self._current.outcome = "failed"
        self._hang_up(now, reason)

    def _give_up(self, now: float, _: None) -> None:
        call = self._current
        logger.warning("%s: no end reported %.0f s after hanging up; taken as over",
                       call.label, ENDING_TIMEOUT)  # fmt: skip
        answered = call.answered_at is not None
        self._finish(now, call.outcome or ("answered" if answered else "failed"))

    # -- what the handlers share ----------------------------------------------------------

    def _connect(self, now: float) -> None:
        call = self._current
        call.answered_at = now
        call.deadline = now + self.settings.max_call_duration
        self._play(None)  # the call's media owns the speaker now
        self._set_led(LedPattern.IN_CALL)

    def _hang_up(self, now: float, reason: str) -> None:
        call = self._current
        call.deadline = now + ENDING_TIMEOUT
        self._play(None)
        self._actions.append(HangUp(call.call_id, reason))

    def _finish(self, now: float, outcome: str, *, cooldown: bool = True) -> None:
        """The call is over: record it, go idle, give feedback."""
        call = self._call
        self.last_call = LastCall.of(call, outcome, now)
        self._last_call_id = call.call_id if call is not None else None
        if call is not None:
            self.history.add(call, self.last_call)
        self._call = None
        self.lock.end_entry()
        if cooldown:
            self._cooldown_until = now + self.settings.cooldown
        tone = feedback_tone(outcome)
        if tone is not None:
            self._feedback(tone, now)
        else:
            self._play(None)
            self._refresh_led()

    def _feedback(self, tone: Tone, now: float) -> None:
        self._play(tone)
        self._feedback_until = now + FEEDBACK_TIME
        self._set_led(LedPattern.ERROR)

    def _open(self, how: str) -> bool:
        if self.settings.door_relay_pin is None:
            logger.error("cannot open the door %s: no door relay is configured "
                         "(INTERCOM_DOOR_RELAY_PIN)", how)  # fmt: skip
            return False
        self.opened_count += 1
        logger.info("door opened %s", how)
        self._actions.append(PulseRelay(self.settings.door_pulse))
        self._play(Tone.OPENED)
        return True

    def _play(self, tone: Tone | None) -> None:
        """Start ``tone`` (None: stop); a running ringback is not restarted."""
        if tone is self._tone and tone in (None, Tone.RINGBACK):
            return
        self._tone = tone
        self._actions.append(StopTone() if tone is None else PlayTone(tone))

    def _refresh_led(self) -> None:
        feedback = self._feedback_until is not None
        self._set_led(LedPattern.ERROR if feedback else _IDLE_LED[self.registration])

    def _set_led(self, pattern: LedPattern) -> None:
        if pattern != self._led:
            self._led = pattern
            self._actions.append(SetLed(pattern))


def _party(header: str) -> str:
    """A From/To/P-Asserted-Identity value without its parameters (the tag)."""
    header = header.strip()
    if ">" in header:
        return header[: header.index(">") + 1]
    return header.split(";", 1)[0]


_ON_EVENT: dict[type[Event], Callable[[Doorbell, Any, float], None]] = {
    RegistrationSucceeded: Doorbell._registered,
    RegistrationFailed: Doorbell._registration_failed,
    Unregistered: Doorbell._unregistered,
    IncomingCallReceived: Doorbell._incoming,
    **dict.fromkeys(_EVENT_INPUT, Doorbell._call_event),
}
"""What each event of the user agent means to the doorbell; the others mean nothing."""

Handler = Callable[[Doorbell, float, Any], None]

_S, _I, _D = CallState, Input, Doorbell
_OUTGOING: dict[Input, tuple[CallState, Handler]] = {
    _I.PROGRESSED: (_S.RINGING, _D._ringback),
    _I.ANSWERED: (_S.CONNECTED, _D._answered),
    _I.FAILED: (_S.IDLE, _D._failed),
    _I.START_FAILED: (_S.IDLE, _D._not_started),
    _I.ENDED: (_S.IDLE, _D._ended),
    _I.RING_TIMEOUT: (_S.ENDING, _D._no_answer),
    _I.HANGUP: (_S.ENDING, _D._cancel),
    _I.MEDIA_REFUSED: (_S.ENDING, _D._media_refused),
}
TRANSITIONS: dict[CallState, dict[Input, tuple[CallState, Handler]]] = {
    _S.IDLE: {
        _I.PRESS: (_S.CALLING, _D._place_call),
        _I.INCOMING: (_S.ANSWERING, _D._ring_in),
    },
    _S.CALLING: _OUTGOING,
    _S.RINGING: {kind: row for kind, row in _OUTGOING.items() if kind is not _I.START_FAILED},
    _S.ANSWERING: {
        _I.ANSWER_DELAY: (_S.CONNECTED, _D._accept),
        _I.CANCELLED: (_S.IDLE, _D._caller_cancelled),
        _I.ENDED: (_S.IDLE, _D._ended),
        _I.HANGUP: (_S.IDLE, _D._refuse),
    },
    _S.CONNECTED: {
        _I.FAILED: (_S.IDLE, _D._failed),
        _I.ENDED: (_S.IDLE, _D._ended),
        _I.MAX_DURATION: (_S.ENDING, _D._time_up),
        _I.MEDIA_TIMEOUT: (_S.ENDING, _D._no_media),
        _I.MEDIA_REFUSED: (_S.ENDING, _D._media_refused),
        _I.HANGUP: (_S.ENDING, _D._hang_up_on_request),
    },
    _S.ENDING: {
        _I.FAILED: (_S.IDLE, _D._failed),
        _I.START_FAILED: (_S.IDLE, _D._not_started),
        _I.ENDED: (_S.IDLE, _D._ended),
        _I.GIVE_UP: (_S.IDLE, _D._give_up),
    },
}
"""state -> input -> (next state, handler); what is not here is ignored."""
