"""systemd's notify protocol (sd_notify(3)) without libsystemd: READY, STATUS, STOPPING, WATCHDOG.

Under ``Type=notify`` systemd passes ``NOTIFY_SOCKET`` (a path, or ``@name`` for the abstract
namespace) and, with ``WatchdogSec=``, ``WATCHDOG_USEC``. Messages are single datagrams of
``KEY=VALUE`` lines. The watchdog is fed by a timer on the event loop, at half the interval, so
it stops being fed exactly when the loop stops turning: a hung loop gets the service restarted.
Outside systemd every call does nothing.

Logs: when stderr is the journal (systemd names the stream's ``device:inode`` in
``JOURNAL_STREAM``; :func:`stderr_is_journal` compares it with stderr's own), every line
starts with its syslog priority, ``<3>`` for an error to ``<7>`` for debug (sd-daemon(3)), so
that ``journalctl -p warning -u intercom`` shows warnings and worse
(:class:`PriorityFormatter`). Elsewhere (a terminal, a pipe, a file) lines are plain.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import sys
from collections.abc import Mapping
from typing import TextIO

logger = logging.getLogger(__name__)


PRIORITIES = ((logging.ERROR, 3), (logging.WARNING, 4), (logging.INFO, 6))
"""(lowest level, syslog priority): SD_ERR, SD_WARNING, SD_INFO; below INFO SD_DEBUG (7);
CRITICAL is SD_CRIT (2)."""


def syslog_priority(level: int) -> int:
    """The syslog priority of a logging level."""
    if level >= logging.CRITICAL:
        return 2
    for lowest, priority in PRIORITIES:
        if level >= lowest:
            return priority
    return 7


def stderr_is_journal(
    environ: Mapping[str, str] | None = None, stream: TextIO | None = None
) -> bool:
    """True when ``stream`` (stderr) is the journal stream systemd named in JOURNAL_STREAM."""
    value = (os.environ if environ is None else environ).get("JOURNAL_STREAM", "")
    device, _, inode = value.partition(":")
    if not device.isdecimal() or not inode.isdecimal():
        return False
    try:
        info = os.fstat((stream or sys.stderr).fileno())
    except (OSError, ValueError, AttributeError):
        return False
    return (info.st_dev, info.st_ino) == (int(device), int(inode))


class PriorityFormatter(logging.Formatter):
    """Every line of a record (a traceback's too) prefixed with ``<N>``, its syslog priority."""

    def format(self, record: logging.LogRecord) -> str:
        prefix = f"<{syslog_priority(record.levelno)}>"
        return prefix + super().format(record).replace("\n", "\n" + prefix)


class SystemdNotifier:
    """Talks to systemd when started by it; silent otherwise."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        address = env.get("NOTIFY_SOCKET", "")
        if address.startswith("@"):
            address = "\0" + address[1:]
        self._address = address
        self._socket: socket.socket | None = None
        self.watchdog_interval: float | None = None
        usec = env.get("WATCHDOG_USEC", "")
        pid = env.get("WATCHDOG_PID", "")
        if usec.isdecimal() and int(usec) > 0 and (not pid or pid == str(os.getpid())):
            self.watchdog_interval = int(usec) / 1e6
        self._timer: asyncio.TimerHandle | None = None

    @property
    def enabled(self) -> bool:
        return bool(self._address)

    def notify(self, *lines: str) -> None:
        """Send ``KEY=VALUE`` lines in one datagram (errors are logged once, never raised)."""
        if not self._address:
            return
        try:
            if self._socket is None:
                self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            self._socket.sendto("\n".join(lines).encode(), self._address)
        except OSError as exc:
            logger.warning("x systemd notify: %s; no further notifications", exc)
            self._address = ""

    def ready(self, status: str) -> None:
        self.notify("READY=1", f"STATUS={status}")

    def status(self, status: str) -> None:
        self.notify(f"STATUS={status}")

    def stopping(self) -> None:
        self.notify("STOPPING=1")

    def start_watchdog(self, loop: asyncio.AbstractEventLoop) -> None:
        """Feed the watchdog from ``loop`` at half its interval, for as long as it turns."""
        if self.watchdog_interval is None or not self._address:
            return

        def feed() -> None:
            self.notify("WATCHDOG=1")
            assert self.watchdog_interval is not None
            self._timer = loop.call_later(self.watchdog_interval / 2, feed)

        feed()

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._socket is not None:
            with contextlib.suppress(OSError):
                self._socket.close()
            self._socket = None
