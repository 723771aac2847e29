"""What the door shows and plays, by name: the enums the doorbell, media and hardware share.

A leaf (it imports nothing from ``intercom``), below every layer: the doorbell chooses a
:class:`Tone` or :class:`LedPattern`, :mod:`intercom.media.tones` holds each tone's cadence
and :mod:`intercom.hw.gpio` each pattern's blink.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = ["LedPattern", "Tone"]


class Tone(StrEnum):
    RINGBACK = "ringback"  #: loops while the phones ring
    BUSY = "busy"  #: the call was refused
    ERROR = "error"  #: the call failed, or a wrong door code
    OPENED = "opened"  #: the door opens


class LedPattern(StrEnum):
    OFF = "off"
    REGISTERING = "registering"
    REGISTERED = "registered"  #: also with no server: direct calls, ready
    RINGING = "ringing"
    IN_CALL = "in-call"
    ERROR = "error"
