"""`intercom run` as a process with Home Assistant over MQTT, against Debian's mosquitto.

The daemon runs with mock GPIO (a relay on GPIO22), null audio, no SIP server; its call target
is a UDP socket of this test that only records when the INVITE arrives. A :class:`Watcher`
(our own aiomqtt client) plays Home Assistant: it sees everything the door publishes, sends the
button's ``PRESS`` and Home Assistant's birth ``online``. What is proven:

* discovery: every config retained (a client that connects later still gets it), one device,
  ``online`` while running, ``offline`` on SIGTERM and as the will after SIGKILL;
* a press publishes the ring event (not retained) and the call's state;
* the button opens the door exactly as ``intercom open`` does (the relay pulses, status counts);
* Home Assistant's birth and a broker restart (which forgets every retained message) bring the
  configs back; a password-protected broker; a wrong password is reported, never logged;
* a broker that is down, or one that accepts and never answers, never delays the call: the
  INVITE goes out at once, and a ring made while the broker was down arrives once it is back.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from .daemon_process import DaemonProcess
from .mosquitto_harness import Mosquitto, Watcher
from .peer_support import TCP, claim_ports

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]

BASE = "intercom/front"
PREFIX = "homeassistant"
NODE = "intercom_front"
AVAILABILITY = f"{BASE}/availability"
RING = f"{BASE}/ring"
OPEN = f"{BASE}/door/open"
COMPONENTS = {
    f"{PREFIX}/event/{NODE}/ring/config",
    f"{PREFIX}/button/{NODE}/open_door/config",
    f"{PREFIX}/sensor/{NODE}/registration/config",
    f"{PREFIX}/sensor/{NODE}/call/config",
    f"{PREFIX}/sensor/{NODE}/last_call/config",
}
USER, PASSWORD = "door", "mq-Pa55-w0rd"
INVITE_AT_ONCE = 2.0
"""Seconds from `intercom press` returning to the INVITE's arrival that count as at once: the
doorbell places the call before the command is answered; a broker that held it up would cost
the 10 s of a connection timeout."""


class Phone:
    """A UDP socket as the call target: records when each INVITE arrives."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.setblocking(False)

    @property
    def target(self) -> str:
        return f"sip:family@127.0.0.1:{self.sock.getsockname()[1]}"

    async def invite(self, timeout: float) -> float:
        """The monotonic time the next INVITE arrived."""
        loop = asyncio.get_running_loop()
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"no INVITE within {timeout} s"
            data = await asyncio.wait_for(loop.sock_recv(self.sock, 65535), remaining)
            if data.startswith(b"INVITE "):
                return time.monotonic()

    def close(self) -> None:
        self.sock.close()


def door_settings(broker: str, phone: Phone, **extra: str) -> dict[str, str]:
    return {
        "INTERCOM_MQTT_HOST": broker,
        "INTERCOM_MQTT_TOPIC": BASE,
        "INTERCOM_NAME": "Front door",
        "INTERCOM_CALL_TARGET": phone.target,
        "INTERCOM_SIP_BIND": "127.0.0.1:0",
        "INTERCOM_DOOR_RELAY_PIN": "22",
        "INTERCOM_DOOR_PULSE": "0.2",
        "INTERCOM_AUDIO_INPUT": "null",
        "INTERCOM_AUDIO_OUTPUT": "null",
        "INTERCOM_LOG_LEVEL": "DEBUG",
        **extra,
    }


@asynccontextmanager
async def phone_and_door(
    tmp_path: Path, broker: str, **extra: str
) -> AsyncIterator[tuple[Phone, DaemonProcess]]:
    tmp_path.mkdir(parents=True, exist_ok=True)
    phone = Phone()
    daemon = DaemonProcess(tmp_path, door_settings(broker, phone, **extra))
    try:
        await daemon.start()
        yield phone, daemon
    finally:
        await daemon.kill()
        phone.close()


async def retained(broker: Mosquitto, topics: set[str], **account: str) -> dict[str, bytes]:
    """What a client connecting now gets for ``topics``: the broker's retained messages (the
    door must have published them already: a live one has no retain flag)."""
    async with Watcher(broker, **account) as late:
        await late.until(lambda _: {m.topic for m in late.messages} >= topics, 10,
                         f"retained {sorted(topics)}")  # fmt: skip
        live = [m.topic for m in late.messages if not m.retain]
        assert not live, f"not retained: {live}"
        return {m.topic: m.payload for m in late.messages}


def assert_no_traceback(daemon: DaemonProcess) -> None:
    log = daemon.log()
    assert "Traceback" not in log, log[-4000:]


def test_discovery_ring_open_birth_and_offline(tmp_path: Path) -> None:
    async def main() -> None:
        async with Mosquitto(tmp_path / "broker") as broker, Watcher(broker) as ha:
            # A press the broker kept from the past reaches the door when it subscribes, with
            # the retain flag: it must never open the door.
            await ha.publish(OPEN, b"PRESS", retain=True)
            async with phone_and_door(tmp_path, broker.address) as (phone, daemon):
                await ha.message(AVAILABILITY, b"online", 10)
                await ha.message(f"{BASE}/last_call", None, 10)  # the last of the first round
                assert (await daemon.status())["door"]["opened_count"] == 0
                await ha.publish(OPEN, b"", retain=True)  # the broker forgets it
                shown = await retained(broker, COMPONENTS | {AVAILABILITY})
                assert shown[AVAILABILITY] == b"online"
                configs = {topic: json.loads(shown[topic]) for topic in COMPONENTS}
                assert {c["device"]["name"] for c in configs.values()} == {"Front door"}
                assert len({c["unique_id"] for c in configs.values()}) == len(COMPONENTS)
                ring_config = configs[f"{PREFIX}/event/{NODE}/ring/config"]
                assert ring_config["device_class"] == "doorbell"
                assert ring_config["event_types"] == ["ring"]
                state = await ha.message(f"{BASE}/call", None, 5)
                assert json.loads(state.payload) == {"state": "idle"}

                # A press: the call goes out, the ring event and the call's state follow.
                mark = len(ha.messages)
                assert (await daemon.cli("press"))[0] == 0
                await phone.invite(INVITE_AT_ONCE)
                ring = await ha.message(RING, None, 5, start=mark)
                assert json.loads(ring.payload)["event_type"] == "ring"
                await ha.message(f"{BASE}/call", b'{"state":"calling"}', 5, start=mark)
                assert (await daemon.cli("hangup"))[0] == 0
                assert RING not in await retained(broker, {AVAILABILITY})  # never retained

                # The "Open door" button: the relay pulses as for `intercom open`.
                await ha.publish(OPEN, b"PRESS")
                await daemon.until(lambda s: s["door"]["opened_count"] == 1, 5, "door opened")
                await ha.publish(OPEN, b"something else")
                await asyncio.sleep(0.5)
                assert (await daemon.status())["door"]["opened_count"] == 1

                # Home Assistant starts again: its birth brings every config again.
                mark = len(ha.messages)
                await ha.publish(f"{PREFIX}/status", b"online")
                await ha.until(lambda _: {m.topic for m in ha.messages[mark:]} >= COMPONENTS,
                               10, "discovery after the birth")  # fmt: skip

                assert await daemon.terminate() == 0
                await ha.message(AVAILABILITY, b"offline", 5)
                assert (await retained(broker, {AVAILABILITY}))[AVAILABILITY] == b"offline"
            log = daemon.log()
            assert "door opened over MQTT" in log
            assert "GPIO22 (door relay): pulse 0.20 s" in log
            assert log.count("door opened") == 1
            assert "retained message on intercom/front/door/open ignored" in log
            assert_no_traceback(daemon)

    asyncio.run(main())


def test_the_will_says_offline_when_the_daemon_dies(tmp_path: Path) -> None:
    async def main() -> None:
        async with Mosquitto(tmp_path / "broker") as broker, Watcher(broker) as ha:
            async with phone_and_door(tmp_path, broker.address) as (_, daemon):
                await ha.message(AVAILABILITY, b"online", 10)
                mark = len(ha.messages)
                await daemon.kill()  # SIGKILL: no goodbye; the broker publishes the will
                await ha.message(AVAILABILITY, b"offline", 10, start=mark)
            assert (await retained(broker, {AVAILABILITY}))[AVAILABILITY] == b"offline"

    asyncio.run(main())


def test_a_broker_with_a_password(tmp_path: Path) -> None:
    async def main() -> None:
        account = {"user": USER, "password": PASSWORD}
        broker = Mosquitto(tmp_path / "broker", users={USER: PASSWORD})
        async with broker, Watcher(broker, **account) as ha:
            good = {"INTERCOM_MQTT_USER": USER, "INTERCOM_MQTT_PASSWORD": PASSWORD}
            async with phone_and_door(tmp_path / "good", broker.address, **good) as (
                phone, daemon,
            ):  # fmt: skip
                await ha.message(AVAILABILITY, b"online", 10)
                assert set(await retained(broker, COMPONENTS, **account)) >= COMPONENTS
                assert (await daemon.cli("press"))[0] == 0
                await phone.invite(INVITE_AT_ONCE)
                await ha.message(RING, None, 5)
                code, out, err = await daemon.cli("check")
                assert code == 0, out + err
                assert "INTERCOM_MQTT_PASSWORD=***" in out and PASSWORD not in out + err
                assert await daemon.terminate() == 0
            assert PASSWORD not in daemon.log()
            assert_no_traceback(daemon)

            wrong = {"INTERCOM_MQTT_USER": USER, "INTERCOM_MQTT_PASSWORD": "not-" + PASSWORD}
            async with phone_and_door(tmp_path / "bad", broker.address, **wrong) as (
                phone, daemon,
            ):  # fmt: skip
                deadline = time.monotonic() + 10
                while "check INTERCOM_MQTT_USER and INTERCOM_MQTT_PASSWORD" not in daemon.log():
                    assert time.monotonic() < deadline, daemon.log()[-3000:]
                    await asyncio.sleep(0.05)
                assert (await daemon.cli("press"))[0] == 0  # the door works without MQTT
                await phone.invite(INVITE_AT_ONCE)
                assert await daemon.terminate() == 0
            assert PASSWORD not in daemon.log()
            assert_no_traceback(daemon)

    asyncio.run(main())


def test_a_broker_restart_brings_discovery_back(tmp_path: Path) -> None:
    async def main() -> None:
        broker = Mosquitto(tmp_path / "broker")
        await broker.start()
        try:
            async with phone_and_door(tmp_path, broker.address) as (phone, daemon):
                async with Watcher(broker) as ha:
                    await ha.message(AVAILABILITY, b"online", 10)
                await broker.restart()  # no persistence: every retained message is gone
                async with Watcher(broker) as ha:  # the door reconnects and publishes again
                    await ha.message(f"{BASE}/last_call", None, 30)
                shown = await retained(broker, COMPONENTS | {AVAILABILITY, f"{BASE}/call"})
                assert shown[AVAILABILITY] == b"online"
                async with Watcher(broker) as ha:
                    assert (await daemon.cli("press"))[0] == 0
                    await phone.invite(INVITE_AT_ONCE)
                    await ha.message(RING, None, 5)
                assert await daemon.terminate() == 0
            assert daemon.log().count("MQTT: connected to") == 2
            assert_no_traceback(daemon)
        finally:
            await broker.stop()

    asyncio.run(main())


def test_a_broker_down_at_the_press_delays_nothing_and_the_ring_follows(tmp_path: Path) -> None:
    async def main() -> None:
        broker = Mosquitto(tmp_path / "broker")  # its port claimed, nothing listening yet
        try:
            async with phone_and_door(tmp_path, broker.address) as (phone, daemon):
                pressed = time.monotonic()
                assert (await daemon.cli("press"))[0] == 0
                assert await phone.invite(INVITE_AT_ONCE) - pressed < INVITE_AT_ONCE + 3
                await broker.start()
                async with Watcher(broker) as ha:
                    # The backoff is at most a few seconds after a few failed attempts.
                    ring = await ha.message(RING, None, 30)
                    assert json.loads(ring.payload)["event_type"] == "ring"
                    await ha.message(AVAILABILITY, b"online", 5)
                assert await daemon.terminate() == 0
            assert "the ring waits" in daemon.log()
            assert_no_traceback(daemon)
        finally:
            await broker.stop()

    asyncio.run(main())


def test_a_broker_that_never_answers_delays_neither_the_call_nor_the_stop(tmp_path: Path) -> None:
    async def main() -> None:
        port = claim_ports([TCP])
        held: list[asyncio.StreamWriter] = []

        async def accept_and_say_nothing(_: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            held.append(w)

        server = await asyncio.start_server(accept_and_say_nothing, "127.0.0.1", port)
        try:
            async with phone_and_door(tmp_path, f"127.0.0.1:{port}") as (phone, daemon):
                await asyncio.sleep(0.5)  # the door is connecting, waiting for a CONNACK
                assert held, "the door did not even connect"
                pressed = time.monotonic()
                assert (await daemon.cli("press"))[0] == 0
                assert await phone.invite(INVITE_AT_ONCE) - pressed < INVITE_AT_ONCE + 3
                assert (await daemon.status())["call"]["state"] in ("calling", "ringing")
                assert await daemon.terminate() == 0
                assert daemon.stop_seconds is not None and daemon.stop_seconds < 5
            assert_no_traceback(daemon)
        finally:
            server.close()
            for writer in held:
                writer.close()
            await server.wait_closed()

    asyncio.run(main())
