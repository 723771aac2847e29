"""GPIO: the doorbell button, the status LED and the door relay, through gpiozero.

Theory of operation
===================

The runtime codes against three small Protocols, :class:`Button`, :class:`Led` and
:class:`Relay`. The adapters here implement them with gpiozero devices on a pin factory that
:func:`make_pin_factory` chooses explicitly (``INTERCOM_GPIO``), never by gpiozero's own guessing:

========  ==========================================================================
mode      pin factory
========  ==========================================================================
``pi``    lgpio (gpiozero's ``LGPIOFactory``): the Linux GPIO character device, so it
          works on every Pi including the Pi 5. Any problem is a :class:`GpioError`
          that says what to do (install lgpio, join the ``gpio`` group, ...).
``mock``  gpiozero's ``MockFactory``: pins in memory, for tests, laptops and the demo.
``auto``  lgpio when ``/dev/gpiochip0`` exists and lgpio imports, else mock with one
          warning line. A Pi with real GPIO whose chip cannot be opened is an error,
          not a silent fallback: a doorbell that quietly ignores its button is worse.
========  ==========================================================================

lgpio, on import, creates a notification pipe (``.lgd-nfy*``) in the working directory (or in
``$LG_WD``), so it fails in a read-only one; the error says so, and the service unit runs in its
writable RuntimeDirectory.

Threads. gpiozero calls back on its own thread (lgpio's notification thread on a Pi, the
caller's thread for a mock pin). :class:`GpioButton` does nothing there but read the clock and
hand the press to the asyncio loop with ``loop.call_soon_threadsafe``; the application's
``on_press`` always runs on the loop. LED blinking and relay pulses run on gpiozero's own
background blink threads (``blink(..., background=True)``); nothing here polls.

Button. Wired between the pin and ground, with the internal pull-up: idle high, pressed low
(active low). It is a gpiozero ``DigitalInputDevice`` rather than a ``Button``: the same press
event (``when_activated`` is what ``Button.when_pressed`` names), without ``Button``'s hold
thread, which wakes ten times a second for a "held" event we do not use. Two layers stop a
bouncing contact from ringing twice: gpiozero's ``bounce_time`` (50 ms, done by lgpio's
debounce on a Pi) and a software guard on the loop that drops any press less than ``guard``
seconds (1 s) after the last accepted one. The guard is measured from the time the edge was
seen on the gpiozero thread, not from when the loop got to it, so a busy loop cannot turn one
bounce into two presses.

LED patterns (:data:`LED_PATTERNS`), chosen to be told apart at a glance::

    off           dark
    registering   slow even blink, 1 s on / 1 s off
    registered    heartbeat: a 0.1 s flash every 3 s (alive and idle, unlike in-call)
    ringing       quick blink, 0.2 s on / 0.2 s off
    in-call       steady on
    error         flicker, 0.05 s on / 0.05 s off

Relay. A ``DigitalOutputDevice`` created de-energised. :meth:`GpioRelay.pulse` energises it for
the given seconds with a one-shot gpiozero blink; a pulse during a pulse restarts the time, and
the blink thread's last act is always to de-energise. Leaving it energised is guarded at every
level we control: :meth:`GpioRelay.close` always drives it off first, and every relay registers
an ``atexit`` handler doing the same, which runs before gpiozero's own exit handler (atexit is
last-in first-out). A process killed with SIGKILL or a crash of the interpreter runs no Python
at all; that case belongs to the wiring (a pull-down on the relay driver's input) and the
service unit.
"""

from __future__ import annotations

import asyncio
import atexit
import importlib.util
import logging
import math
import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from gpiozero import LED as ZeroLed  # type: ignore[import-untyped]
from gpiozero import DigitalInputDevice, DigitalOutputDevice
from gpiozero.exc import GPIOPinInUse, PinInvalidPin, PinUnknownPi  # type: ignore[import-untyped]

from intercom.errors import IntercomError
from intercom.feedback import LedPattern

logger = logging.getLogger(__name__)

GpioMode = Literal["pi", "mock", "auto"]

#: The chip checked before lgpio is tried. gpiozero picks the chip it opens (4 on a Pi 5 with an
#: older kernel, else 0); every gpiochip node gets the same gpio group from udev.
GPIO_CHIP = "/dev/gpiochip0"

_LGPIO_INSTALL_HINT = (
    "install it: on Raspberry Pi OS `sudo apt install python3-lgpio` (a virtualenv then needs "
    "--system-site-packages), elsewhere `pip install lgpio`"
)


class GpioError(IntercomError):
    """A GPIO chip or pin cannot be used; the message says what to change."""


class GpioUnavailableError(GpioError):
    """There is no usable GPIO here: no chip, no lgpio library, or not a Raspberry Pi."""


class GpioPermissionError(GpioError):
    """The GPIO chip exists but this user may not open it."""


class Button(Protocol):
    """The doorbell push button."""

    def start(self, on_press: Callable[[], None]) -> None:
        """Call ``on_press()`` on the event loop for every accepted press, from now on."""

    def close(self) -> None:
        """Stop reporting presses and release the pin. Idempotent."""


class Led(Protocol):
    """The status LED."""

    def show(self, pattern: LedPattern) -> None:
        """Show ``pattern`` until told otherwise; ValueError for an unknown name."""

    def close(self) -> None:
        """Turn the LED off and release the pin. Idempotent."""


class Relay(Protocol):
    """The door opener relay."""

    def pulse(self, seconds: float) -> None:
        """Energise now and de-energise ``seconds`` later; a pulse during a pulse restarts it."""

    def close(self) -> None:
        """De-energise and release the pin. Idempotent; always leaves the relay off."""


@dataclass(frozen=True, slots=True)
class Blink:
    """One LED state: lit for ``on_time`` then dark for ``off_time`` seconds, forever.

    A zero ``off_time`` is steady on and a zero ``on_time`` steady off.
    """

    on_time: float
    off_time: float

    def __post_init__(self) -> None:
        if not (self.on_time >= 0 and self.off_time >= 0 and self.on_time + self.off_time > 0):
            raise ValueError(f"invalid LED pattern {self.on_time}/{self.off_time} s")

    @property
    def blinks(self) -> bool:
        return self.on_time > 0 and self.off_time > 0


LED_PATTERNS: Mapping[LedPattern, Blink] = {
    LedPattern.OFF: Blink(on_time=0.0, off_time=1.0),
    LedPattern.REGISTERING: Blink(on_time=1.0, off_time=1.0),
    LedPattern.REGISTERED: Blink(on_time=0.1, off_time=2.9),
    LedPattern.RINGING: Blink(on_time=0.2, off_time=0.2),
    LedPattern.IN_CALL: Blink(on_time=1.0, off_time=0.0),
    LedPattern.ERROR: Blink(on_time=0.05, off_time=0.05),
}
"""The blink of every :class:`~intercom.feedback.LedPattern`."""


def make_pin_factory(mode: GpioMode | str, *, chip: str = GPIO_CHIP) -> Any:
    """The gpiozero pin factory for ``INTERCOM_GPIO`` = ``mode``; GpioError when unusable.

    ``chip`` is the device node checked before lgpio is tried (a parameter for tests). Only the
    factory the mode needs is imported.
    """
    if mode == "mock":
        return _mock_factory()
    if mode == "pi":
        return _open_lgpio(chip)
    if mode == "auto":
        if not os.path.exists(chip):
            logger.warning("GPIO: no %s here, using mock pins (set INTERCOM_GPIO=mock)", chip)
            return _mock_factory()
        if importlib.util.find_spec("lgpio") is None:
            logger.warning(
                "GPIO: %s exists but the lgpio library is missing, using mock pins: the button, "
                "LED and relay do nothing (%s, or set INTERCOM_GPIO=mock)",
                chip,
                _LGPIO_INSTALL_HINT,
            )
            return _mock_factory()
        try:
            return _open_lgpio(chip)
        except GpioUnavailableError as exc:
            logger.warning("GPIO: %s; using mock pins (set INTERCOM_GPIO=mock)", exc)
            return _mock_factory()
    raise GpioError(f"INTERCOM_GPIO: {mode!r} is not one of pi, mock, auto")


def _mock_factory() -> Any:
    from gpiozero.pins.mock import MockFactory  # type: ignore[import-untyped]

    return MockFactory()


def _open_lgpio(chip: str) -> Any:
    """An LGPIOFactory, or the first problem found, checked in the order a user would fix it."""
    if not os.path.exists(chip):
        raise GpioUnavailableError(
            f"INTERCOM_GPIO=pi but there is no {chip}: this is not a Raspberry Pi (or its kernel "
            f"has no GPIO driver); use INTERCOM_GPIO=mock to run without pins"
        )
    if not os.access(chip, os.R_OK | os.W_OK):
        raise GpioPermissionError(
            f"permission denied on {chip}: add the user to the gpio group "
            f"(`sudo usermod -aG gpio USER`, then log in again; the service unit uses "
            f"SupplementaryGroups=gpio)"
        )
    try:
        from gpiozero.pins.lgpio import LGPIOFactory  # type: ignore[import-untyped]
    except ImportError as exc:
        raise GpioUnavailableError(
            f"INTERCOM_GPIO=pi needs the lgpio library ({exc}): {_LGPIO_INSTALL_HINT}"
        ) from None
    except OSError as exc:
        # Importing lgpio creates its notification pipe (.lgd-nfy*) in the working directory.
        raise GpioError(
            f"lgpio could not create its notification pipe in {os.getcwd()} "
            f"({exc.strerror or exc}): run intercom from a writable directory (the service "
            f"unit sets WorkingDirectory=/run/intercom) or point LG_WD at one"
        ) from None
    try:
        return LGPIOFactory()
    except PinUnknownPi as exc:
        raise GpioUnavailableError(
            f"INTERCOM_GPIO=pi but this does not look like a Raspberry Pi ({exc}); "
            f"use INTERCOM_GPIO=mock to run without pins"
        ) from None
    except Exception as exc:  # lgpio.error and OSError: the library's own words, plus a hint
        raise GpioError(
            f"cannot open the GPIO chip with lgpio ({exc}): check that nothing else holds it "
            f"and that the service may use /dev/gpiochip* (DeviceAllow=, group gpio)"
        ) from None


def _make_device(role: str, pin: int, create: Callable[[], Any]) -> Any:
    """Create a gpiozero device, turning its errors into one GpioError naming the pin's role."""
    try:
        return create()
    except GPIOPinInUse as exc:
        raise GpioError(
            f"GPIO{pin} ({role}) is already in use ({exc}): give the button, LED and relay "
            f"different pins"
        ) from None
    except PinInvalidPin as exc:
        raise GpioError(f"GPIO{pin} ({role}) is not a GPIO pin on this board ({exc})") from None
    except Exception as exc:  # lgpio.error ("GPIO busy": another process or a kernel driver)
        logger.debug("GPIO%d (%s) failed", pin, role, exc_info=True)
        raise GpioError(
            f"cannot use GPIO{pin} for the {role} ({exc}): is another program or an overlay "
            f"(1-wire, I2C, SPI, a HAT) using it?"
        ) from None


class GpioButton:
    """The doorbell button: pull-up, active low, debounced, at most one press per ``guard``."""

    def __init__(
        self,
        pin: int,
        *,
        loop: asyncio.AbstractEventLoop,
        pin_factory: Any,
        bounce_time: float = 0.05,
        guard: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.pin = pin
        self._loop = loop
        self._guard = guard
        self._clock = clock
        self._on_press: Callable[[], None] | None = None
        self._last_press: float | None = None
        self._closed = False
        self._device = _make_device(
            "button",
            pin,
            lambda: DigitalInputDevice(
                pin, pull_up=True, bounce_time=bounce_time, pin_factory=pin_factory
            ),
        )

    def start(self, on_press: Callable[[], None]) -> None:
        if self._closed:
            raise GpioError(f"GPIO{self.pin} (button) is closed")
        self._on_press = on_press
        self._device.when_activated = self._edge

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._on_press = None
        self._device.close()  # also drops the gpiozero callback

    def _edge(self) -> None:
        # gpiozero's thread: take the time, hand over, nothing else.
        seen = self._clock()
        try:
            self._loop.call_soon_threadsafe(self._deliver, seen)
        except RuntimeError:  # the loop is closed: we are shutting down
            logger.debug("GPIO%d (button): press after the event loop closed, dropped", self.pin)

    def _deliver(self, seen: float) -> None:
        # The event loop's thread.
        if self._closed or self._on_press is None:
            return
        if self._last_press is not None and seen - self._last_press < self._guard:
            logger.debug(
                "GPIO%d (button): press %.3f s after the last one ignored (bounce guard %.1f s)",
                self.pin,
                seen - self._last_press,
                self._guard,
            )
            return
        self._last_press = seen
        self._on_press()


class GpioLed:
    """The status LED, showing one of :data:`LED_PATTERNS` with gpiozero's background blink."""

    def __init__(self, pin: int, *, pin_factory: Any, active_high: bool = True) -> None:
        self.pin = pin
        self._pattern: LedPattern | None = None
        self._closed = False
        self._device = _make_device(
            "LED",
            pin,
            lambda: ZeroLed(
                pin, active_high=active_high, initial_value=False, pin_factory=pin_factory
            ),
        )

    @property
    def pattern(self) -> LedPattern | None:
        """The pattern shown, None before the first :meth:`show`."""
        return self._pattern

    def show(self, pattern: LedPattern) -> None:
        shape = LED_PATTERNS.get(pattern)
        if shape is None:
            known = ", ".join(LED_PATTERNS)
            raise ValueError(f"unknown LED pattern {pattern!r} (known: {known})")
        if self._closed or pattern == self._pattern:
            return  # showing it again would restart the blink with a visible glitch
        self._pattern = pattern
        if shape.blinks:
            self._device.blink(on_time=shape.on_time, off_time=shape.off_time, background=True)
        elif shape.on_time > 0:
            self._device.on()
        else:
            self._device.off()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            self._device.off()
        finally:
            self._device.close()


class GpioRelay:
    """The door relay: de-energised from creation to close, energised only by :meth:`pulse`."""

    def __init__(self, pin: int, *, pin_factory: Any, active_high: bool = True) -> None:
        self.pin = pin
        self._lock = threading.Lock()
        self._closed = False
        self._device = _make_device(
            "door relay",
            pin,
            lambda: DigitalOutputDevice(
                pin, active_high=active_high, initial_value=False, pin_factory=pin_factory
            ),
        )
        atexit.register(self.close)

    @property
    def energised(self) -> bool:
        with self._lock:
            return not self._closed and bool(self._device.value)

    def pulse(self, seconds: float) -> None:
        if not (math.isfinite(seconds) and seconds > 0):
            raise ValueError(f"relay pulse must be a positive number of seconds, got {seconds}")
        with self._lock:
            if self._closed:
                logger.warning("GPIO%d (door relay) is closed; pulse ignored", self.pin)
                return
            logger.debug("GPIO%d (door relay): pulse %.2f s", self.pin, seconds)
            # Restarting a running blink stops its thread first; the new one ends de-energised.
            self._device.blink(on_time=seconds, off_time=0, n=1, background=True)

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            atexit.unregister(self.close)
            try:
                self._device.off()  # stops a running pulse, then drives the output inactive
            finally:
                self._device.close()
