"""The gpiozero adapters against gpiozero's MockFactory, and the pin factory choice.

Presses go through a real asyncio loop. Relay and LED timings run on gpiozero's blink threads in
real time, so those tests use short pulses and bounded waits (never a fixed sleep that must be
"long enough" to pass).
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
from collections.abc import Callable, Iterator

import pytest
from gpiozero.pins.mock import MockFactory  # type: ignore[import-untyped]

from intercom.errors import IntercomError
from intercom.feedback import LedPattern
from intercom.hw import gpio
from intercom.hw.gpio import (
    LED_PATTERNS,
    GpioButton,
    GpioError,
    GpioLed,
    GpioPermissionError,
    GpioRelay,
    GpioUnavailableError,
    make_pin_factory,
)

BUTTON, LED, RELAY = 17, 27, 22
HAVE_LGPIO = importlib.util.find_spec("lgpio") is not None


@pytest.fixture
def factory() -> Iterator[MockFactory]:
    f = MockFactory()
    yield f
    f.close()


def wait_until(condition: Callable[[], bool], timeout: float = 1.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.002)
    return True


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


# --- button ----------------------------------------------------------------------------------


def test_button_is_pull_up_active_low_and_debounced(factory):
    async def main() -> None:
        button = GpioButton(BUTTON, loop=asyncio.get_running_loop(), pin_factory=factory)
        pin = factory.pin(BUTTON)
        assert pin.pull == "up"
        assert pin.state  # idle: pulled high
        assert pin.bounce == pytest.approx(0.05)
        button.close()

    asyncio.run(main())


def test_press_on_mock_pin_reaches_the_loop_exactly_once_on_its_thread(factory):
    async def main() -> None:
        loop = asyncio.get_running_loop()
        loop_thread = threading.get_ident()
        pressed = asyncio.Event()
        threads: list[int] = []

        def on_press() -> None:
            threads.append(threading.get_ident())
            pressed.set()

        button = GpioButton(BUTTON, loop=loop, pin_factory=factory)
        button.start(on_press)
        pin = factory.pin(BUTTON)
        # gpiozero calls back on the thread that changes the pin: not the loop's.
        await asyncio.to_thread(pin.drive_low)
        await asyncio.wait_for(pressed.wait(), timeout=1.0)
        await asyncio.to_thread(pin.drive_high)  # the release is not a press
        for _ in range(3):
            await asyncio.sleep(0)
        assert threads == [loop_thread]
        button.close()

    asyncio.run(main())


def test_a_bounce_gives_one_press(factory):
    async def main() -> None:
        presses: list[int] = []
        button = GpioButton(BUTTON, loop=asyncio.get_running_loop(), pin_factory=factory)
        button.start(lambda: presses.append(1))
        pin = factory.pin(BUTTON)

        def bounce() -> None:
            for _ in range(3):
                pin.drive_low()
                pin.drive_high()
            pin.drive_low()

        await asyncio.to_thread(bounce)
        for _ in range(3):
            await asyncio.sleep(0)
        assert presses == [1]
        button.close()

    asyncio.run(main())


def test_guard_counts_from_the_last_accepted_press(factory):
    async def main() -> None:
        clock = FakeClock()
        presses: list[float] = []
        button = GpioButton(
            BUTTON, loop=asyncio.get_running_loop(), pin_factory=factory, clock=clock
        )
        button.start(lambda: presses.append(clock.now))
        pin = factory.pin(BUTTON)
        for at in (100.0, 100.5, 100.99, 101.0, 101.5, 103.0):
            clock.now = at
            pin.drive_low()
            pin.drive_high()
            await asyncio.sleep(0)
        assert presses == [100.0, 101.0, 103.0]
        button.close()

    asyncio.run(main())


def test_closed_button_drops_queued_and_later_presses(factory):
    async def main() -> None:
        presses: list[int] = []
        button = GpioButton(BUTTON, loop=asyncio.get_running_loop(), pin_factory=factory)
        button.start(lambda: presses.append(1))
        pin = factory.pin(BUTTON)
        pin.drive_low()  # queued on the loop, not yet delivered
        button.close()
        button.close()
        await asyncio.sleep(0)
        pin.drive_high()
        pin.drive_low()
        await asyncio.sleep(0)
        assert presses == []
        with pytest.raises(GpioError, match="closed"):
            button.start(lambda: None)

    asyncio.run(main())


def test_press_after_the_loop_closed_is_dropped_quietly(factory):
    loop = asyncio.new_event_loop()
    button = GpioButton(BUTTON, loop=loop, pin_factory=factory)
    button.start(lambda: pytest.fail("must not be called"))
    loop.close()
    factory.pin(BUTTON).drive_low()  # no exception on gpiozero's side
    button.close()


# --- relay -----------------------------------------------------------------------------------


def test_relay_pulses_and_drops(factory):
    relay = GpioRelay(RELAY, pin_factory=factory)
    pin = factory.pin(RELAY)
    assert not pin.state and not relay.energised
    relay.pulse(0.05)
    assert wait_until(lambda: pin.state)
    assert wait_until(lambda: not pin.state)
    assert [s.state for s in pin.states] == [False, True, False]
    assert pin.states[2].timestamp >= 0.045  # it stayed energised for the pulse
    assert not relay.energised
    relay.close()


def test_relay_second_pulse_restarts_and_never_stays_on(factory):
    relay = GpioRelay(RELAY, pin_factory=factory)
    pin = factory.pin(RELAY)
    relay.pulse(30.0)
    assert wait_until(lambda: pin.state)
    relay.pulse(0.05)  # replaces the long pulse
    relay.pulse(0.05)
    assert wait_until(lambda: not pin.state)
    time.sleep(0.02)
    assert not pin.state
    relay.close()


def test_relay_close_during_a_pulse_de_energises_and_stays_off(factory):
    relay = GpioRelay(RELAY, pin_factory=factory)
    pin = factory.pin(RELAY)
    relay.pulse(30.0)
    assert wait_until(lambda: pin.state)
    relay.close()
    assert not pin.state
    assert not relay.energised
    relay.pulse(1.0)  # ignored after close
    relay.close()
    assert not pin.state


def test_relay_registers_an_exit_handler_that_de_energises(factory, monkeypatch):
    registered: list[Callable[[], None]] = []
    monkeypatch.setattr(atexit, "register", registered.append)
    monkeypatch.setattr(atexit, "unregister", registered.remove)
    relay = GpioRelay(RELAY, pin_factory=factory)
    assert registered == [relay.close]
    relay.pulse(30.0)
    pin = factory.pin(RELAY)
    assert wait_until(lambda: pin.state)
    registered[0]()  # what the interpreter does at exit
    assert not pin.state
    assert registered == []


def test_active_low_relay_idles_high_and_pulses_low(factory):
    relay = GpioRelay(RELAY, pin_factory=factory, active_high=False)
    pin = factory.pin(RELAY)
    assert pin.state and not relay.energised
    relay.pulse(0.05)
    assert wait_until(lambda: not pin.state)
    assert wait_until(lambda: pin.state)
    relay.close()


@pytest.mark.parametrize("seconds", [0.0, -1.0, math.nan, math.inf])
def test_relay_refuses_a_senseless_pulse(factory, seconds):
    relay = GpioRelay(RELAY, pin_factory=factory)
    with pytest.raises(ValueError, match="positive number of seconds"):
        relay.pulse(seconds)
    assert not factory.pin(RELAY).state
    relay.close()


# --- LED -------------------------------------------------------------------------------------


def test_led_patterns_are_all_there_and_distinct():
    assert set(LED_PATTERNS) == set(LedPattern)
    assert len(set(LED_PATTERNS.values())) == len(LED_PATTERNS)
    assert not LED_PATTERNS["off"].blinks and LED_PATTERNS["off"].on_time == 0
    assert not LED_PATTERNS["in-call"].blinks and LED_PATTERNS["in-call"].on_time > 0
    period = {n: p.on_time + p.off_time for n, p in LED_PATTERNS.items() if p.blinks}
    assert period["error"] < period["ringing"] < period["registering"]
    registered = LED_PATTERNS["registered"]
    assert registered.on_time < registered.off_time / 10  # a short flash, not "on"


def test_led_steady_patterns(factory):
    led = GpioLed(LED, pin_factory=factory)
    pin = factory.pin(LED)
    assert not pin.state and led.pattern is None
    led.show("in-call")
    assert pin.state
    led.show("off")
    assert not pin.state
    assert [s.state for s in pin.states] == [False, True, False]
    led.close()


def test_led_error_blinks_until_changed(factory):
    led = GpioLed(LED, pin_factory=factory)
    pin = factory.pin(LED)
    led.show("error")
    assert wait_until(lambda: len(pin.states) >= 5)  # two on/off cycles of 0.1 s
    led.show("in-call")
    assert pin.state
    changes = len(pin.states)
    time.sleep(0.12)  # more than one error period: a running blink would have toggled
    assert len(pin.states) == changes and pin.state
    led.close()
    assert not pin.state


def test_led_registered_is_a_short_flash(factory):
    led = GpioLed(LED, pin_factory=factory)
    pin = factory.pin(LED)
    led.show("registered")
    assert wait_until(lambda: len(pin.states) >= 3)
    flash = pin.states[2]
    assert not flash.state and flash.timestamp < 0.5
    led.close()


def test_led_showing_the_same_pattern_does_not_restart_it(factory):
    led = GpioLed(LED, pin_factory=factory)
    pin = factory.pin(LED)
    led.show("registered")
    assert wait_until(lambda: len(pin.states) == 3)  # the flash is over: dark for 2.9 s
    led.show("registered")  # a restart would flash again at once
    time.sleep(0.05)
    assert [s.state for s in pin.states] == [False, True, False]
    assert led.pattern == "registered"
    led.close()


def test_led_unknown_pattern_is_refused(factory):
    led = GpioLed(LED, pin_factory=factory)
    with pytest.raises(ValueError, match=r"'blue'.*ringing"):
        led.show("blue")
    led.close()
    led.show("ringing")  # ignored after close
    assert not factory.pin(LED).state


# --- pins and factories ----------------------------------------------------------------------


def test_two_devices_on_one_pin_is_a_clear_error(factory):
    async def main() -> None:
        button = GpioButton(BUTTON, loop=asyncio.get_running_loop(), pin_factory=factory)
        with pytest.raises(GpioError, match=r"GPIO17 \(LED\) is already in use"):
            GpioLed(BUTTON, pin_factory=factory)
        button.close()

    asyncio.run(main())


def test_invalid_pin_is_a_clear_error(factory):
    with pytest.raises(GpioError, match=r"GPIO99 \(door relay\) is not a GPIO pin"):
        GpioRelay(99, pin_factory=factory)


def test_mock_mode_gives_a_mock_factory():
    f = make_pin_factory("mock")
    assert isinstance(f, MockFactory)
    f.close()


def test_auto_without_a_gpio_chip_is_mock_with_one_warning(tmp_path, caplog):
    caplog.set_level(logging.WARNING, logger="intercom.hw.gpio")
    f = make_pin_factory("auto", chip=str(tmp_path / "gpiochip0"))
    assert isinstance(f, MockFactory)
    assert len(caplog.records) == 1 and "mock" in caplog.records[0].getMessage()
    f.close()


def test_auto_on_this_machine_is_mock():
    if os.path.exists(gpio.GPIO_CHIP) and HAVE_LGPIO:
        pytest.skip("this machine has real GPIO")
    f = make_pin_factory("auto")
    assert isinstance(f, MockFactory)
    f.close()


def test_pi_without_a_gpio_chip_says_to_use_mock(tmp_path):
    with pytest.raises(GpioUnavailableError) as info:
        make_pin_factory("pi", chip=str(tmp_path / "gpiochip0"))
    assert isinstance(info.value, IntercomError)
    message = str(info.value)
    assert "\n" not in message
    assert "gpiochip0" in message and "INTERCOM_GPIO=mock" in message


def test_pi_on_this_machine_is_an_intercom_error():
    if os.path.exists(gpio.GPIO_CHIP):
        pytest.skip("this machine has a GPIO chip")
    with pytest.raises(IntercomError, match="INTERCOM_GPIO=mock"):
        make_pin_factory("pi")


def test_pi_with_a_chip_we_may_not_open_says_join_the_gpio_group(tmp_path, monkeypatch):
    chip = tmp_path / "gpiochip0"
    chip.touch()
    monkeypatch.setattr(os, "access", lambda path, mode: False)  # we run tests as root too
    with pytest.raises(GpioPermissionError, match="add the user to the gpio group"):
        make_pin_factory("pi", chip=str(chip))


@pytest.mark.skipif(HAVE_LGPIO, reason="lgpio is installed here")
def test_pi_without_lgpio_says_how_to_install_it(tmp_path):
    chip = tmp_path / "gpiochip0"
    chip.touch()
    with pytest.raises(GpioUnavailableError, match=r"python3-lgpio.*pip install lgpio"):
        make_pin_factory("pi", chip=str(chip))


@pytest.mark.skipif(HAVE_LGPIO, reason="lgpio is installed here")
def test_auto_with_a_chip_but_without_lgpio_is_mock_with_a_warning(tmp_path, caplog):
    chip = tmp_path / "gpiochip0"
    chip.touch()
    caplog.set_level(logging.WARNING, logger="intercom.hw.gpio")
    f = make_pin_factory("auto", chip=str(chip))
    assert isinstance(f, MockFactory)
    assert len(caplog.records) == 1 and "lgpio" in caplog.records[0].getMessage()
    f.close()


def test_unknown_mode_is_refused():
    with pytest.raises(GpioError, match="'gpio' is not one of pi, mock, auto"):
        make_pin_factory("gpio")


# --- the three together --------------------------------------------------------------------


def test_the_devices_do_what_the_application_asked_and_nothing_once_closed(factory):
    async def main() -> None:
        presses: list[int] = []
        clock = FakeClock()
        loop = asyncio.get_running_loop()
        button = GpioButton(BUTTON, loop=loop, pin_factory=factory, clock=clock)
        led = GpioLed(LED, pin_factory=factory)
        relay = GpioRelay(RELAY, pin_factory=factory)
        button_pin, led_pin, relay_pin = (factory.pin(n) for n in (BUTTON, LED, RELAY))

        async def press() -> None:
            button_pin.drive_low()
            button_pin.drive_high()
            for _ in range(3):
                await asyncio.sleep(0)

        await press()  # not started: nobody is told
        button.start(lambda: presses.append(1))
        await press()
        led.show(LedPattern.RINGING)
        led.show(LedPattern.RINGING)
        led.show(LedPattern.IN_CALL)
        relay.pulse(0.05)
        with pytest.raises(ValueError):
            led.show("blue")
        assert await asyncio.to_thread(wait_until, lambda: len(relay_pin.states) == 3)  # dropped
        for device in (button, led, relay):
            device.close()
        clock.now += 10.0  # long past the bounce guard
        await press()
        relay.pulse(3.0)
        assert presses == [1]
        assert led.pattern == "in-call" and not led_pin.state  # off once closed
        assert [s.state for s in relay_pin.states] == [False, True, False]  # the one pulse

    asyncio.run(main())
