"""How a call ended, as ``last_call.outcome`` of ``intercom status``, and what the door plays then.

Every call the doorbell placed or accepted ends with one of :data:`OUTCOMES`:

* "answered": the call was connected, whoever ended it.
* For a CallFailed we did not cause (:func:`outcome_of`): 486/600 "busy", 603 "declined",
  408/480 "no-answer", another status with the reason "cancelled" "cancelled", anything else
  "failed" (including no final response at all, RFC 3261 Timer B, and an unreachable target).
* Outcomes the doorbell sets itself: "no-answer" when its ring timeout cancels the call,
  "cancelled" when a call is hung up on request before it was answered (or the caller
  cancels an incoming call), "failed" when a call could not even start.

The visitor hears the outcome of a call that was not connected (:func:`feedback_tone`): the busy
tone after "busy" and "declined", the error tone after "no-answer" and "failed"; "answered" and
"cancelled" end silently.
"""

from __future__ import annotations

from intercom.feedback import Tone

__all__ = ["OUTCOMES", "feedback_tone", "outcome_of"]

OUTCOMES = ("answered", "busy", "declined", "no-answer", "failed", "cancelled")

_TONES = {"busy": Tone.BUSY, "declined": Tone.BUSY, "no-answer": Tone.ERROR, "failed": Tone.ERROR}


def outcome_of(status: int | None, reason: str) -> str:
    """The ``last_call.outcome`` of a CallFailed we did not cause ourselves."""
    if status in (486, 600):
        return "busy"
    if status == 603:
        return "declined"
    if status in (408, 480):
        return "no-answer"
    if reason == "cancelled":
        return "cancelled"
    return "failed"


def feedback_tone(outcome: str) -> Tone | None:
    """The tone the door plays once a call ends with ``outcome``; None: none (silence)."""
    return _TONES.get(outcome)
