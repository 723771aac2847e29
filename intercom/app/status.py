"""The ``intercom status --json`` object of design.md, rendered from the doorbell's snapshot.

:meth:`intercom.app.doorbell.Doorbell.snapshot` is a typed, frozen :class:`DoorbellStatus`;
:func:`render_status` makes the JSON object of it. The state machine never builds JSON.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from intercom.app.call_record import LastCall

__all__ = ["DoorbellStatus", "render_status"]


@dataclass(frozen=True, slots=True)
class DoorbellStatus:
    """What the doorbell knows at one moment."""

    registration: str  #: "registered", "registering", "failed" or "disabled"
    last_status: int | None  #: the registrar's last final status
    call: str  #: "idle", "calling", "ringing", "connected" or "ending"
    last_call: LastCall
    opened_count: int  #: door openings since the start
    locked_out: bool  #: the door code is locked out after too many wrong codes
    registration_reason: str | None = None  #: one line why, while a failed one retries


def render_status(status: DoorbellStatus) -> dict[str, Any]:
    """The status object of design.md (a fresh one each time)."""
    registration: dict[str, Any] = {
        "state": status.registration, "last_status": status.last_status
    }  # fmt: skip
    if status.registration_reason is not None:
        registration["reason"] = status.registration_reason
    return {
        "registration": registration,
        "call": {"state": status.call},
        "last_call": asdict(status.last_call),
        "door": {"opened_count": status.opened_count, "locked_out": status.locked_out},
    }
