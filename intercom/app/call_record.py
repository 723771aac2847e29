"""What the doorbell keeps about a call: the one in progress, and the summary of the last one.

:class:`CallRecord` is the doorbell's bookkeeping of the call in progress: its direction,
Call-ID and the deadlines :class:`intercom.app.doorbell.Doorbell` arms for it. When the call is
over the doorbell keeps only its summary, the ``last_call`` object of ``intercom status --json``
(design.md): :func:`last_call_summary`, with the media figures of :func:`stats_figures`, which
may also arrive after the call ended (the media closes after the dialog).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

__all__ = ["CallRecord", "StatsLike", "empty_last_call", "last_call_summary", "stats_figures"]


class StatsLike(Protocol):
    """The figures ``Doorbell.call_stats`` reads (``intercom.media.stream.StreamStats``)."""

    @property
    def codec(self) -> str: ...
    @property
    def packets_sent(self) -> int: ...
    @property
    def packets_received(self) -> int: ...
    @property
    def packets_lost(self) -> int: ...
    @property
    def jitter_ms(self) -> float: ...


@dataclass(slots=True)
class CallRecord:
    """The one call in progress."""

    outgoing: bool
    call_id: str | None = None
    answered_at: float | None = None
    ring_at: float | None = None  # ring timeout (outgoing, CALLING/RINGING)
    answer_at: float | None = None  # answer delay (incoming, RINGING)
    end_at: float | None = None  # max call duration (CONNECTED)
    give_up_at: float | None = None  # ENDING guard
    outcome: str | None = None  # set when we end the call ourselves: "no-answer", "cancelled"
    pending_hangup: str | None = None  # a hang-up reason waiting for the Call-ID
    stats: dict[str, Any] | None = None
    lockout_logged: bool = False

    @property
    def label(self) -> str:
        return f"call {self.call_id[:8]}" if self.call_id else "call"


_NO_LAST_CALL: dict[str, Any] = {
    "outcome": None, "codec": None, "duration": None, "packets_sent": None,
    "packets_received": None, "packets_lost": None, "jitter_ms": None,
}  # fmt: skip


def empty_last_call() -> dict[str, Any]:
    """The ``last_call`` object before the first call: every field null."""
    return dict(_NO_LAST_CALL)


def last_call_summary(call: CallRecord | None, outcome: str, now: float) -> dict[str, Any]:
    """The ``last_call`` object of ``call``, over at ``now`` with ``outcome``: its duration
    counts from the answer (0 for a call never answered), with the figures it was given."""
    duration = 0.0
    if call is not None and call.answered_at is not None:
        duration = round(now - call.answered_at, 1)
    summary = dict(_NO_LAST_CALL, outcome=outcome, duration=duration)
    if call is not None and call.stats is not None:
        summary.update(call.stats)
    return summary


def stats_figures(stats: StatsLike) -> dict[str, Any]:
    """The media figures of a call as they appear in ``last_call``."""
    return {
        "codec": stats.codec, "packets_sent": stats.packets_sent,
        "packets_received": stats.packets_received, "packets_lost": stats.packets_lost,
        "jitter_ms": round(stats.jitter_ms, 1),
    }  # fmt: skip
