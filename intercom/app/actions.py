"""What the doorbell asks the runtime to do: one frozen dataclass per action.

:class:`intercom.app.doorbell.Doorbell` queues these; the runtime drains them with
``Doorbell.next_action()`` and carries each out in order: ``PlaceCall`` -> ``ua.call`` (then
reports the Call-ID with ``Doorbell.call_placed``), ``HangUp`` -> ``ua.hangup``,
``AcceptCall`` / ``RejectCall`` -> the incoming call's 200 OK or error response, ``PlayTone``
-> the door speaker, ``SetLed`` -> the status LED, ``PulseRelay`` -> the door relay. Actions are
values: tests compare them with ``==``.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "LED_PATTERNS",
    "TONES",
    "AcceptCall",
    "Action",
    "HangUp",
    "PlaceCall",
    "PlayTone",
    "PulseRelay",
    "RejectCall",
    "SetLed",
]

TONES = ("ringback", "busy", "error", "opened", "none")
"""Every :attr:`PlayTone.name`."""
LED_PATTERNS = ("off", "registering", "registered", "ringing", "in-call", "error")
"""Every :attr:`SetLed.pattern`."""


@dataclass(frozen=True, slots=True)
class Action:
    """Base of every action the runtime carries out."""


@dataclass(frozen=True, slots=True)
class PlaceCall(Action):
    """Call ``target``; report the Call-ID with ``Doorbell.call_placed``."""

    target: str


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
    """Play a tone at the door speaker: "ringback" loops, "none" stops, others play once."""

    name: str


@dataclass(frozen=True, slots=True)
class SetLed(Action):
    """Show ``pattern`` on the status LED (one of :data:`LED_PATTERNS`)."""

    pattern: str


@dataclass(frozen=True, slots=True)
class PulseRelay(Action):
    """Energise the door relay for ``seconds``, then release it."""

    seconds: float
