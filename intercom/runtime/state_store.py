"""What the daemon keeps across a restart, in the service's state directory.

systemd's ``StateDirectory=intercom`` gives the service ``/var/lib/intercom`` (mode 0700, owned
by the service user) and names it in ``$STATE_DIRECTORY``; ``INTERCOM_STATE_DIR`` overrides it.
One small JSON file, ``state.json``, holds the door's RFC 5626 instance URN (made once, so that
a registrar knows a restarted door as the same device), the door lock's wrong-code count and
the wall-clock end of a lockout, so that killing or restarting the daemon (an out-of-memory
kill a stranger provoked, a power cut) buys nobody fresh guesses at the door code; and the last
20 calls (``intercom status``'s history, a few kB at most) with the time of the last ring.

Writes are atomic: a temporary file in the same directory, written, flushed to the disk, then
renamed over the old one, and the directory flushed too; a reader finds the old state or the
new one, never half of either. The file is created mode 0600. It never holds the code or any
entered key.

A store that cannot be used is not fatal: the daemon runs, keeps the state in memory and logs
one warning. A file that exists but cannot be read is taken as the worst case, a lockout that
has just begun (:meth:`StateStore.load_lock`): corruption must not hand out guesses either.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from pathlib import Path
from typing import Any

from intercom.app.call_record import HISTORY_SIZE, CallSummary
from intercom.app.door_lock import LockRecord

__all__ = ["STATE_FILE", "StateStore", "state_directory"]

logger = logging.getLogger(__name__)

STATE_FILE = "state.json"


def state_directory(configured: str, environ: dict[str, str] | None = None) -> Path | None:
    """``INTERCOM_STATE_DIR`` when set, else the first of systemd's ``$STATE_DIRECTORY``."""
    if configured:
        return Path(configured)
    systemd = (os.environ if environ is None else environ).get("STATE_DIRECTORY", "")
    first = systemd.split(":", 1)[0]
    return Path(first) if first else None


class StateStore:
    """``state.json`` in one directory (see the module docstring)."""

    def __init__(self, directory: Path) -> None:
        self.path = directory / STATE_FILE
        self._warned = False

    def load_lock(self, lockout: float, wallclock: float) -> LockRecord:
        """The kept door lock state, the lockout's end turned into seconds left."""
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            lock = data["door_lock"]
            failures = lock["failures"]
            until = lock["locked_until"]
            if not isinstance(failures, int) or not (until is None or _is_number(until)):
                raise ValueError("unexpected values")
        except FileNotFoundError:
            return LockRecord()
        except (OSError, ValueError, KeyError, TypeError) as exc:
            logger.warning("x %s cannot be read (%s): the door code starts locked out",
                           self.path, exc)  # fmt: skip
            return LockRecord(failures=0, locked_for=lockout)
        locked_for = None if until is None else float(until) - wallclock
        return LockRecord(failures, locked_for)

    def save_lock(self, record: LockRecord, wallclock: float) -> bool:
        """Keep ``record`` (its lockout as a wall-clock end); False, warned once, on failure."""
        until = None if record.locked_for is None else wallclock + record.locked_for
        lock = {"failures": record.failures, "locked_until": until}
        return self._write({**(self._read() or {}), "door_lock": lock})

    def load_history(self) -> tuple[list[CallSummary], float | None]:
        """The kept calls (oldest first) and the last ring's Unix time; entries that cannot be
        read are left out."""
        data = self._read() or {}
        calls = data.get("history")
        kept = [CallSummary.from_json(c) for c in calls if isinstance(c, dict)] if isinstance(
            calls, list
        ) else []  # fmt: skip
        ring = data.get("last_ring")
        last_ring = float(ring) if isinstance(ring, int | float) and _is_number(ring) else None
        return [c for c in kept if c is not None][-HISTORY_SIZE:], last_ring

    def save_history(self, calls: tuple[CallSummary, ...], last_ring: float | None) -> bool:
        """Keep the calls and the last ring (an unreadable file is left alone: it holds the
        lockout's worst case)."""
        data = self._read()
        if data is None:
            return False
        history = [call.to_json() for call in calls[-HISTORY_SIZE:]]
        unlocked = {"failures": 0, "locked_until": None}  # a new file still reads as a lock
        return self._write(
            {"door_lock": unlocked, **data, "history": history, "last_ring": last_ring}
        )

    def instance_id(self) -> str:
        """This installation's RFC 5626 ``+sip.instance`` URN, made once and kept."""
        data = self._read()
        kept = data.get("instance_id") if data is not None else None
        if isinstance(kept, str) and kept.startswith("urn:uuid:"):
            return kept
        import uuid  # only the first start makes one: later ones read it

        made = f"urn:uuid:{uuid.uuid4()}"
        if data is not None:  # an unreadable file stays as it is: load_lock takes it as a lockout
            unlocked = {"failures": 0, "locked_until": None}  # a new file still reads as a lock
            self._write({"door_lock": unlocked, **data, "instance_id": made})
        return made

    def _read(self) -> dict[str, Any] | None:
        """The kept state: {} without a file, None when the file cannot be read."""
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    def _write(self, data: dict[str, Any]) -> bool:
        import tempfile  # a write is rare (a new instance id, a wrong code): not at start-up

        directory = self.path.parent
        try:
            directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd, temporary = tempfile.mkstemp(prefix=".state-", suffix=".tmp", dir=directory)
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as file:  # mkstemp: mode 0600
                    json.dump(data, file)
                    file.flush()
                    os.fsync(file.fileno())
                os.replace(temporary, self.path)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(temporary)
                raise
            dir_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
        except OSError as exc:
            if not self._warned:
                self._warned = True
                logger.warning("x cannot keep state in %s (%s): door-code attempts are not "
                               "kept across a restart", directory, exc.strerror or exc)  # fmt: skip
            return False
        self._warned = False
        return True


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
