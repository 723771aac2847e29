"""The door lock on its own: code entry, wrong codes and the lockout, with a fake clock."""

from __future__ import annotations

import pytest

from intercom.app.door_lock import DoorLock, KeyResult, LockRecord


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


# -- what outlives a restart ------------------------------------------------------------------


def test_the_record_holds_the_count_and_the_lockout_left() -> None:
    lock = DoorLock("1234", attempts=2, lockout=60.0)
    assert lock.record(0.0) == LockRecord(0, None)
    assert [lock.key(k, 1.0) for k in "9999"][-1] is KeyResult.WRONG
    assert lock.record(1.0) == LockRecord(1, None)
    assert [lock.key(k, 2.0) for k in "9999"][-1] is KeyResult.LOCKED_OUT
    assert lock.record(12.0) == LockRecord(2, 50.0)


def test_a_restored_lockout_refuses_keys_until_it_ends() -> None:
    lock = DoorLock("1234", attempts=3, lockout=60.0)
    lock.restore(LockRecord(3, 50.0), 100.0)
    assert lock.locked_out and lock.get_timer() == 150.0
    assert [lock.key(k, 101.0) for k in "1234"] == [KeyResult.IGNORED] * 4
    lock.handle_timer(150.0)
    assert not lock.locked_out and lock.failures == 0
    assert [lock.key(k, 151.0) for k in "1234"][-1] is KeyResult.OPENED


def test_a_restored_count_goes_on() -> None:
    lock = DoorLock("1234", attempts=3, lockout=60.0)
    lock.restore(LockRecord(2, None), 0.0)
    assert [lock.key(k, 1.0) for k in "0000"][-1] is KeyResult.LOCKED_OUT


def test_a_restored_lockout_never_runs_longer_than_the_configured_one() -> None:
    lock = DoorLock("1234", attempts=3, lockout=60.0)
    lock.restore(LockRecord(3, 86400.0), 0.0)  # the wall clock jumped back a day
    assert lock.locked_until == 60.0


def test_a_lockout_that_ran_out_while_down_starts_counting_anew() -> None:
    lock = DoorLock("1234", attempts=3, lockout=60.0)
    lock.restore(LockRecord(3, -5.0), 0.0)
    assert not lock.locked_out and lock.failures == 0
