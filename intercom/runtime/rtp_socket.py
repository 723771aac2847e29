"""The RTP and RTCP sockets of one call: an even port from the configured range, RTCP on port+1.

RFC 3550 §11: RTP on an even port, RTCP on the next odd one. Both are plain non-blocking UDP
sockets that the call's media thread drains on its 20 ms ticks (:meth:`RtpSockets.drain`), so a
call wakes the process once per frame, not once per packet as well: on a Pi Zero a wake-up costs
more than the work it does. The kernel stamps each datagram on arrival (``SO_TIMESTAMPNS``), so
the jitter buffer, the RFC 3550 jitter and the RTCP round trip still see true arrival times, not
the tick's. Sending is one ``sendto``.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import random
import socket
import struct
import time
from collections.abc import Callable

from intercom.errors import IntercomError

logger = logging.getLogger(__name__)

Address = tuple[str, int]
TimedReceiver = Callable[[bytes, Address, float], None]

MAX_DATAGRAM = 2048
BIND_ATTEMPTS = 64
MAX_DRAIN = 64
"""Datagrams taken per drain: a flood cannot hold the loop."""

SO_TIMESTAMPNS = 35
"""Linux: stamp datagrams with the arrival time (``struct timespec``, CLOCK_REALTIME)."""
_TIMESPEC = struct.Struct("@ll")  # native time_t and long, as the kernel writes them
_ANCILLARY_SPACE = socket.CMSG_SPACE(_TIMESPEC.size)
MAX_STAMP_AGE = 2.0
"""Seconds: a stamp older than this at the drain is taken as a step of the realtime clock (NTP,
a resumed VM), not as a datagram that waited, and the drain's own time is used instead."""


class PortRangeError(IntercomError):
    """No free even/odd port pair in INTERCOM_RTP_PORTS."""


class RtpSockets:
    """A bound RTP/RTCP socket pair."""

    def __init__(self, host: str, port_range: tuple[int, int], rng: random.Random) -> None:
        self._family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._v6 = self._family == socket.AF_INET6  # sources come as (host, port, flow, scope)
        self._rtp, self._rtcp = _bind_pair(host, self._family, port_range, rng)
        self.port: int = self._rtp.getsockname()[1]
        self.send_errors = 0
        for sock in (self._rtp, self._rtcp):
            with contextlib.suppress(OSError):  # not Linux: arrival is the time of the drain
                sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)

    def drain(self, on_rtp: TimedReceiver, on_rtcp: TimedReceiver | None, now: float) -> None:
        """Hand every waiting datagram to its receiver with its arrival time on the monotonic
        clock of ``now``; RTCP only when ``on_rtcp`` is given."""
        # Realtime minus monotonic, to convert the kernel stamps: both read at one instant. The
        # tick's ``now`` may be stale by then (a starved CPU, the lock, the GIL), and an offset
        # from it would date every datagram that much too early.
        wall, mono = time.time(), time.monotonic()
        now, offset = max(now, mono), wall - mono
        _drain(self._rtp, on_rtp, now, offset, self._v6)
        if on_rtcp is not None:
            _drain(self._rtcp, on_rtcp, now, offset, self._v6)

    def send_rtp(self, data: bytes, destination: Address) -> None:
        try:  # the per-frame path: one call, no helper in between
            self._rtp.sendto(data, destination)
        except OSError as exc:
            self._send_failed(destination, exc)

    def send_rtcp(self, data: bytes, destination: Address) -> None:
        try:
            self._rtcp.sendto(data, destination)
        except OSError as exc:
            self._send_failed(destination, exc)

    def _send_failed(self, destination: Address, exc: OSError) -> None:
        """A full buffer, an unreachable peer: media is best effort. Counted; the first logged."""
        self.send_errors += 1
        if self.send_errors == 1:
            logger.warning("x RTP to %s:%d: %s", destination[0], destination[1], exc)

    def close(self) -> None:
        """Close both sockets (idempotent)."""
        self._rtp.close()
        self._rtcp.close()


def _drain(
    sock: socket.socket, receiver: TimedReceiver, now: float, offset: float, v6: bool
) -> None:
    # Once per tick: names bound to locals, and the source passed on as the socket gave it (an
    # IPv4 socket gives exactly (host, port)). The kernel's realtime stamp goes onto the
    # monotonic clock of ``now`` by ``offset``; the realtime clock can step between the arrival
    # and the drain, and a stamp that lands after ``now`` or more than MAX_STAMP_AGE before it
    # is such a step: the drain's time stands in. A datagram without a stamp (one that came
    # before the kernel turned receive stamps on) gets the drain's time too.
    recvmsg = sock.recvmsg
    unpack = _TIMESPEC.unpack_from
    oldest = now - MAX_STAMP_AGE
    for _ in range(MAX_DRAIN):
        try:
            data, ancillary, _flags, source = recvmsg(MAX_DATAGRAM, _ANCILLARY_SPACE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:  # ICMP port unreachable reported on a UDP socket: nothing to do
            continue
        arrival = now
        if ancillary:
            seconds, nanoseconds = unpack(ancillary[0][2])
            stamp = seconds + nanoseconds * 1e-9 - offset
            if oldest <= stamp <= now:
                arrival = stamp
        receiver(data, (source[0], source[1]) if v6 else source, arrival)


def _bind_pair(
    host: str, family: int, port_range: tuple[int, int], rng: random.Random
) -> tuple[socket.socket, socket.socket]:
    low, high = port_range
    first_even = low + (low % 2)
    evens = list(range(first_even, high, 2))  # high excluded: port+1 must be in range too
    candidates = rng.sample(evens, min(BIND_ATTEMPTS, len(evens)))
    if len(evens) > BIND_ATTEMPTS:
        candidates += evens  # a crowded range: then try them all in order
    bind_host = host
    with contextlib.suppress(ValueError):
        if ipaddress.ip_address(host).is_unspecified:
            bind_host = "::" if family == socket.AF_INET6 else "0.0.0.0"
    for port in candidates:
        rtp = _try_bind(bind_host, family, port)
        if rtp is None:
            continue
        rtcp = _try_bind(bind_host, family, port + 1)
        if rtcp is None:
            rtp.close()
            continue
        return rtp, rtcp
    raise PortRangeError(f"no free RTP port pair in {low}-{high} on {host}")


def _try_bind(host: str, family: int, port: int) -> socket.socket | None:
    sock = socket.socket(family, socket.SOCK_DGRAM)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        return None
    sock.setblocking(False)
    return sock
