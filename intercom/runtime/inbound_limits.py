"""Which TCP connections others open to the door are taken, and a log of those refused or
closed that counts instead of repeating itself.

Anyone can open TCP connections to the door's SIP port as fast as the network carries them,
and each one held costs a socket, a receive buffer, a timer. :class:`InboundLimits` keeps
two pools, so that strangers cannot crowd out anyone who matters:

* a source the application trusts (the SIP server's addresses, ``INTERCOM_TRUSTED_HOSTS``: the
  predicate the transport is handed) may hold ``TRUSTED_PER_SOURCE`` connections, and all
  trusted sources together ``MAX_TRUSTED``. A server usually sends its requests back over the
  connection the door opened (RFC 5923, RFC 5626): a few of its own are plenty;
* any other source may hold ``PER_SOURCE`` connections, all of them together ``MAX_STRANGERS``.

The door's own connections (to the server, to a call target) are counted by the transport
alone, never here: however many others are open, the door can always open its own.

:class:`ConnectionLog` counts the connections refused or closed for a reason of ours (a cap,
no SIP message in time, a stream that cannot be framed, a peer that does not read) per source.
The first from a source is logged at once (at most ``ANNOUNCED_PER_INTERVAL`` such lines per
interval, whatever the number of sources), the rest once per ``REPORT_INTERVAL`` with a
count ("x 96 tcp connections from 192.0.2.7 in the last 60 s refused: 4 open from it"), the
busiest ``REPORTED_SOURCES`` by name and the others summed up. At most ``MAX_SOURCES`` are
remembered; the least recently seen is forgotten first (its counts go into the sum).

Bookkeeping only: no sockets, no clock (``now`` is passed in), no timers (the transport arms
one at :meth:`ConnectionLog.get_timer`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from intercom.tally import CountedLog, Report, SourceTally

__all__ = [
    "ANNOUNCED_PER_INTERVAL",
    "MAX_SOURCES",
    "MAX_STRANGERS",
    "MAX_TRUSTED",
    "PER_SOURCE",
    "REPORTED_SOURCES",
    "REPORT_INTERVAL",
    "TRUSTED_PER_SOURCE",
    "ConnectionLog",
    "InboundLimits",
]

logger = logging.getLogger(__name__)

PER_SOURCE = 4
"""Connections one untrusted address may hold open to the door."""
MAX_STRANGERS = 32
"""Connections all untrusted addresses together may hold open."""
TRUSTED_PER_SOURCE = 16
"""Connections one trusted address (the server, a trusted host) may hold open."""
MAX_TRUSTED = 32
"""Connections all trusted addresses together may hold open (a trusted network is a range)."""
REPORT_INTERVAL = 60.0
"""Seconds between the summary lines of one source."""
MAX_SOURCES = 1024
"""Sources whose counts are kept; the least recently seen is forgotten beyond it."""
ANNOUNCED_PER_INTERVAL = 20
"""Immediate first-sight lines per interval, whatever the number of sources."""
REPORTED_SOURCES = 20
"""Sources named in one summary; the rest are summed up in a single line."""


class InboundLimits:
    """The two pools of the module docstring: :meth:`admit` a connection, :meth:`release` it."""

    def __init__(self, is_trusted_source: Callable[[str], bool] | None = None) -> None:
        """``is_trusted_source(host)``: whether that IP is the server or a trusted host; None:
        nobody is, every source gets a stranger's share."""
        self._is_trusted = is_trusted_source
        self._held: tuple[dict[str, int], dict[str, int]] = ({}, {})  # strangers, trusted
        self._totals = [0, 0]

    @property
    def held(self) -> int:
        """Connections admitted and not released, both pools."""
        return self._totals[0] + self._totals[1]

    def admit(self, host: str) -> tuple[bool, str | None]:
        """Count one more connection from ``host``: (trusted, None) when it is taken (hand
        ``trusted`` back to :meth:`release`), else (trusted, the reason it is refused)."""
        trusted = self._is_trusted is not None and self._is_trusted(host)
        per_source, total = (
            (TRUSTED_PER_SOURCE, MAX_TRUSTED) if trusted else (PER_SOURCE, MAX_STRANGERS)
        )
        held = self._held[trusted]
        if held.get(host, 0) >= per_source:
            return trusted, f"refused: {per_source} open from it"
        if self._totals[trusted] >= total:
            kind = "trusted" if trusted else "untrusted"
            return trusted, f"refused: {total} open from {kind} sources"
        held[host] = held.get(host, 0) + 1
        self._totals[trusted] += 1
        return trusted, None

    def release(self, host: str, trusted: bool) -> None:
        """A connection :meth:`admit` took from ``host`` (in that pool) has closed."""
        held = self._held[trusted]
        count = held.get(host, 0)
        if count <= 0:
            return
        self._totals[trusted] -= 1
        if count == 1:
            del held[host]
        else:
            held[host] = count - 1


class ConnectionLog(CountedLog):
    """Counts connections refused or closed, per source and reason
    (:class:`~intercom.tally.SourceTally`); logs them with counts.

    ``reason`` is always a phrase of ours ("refused: 4 open from it"), never a peer's text; a
    ``detail`` (which may quote the peer) goes into the immediate line only, at most
    ``DETAIL_CHARS`` of it."""

    DETAIL_CHARS = 120

    def __init__(self) -> None:
        super().__init__(SourceTally(
            max_sources=MAX_SOURCES, interval=REPORT_INTERVAL,
            announced=ANNOUNCED_PER_INTERVAL, reported=REPORTED_SOURCES,
        ))  # fmt: skip

    def count(self, host: str, reason: str, now: float, detail: str = "") -> None:
        """One connection from ``host`` was refused or closed for ``reason``."""
        if not self._tally.count(host, reason, now)[1]:
            return
        if len(detail) > self.DETAIL_CHARS:
            detail = detail[: self.DETAIL_CHARS] + "..."
        logger.warning(
            "x tcp connection from %s %s%s; more are counted and logged once a minute",
            host, reason, f" ({detail})" if detail else "",
        )  # fmt: skip

    def _tell(self, report: Report) -> None:
        for host, tally in report.sources:
            for reason, n in tally.counts.items():
                logger.warning("x %d tcp connections from %s %s %s", n, host, report.span, reason)
        if report.rest:
            parts = ", ".join(f"{n} {reason}" for reason, n in report.rest.items())
            logger.warning("x tcp connections from %d other sources %s: %s", report.others,
                           report.span, parts)  # fmt: skip
