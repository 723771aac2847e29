"""What the doorbell asks the runtime to do: one frozen dataclass per action.

:class:`intercom.app.doorbell.Doorbell` queues these; the runtime drains them with
``Doorbell.next_action()`` and carries each out in order: ``PlaceCall`` -> ``ua.call`` with
the Call-ID the doorbell drew, ``HangUp`` -> ``ua.hangup``, ``AcceptCall`` / ``RejectCall`` ->
the incoming call's 200 OK or error response, ``PlayTone`` / ``StopTone`` -> the door speaker,
``SetLed`` -> the status LED, ``PulseRelay`` -> the door relay. Actions are values: tests
compare them with ``==``.
"""

from __future__ import annotations

from dataclasses import dataclass

from intercom.feedback import LedPattern, Tone
from intercom.sip.uri import SipUri

__all__ = [
    "AcceptCall",
    "Action",
    "HangUp",
    "PlaceCall",
    "PlayTone",
    "PulseRelay",
    "RejectCall",
    "SetLed",
    "StopTone",
]


@dataclass(frozen=True, slots=True)
class Action:
    """Base of every action the runtime carries out."""


@dataclass(frozen=True, slots=True)
class PlaceCall(Action):
    """Call ``target`` with the Call-ID ``call_id`` (the doorbell drew it)."""

    target: SipUri
    call_id: str


@dataclass(frozen=True, slots=True)
class HangUp(Action):
    """End a call (``ua.hangup``): CANCEL while it rings, BYE when connected."""

    call_id: str
    reason: str  # "ring timeout", "max call duration", "media timeout", "hung up"


@dataclass(frozen=True, slots=True)
class AcceptCall(Action):
    """Answer an incoming call (200 OK with our SDP answer)."""

    call_id: str


@dataclass(frozen=True, slots=True)
class RejectCall(Action):
    """Refuse an incoming call with ``status`` (403, 486, 480)."""

    call_id: str
    status: int


@dataclass(frozen=True, slots=True)
class PlayTone(Action):
    """Play a tone at the door speaker: the ringback loops, the others play once."""

    name: Tone


@dataclass(frozen=True, slots=True)
class StopTone(Action):
    """Stop the tone at the door speaker (the call's audio takes it over)."""


@dataclass(frozen=True, slots=True)
class SetLed(Action):
    """Show ``pattern`` on the status LED."""

    pattern: LedPattern


@dataclass(frozen=True, slots=True)
class PulseRelay(Action):
    """Energise the door relay for ``seconds``, then release it."""

    seconds: float
