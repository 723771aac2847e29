"""open_hardware: the devices the settings ask for, on the mock pin factory."""

from __future__ import annotations

import asyncio

import pytest

from intercom.app.settings import load_settings
from intercom.runtime.hardware import open_hardware


@pytest.mark.parametrize(("active_low", "idle_level"), [("no", False), ("yes", True)])
def test_the_relay_idles_at_the_level_that_keeps_the_door_closed(
    active_low: str, idle_level: bool
) -> None:
    settings = load_settings(
        {
            "INTERCOM_GPIO": "mock",
            "INTERCOM_DOOR_RELAY_PIN": "22",
            "INTERCOM_DOOR_RELAY_ACTIVE_LOW": active_low,
            "INTERCOM_LED_PIN": "27",
        }
    )
    loop = asyncio.new_event_loop()
    hardware = open_hardware(settings, loop)
    try:
        assert hardware.relay is not None and hardware.led is not None
        pin = hardware.pin_factory.pin(22)
        assert pin.state is idle_level and not hardware.relay.energised
    finally:
        hardware.close()
        loop.close()
    assert pin.state is idle_level  # closing leaves the door closed too
