"""Fakes of the :mod:`intercom.hw.gpio` Protocols: no gpiozero, no threads, no clock.

They record what the application asked for, so tests of the runtime can assert "the LED showed
ringing" or "the relay pulsed once for 3 s" without pins or waits. For the gpiozero adapters
themselves, tests use gpiozero's ``MockFactory`` instead (see ``tests/hw/test_gpio.py``).
"""

from __future__ import annotations

from collections.abc import Callable

from intercom.feedback import LedPattern
from intercom.hw.gpio import LED_PATTERNS


class FakeButton:
    """A button pressed by calling :meth:`press`; the callback runs on the caller's thread."""

    def __init__(self) -> None:
        self._on_press: Callable[[], None] | None = None
        self.closed = False

    def start(self, on_press: Callable[[], None]) -> None:
        self._on_press = on_press

    def press(self) -> bool:
        """Deliver one press; False when not started or closed (nothing happens then)."""
        if self._on_press is None or self.closed:
            return False
        self._on_press()
        return True

    def close(self) -> None:
        self.closed = True


class FakeLed:
    """Records every pattern change in :attr:`shown`, validating names like the real LED."""

    def __init__(self) -> None:
        self.shown: list[LedPattern] = []
        self.closed = False

    @property
    def pattern(self) -> LedPattern | None:
        return self.shown[-1] if self.shown else None

    def show(self, pattern: LedPattern) -> None:
        if pattern not in LED_PATTERNS:
            raise ValueError(f"unknown LED pattern {pattern!r}")
        if not self.closed and pattern != self.pattern:
            self.shown.append(pattern)

    def close(self) -> None:
        self.closed = True


class FakeRelay:
    """Records the seconds of every pulse in :attr:`pulses`; ignores pulses after close."""

    def __init__(self) -> None:
        self.pulses: list[float] = []
        self.closed = False

    def pulse(self, seconds: float) -> None:
        if seconds <= 0:
            raise ValueError(f"relay pulse must be a positive number of seconds, got {seconds}")
        if not self.closed:
            self.pulses.append(seconds)

    def close(self) -> None:
        self.closed = True
