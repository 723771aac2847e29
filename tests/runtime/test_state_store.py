"""The state kept across restarts: atomic, private, and fail-closed when unreadable."""

from __future__ import annotations

import json
import logging
import os
import stat
from pathlib import Path

import pytest

from intercom.app.door_lock import LockRecord
from intercom.runtime.state_store import STATE_FILE, StateStore, state_directory

WALL = 1_800_000_000.0


def test_the_lock_record_round_trips_through_wall_clock_time(tmp_path: Path) -> None:
    store = StateStore(tmp_path)
    assert store.load_lock(300.0, WALL) == LockRecord()  # nothing kept yet
    assert store.save_lock(LockRecord(3, 120.0), WALL)
    assert json.loads((tmp_path / STATE_FILE).read_text()) == {
        "door_lock": {"failures": 3, "locked_until": WALL + 120.0}
    }
    # 20 s later (the daemon was down in between): 100 s of the lockout are left
    assert store.load_lock(300.0, WALL + 20.0) == LockRecord(3, 100.0)
    assert store.save_lock(LockRecord(1, None), WALL)
    assert store.load_lock(300.0, WALL) == LockRecord(1, None)


def test_the_instance_id_is_made_once_and_kept_beside_the_lock(tmp_path: Path) -> None:
    store = StateStore(tmp_path)
    made = store.instance_id()
    assert made.startswith("urn:uuid:") and StateStore(tmp_path).instance_id() == made
    assert store.load_lock(300.0, WALL) == LockRecord()  # a new file is no lockout
    assert store.save_lock(LockRecord(2, None), WALL)
    assert store.instance_id() == made and store.load_lock(300.0, WALL) == LockRecord(2, None)


def test_an_unreadable_file_is_left_for_the_lock_to_see(tmp_path: Path) -> None:
    (tmp_path / STATE_FILE).write_text("{not json")
    assert StateStore(tmp_path).instance_id().startswith("urn:uuid:")  # this run only
    assert (tmp_path / STATE_FILE).read_text() == "{not json"


def test_the_file_is_private_and_no_temporary_file_is_left(tmp_path: Path) -> None:
    store = StateStore(tmp_path)
    for failures in range(5):
        assert store.save_lock(LockRecord(failures, None), WALL)
    assert os.listdir(tmp_path) == [STATE_FILE]
    assert stat.S_IMODE((tmp_path / STATE_FILE).stat().st_mode) == 0o600


@pytest.mark.parametrize(
    "content",
    [
        "{not json",
        "",
        "[]",
        '{"door_lock": {"failures": "3", "locked_until": null}}',
        '{"door_lock": {"failures": 1, "locked_until": "soon"}}',
        '{"other": 1}',
    ],
)
def test_an_unreadable_file_starts_locked_out(
    tmp_path: Path, content: str, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / STATE_FILE).write_text(content)
    with caplog.at_level(logging.WARNING, logger="intercom.runtime.state_store"):
        assert StateStore(tmp_path).load_lock(300.0, WALL) == LockRecord(0, 300.0)
    assert len(caplog.records) == 1 and "starts locked out" in caplog.text
    assert "Traceback" not in caplog.text


def test_a_directory_that_cannot_be_written_warns_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "a-file").write_text("")
    store = StateStore(tmp_path / "a-file" / "state")  # a directory that cannot be made
    with caplog.at_level(logging.WARNING, logger="intercom.runtime.state_store"):
        assert not store.save_lock(LockRecord(1, None), WALL)
        assert not store.save_lock(LockRecord(2, None), WALL)
    assert len(caplog.records) == 1
    assert "not kept across a restart" in caplog.text


def test_the_state_directory_comes_from_the_setting_or_from_systemd() -> None:
    assert state_directory("/srv/door", {"STATE_DIRECTORY": "/var/lib/intercom"}) == Path(
        "/srv/door"
    )
    assert state_directory("", {"STATE_DIRECTORY": "/var/lib/intercom:/var/lib/x"}) == Path(
        "/var/lib/intercom"
    )
    assert state_directory("", {}) is None


def test_a_missing_directory_is_made_private(tmp_path: Path) -> None:
    assert StateStore(tmp_path / "state").save_lock(LockRecord(1, None), WALL)
    assert stat.S_IMODE((tmp_path / "state").stat().st_mode) == 0o700
