"""The daemon in-process: mock GPIO pins, its real control socket, no SIP peer.

:class:`~intercom.runtime.daemon.Intercom` runs on this test's event loop with gpiozero's
MockFactory (the relay is a mock pin whose every change is recorded with its time), direct
calls only, null audio. Requests go through the real Unix socket, as ``intercom open`` and
``intercom status`` send them; malformed ones are written raw.
"""

from __future__ import annotations

import asyncio
import json
import random
import secrets
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from intercom.app import actions
from intercom.app.actions import AcceptCall, Action
from intercom.app.settings import Settings, load_settings
from intercom.runtime.control import COMMANDS, ControlError, send_command
from intercom.runtime.daemon import _CARRY_OUT, _DOORBELL_COMMANDS, Intercom
from intercom.runtime.hardware import Hardware, open_hardware
from intercom.runtime.systemd import SystemdNotifier

pytestmark = pytest.mark.timeout(20)

RELAY_PIN = 22
PULSE = 0.15


def door_settings(tmp_path: Path, **settings: str) -> Settings:
    """Mock GPIO, null audio, a free SIP port and a control socket in ``tmp_path``, plus
    ``settings``."""
    env = {
        "INTERCOM_SIP_BIND": "127.0.0.1:0",
        "INTERCOM_GPIO": "mock",
        "INTERCOM_DOOR_PULSE": str(PULSE),
        "INTERCOM_AUDIO_INPUT": "null",
        "INTERCOM_AUDIO_OUTPUT": "null",
        "INTERCOM_RTP_PORTS": "42000-42999",
        "INTERCOM_CONTROL_SOCKET": str(tmp_path / "control.sock"),
        **settings,
    }
    return load_settings(env, None)


@asynccontextmanager
async def running_door(
    tmp_path: Path, notifier: SystemdNotifier | None = None, **settings: str
) -> AsyncIterator[Intercom]:
    """The daemon, started with mock GPIO and null audio (plus ``settings``), then stopped."""
    config = door_settings(tmp_path, **settings)
    hardware = open_hardware(config, asyncio.get_running_loop())
    notifier = notifier or SystemdNotifier({})
    door = Intercom(config, hardware, rng=random.Random(3), notifier=notifier)
    await door.start()
    try:
        yield door
    finally:
        await door.stop()


async def raw_request(path: str, line: bytes) -> dict[str, Any]:
    """One line written to the control socket as it is; the reply, parsed."""
    reader, writer = await asyncio.open_unix_connection(path)
    try:
        writer.write(line)
        await writer.drain()
        reply = json.loads(await asyncio.wait_for(reader.readline(), 5))
    finally:
        writer.close()
        await writer.wait_closed()
    assert isinstance(reply, dict)
    return reply


async def status(door: Intercom) -> dict[str, Any]:
    reply = await send_command(door.settings.control_socket, "status")
    assert reply["ok"] is True
    result = reply["status"]
    assert isinstance(result, dict)
    return result


async def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"no {what} within {timeout} s"
        await asyncio.sleep(0.01)


def test_open_pulses_the_relay_once_for_the_configured_time(tmp_path: Path) -> None:
    async def main() -> None:
        async with running_door(tmp_path, INTERCOM_DOOR_RELAY_PIN=str(RELAY_PIN)) as door:
            pin = door.hardware.pin_factory.pin(RELAY_PIN)
            assert pin.state is False and [s.state for s in pin.states] == [False]
            assert await send_command(door.settings.control_socket, "open") == {"ok": True}
            await wait_until(lambda: pin.state is True, 1, "relay energised")
            await wait_until(lambda: pin.state is False, 2, "relay released")
            await asyncio.sleep(0.1)  # a second pulse (a bug) would start meanwhile
            assert [s.state for s in pin.states] == [False, True, False], pin.states
            held = pin.states[-1].timestamp  # seconds since the previous change
            assert PULSE * 0.9 <= held <= PULSE + 0.2, held
            assert (await status(door))["door"] == {"opened_count": 1, "locked_out": False}
        assert pin.state is False  # and stopping leaves it released

    asyncio.run(main())


def test_open_without_a_relay_is_refused_and_the_daemon_keeps_running(tmp_path: Path) -> None:
    async def main() -> None:
        async with running_door(tmp_path) as door:
            path = door.settings.control_socket
            assert door.hardware.relay is None
            reply = await raw_request(path, b'{"command": "open"}\n')
            assert reply["ok"] is False
            assert "no relay is configured" in reply["error"]
            with pytest.raises(ControlError, match="no relay"):
                await send_command(path, "open")
            after = await status(door)  # still answering, nothing counted
            assert after["door"] == {"opened_count": 0, "locked_out": False}
            assert after["call"] == {"state": "idle"}
            assert await send_command(path, "hangup") == {"ok": True}  # idle: accepted

    asyncio.run(main())


@pytest.mark.parametrize(
    "line",
    [
        b"open\n",
        b'{"command": "open"\n',
        b'["open"]\n',
        b'{"command": "reboot"}\n',
        b'{"command": 7}\n',
        b"\xff\xfe\n",
    ],
)
def test_a_malformed_request_gets_an_error_reply_and_changes_nothing(
    tmp_path: Path, line: bytes
) -> None:
    async def main() -> None:
        async with running_door(tmp_path, INTERCOM_DOOR_RELAY_PIN=str(RELAY_PIN)) as door:
            path = door.settings.control_socket
            pin = door.hardware.pin_factory.pin(RELAY_PIN)
            before = await status(door)
            reply = await raw_request(path, line)
            assert reply["ok"] is False and isinstance(reply["error"], str), reply
            assert reply["error"]
            await asyncio.sleep(PULSE)  # a relay pulse, had one started, would show now
            assert await status(door) == before
            assert [s.state for s in pin.states] == [False]

    asyncio.run(main())


def test_status_over_the_socket_has_the_shape_of_design_md(tmp_path: Path) -> None:
    async def main() -> None:
        async with running_door(tmp_path, INTERCOM_DOOR_RELAY_PIN=str(RELAY_PIN)) as door:
            reply = await raw_request(door.settings.control_socket, b'{"command": "status"}\n')
            assert reply["ok"] is True
            assert set(reply) == {"ok", "status"}
            got = reply["status"]
            assert set(got) == {"registration", "call", "last_call", "door", "last_ring", "history"}
            assert got["last_ring"] is None and got["history"] == []
            assert got["registration"] == {"state": "disabled", "last_status": None}
            assert got["call"] == {"state": "idle"}
            assert set(got["last_call"]) >= {
                "outcome", "codec", "duration", "packets_sent", "packets_received",
                "packets_lost", "jitter_ms",
            }  # fmt: skip
            assert got["last_call"]["outcome"] is None
            assert got["door"] == {"opened_count": 0, "locked_out": False}

    asyncio.run(main())


def test_identifiers_come_from_the_os_csprng(tmp_path: Path) -> None:
    """Call-IDs, tags, branches, cnonces, SSRCs, RTP ports and SRTP keys: one Mersenne Twister
    would let a stranger who saw a few hundred To-tags predict them all, so the daemon draws
    every one from the operating system (design.md, "Security")."""

    async def main() -> None:
        config = door_settings(tmp_path)
        door = Intercom(config, open_hardware(config, asyncio.get_running_loop()))
        await door.start()
        try:
            assert door.media is not None
            generators = [door._rng, door.ua._rng, door.ua.endpoint.ids._rng, door.media._rng]
            assert all(type(g) is random.SystemRandom for g in generators)
            assert door.media._key_source is secrets.token_bytes  # SRTP master keys and salts
            assert len({door.ua.endpoint.ids.tag() for _ in range(200)}) == 200
        finally:
            await door.stop()

    asyncio.run(main())


def test_pins_that_fail_to_open_after_the_first_register_stop_the_daemon(tmp_path: Path) -> None:
    # ``intercom run`` hands the daemon an opener, called once the first REGISTER is out: a pin
    # that cannot be used then ends the run as before (the error, exit 1 in the CLI), but only
    # after a clean stop: control socket closed, user agent stopped.
    from intercom.hw.gpio import GpioError

    opened: list[str] = []

    def broken_pins() -> Hardware:
        opened.append("pins")
        raise GpioError("GPIO17 (button) is already in use")

    async def main() -> None:
        config = door_settings(tmp_path)
        door = Intercom(config, broken_pins, notifier=SystemdNotifier({}))
        with pytest.raises(GpioError, match="already in use"):
            await door.run()
        assert opened == ["pins"]
        assert not (tmp_path / "control.sock").exists()

    asyncio.run(main())


def test_run_calls_after_start_once_ready_then_stops_on_sigterm(tmp_path: Path) -> None:
    # ``intercom run`` freezes the start-up heap there (runtime/heap.py): after start, once.
    import os
    import signal

    async def main() -> None:
        door = Intercom(door_settings(tmp_path), lambda: Hardware(),
                        notifier=SystemdNotifier({}))  # fmt: skip
        calls: list[bool] = []

        def after_start() -> None:
            calls.append(door.media is not None and (tmp_path / "control.sock").exists())
            asyncio.get_running_loop().call_soon(os.kill, os.getpid(), signal.SIGTERM)

        assert await asyncio.wait_for(door.run(after_start=after_start), 10) == 0
        assert calls == [True]

    asyncio.run(main())


def test_pins_opened_by_the_daemon_are_its_hardware(tmp_path: Path) -> None:
    from intercom.hw.gpio import GpioButton, GpioLed

    async def main() -> None:
        config = door_settings(tmp_path, INTERCOM_LED_PIN="27")
        loop = asyncio.get_running_loop()
        door = Intercom(config, lambda: open_hardware(config, loop), notifier=SystemdNotifier({}))
        assert door.hardware.button is None  # nothing opened before start
        await door.start()
        try:
            button, led = door.hardware.button, door.hardware.led
            assert isinstance(button, GpioButton) and button.pin == config.button_pin
            assert isinstance(led, GpioLed) and led.pattern is not None  # the doorbell drives it
        finally:
            await door.stop()

    asyncio.run(main())


def test_a_call_accepted_before_the_media_stack_loaded_is_refused_with_480(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # start() loads the media after the first REGISTER; a trusted INVITE in that moment must
    # get a final answer, not an assertion in the event callback.
    config = load_settings(
        {"INTERCOM_SIP_BIND": "127.0.0.1:0", "INTERCOM_GPIO": "mock",
         "INTERCOM_CONTROL_SOCKET": str(tmp_path / "control.sock")},
        None,
    )  # fmt: skip
    door = Intercom(config, Hardware(), notifier=SystemdNotifier({}))
    rejected: list[tuple[str, int]] = []
    monkeypatch.setattr(door.ua, "reject", lambda call_id, code: rejected.append((call_id, code)))
    assert door.media is None
    door._accept(AcceptCall("early-call"))
    assert rejected == [("early-call", 480)]


def test_every_action_and_control_command_has_its_handler() -> None:
    assert set(_CARRY_OUT) == {getattr(actions, name) for name in actions.__all__} - {Action}
    assert {*_DOORBELL_COMMANDS, "status", "watch"} == set(COMMANDS)
