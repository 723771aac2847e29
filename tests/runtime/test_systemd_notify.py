"""sd_notify over a real Unix datagram socket standing in for systemd."""

from __future__ import annotations

import asyncio
import os
import socket
from pathlib import Path

import pytest

from intercom.runtime.systemd import SystemdNotifier


@pytest.fixture
def systemd_socket(tmp_path: Path):
    path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(2.0)
    yield path, sock
    sock.close()


def test_ready_status_and_stopping_reach_systemd(systemd_socket) -> None:
    path, sock = systemd_socket
    notifier = SystemdNotifier({"NOTIFY_SOCKET": str(path)})
    assert notifier.enabled
    notifier.ready("registered at pbx.example")
    assert sock.recv(512) == b"READY=1\nSTATUS=registered at pbx.example"
    notifier.stopping()
    assert sock.recv(512) == b"STOPPING=1"
    notifier.close()


def test_watchdog_is_fed_at_half_its_interval_while_the_loop_turns(systemd_socket) -> None:
    path, sock = systemd_socket
    sock.setblocking(False)
    env = {"NOTIFY_SOCKET": str(path), "WATCHDOG_USEC": "100000", "WATCHDOG_PID": str(os.getpid())}
    notifier = SystemdNotifier(env)
    assert notifier.watchdog_interval == 0.1

    async def run() -> None:
        notifier.start_watchdog(asyncio.get_running_loop())
        await asyncio.sleep(0.22)  # fed at 0, 0.05, ..., 0.20
        notifier.close()

    asyncio.run(run())
    feeds = []
    while True:
        try:
            feeds.append(sock.recv(64))
        except BlockingIOError:
            break
    assert set(feeds) == {b"WATCHDOG=1"}
    assert 4 <= len(feeds) <= 6


def test_outside_systemd_nothing_is_sent_and_nothing_fails() -> None:
    notifier = SystemdNotifier({})
    assert not notifier.enabled and notifier.watchdog_interval is None
    notifier.ready("x")
    notifier.start_watchdog(asyncio.new_event_loop())  # no timer without a watchdog
    notifier.close()


def test_watchdog_for_another_pid_is_ignored_and_a_dead_socket_is_logged_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    env = {"NOTIFY_SOCKET": str(tmp_path / "gone.sock"), "WATCHDOG_USEC": "1000000",
           "WATCHDOG_PID": "1"}  # fmt: skip
    notifier = SystemdNotifier(env)
    assert notifier.watchdog_interval is None
    notifier.ready("x")
    notifier.ready("y")
    assert len([r for r in caplog.records if "systemd notify" in r.getMessage()]) == 1
    assert not notifier.enabled
