"""The door code: DTMF keys in, "open" or "wrong" out, with a lockout like a PIN pad's.

Theory of operation
===================

:class:`DoorLock` collects the keys of one entry and judges it. It knows nothing about calls:
the doorbell feeds it only the digits of the current call (one the intercom placed, or a
trusted, allowed caller's call it accepted: design.md, "Security") and calls
:meth:`DoorLock.end_entry` when that call ends, which drops a half-typed entry. ``now`` is
monotonic seconds handed in; nothing here reads a clock.

Keys (DTMF: 0-9, ``*``, ``#``, A-D)::

    0-9, A-D   append to the entry; reaching the code's length judges it
    #          judges the entry at once (a short entry is a wrong code); ignored when empty
    *          clears the entry
    (5 s idle) the entry is dropped unjudged (:data:`ENTRY_TIMEOUT`)

When the code itself contains ``*`` or ``#``, that key is an ordinary digit and only the
length judges.

A wrong code counts an attempt; the ``attempts``-th wrong code in a row locks the lock out for
``lockout`` seconds, during which every key is ignored. Attempts count across calls, and the
lockout outlives the call that caused it: hanging up and calling again does not buy a visitor
more guesses. A correct code resets the count; so does the end of a lockout. The entered digits
are never logged (a near miss would tell the log's reader most of the code).

Codes are compared with :func:`hmac.compare_digest`, so the time a judgement takes says nothing
about how many leading digits were right.

The count and the lockout also outlive the process: a stranger who could crash or restart the
daemon must not buy fresh guesses with it. :meth:`DoorLock.record` is what the runtime keeps in
the service's state directory after every change, and :meth:`DoorLock.restore` takes it back at
start (the runtime turns the lockout's end into wall-clock time and back; this module keeps
only monotonic ``now``).
"""

from __future__ import annotations

import hmac
import logging
from dataclasses import dataclass
from enum import Enum

from intercom.media.dtmf import EVENT_FOR_DIGIT

__all__ = ["ENTRY_TIMEOUT", "DoorLock", "KeyResult", "LockRecord"]

logger = logging.getLogger(__name__)

ENTRY_TIMEOUT = 5.0
"""Seconds without a key after which a half-typed entry is dropped."""


class KeyResult(Enum):
    """What one key did."""

    COLLECTING = "collecting"  #: added to (or cleared) the entry; nothing judged yet
    OPENED = "opened"  #: the entry was the code
    WRONG = "wrong"  #: the entry was not the code; more attempts remain
    LOCKED_OUT = "locked out"  #: the entry was wrong and the lockout begins now
    IGNORED = "ignored"  #: no code is configured, the lockout runs, or not a key


@dataclass(frozen=True, slots=True)
class LockRecord:
    """What of a door lock outlives the process: wrong codes in a row and the lockout left."""

    failures: int = 0
    locked_for: float | None = None  #: seconds of lockout still to run; None: not locked out


class DoorLock:
    """Door code entry and lockout (see the module docstring)."""

    def __init__(self, code: str | None, attempts: int = 3, lockout: float = 300.0) -> None:
        if code is not None:
            if not code:
                raise ValueError("the door code is empty")
            for key in code:
                if key.upper() not in EVENT_FOR_DIGIT:
                    raise ValueError(f"door code key {key!r} is not a DTMF digit (0-9*#A-D)")
        if attempts < 1:
            raise ValueError(f"door code attempts must be at least 1, not {attempts}")
        if lockout < 0:
            raise ValueError(f"door lockout must not be negative, not {lockout}")
        self.code = code.upper() if code is not None else None
        self.attempts = attempts
        self.lockout = lockout
        self.failures = 0  #: wrong codes in a row (across calls) since the last success/lockout
        self.locked_until: float | None = None
        self._entry = ""
        self._entry_at: float | None = None  # when the last key of the entry came

    @property
    def locked_out(self) -> bool:
        """True from the lockout's start until :meth:`handle_timer` (or a key) sees its end."""
        return self.locked_until is not None

    def key(self, digit: str, now: float) -> KeyResult:
        """Take one key pressed at ``now``."""
        self.handle_timer(now)
        key = digit.upper()
        if self.code is None or key not in EVENT_FOR_DIGIT or len(key) != 1:
            return KeyResult.IGNORED
        if self.locked_until is not None:
            return KeyResult.IGNORED
        if key == "*" and "*" not in self.code:
            self.end_entry()
            return KeyResult.COLLECTING
        if key == "#" and "#" not in self.code:
            if not self._entry:
                return KeyResult.COLLECTING
            return self._judge(now)
        self._entry += key
        self._entry_at = now
        if len(self._entry) >= len(self.code):
            return self._judge(now)
        return KeyResult.COLLECTING

    def record(self, now: float) -> LockRecord:
        """The state to keep across a restart (never the entry: its keys are not stored)."""
        locked_for = None if self.locked_until is None else max(0.0, self.locked_until - now)
        return LockRecord(self.failures, locked_for)

    def restore(self, record: LockRecord, now: float) -> None:
        """Take back a kept record at start. A lockout never runs longer than ``lockout``
        from now (the wall clock may have jumped while the daemon was down)."""
        self.failures = max(0, record.failures)
        self.locked_until = None
        if record.locked_for is not None and record.locked_for > 0 and self.code is not None:
            self.locked_until = now + min(record.locked_for, self.lockout)
            logger.warning("door code locked out for %.0f s more (kept across the restart)",
                           self.locked_until - now)  # fmt: skip
        elif self.failures >= self.attempts:  # the lockout ran out while the daemon was down
            self.failures = 0

    def end_entry(self) -> None:
        """Drop a half-typed entry (the call ended, ``*``). Attempts and lockout stay."""
        self._entry = ""
        self._entry_at = None

    def get_timer(self) -> float | None:
        """The next deadline: the entry's idle timeout or the end of the lockout."""
        deadlines = [self.locked_until]
        if self._entry_at is not None:
            deadlines.append(self._entry_at + ENTRY_TIMEOUT)
        return min((t for t in deadlines if t is not None), default=None)

    def handle_timer(self, now: float) -> None:
        """Drop an idle entry; end a lockout that is over."""
        if self._entry_at is not None and now >= self._entry_at + ENTRY_TIMEOUT:
            logger.info("door code entry dropped after %.0f s without a key", ENTRY_TIMEOUT)
            self.end_entry()
        if self.locked_until is not None and now >= self.locked_until:
            logger.info("door code lockout is over")
            self.locked_until = None
            self.failures = 0

    def _judge(self, now: float) -> KeyResult:
        assert self.code is not None
        entry = self._entry
        self.end_entry()
        if hmac.compare_digest(entry.encode(), self.code.encode()):
            self.failures = 0
            return KeyResult.OPENED
        self.failures += 1
        if self.failures < self.attempts:
            logger.warning("wrong door code (%d of %d)", self.failures, self.attempts)
            return KeyResult.WRONG
        logger.warning("wrong door code (%d of %d): locked out for %.0f s",
                       self.failures, self.attempts, self.lockout)  # fmt: skip
        self.locked_until = now + self.lockout
        if self.lockout == 0:  # no lockout configured: just start counting again
            self.handle_timer(now)
        return KeyResult.LOCKED_OUT
