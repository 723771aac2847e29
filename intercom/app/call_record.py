"""What the doorbell keeps about a call: the one in progress, and the summary of the last one.

:class:`CallRecord` is the doorbell's bookkeeping of the call in progress: its direction,
Call-ID and the one deadline :class:`intercom.app.doorbell.Doorbell` arms for the state it is in.
When the call is over the doorbell keeps only its :class:`LastCall`, the ``last_call`` object of
``intercom status --json`` (design.md), whose media figures may also arrive after the call ended
(the media closes after the dialog).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # a type only: the media stack loads when the daemon has started
    from intercom.media.stream import StreamStats

__all__ = ["CallRecord", "LastCall"]


@dataclass(slots=True)
class CallRecord:
    """The one call in progress."""

    outgoing: bool
    call_id: str
    deadline: float | None = None  # when the state's timeout input fires
    answered_at: float | None = None
    outcome: str | None = None  # set when we end the call ourselves: "no-answer", "cancelled"
    stats: StreamStats | None = None
    lockout_logged: bool = False

    @property
    def label(self) -> str:
        return f"call {self.call_id[:8]}"


@dataclass(frozen=True, slots=True)
class LastCall:
    """The ``last_call`` object of the status (field order is the JSON's); all None before
    the first call."""

    outcome: str | None = None
    codec: str | None = None
    duration: float | None = None  # seconds from the answer; 0 for a call never answered
    packets_sent: int | None = None
    packets_received: int | None = None
    packets_lost: int | None = None
    jitter_ms: float | None = None

    @classmethod
    def of(cls, call: CallRecord | None, outcome: str, now: float) -> LastCall:
        """The summary of ``call``, over at ``now`` with ``outcome``."""
        duration = 0.0
        if call is not None and call.answered_at is not None:
            duration = round(now - call.answered_at, 1)
        last = cls(outcome=outcome, duration=duration)
        return last if call is None or call.stats is None else last.with_stats(call.stats)

    def with_stats(self, stats: StreamStats) -> LastCall:
        return replace(
            self, codec=stats.codec, packets_sent=stats.packets_sent,
            packets_received=stats.packets_received, packets_lost=stats.packets_lost,
            jitter_ms=round(stats.jitter_ms, 1),
        )  # fmt: skip
