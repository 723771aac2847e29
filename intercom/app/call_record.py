"""What the doorbell keeps about a call: the one in progress, and the summary of the last one.

:class:`CallRecord` is the doorbell's bookkeeping of the call in progress: its direction,
Call-ID and the one deadline :class:`intercom.app.doorbell.Doorbell` arms for the state it is in.
When the call is over the doorbell keeps only its :class:`LastCall`, the ``last_call`` object of
``intercom status --json`` (design.md), whose media figures may also arrive after the call ended
(the media closes after the dialog), and a :class:`CallSummary` in its :class:`CallHistory`, the
last :data:`HISTORY_SIZE` calls, which the daemon keeps across restarts (``state.json``).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # a type only: the media stack loads when the daemon has started
    from intercom.media.stream import StreamStats

__all__ = ["HISTORY_SIZE", "CallHistory", "CallRecord", "CallSummary", "LastCall"]

HISTORY_SIZE = 20
"""Calls kept in the history (``intercom status``)."""


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
    started_wall: float | None = None  # Unix time of the press or of the incoming INVITE
    remote: str | None = None  # who answered (outgoing) or who called (incoming)

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


@dataclass(frozen=True, slots=True)
class CallSummary:
    """One call of the history: when it started (Unix time), which way, how it ended."""

    at: float
    direction: str  #: "outgoing" (a ring) or "incoming"
    outcome: str
    duration: float  #: seconds from the answer; 0 for a call never answered
    codec: str | None = None
    answered_by: str | None = None  #: outgoing: who answered; incoming: who called

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> CallSummary | None:
        """A kept entry; None when it is not one (a damaged or older file)."""
        try:
            at, duration = float(data["at"]), float(data["duration"])
            direction, outcome = data["direction"], data["outcome"]
            codec, answered_by = data.get("codec"), data.get("answered_by")
        except (KeyError, TypeError, ValueError):
            return None
        texts = (direction, outcome)
        optional = (codec, answered_by)
        if not all(isinstance(t, str) for t in texts) or not all(
            t is None or isinstance(t, str) for t in optional
        ):
            return None
        return cls(at, direction, outcome, duration, codec, answered_by)


class CallHistory:
    """The last :data:`HISTORY_SIZE` calls, oldest first; :attr:`version` counts changes."""

    def __init__(self, kept: Iterable[CallSummary] = ()) -> None:
        self._calls: deque[CallSummary] = deque(kept, maxlen=HISTORY_SIZE)
        self.version = 0

    @property
    def calls(self) -> tuple[CallSummary, ...]:
        return tuple(self._calls)

    def restore(self, kept: Iterable[CallSummary]) -> None:
        """Calls kept from before a restart, before the ones of this run."""
        self._calls = deque([*kept, *self._calls], maxlen=HISTORY_SIZE)
        self.version += 1

    def add(self, call: CallRecord, last: LastCall) -> None:
        if call.started_wall is None:
            return
        self._calls.append(
            CallSummary(
                call.started_wall, "outgoing" if call.outgoing else "incoming",
                last.outcome or "failed", last.duration or 0.0, last.codec, call.remote,
            )
        )  # fmt: skip
        self.version += 1

    def set_codec(self, codec: str) -> None:
        """The newest call's codec, once its media figures arrived after its end."""
        if self._calls and self._calls[-1].codec is None:
            self._calls[-1] = replace(self._calls[-1], codec=codec)
            self.version += 1
