"""RtpSockets on loopback: port range, even/odd pairs, kernel arrival times, best-effort sends."""

from __future__ import annotations

import logging
import random
import socket
import struct
import time
import warnings
from collections.abc import Iterator

import pytest

from intercom.runtime.rtp_socket import (
    MAX_DRAIN,
    MAX_STAMP_AGE,
    Address,
    PortRangeError,
    RtpSockets,
    _drain,
)

pytestmark = pytest.mark.timeout(10)

HOST = "127.0.0.1"


# -- binding --------------------------------------------------------------------------------------


def _free_block(size: int) -> tuple[int, int]:
    """An even-based block of ``size`` free loopback UDP ports below the ephemeral range."""
    rng = random.Random()
    for _ in range(200):
        low = rng.randrange(20000, 32000, 2)
        held: list[socket.socket] = []
        try:
            for port in range(low, low + size):
                sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                held.append(sock)
                sock.bind((HOST, port))
        except OSError:
            continue
        finally:
            for sock in held:
                sock.close()
        return low, low + size - 1
    raise RuntimeError("no free block of UDP ports on loopback")


def _bind(port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.bind((HOST, port))
    except OSError:
        sock.close()
        raise
    return sock


def _can_bind(port: int) -> bool:
    try:
        _bind(port).close()
    except OSError:
        return False
    return True


@pytest.fixture
def opened() -> Iterator[list[RtpSockets]]:
    """RtpSockets the test made: closed afterwards, whatever happened."""
    made: list[RtpSockets] = []
    yield made
    for sockets in made:
        sockets.close()


def test_binds_an_even_port_in_range_with_rtcp_on_the_next(opened: list[RtpSockets]) -> None:
    low, high = _free_block(20)
    sockets = RtpSockets(HOST, (low, high), random.Random(1))
    opened.append(sockets)
    assert sockets.port % 2 == 0
    assert low <= sockets.port and sockets.port + 1 <= high
    assert not _can_bind(sockets.port)
    assert not _can_bind(sockets.port + 1)  # RTCP holds port + 1


def test_a_tiny_range_serves_two_calls_then_refuses_naming_the_range(
    opened: list[RtpSockets],
) -> None:
    low, high = _free_block(4)
    rng = random.Random(2)
    first = RtpSockets(HOST, (low, high), rng)
    opened.append(first)
    second = RtpSockets(HOST, (low, high), rng)
    opened.append(second)
    assert {first.port, second.port} == {low, low + 2}
    with pytest.raises(PortRangeError) as caught:
        RtpSockets(HOST, (low, high), rng)
    assert f"{low}-{high}" in str(caught.value)
    first.close()
    third = RtpSockets(HOST, (low, high), rng)  # a closed call gives its pair back
    opened.append(third)
    assert third.port == first.port


def test_occupied_ports_are_skipped_and_a_half_bound_pair_is_released(
    opened: list[RtpSockets],
) -> None:
    low, high = _free_block(6)  # pairs low/low+1, low+2/low+3, low+4/low+5
    squatters = [_bind(low), _bind(low + 3)]  # an RTP port and an RTCP port taken by others
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ResourceWarning)
            for seed in range(5):  # whatever order the candidates are tried in
                sockets = RtpSockets(HOST, (low, high), random.Random(seed))
                assert sockets.port == low + 4
                with pytest.raises(PortRangeError):
                    RtpSockets(HOST, (low, high), random.Random(seed))
                sockets.close()
                # low + 2 was bound for RTP before low + 3 turned out busy: it is free again,
                # closed rather than left to the garbage collector.
                assert _can_bind(low + 2)
        assert [w for w in caught if issubclass(w.category, ResourceWarning)] == []
    finally:
        for sock in squatters:
            sock.close()


# -- receiving ------------------------------------------------------------------------------------


class Received:
    def __init__(self) -> None:
        self.items: list[tuple[bytes, Address, float]] = []

    def __call__(self, data: bytes, source: Address, arrival: float) -> None:
        self.items.append((data, source, arrival))


@pytest.fixture
def pair(opened: list[RtpSockets]) -> RtpSockets:
    sockets = RtpSockets(HOST, _free_block(10), random.Random(3))
    opened.append(sockets)
    return sockets


@pytest.fixture
def peer() -> Iterator[socket.socket]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((HOST, 0))
    yield sock
    sock.close()


def _drain_until(pair: RtpSockets, rtp: Received, rtcp: Received | None, count: int) -> float:
    """Drain until ``count`` datagrams arrived in all (loopback delivery is not instant)."""
    deadline = time.monotonic() + 2.0
    while True:
        now = time.monotonic()
        pair.drain(rtp, rtcp, now)
        total = len(rtp.items) + (len(rtcp.items) if rtcp is not None else 0)
        if total >= count or now > deadline:
            return now
        time.sleep(0.002)


def _realtime_offset() -> float:
    return time.time() - time.monotonic()


def test_drain_delivers_rtp_with_the_kernel_arrival_time(
    pair: RtpSockets, peer: socket.socket
) -> None:
    # The kernel stamps on the realtime clock, and an attempt is repeated when what it measured
    # is not comparable: the VM's clock stepped during it (seen once in CI), or the datagrams
    # arrived before the kernel turned receive stamps on (it does so in deferred work after the
    # first socket asks, and a datagram without one is stamped when it is read). The product
    # copes with both (the drain's time stands in); a socket that never gets stamps fails here.
    for _attempt in range(5):
        offset_before = _realtime_offset()
        sent_at = time.monotonic()
        peer.sendto(b"rtp-1", (HOST, pair.port))
        peer.sendto(b"rtp-2", (HOST, pair.port))
        time.sleep(0.06)  # the drain comes well after the arrival
        rtp = Received()
        now = _drain_until(pair, rtp, None, 2)
        stamped = all(arrival < now - 0.04 for _, _, arrival in rtp.items)
        if stamped and abs(_realtime_offset() - offset_before) < 0.005:
            break
    assert [data for data, _, _ in rtp.items] == [b"rtp-1", b"rtp-2"]
    assert all(source == peer.getsockname() for _, source, _ in rtp.items)
    for _, _, arrival in rtp.items:
        assert sent_at - 0.005 <= arrival <= now
        # The arrival is the kernel's stamp, not the time of the drain 60 ms later.
        assert arrival < now - 0.04
    assert rtp.items[0][2] <= rtp.items[1][2]


def test_a_stale_tick_time_does_not_date_arrivals_early(
    pair: RtpSockets, peer: socket.socket
) -> None:
    # The media thread reads its tick time, then may wait (a CPU quota's throttled period, the
    # GIL) before it drains: the stamps must still convert at the drain's own instant.
    for _attempt in range(5):
        offset_before = _realtime_offset()
        sent_at = time.monotonic()
        peer.sendto(b"rtp-1", (HOST, pair.port))
        time.sleep(0.01)
        rtp = Received()
        pair.drain(rtp, None, time.monotonic() - 0.1)  # the tick's time, 100 ms stale
        if rtp.items and abs(_realtime_offset() - offset_before) < 0.005:
            break
    assert [data for data, _, _ in rtp.items] == [b"rtp-1"]
    assert sent_at - 0.005 <= rtp.items[0][2] <= time.monotonic()


class StampedSocket:
    """Stands in for a socket in ``_drain``: datagrams with the kernel stamps given, then
    ``BlockingIOError`` as an empty non-blocking socket."""

    def __init__(self, stamps: list[float | None]) -> None:
        self.stamps = stamps

    def recvmsg(
        self, size: int, space: int
    ) -> tuple[bytes, list[tuple[int, int, bytes]], int, Address]:
        if not self.stamps:
            raise BlockingIOError
        stamp = self.stamps.pop(0)
        ancillary = []
        if stamp is not None:
            whole = int(stamp)
            packed = struct.pack("@ll", whole, round((stamp - whole) * 1e9))
            ancillary = [(socket.SOL_SOCKET, 35, packed)]  # SO_TIMESTAMPNS
        return b"rtp", ancillary, 0, (HOST, 4000)


def test_a_stamp_from_a_stepped_realtime_clock_gives_way_to_the_drain_time() -> None:
    offset = 1_000_000.0
    stamps: list[float | None] = [
        offset + 99.95,
        offset + 100.0 - MAX_STAMP_AGE,  # the oldest taken
        offset + 100.5,  # stepped back after the arrival: the stamp lies in the future
        offset + 100.0 - 3600,  # stepped forward: the stamp looks an hour old
        None,  # came before the kernel turned stamps on
    ]
    rtp = Received()
    _drain(StampedSocket(stamps), rtp, 100.0, offset, v6=False)  # type: ignore[arg-type]
    arrivals = [arrival for _, _, arrival in rtp.items]
    assert arrivals == [pytest.approx(99.95), pytest.approx(98.0), 100.0, 100.0, 100.0]


@pytest.mark.parametrize("step", [3600.0, -3600.0])
def test_the_drain_gives_its_own_time_when_the_realtime_clock_stepped(
    pair: RtpSockets, peer: socket.socket, monkeypatch: pytest.MonkeyPatch, step: float
) -> None:
    """A step of the realtime clock between arrival and drain makes every stamp an hour off:
    the drain gives its own time."""
    peer.sendto(b"rtp-1", (HOST, pair.port))
    time.sleep(0.02)
    realtime = time.time
    monkeypatch.setattr(time, "time", lambda: realtime() + step)
    rtp = Received()
    now = _drain_until(pair, rtp, None, 1)
    monkeypatch.undo()
    after = time.monotonic()
    [(data, _, arrival)] = rtp.items
    # The drain's own time (read at the drain, so at or after the tick's ``now``), not the
    # stamp, which came 20 ms before ``now``.
    assert data == b"rtp-1" and now <= arrival <= after


def test_an_ipv6_source_comes_as_host_and_port(opened: list[RtpSockets]) -> None:
    pair = RtpSockets("::1", _free_block(10), random.Random(4))
    opened.append(pair)
    with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as peer6:
        peer6.bind(("::1", 0))
        peer6.sendto(b"rtp-1", ("::1", pair.port))
        rtp = Received()
        _drain_until(pair, rtp, None, 1)
        assert [source for _, source, _ in rtp.items] == [("::1", peer6.getsockname()[1])]


def test_rtcp_is_drained_only_when_a_receiver_is_given(
    pair: RtpSockets, peer: socket.socket
) -> None:
    sent_at = time.monotonic()
    peer.sendto(b"rtcp-1", (HOST, pair.port + 1))
    peer.sendto(b"rtp-1", (HOST, pair.port))
    rtp = Received()
    _drain_until(pair, rtp, None, 1)
    time.sleep(0.01)
    pair.drain(rtp, None, time.monotonic())
    assert [data for data, _, _ in rtp.items] == [b"rtp-1"]  # RTCP waits in its socket
    rtcp = Received()
    now = _drain_until(pair, rtp, rtcp, 2)
    assert [data for data, _, _ in rtcp.items] == [b"rtcp-1"]
    assert len(rtp.items) == 1  # nothing delivered twice
    _, source, arrival = rtcp.items[0]
    assert source == peer.getsockname()
    assert sent_at - 0.005 <= arrival <= now


def test_a_flood_is_drained_in_bounded_portions(pair: RtpSockets, peer: socket.socket) -> None:
    total = MAX_DRAIN + 10
    for index in range(total):
        peer.sendto(index.to_bytes(2, "big"), (HOST, pair.port))
    time.sleep(0.05)
    rtp = Received()
    pair.drain(rtp, None, time.monotonic())
    assert len(rtp.items) == MAX_DRAIN
    _drain_until(pair, rtp, None, total)
    assert [int.from_bytes(data, "big") for data, _, _ in rtp.items] == list(range(total))


def test_drain_with_nothing_waiting_returns_at_once(pair: RtpSockets) -> None:
    rtp, rtcp = Received(), Received()
    started = time.monotonic()
    pair.drain(rtp, rtcp, started)
    assert time.monotonic() - started < 0.05
    assert rtp.items == [] and rtcp.items == []


# -- sending and closing --------------------------------------------------------------------------


def test_send_reaches_the_peer_from_the_rtp_and_rtcp_ports(
    pair: RtpSockets, peer: socket.socket
) -> None:
    destination = peer.getsockname()
    pair.send_rtp(b"to-peer-rtp", destination)
    pair.send_rtcp(b"to-peer-rtcp", destination)
    peer.settimeout(2.0)
    got = {peer.recvfrom(100) for _ in range(2)}
    assert got == {(b"to-peer-rtp", (HOST, pair.port)), (b"to-peer-rtcp", (HOST, pair.port + 1))}
    assert pair.send_errors == 0


def test_send_errors_are_counted_and_logged_once_not_raised(
    pair: RtpSockets, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="intercom.runtime.rtp_socket")
    pair.send_rtp(b"x", (HOST, 0))  # Linux: EINVAL for port 0
    pair.send_rtcp(b"x", ("0.0.0.0", 0))
    pair.send_rtp(b"x", ("::1", 9))  # an IPv6 destination on an IPv4 socket
    assert pair.send_errors == 3
    warnings = [r for r in caplog.records if r.name == "intercom.runtime.rtp_socket"]
    assert len(warnings) == 1
    assert warnings[0].getMessage().startswith("x RTP to 127.0.0.1:0:")


def test_close_is_idempotent_and_frees_both_ports(pair: RtpSockets) -> None:
    pair.close()
    pair.close()
    assert _can_bind(pair.port)
    assert _can_bind(pair.port + 1)
    pair.send_rtp(b"late", (HOST, 9))  # a send after close is counted, not raised
    assert pair.send_errors == 1
