"""The ``intercom status --json`` object of design.md, rendered from the doorbell's snapshot; the
one-line summary systemd shows (``STATUS=``); the events ``intercom watch`` follows.

The doorbell's states are defined here with the names status shows for them (:func:`call_status`,
:data:`CALL_STATES`, :data:`REGISTRATION_STATES`, which Home Assistant's sensors list too).
:meth:`intercom.app.doorbell.Doorbell.snapshot` is a typed, frozen :class:`DoorbellStatus`;
:func:`render_status` makes the JSON object of it, :func:`status_line` the line of
``systemctl status intercom``, and :func:`changes` the events between two snapshots. The state
machine never builds JSON. Times are Unix times in the snapshot and ISO 8601 with the UTC offset
(local time) in what people see (:func:`iso_time`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from enum import Enum
from typing import Any

from intercom.app.call_record import CallSummary, LastCall

__all__ = [
    "CALL_STATES",
    "REGISTRATION_STATES",
    "CallState",
    "DoorbellStatus",
    "RegistrationState",
    "call_status",
    "changes",
    "iso_time",
    "render_status",
    "status_line",
]


class CallState(Enum):
    """The doorbell's call; ``call.state`` shows it by :func:`call_status`."""

    IDLE = "idle"  #: no call
    CALLING = "calling"  #: PlaceCall queued or INVITE sent, nothing heard yet
    RINGING = "ringing"  #: a phone rings (180/183)
    ANSWERING = "answering"  #: an allowed incoming call waits for answer_delay
    CONNECTED = "connected"  #: answered; digits count
    ENDING = "ending"  #: HangUp queued, waiting for the failure / end


class RegistrationState(Enum):
    """The doorbell's view of the registration, shown as its value."""

    REGISTERED = "registered"
    REGISTERING = "registering"  #: the first REGISTER has not been answered yet
    FAILED = "failed"  #: the last attempt failed; the registration retries
    DISABLED = "disabled"  #: no SIP server configured (or unregistered at shutdown)


def call_status(state: CallState) -> str:
    """The ``call.state`` of ``intercom status``: an incoming call waiting for its answer delay
    shows as ringing (people see the door ring, not the delay)."""
    return CallState.RINGING.value if state is CallState.ANSWERING else state.value


CALL_STATES = tuple(dict.fromkeys(map(call_status, CallState)))
"""Every ``call.state`` status can show."""
REGISTRATION_STATES = tuple(state.value for state in RegistrationState)
"""Every ``registration.state`` status can show."""


@dataclass(frozen=True, slots=True)
class DoorbellStatus:
    """What the doorbell knows at one moment."""

    registration: str  #: one of REGISTRATION_STATES
    last_status: int | None  #: the registrar's last final status
    call: str  #: one of CALL_STATES
    last_call: LastCall
    opened_count: int  #: door openings since the start
    locked_out: bool  #: the door code is locked out after too many wrong codes
    registration_reason: str | None = None  #: one line why, while a failed one retries
    registered_since: float | None = None  #: Unix time the registration started
    last_ring: float | None = None  #: Unix time of the last press that called
    history: tuple[CallSummary, ...] = ()  #: the last calls, oldest first
    call_outgoing: bool | None = None  #: the current call's direction (None: no call)
    call_peer: str | None = None  #: who answered (outgoing) or who calls (incoming)


def iso_time(wall: float | None) -> str | None:
    """Unix time as ISO 8601 in local time with its UTC offset, to the second."""
    if wall is None:
        return None
    from datetime import datetime  # only when a time is shown: not on the way to REGISTER

    return datetime.fromtimestamp(wall).astimezone().isoformat(timespec="seconds")


def render_status(status: DoorbellStatus) -> dict[str, Any]:
    """The status object of design.md (a fresh one each time): ``registration.since`` while
    registered, ``last_ring`` (None before the first), ``history`` newest first."""
    registration: dict[str, Any] = {
        "state": status.registration, "last_status": status.last_status
    }  # fmt: skip
    if status.registered_since is not None:
        registration["since"] = iso_time(status.registered_since)
    if status.registration_reason is not None:
        registration["reason"] = status.registration_reason
    return {
        "registration": registration,
        "call": {"state": status.call},
        "last_call": asdict(status.last_call),
        "last_ring": iso_time(status.last_ring),
        "door": {"opened_count": status.opened_count, "locked_out": status.locked_out},
        "history": [_history_entry(entry) for entry in reversed(status.history)],
    }


def _history_entry(entry: CallSummary) -> dict[str, Any]:
    return {
        "time": iso_time(entry.at), "direction": entry.direction, "outcome": entry.outcome,
        "duration": entry.duration, "codec": entry.codec, "answered_by": entry.answered_by,
    }  # fmt: skip


def status_line(status: DoorbellStatus, *, user: str, server: str | None, target: str) -> str:
    """The one line ``systemctl status intercom`` shows: the call, else the registration."""
    if status.call != "idle":
        incoming = status.call_outgoing is False
        peer = status.call_peer or ("a caller" if incoming else target)
        if status.call == "connected":
            return f"in a call with {peer}"
        if status.call == "ending":
            return f"ending the call with {peer}"
        return f"incoming call from {peer}" if incoming else f"calling {target}"
    if server is None:
        return "no SIP server: direct calls only"
    if status.registration == "registered":
        return f"registered as {user} at {server}"
    if status.registration == "failed":
        return f"registration as {user} at {server} failed: {status.registration_reason}"
    if status.registration == "disabled":
        return f"not registered at {server}"
    return f"registering as {user} at {server}"


def changes(before: DoorbellStatus | None, after: DoorbellStatus) -> list[dict[str, Any]]:
    """The events between two snapshots (``intercom watch``): registration changes, rings,
    call progress, calls ended, door openings; each a small JSON object."""
    events: list[dict[str, Any]] = []
    if before is None:
        return events
    if (after.registration, after.registration_reason) != (
        before.registration, before.registration_reason,
    ):  # fmt: skip
        event: dict[str, Any] = {"event": "registration", "state": after.registration}
        if after.registration_reason:
            event["reason"] = after.registration_reason
        events.append(event)
    if after.last_ring != before.last_ring and after.last_ring is not None:
        events.append({"event": "ring"})
    if after.call != before.call and after.call != "idle":
        event = {"event": "call", "state": after.call}
        if after.call_outgoing is not None:
            event["direction"] = "outgoing" if after.call_outgoing else "incoming"
        if after.call_peer:
            event["peer"] = after.call_peer
        events.append(event)
    newest = after.history[-1] if after.history else None
    if newest is not None and (not before.history or before.history[-1].at != newest.at):
        ended = _history_entry(newest)
        del ended["time"]
        events.append({"event": "call ended", **ended})
    if after.opened_count > before.opened_count:
        events.append({"event": "door opened", "count": after.opened_count})
    if after.locked_out != before.locked_out:
        events.append({"event": "door code", "locked_out": after.locked_out})
    return events
