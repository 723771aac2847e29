"""The publisher port: what the daemon tells a home automation, and the one command it takes.

The daemon talks to a :class:`Publisher`, never to an MQTT library: the MQTT adapter
(:mod:`intercom.runtime.mqtt`) is one, :class:`FakePublisher` another, for tests. Every method
but :meth:`Publisher.stop` returns at once: a ring or a state change is handed over, never
awaited, so a broker that is down, slow or restarting cannot delay the doorbell.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from intercom.app.status import DoorbellStatus

__all__ = ["FakePublisher", "OnOpen", "Publisher"]

OnOpen = Callable[[], None]
"""Called on the event loop when the home automation asks to open the door."""


class Publisher(Protocol):
    """Where rings and the doorbell's state go (see the module docstring)."""

    def start(self, on_open: OnOpen) -> None:
        """Begin connecting in the background; returns at once."""

    def ring(self, now: float, wall: float) -> None:
        """A press the doorbell acted on, at ``now`` (monotonic) and ``wall`` (Unix time)."""

    def update(self, status: DoorbellStatus) -> None:
        """The doorbell's state after a step (unchanged ones cost nothing)."""

    async def stop(self) -> None:
        """Send what is left and say goodbye (``offline``) within a few seconds, then close."""


class FakePublisher:
    """Records what the daemon hands over; :meth:`open` plays the home automation's command."""

    def __init__(self) -> None:
        self.rings: list[float] = []  #: monotonic times of the rings
        self.states: list[DoorbellStatus] = []  #: every change, in order
        self.started = False
        self.stopped = False
        self._on_open: OnOpen | None = None

    def start(self, on_open: OnOpen) -> None:
        self.started = True
        self._on_open = on_open

    def ring(self, now: float, wall: float) -> None:
        self.rings.append(now)

    def update(self, status: DoorbellStatus) -> None:
        if not self.states or self.states[-1] != status:
            self.states.append(status)

    async def stop(self) -> None:
        self.stopped = True

    def open(self) -> None:
        """The "Open door" button pressed in the home automation."""
        assert self._on_open is not None, "the publisher was not started"
        self._on_open()
