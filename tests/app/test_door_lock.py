"""The door lock on its own: code entry, wrong codes and the lockout, with a fake clock."""

from __future__ import annotations

import pytest

from intercom.app.door_lock import DoorLock, KeyResult


def test_door_lock_code_with_hash_uses_length_only():
    lock = DoorLock("12#", attempts=3, lockout=60.0)
    assert [lock.key(k, 0.0) for k in "12#"] == [
        KeyResult.COLLECTING, KeyResult.COLLECTING, KeyResult.OPENED,
    ]  # fmt: skip


def test_door_lock_lower_case_letters():
    lock = DoorLock("a1B2")
    assert [lock.key(k, 0.0) for k in "A1b2"][-1] is KeyResult.OPENED


def test_door_lock_without_lockout_counts_again():
    lock = DoorLock("1234", attempts=1, lockout=0.0)
    assert [lock.key(k, 0.0) for k in "0000"][-1] is KeyResult.LOCKED_OUT
    assert not lock.locked_out
    assert [lock.key(k, 0.0) for k in "1234"][-1] is KeyResult.OPENED


def test_door_lock_lockout_timer():
    lock = DoorLock("1234", attempts=2, lockout=60.0)
    results = [lock.key(k, 1.0) for k in "00000000"]
    assert results[3] is KeyResult.WRONG
    assert results[7] is KeyResult.LOCKED_OUT
    assert lock.get_timer() == 61.0
    assert lock.key("1", 60.9) is KeyResult.IGNORED
    lock.handle_timer(61.0)
    assert not lock.locked_out
    assert lock.failures == 0
    assert lock.get_timer() is None


def test_door_lock_refuses_bad_settings():
    with pytest.raises(ValueError, match="the door code is empty"):
        DoorLock("")
    with pytest.raises(ValueError, match="at least 1"):
        DoorLock("1234", attempts=0)
    with pytest.raises(ValueError, match="must not be negative"):
        DoorLock("1234", lockout=-1)
