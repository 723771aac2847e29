"""The MQTT adapter in-process against mosquitto: what waits while the broker is away (states
coalesced to the latest, rings kept), one warning for a broker that keeps refusing, and a stop
that says offline when it can and never waits for a broker that is not there."""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from pathlib import Path

import pytest

from intercom.app.call_record import LastCall
from intercom.app.settings import load_settings
from intercom.app.status import DoorbellStatus
from intercom.runtime.mqtt import MqttPublisher

from .mosquitto_harness import Mosquitto, Watcher

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

BASE = "intercom/unit"


def publisher(broker: Mosquitto) -> MqttPublisher:
    settings = load_settings({"INTERCOM_MQTT_HOST": broker.address, "INTERCOM_MQTT_TOPIC": BASE})
    return MqttPublisher(settings, host_name="unused", rng=random.Random(1))


def status(call: str) -> DoorbellStatus:
    return DoorbellStatus("disabled", None, call, LastCall(), 0, False)


def test_while_the_broker_is_away_states_coalesce_and_rings_wait(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async def main() -> None:
        broker = Mosquitto(tmp_path)  # its port claimed, nothing listening yet
        door = publisher(broker)
        opened: list[float] = []
        with caplog.at_level(logging.DEBUG, "intercom.runtime.mqtt"):
            door.start(lambda: opened.append(time.monotonic()))
            loop = asyncio.get_running_loop()
            for call in ("idle", "calling", "ringing", "connected"):
                door.update(status(call))
            door.ring(loop.time(), time.time())
            door.ring(loop.time(), time.time())
            await asyncio.sleep(2.0)  # two or three refused attempts
            refused = [r for r in caplog.records if "retrying in" in r.getMessage()]
            assert len(refused) >= 2
            assert [r.levelno for r in refused].count(logging.WARNING) == 1
            try:
                await broker.start()
                async with Watcher(broker) as ha:
                    await ha.message(f"{BASE}/availability", b"online", 20)
                    await ha.message(f"{BASE}/last_call", None, 5)
                    calls = [json.loads(m.payload) for m in ha.on(f"{BASE}/call")]
                    assert calls == [{"state": "connected"}]  # the latest only
                    assert len(ha.on(f"{BASE}/ring")) == 2
                    assert door.connections == 1
                    await ha.publish(f"{BASE}/door/open", b"PRESS")
                    await ha.until(lambda _: bool(opened), 5, "the open command")
                    started = time.monotonic()
                    await door.stop()
                    assert time.monotonic() - started < 2.5
                    await ha.message(f"{BASE}/availability", b"offline", 5)
            finally:
                await door.stop()
                await broker.stop()

    asyncio.run(main())


def test_a_stop_while_the_broker_is_away_returns_at_once(tmp_path: Path) -> None:
    async def main() -> None:
        door = publisher(Mosquitto(tmp_path))  # nothing listening
        door.start(lambda: None)
        await asyncio.sleep(0.3)
        started = time.monotonic()
        await door.stop()
        assert time.monotonic() - started < 0.5
        assert not door.connected

    asyncio.run(main())
