"""The doorbell: button presses and SIP events in, calls, tones, LED and relay pulses out.

Theory of operation
===================

:class:`Doorbell` is the product's policy as a pure state machine, shaped like the SIP cores
(and aioquic): the runtime hands it inputs with ``now`` (monotonic seconds) and drains
:meth:`Doorbell.next_action` after each, carrying the actions of :mod:`intercom.app.actions`
out; it arms one timer on :meth:`Doorbell.get_timer` and calls :meth:`Doorbell.handle_timer`
when it is due. Nothing here touches a socket, a pin, a clock or a thread; logging is the only
side effect. Its settings are a :class:`~intercom.app.doorbell_config.DoorbellConfig`.

Inputs: :meth:`~Doorbell.press` (the button, or ``intercom press``), :meth:`~Doorbell.call_placed`
(the Call-ID of the INVITE a ``PlaceCall`` sent), :meth:`~Doorbell.call_failed_to_start`,
:meth:`~Doorbell.on_event` (every :mod:`intercom.sip.events` event),
:meth:`~Doorbell.on_digit` (DTMF of a call, RFC 4733 or SIP INFO), :meth:`~Doorbell.call_stats`,
:meth:`~Doorbell.on_media_timeout`, :meth:`~Doorbell.hangup_request` and
:meth:`~Doorbell.open_request` (``intercom hangup`` / ``intercom open``),
:meth:`~Doorbell.set_server_addresses` and :meth:`~Doorbell.handle_timer`.

One call at a time; the states are the ``call.state`` of ``intercom status``::

            press / PlaceCall           CallProgressed / ringback
    IDLE ----------------------> CALLING ----------------------> RINGING (outgoing)
     ^ |                            |                               |
     | | IncomingCallReceived       | CallAnswered / tone none,     | CallAnswered
     | | [trusted, allowed]         v   LED in-call, max timer      |
     | +----> RINGING (incoming) -> CONNECTED <---------------------+
     |      answer_delay elapsed       |
     |      / AcceptCall               | max call duration, media timeout, hangup
     |                                 v / HangUp (BYE, RFC 3261 §15.1.1)
     +<-- CallEnded, CallFailed --- ENDING <-- ring timeout, hangup / HangUp (CANCEL, §9.1)
     |    / cooldown starts                    (from CALLING and outgoing RINGING)
     |
     +<-- CallEnded (from CONNECTED: the peer's BYE, §15.1.2) / cooldown starts
     +<-- CallFailed (from CALLING, outgoing RINGING) / busy or error tone, LED error, cooldown
     +<-- IncomingCallCancelled, or hangup / RejectCall 480 (from incoming RINGING)

The rules:

* **Press.** A press calls ``call_target``. A press while a call is calling, ringing, connected
  or ending does nothing, so a button bounce (or an impatient visitor) never makes two calls;
  neither does a press within ``cooldown`` seconds after a call ended. Without a target the door
  plays the error tone and the LED shows the error briefly. The ring timeout counts from the
  press.
* **Ringing.** A provisional response (180/183) plays the ringback tone at the door so the
  visitor knows something happens; with early media (a 183 with SDP) the callee's audio owns the
  speaker instead. The ring timeout cancels the call: ``HangUp``, which the user agent turns
  into a CANCEL (RFC 3261 §9.1); the outcome is "no-answer".
* **Failure.** CallFailed ends the attempt with the outcome of its status
  (:mod:`intercom.app.outcome`: "busy", "declined", "no-answer", "failed"); the door plays the
  outcome's busy or error tone and the LED shows "error" for :data:`FEEDBACK_TIME`. A call we
  cancelled on request is "cancelled", silently.
* **Talking.** CallAnswered starts the ``max_call_duration`` timer; when it fires, ``HangUp``
  sends a BYE (RFC 3261 §15.1.1). So does a media timeout or ``intercom hangup``. CallEnded,
  from either side, returns to IDLE and starts the cooldown.
* **Ending.** After our ``HangUp`` the machine waits in ENDING for CallFailed (the CANCEL's
  487) or CallEnded. Should neither come (the call was already gone), :data:`ENDING_TIMEOUT`
  later it gives up waiting.
* **Incoming calls** (design.md, "Security"). A From header can be forged by anyone: an
  INVITE is considered only from the SIP server's addresses or ``trusted_networks``, and then
  only when its identity (P-Asserted-Identity, else From) is in ``allowed_callers``; anything
  else gets 403 and nothing more (:mod:`intercom.app.policy`). An allowed call while the
  doorbell is busy gets 486. An allowed call is answered after ``answer_delay``, so the family
  can listen or talk at the door; it counts as a call for the door code, the call limit and the
  cooldown. Refused calls leave no trace in ``status`` (a stranger cannot overwrite last_call).
* **Door code.** DTMF digits count only inside the current, connected call (one we placed, or a
  trusted, allowed caller's call we accepted). A correct code pulses the relay for
  ``door_pulse`` seconds and plays "opened"; wrong codes count towards a lockout that outlives
  the call (:mod:`intercom.app.door_lock`). ``intercom open`` pulses the relay as a correct
  code would, logged as opened from the control socket.
* **LED.** While idle it shows the registration: "registering", "registered" (also when no
  server is configured: direct calls only, the door is ready), "error" when registration
  failed. During a call it shows "ringing" or "in-call". A ``SetLed`` is only queued when the
  pattern changes; the first one is queued by the constructor.

Outgoing call events (CallProgressed, CallAnswered, CallFailed) that arrive before
:meth:`~Doorbell.call_placed` (the user agent may report them while it is still sending the
INVITE) adopt their Call-ID for the call being placed. Events of other calls are ignored.
What is kept of a call, during it and after it (``last_call``), is in
:mod:`intercom.app.call_record`.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Iterable
from enum import Enum
from typing import Any

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
from intercom.app.call_record import (
    CallRecord,
    StatsLike,
    empty_last_call,
    last_call_summary,
    stats_figures,
)
from intercom.app.door_lock import DoorLock, KeyResult
from intercom.app.doorbell_config import DoorbellConfig
from intercom.app.outcome import feedback_tone, outcome_of
from intercom.app.policy import CallPolicy
from intercom.feedback import LedPattern, Tone
from intercom.media.dtmf import DtmfDigit
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

__all__ = [
    "BUSY_HERE",
    "ENDING_TIMEOUT",
    "FEEDBACK_TIME",
    "CallState",
    "Doorbell",
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


class CallState(Enum):
    IDLE = "idle"  #: no call
    CALLING = "calling"  #: PlaceCall queued or INVITE sent, nothing heard yet
    RINGING = "ringing"  #: a phone rings (180/183), or an incoming call waits for answer_delay
    CONNECTED = "connected"  #: answered; digits count
    ENDING = "ending"  #: HangUp queued, waiting for CallFailed / CallEnded


class RegistrationState(Enum):
    DISABLED = "disabled"  #: no SIP server configured (or unregistered at shutdown)
    REGISTERING = "registering"  #: the first REGISTER has not been answered yet
    REGISTERED = "registered"
    FAILED = "failed"  #: the last attempt failed; the registration retries


_IDLE_LED = {
    RegistrationState.DISABLED: LedPattern.REGISTERED,
    RegistrationState.REGISTERING: LedPattern.REGISTERING,
    RegistrationState.REGISTERED: LedPattern.REGISTERED,
    RegistrationState.FAILED: LedPattern.ERROR,
}


class Doorbell:
    """The doorbell state machine (see the module docstring)."""

    def __init__(self, config: DoorbellConfig) -> None:
        self.config = config
        self.policy = CallPolicy(
            config.allowed_callers, config.trusted_networks, config.home_domains
        )
        self.lock = DoorLock(config.door_code, config.code_attempts, config.lockout)
        self.state = CallState.IDLE
        self.registration = (
            RegistrationState.REGISTERING if config.registration else RegistrationState.DISABLED
        )
        self.last_status: int | None = None
        self.opened_count = 0
        self._call: CallRecord | None = None
        self._last_call: dict[str, Any] = empty_last_call()
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
        deadlines = [self._feedback_until, self.lock.get_timer()]
        call = self._call
        if call is not None:
            deadlines += [call.ring_at, call.answer_at, call.end_at, call.give_up_at]
        return min((t for t in deadlines if t is not None), default=None)

    def status(self) -> dict[str, Any]:
        """The ``intercom status --json`` object of design.md (a fresh copy)."""
        return {
            "registration": {"state": self.registration.value, "last_status": self.last_status},
            "call": {"state": self.state.value},
            "last_call": dict(self._last_call),
            "door": {"opened_count": self.opened_count, "locked_out": self.lock.locked_out},
        }

    # -- inputs: the button and the control socket ----------------------------------------

    def press(self, now: float) -> bool:
        """The doorbell button (or ``intercom press``). True when it places a call."""
        if self.state is not CallState.IDLE:
            logger.info("button pressed while %s: ignored", self.state.value)
            return False
        if self._cooldown_until is not None and now < self._cooldown_until:
            logger.info("button pressed %.1f s before the cooldown after the last call ends: "
                        "ignored", self._cooldown_until - now)  # fmt: skip
            return False
        target = self.config.call_target
        if target is None:
            logger.error("button pressed, but no call target is configured "
                         "(INTERCOM_CALL_TARGET)")  # fmt: skip
            self._feedback(Tone.ERROR, now)
            return False
        logger.info("button pressed: calling %s", target)
        self._call = CallRecord(outgoing=True, ring_at=now + self.config.ring_timeout)
        self.state = CallState.CALLING
        self._set_led(LedPattern.RINGING)
        self._actions.append(PlaceCall(target))
        return True

    def hangup_request(self, now: float) -> bool:
        """``intercom hangup``: end the current call (CANCEL while ringing, BYE when
        connected). True when there was a call to end."""
        call = self._call
        if call is None or self.state in (CallState.IDLE, CallState.ENDING):
            logger.info("hangup requested with no call to end")
            return False
        logger.info("hangup requested from the control socket")
        if not call.outgoing and self.state is CallState.RINGING:
            assert call.call_id is not None
            self._actions.append(RejectCall(call.call_id, TEMPORARILY_UNAVAILABLE))
            self._finish(now, "cancelled", cooldown=False)  # no event will follow a refusal
            return True
        if self.state is not CallState.CONNECTED:
            call.outcome = "cancelled"
        self._hang_up(call, "hung up", now)
        return True

    def open_request(self, now: float) -> bool:
        """``intercom open``: pulse the relay as a correct code would. True when it did."""
        return self._open("from the control socket")

    def set_server_addresses(self, addresses: Iterable[str]) -> None:
        """The SIP server's and outbound proxy's resolved IP addresses: incoming calls from them
        are trusted, and only they may assert a caller's identity."""
        self.policy.set_server_addresses(addresses)

    # -- inputs: the user agent and the media ---------------------------------------------

    def call_placed(self, call_id: str, now: float) -> None:
        """The runtime sent the INVITE of our ``PlaceCall``; ``call_id`` identifies it."""
        call = self._call
        if call is not None and call.outgoing and call.call_id in (None, call_id):
            if call.call_id is None:
                self._adopt(call, call_id)
            return
        logger.warning("call %s placed while no call was wanted: hanging up", call_id[:8])
        self._actions.append(HangUp(call_id, "not wanted"))

    def call_failed_to_start(self, reason: str, now: float) -> None:
        """Our ``PlaceCall`` could not even send an INVITE (bad target, no RTP port...)."""
        call = self._call
        if call is None or not call.outgoing or call.call_id is not None:
            logger.warning("call failure reported with no call being placed: %s", reason)
            return
        logger.error("call to %s could not start: %s", self.config.call_target, reason)
        self._finish(now, call.outcome or "failed")

    def on_event(self, event: Event, now: float) -> None:
        """Follow one event of the user agent (hand every event here; others are ignored)."""
        if isinstance(event, RegistrationSucceeded):
            self.registration, self.last_status = RegistrationState.REGISTERED, 200
        elif isinstance(event, RegistrationFailed):
            self.registration, self.last_status = RegistrationState.FAILED, event.status
        elif isinstance(event, Unregistered):
            self.registration = RegistrationState.DISABLED
        elif isinstance(event, CallProgressed | CallAnswered | CallFailed):
            call = self._outgoing(event.call_id)
            if call is None:
                logger.debug("event of another call %s ignored", event.call_id[:8])
            elif isinstance(event, CallProgressed):
                self._progressed(call, event)
            elif isinstance(event, CallAnswered):
                self._answered(call, now)
            else:
                self._failed(call, event, now)
        elif isinstance(event, CallEnded):
            call = self._call
            if call is not None and call.call_id == event.call_id:
                logger.info("%s ended: %s", call.label, event.reason)
                self._finish(now, call.outcome or "answered")
        elif isinstance(event, IncomingCallReceived):
            self._incoming(event, now)
        elif isinstance(event, IncomingCallCancelled):
            call = self._call
            ours = call is not None and not call.outgoing and call.call_id == event.call_id
            if ours and call is not None and self.state is CallState.RINGING:
                logger.info("incoming %s %s before it was answered", call.label, event.reason)
                self._finish(now, "cancelled", cooldown=False)
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
        """No RTP arrived for the media timeout: end the call."""
        call = self._call
        if call is not None and call.call_id == call_id and self.state is CallState.CONNECTED:
            logger.warning("%s: no media, hanging up", call.label)
            self._hang_up(call, "media timeout", now)

    def call_stats(self, call_id: str, stats: StatsLike) -> None:
        """The media figures of a call (during it, or once its media closed)."""
        figures = stats_figures(stats)
        if call_id == self._last_call_id:
            self._last_call.update(figures)
        elif self._call is not None and self._call.call_id == call_id:
            self._call.stats = figures

    # -- timers ---------------------------------------------------------------------------

    def handle_timer(self, now: float) -> None:
        """Fire every deadline that is due at ``now``."""
        self.lock.handle_timer(now)
        call = self._call
        if call is not None:
            if call.ring_at is not None and now >= call.ring_at:
                call.ring_at = None
                logger.info("%s: no answer after %.0f s, cancelling",
                            call.label, self.config.ring_timeout)  # fmt: skip
                call.outcome = "no-answer"
                self._hang_up(call, "ring timeout", now)
            elif call.answer_at is not None and now >= call.answer_at:
                self._accept(call, now)
            elif call.end_at is not None and now >= call.end_at:
                logger.info("%s reached the maximum duration of %.0f s, hanging up",
                            call.label, self.config.max_call_duration)  # fmt: skip
                self._hang_up(call, "max call duration", now)
            elif call.give_up_at is not None and now >= call.give_up_at:
                logger.warning("%s: no end reported %.0f s after hanging up; taken as over",
                               call.label, ENDING_TIMEOUT)  # fmt: skip
                answered = call.answered_at is not None
                self._finish(now, call.outcome or ("answered" if answered else "failed"))
        if self._feedback_until is not None and now >= self._feedback_until:
            self._feedback_until = None
            if self.state is CallState.IDLE:
                self._refresh_led()

    # -- internals --------------------------------------------------------------------------

    def _outgoing(self, call_id: str) -> CallRecord | None:
        """Our outgoing call with ``call_id``; adopts the id while it is not known yet."""
        call = self._call
        if call is None or not call.outgoing:
            return None
        if call.call_id is None:
            self._adopt(call, call_id)
        return call if call.call_id == call_id else None

    def _adopt(self, call: CallRecord, call_id: str) -> None:
        call.call_id = call_id
        if call.pending_hangup is not None:  # hung up before we knew the Call-ID
            self._actions.append(HangUp(call_id, call.pending_hangup))
            call.pending_hangup = None

    def _progressed(self, call: CallRecord, event: CallProgressed) -> None:
        if self.state not in (CallState.CALLING, CallState.RINGING):
            return
        self.state = CallState.RINGING
        # Early media (183 with SDP) brings the callee's own ringback: the speaker is theirs.
        self._play(None if event.sdp else Tone.RINGBACK)

    def _answered(self, call: CallRecord, now: float) -> None:
        if self.state not in (CallState.CALLING, CallState.RINGING):
            return
        logger.info("%s answered", call.label)
        self._connect(call, now)

    def _failed(self, call: CallRecord, event: CallFailed, now: float) -> None:
        outcome = call.outcome or outcome_of(event.status, event.reason)
        logger.info("%s failed: %s (%s)", call.label, outcome,
                    event.status if event.status is not None else event.reason)  # fmt: skip
        self._finish(now, outcome)

    def _incoming(self, event: IncomingCallReceived, now: float) -> None:
        verdict = self.policy.decide(event)
        label = f"incoming call {event.call_id[:8]}"
        if not verdict.allowed:
            logger.warning("x %s from %r (sent by %s) refused with %d: %s", label,
                           verdict.identity, event.source_host, verdict.status,
                           verdict.reason)  # fmt: skip
            self._actions.append(RejectCall(event.call_id, verdict.status))
            return
        if self.state is not CallState.IDLE:
            logger.info("x %s from %r refused with %d: busy (%s)", label, verdict.identity,
                        BUSY_HERE, self.state.value)  # fmt: skip
            self._actions.append(RejectCall(event.call_id, BUSY_HERE))
            return
        logger.info("%s from %r allowed; answering in %.1f s", label, verdict.identity,
                    self.config.answer_delay)  # fmt: skip
        call = CallRecord(outgoing=False, call_id=event.call_id)
        call.answer_at = now + self.config.answer_delay
        self._call = call
        self.state = CallState.RINGING
        self._set_led(LedPattern.RINGING)
        if self.config.answer_delay == 0:
            self._accept(call, now)

    def _accept(self, call: CallRecord, now: float) -> None:
        assert call.call_id is not None
        call.answer_at = None
        self._actions.append(AcceptCall(call.call_id))
        self._connect(call, now)

    def _connect(self, call: CallRecord, now: float) -> None:
        call.ring_at = None
        call.answered_at = now
        call.end_at = now + self.config.max_call_duration
        self.state = CallState.CONNECTED
        self._play(None)  # the call's media owns the speaker now
        self._set_led(LedPattern.IN_CALL)

    def _hang_up(self, call: CallRecord, reason: str, now: float) -> None:
        call.ring_at = call.answer_at = call.end_at = None
        call.give_up_at = now + ENDING_TIMEOUT
        self.state = CallState.ENDING
        self._play(None)
        if call.call_id is None:
            call.pending_hangup = reason
        else:
            self._actions.append(HangUp(call.call_id, reason))

    def _finish(self, now: float, outcome: str, *, cooldown: bool = True) -> None:
        """The call is over: record it, go idle, give feedback."""
        call = self._call
        self._last_call = last_call_summary(call, outcome, now)
        self._last_call_id = call.call_id if call is not None else None
        self._call = None
        self.state = CallState.IDLE
        self.lock.end_entry()
        if cooldown:
            self._cooldown_until = now + self.config.cooldown
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
        if not self.config.has_relay:
            logger.error("cannot open the door %s: no door relay is configured "
                         "(INTERCOM_DOOR_RELAY_PIN)", how)  # fmt: skip
            return False
        self.opened_count += 1
        logger.info("door opened %s", how)
        self._actions.append(PulseRelay(self.config.door_pulse))
        self._play(Tone.OPENED)
        return True

    def _play(self, tone: Tone | None) -> None:
        """Start ``tone`` (None: stop); a running ringback is not restarted."""
        if tone is self._tone and tone in (None, Tone.RINGBACK):
            return
        self._tone = tone
        self._actions.append(StopTone() if tone is None else PlayTone(tone))

    def _idle_led(self) -> LedPattern:
        if self._feedback_until is not None:
            return LedPattern.ERROR
        return _IDLE_LED[self.registration]

    def _refresh_led(self) -> None:
        self._set_led(self._idle_led())

    def _set_led(self, pattern: LedPattern) -> None:
        if pattern != self._led:
            self._led = pattern
            self._actions.append(SetLed(pattern))
