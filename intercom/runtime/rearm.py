"""The one ``loop.call_at`` timer of a sans-IO core, re-armed after each step.

A core says when it next wants ``handle_timer(now)`` through ``get_timer()``; after feeding it
(a datagram, a command, the timer itself) the runtime hands that deadline to :meth:`Rearm.at`,
which moves the loop's timer only when the deadline moved, as aioquic's asyncio adapter does.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable


class Rearm:
    """Calls ``callback`` at the latest deadline given to :meth:`at`; None means never."""

    def __init__(self, callback: Callable[[], None]) -> None:
        self._callback = callback
        self._handle: asyncio.TimerHandle | None = None
        self.deadline: float | None = None

    def at(self, deadline: float | None, loop: asyncio.AbstractEventLoop | None) -> None:
        """Fire at ``deadline`` on ``loop`` (no loop yet: the deadline is only remembered)."""
        if deadline == self.deadline:
            return
        self.cancel()
        self.deadline = deadline
        if deadline is not None and loop is not None:
            self._handle = loop.call_at(deadline, self._fire)

    def cancel(self) -> None:
        """Stop the pending call, if any; an unchanged deadline given to :meth:`at` stays off."""
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _fire(self) -> None:
        self._handle = None
        self.deadline = None
        self._callback()
