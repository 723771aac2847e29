"""A packet capture on ``lo`` in the benchmark process: the wire as the kernel saw it.

Every time the benchmark reports (first REGISTER, INVITE, each RTP packet sent) is read here,
outside the process under test: an ``AF_PACKET`` socket bound to ``lo`` (root only) with a
classic BPF filter that keeps IPv4 UDP, and ``SO_TIMESTAMPNS`` so that each packet carries the
kernel's receive stamp (``CLOCK_REALTIME``, taken when the packet passed the interface), not
the time this thread got to it. On ``lo`` each packet passes twice, once leaving
(``PACKET_OUTGOING``) and once arriving (``PACKET_HOST``); only the first copy is kept: its
stamp is the sender's ``sendto``.

A thread reads the socket into a list of :class:`Packet` (ports, first bytes of the payload);
:meth:`Capture.packets` returns those captured so far. Marks taken with ``time.time()`` in
the benchmark compare with these stamps (same clock).
"""

from __future__ import annotations

import ctypes
import socket
import struct
import threading
from dataclasses import dataclass

ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4
SO_TIMESTAMPNS = 35  # also SCM_TIMESTAMPNS
SO_ATTACH_FILTER = 26
ETH_HEADER = 14
KEEP = 64  # payload bytes kept: enough for a SIP request line or an RTP header

# ldh [12]; jeq #0x800 (IPv4); ldb [23]; jeq #17 (UDP); ret #65535 / ret #0
_FILTER = (
    (0x28, 0, 0, 12),
    (0x15, 0, 3, 0x0800),
    (0x30, 0, 0, 23),
    (0x15, 0, 1, 17),
    (0x06, 0, 0, 0xFFFF),
    (0x06, 0, 0, 0),
)


@dataclass(frozen=True, slots=True)
class Packet:
    """One UDP datagram seen leaving on ``lo``."""

    at: float  #: kernel stamp, seconds (CLOCK_REALTIME)
    src: tuple[str, int]
    dst: tuple[str, int]
    head: bytes  #: the first KEEP bytes of the UDP payload


def _attach_udp_filter(sock: socket.socket) -> None:
    code = b"".join(struct.pack("HBBI", *ins) for ins in _FILTER)
    buffer = ctypes.create_string_buffer(code)
    program = struct.pack("HL", len(_FILTER), ctypes.addressof(buffer))
    sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, program)


def parse_frame(frame: bytes) -> tuple[tuple[str, int], tuple[str, int], bytes] | None:
    """Source, destination and payload head of an Ethernet-framed IPv4 UDP datagram."""
    if len(frame) < ETH_HEADER + 28 or frame[12:14] != b"\x08\x00":
        return None
    ip = ETH_HEADER
    ihl = (frame[ip] & 0x0F) * 4
    if frame[ip + 9] != 17:
        return None
    udp = ip + ihl
    sport, dport = struct.unpack_from("!HH", frame, udp)
    src = (socket.inet_ntoa(frame[ip + 12 : ip + 16]), sport)
    dst = (socket.inet_ntoa(frame[ip + 16 : ip + 20]), dport)
    return src, dst, frame[udp + 8 : udp + 8 + KEEP]


class Capture:
    """Captures UDP on ``lo`` in a thread from :meth:`start` to :meth:`stop`."""

    def __init__(self) -> None:
        self._sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
        self._sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        _attach_udp_filter(self._sock)
        self._sock.bind(("lo", 0))
        self._sock.settimeout(0.2)
        self._packets: list[Packet] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="capture", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(2.0)
        self._sock.close()

    def packets(self, since: float = 0.0) -> list[Packet]:
        """The packets captured so far with a stamp at or after ``since``."""
        with self._lock:
            return [p for p in self._packets if p.at >= since]

    def clear(self) -> None:
        with self._lock:
            self._packets.clear()

    def _run(self) -> None:
        space = socket.CMSG_SPACE(16)
        while not self._stop.is_set():
            try:
                frame, ancillary, _, address = self._sock.recvmsg(2048, space)
            except TimeoutError:
                continue
            except OSError:
                return
            if address[2] != PACKET_OUTGOING:
                continue
            parsed = parse_frame(frame)
            if parsed is None:
                continue
            at = 0.0
            for level, kind, data in ancillary:
                if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
                    seconds, nanoseconds = struct.unpack("ll", data[:16])
                    at = seconds + nanoseconds / 1e9
            with self._lock:
                self._packets.append(Packet(at, *parsed))


def first(packets: list[Packet], dst_port: int, prefix: bytes, since: float) -> Packet | None:
    """The first packet to ``dst_port`` at or after ``since`` whose payload starts with
    ``prefix`` (e.g. ``b"REGISTER "``)."""
    for packet in sorted(packets, key=lambda p: p.at):
        if packet.at >= since and packet.dst[1] == dst_port and packet.head.startswith(prefix):
            return packet
    return None


def rtp_times(
    packets: list[Packet], dst_port: int, start: float, end: float, payload_type: int = 0
) -> list[float]:
    """Stamps of the RTP packets with ``payload_type`` sent to ``dst_port`` in [start, end)."""
    return sorted(
        p.at
        for p in packets
        if p.dst[1] == dst_port
        and start <= p.at < end
        and len(p.head) >= 12
        and p.head[0] >> 6 == 2
        and p.head[1] & 0x7F == payload_type
    )
