"""The daemon and its publisher port, in-process: a press is handed over as a ring after the call
was placed, state changes as they happen, and the home automation's "Open door" pulses the relay
as ``intercom open`` does. With a FakePublisher: no broker, no aiomqtt."""

from __future__ import annotations

import asyncio
import logging
import random
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from intercom.app.publisher import FakePublisher
from intercom.runtime.daemon import Intercom
from intercom.runtime.hardware import open_hardware
from intercom.runtime.systemd import SystemdNotifier

from .test_daemon import RELAY_PIN, door_settings, wait_until

pytestmark = pytest.mark.timeout(20)


async def start_door(tmp_path: Path, publisher: FakePublisher, **settings: str) -> Intercom:
    config = door_settings(tmp_path, **settings)
    hardware = open_hardware(config, asyncio.get_running_loop())
    door = Intercom(
        config, hardware, rng=random.Random(3), notifier=SystemdNotifier({}), publisher=publisher
    )
    await door.start()
    return door


def test_a_press_is_a_ring_and_the_invite_goes_out(tmp_path: Path) -> None:
    async def main() -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as phone:
            phone.bind(("127.0.0.1", 0))
            phone.setblocking(False)
            target = f"sip:family@127.0.0.1:{phone.getsockname()[1]}"
            publisher = FakePublisher()
            door = await start_door(tmp_path, publisher, INTERCOM_CALL_TARGET=target)
            try:
                assert publisher.started and publisher.rings == []
                assert publisher.states[-1].call == "idle"
                door.press()
                # The call was placed first (its INVITE leaves from the user agent's task);
                # the ring was handed over without awaiting anything.
                assert len(publisher.rings) == 1
                loop = asyncio.get_running_loop()
                invite = await asyncio.wait_for(loop.sock_recv(phone, 65535), 2)
                assert invite.startswith(b"INVITE ")
                assert publisher.states[-1].call == "calling"
                door.press()  # during the call: the doorbell does not act, no ring
                assert len(publisher.rings) == 1
            finally:
                await door.stop()
            assert publisher.stopped

    asyncio.run(main())


def test_states_are_handed_over_only_when_they_change(tmp_path: Path) -> None:
    async def main() -> None:
        publisher = FakePublisher()
        door = await start_door(tmp_path, publisher)
        try:
            before = len(publisher.states)
            for _ in range(3):
                door.status()
                door._act()  # a step that changes nothing
            assert len(publisher.states) == before
        finally:
            await door.stop()

    asyncio.run(main())


def test_open_door_from_home_assistant_pulses_the_relay(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async def main() -> None:
        publisher = FakePublisher()
        door = await start_door(tmp_path, publisher, INTERCOM_DOOR_RELAY_PIN=str(RELAY_PIN))
        try:
            pin = door.hardware.pin_factory.pin(RELAY_PIN)
            with caplog.at_level(logging.INFO, "intercom.app.doorbell"):
                publisher.open()
            await wait_until(lambda: pin.state is True, 1, "relay energised")
            await wait_until(lambda: pin.state is False, 2, "relay released")
            assert [s.state for s in pin.states] == [False, True, False]
            assert publisher.states[-1].opened_count == 1
            assert "door opened over MQTT" in caplog.text
        finally:
            await door.stop()

    asyncio.run(main())


def test_open_door_without_a_relay_only_logs(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async def main() -> None:
        publisher = FakePublisher()
        door = await start_door(tmp_path, publisher)
        try:
            publisher.open()
            assert publisher.states[-1].opened_count == 0
            assert "cannot open the door over MQTT: no door relay" in caplog.text
        finally:
            await door.stop()

    asyncio.run(main())


def test_a_run_without_mqtt_never_imports_aiomqtt() -> None:
    """Start-up time and memory of a door without MQTT stay as they were."""
    code = (
        "import sys, intercom.cli, intercom.runtime.daemon, intercom.app.home_assistant;"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('aiomqtt', 'paho')];"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=60, cwd=Path(__file__).resolve().parents[2])  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
