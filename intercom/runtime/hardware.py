"""The door's GPIO devices, opened from the settings: button, optional LED, optional relay.

gpiozero is imported by :func:`open_hardware`, not with this module, so that the daemon can
send its first REGISTER before loading it (see :mod:`intercom.runtime.daemon`).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from intercom.app.settings import Settings
    from intercom.hw.gpio import Button, Led, Relay

logger = logging.getLogger(__name__)


@dataclass
class Hardware:
    """The door's GPIO devices; LED and relay are optional."""

    button: Button | None = None
    led: Led | None = None
    relay: Relay | None = None
    pin_factory: Any = None  # gpiozero's: the demo and tests drive its mock pins

    def close(self) -> None:
        for device in (self.relay, self.led, self.button):  # the relay first: off at once
            if device is not None:
                try:
                    device.close()
                except Exception as exc:
                    logger.warning("x closing GPIO: %s", exc)


def open_hardware(settings: Settings, loop: asyncio.AbstractEventLoop) -> Hardware:
    """Open every configured device (GpioError naming the pin when one cannot be used)."""
    from intercom.hw.gpio import GpioButton, GpioError, GpioLed, GpioRelay, make_pin_factory

    factory = make_pin_factory(settings.gpio)
    hardware = Hardware(pin_factory=factory)
    try:
        hardware.button = GpioButton(settings.button_pin, loop=loop, pin_factory=factory)
        if settings.led_pin is not None:
            hardware.led = GpioLed(settings.led_pin, pin_factory=factory)
        if settings.door_relay_pin is not None:
            hardware.relay = GpioRelay(
                settings.door_relay_pin,
                pin_factory=factory,
                active_high=not settings.door_relay_active_low,
            )
    except GpioError:
        hardware.close()
        raise
    return hardware


def check_hardware(settings: Settings) -> list[str]:
    """Problems opening the configured pins, for ``intercom check`` (nothing is driven)."""
    from intercom.hw.gpio import GpioError

    loop = asyncio.new_event_loop()
    try:
        open_hardware(settings, loop).close()
    except GpioError as exc:
        return [f"GPIO: {exc}"]
    finally:
        loop.close()
    return []
