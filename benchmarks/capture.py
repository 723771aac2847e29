"""A packet capture on ``lo``: the wire as the kernel saw it, for the benchmarks and the tests.

Every time a benchmark reports (first REGISTER, INVITE, each RTP packet sent) is read here,
outside the process under test, and the tests that must show what a peer on the path would see
(no cleartext SIP on a TLS port, no cleartext audio in SRTP) read the same capture: an
``AF_PACKET`` socket bound to ``lo`` (root only, as CI runs) with a classic BPF filter that
keeps IPv4 UDP (and TCP when asked), and ``SO_TIMESTAMPNS`` so that each packet carries the
kernel's stamp (``CLOCK_REALTIME``, taken when the packet passed the interface), not the time
this thread got to it. On ``lo`` each packet passes twice, once leaving (``PACKET_OUTGOING``)
and once arriving (``PACKET_HOST``); only the first copy is kept: its stamp is the sender's
``sendto``.

A thread reads the socket into a list of :class:`Packet` (protocol, addresses, the payload or
its first bytes); :meth:`Capture.packets` returns those captured so far. Marks taken with
``time.time()`` compare with these stamps (same clock)::

    with Capture(ports={5061}, tcp=True, keep=None) as capture:
        ...
    tls_bytes = capture.payloads("tcp", 5061)
"""

from __future__ import annotations

import ctypes
import socket
import struct
import threading
from collections.abc import Collection
from dataclasses import dataclass

ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4
SO_TIMESTAMPNS = 35  # also SCM_TIMESTAMPNS
SO_ATTACH_FILTER = 26
ETH_HEADER = 14  # lo frames carry an all-zero Ethernet header
KEEP = 64  # payload bytes kept by default: enough for a SIP request line or an RTP header
PROTOCOLS = {socket.IPPROTO_UDP: "udp", socket.IPPROTO_TCP: "tcp"}


def _filter(tcp: bool) -> tuple[tuple[int, int, int, int], ...]:
    """ldh [12]; jeq #0x800 (IPv4); ldb [23]; jeq #17 (UDP) or #6 (TCP); ret #65535 / #0."""
    second = socket.IPPROTO_TCP if tcp else socket.IPPROTO_UDP
    return (
        (0x28, 0, 0, 12),
        (0x15, 0, 4, 0x0800),
        (0x30, 0, 0, 23),
        (0x15, 1, 0, socket.IPPROTO_UDP),
        (0x15, 0, 1, second),
        (0x06, 0, 0, 0xFFFF),
        (0x06, 0, 0, 0),
    )


@dataclass(frozen=True, slots=True)
class Packet:
    """One UDP datagram or TCP segment seen leaving on ``lo``."""

    at: float  #: kernel stamp, seconds (CLOCK_REALTIME)
    protocol: str  #: "udp" or "tcp"
    src: tuple[str, int]
    dst: tuple[str, int]
    head: bytes  #: the payload, or its first ``keep`` bytes


def _attach(sock: socket.socket, program: tuple[tuple[int, int, int, int], ...]) -> None:
    code = b"".join(struct.pack("HBBI", *ins) for ins in program)
    buffer = ctypes.create_string_buffer(code)
    fprog = struct.pack("HL", len(program), ctypes.addressof(buffer))
    sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, fprog)


def parse_frame(
    frame: bytes, keep: int | None = KEEP
) -> tuple[str, tuple[str, int], tuple[str, int], bytes] | None:
    """Protocol, source, destination and payload (or its first ``keep`` bytes) of an
    Ethernet-framed IPv4 UDP datagram or TCP segment; None for anything else."""
    if len(frame) < ETH_HEADER + 28 or frame[12:14] != b"\x08\x00":
        return None
    ip = ETH_HEADER
    protocol = PROTOCOLS.get(frame[ip + 9])
    if protocol is None:
        return None
    end = ip + struct.unpack_from("!H", frame, ip + 2)[0]
    segment = ip + (frame[ip] & 0x0F) * 4
    if protocol == "udp":
        payload = segment + 8
    elif end - segment >= 20:
        payload = segment + (frame[segment + 12] >> 4) * 4
    else:
        return None
    sport, dport = struct.unpack_from("!HH", frame, segment)
    src = (socket.inet_ntoa(frame[ip + 12 : ip + 16]), sport)
    dst = (socket.inet_ntoa(frame[ip + 16 : ip + 20]), dport)
    stop = end if keep is None else min(end, payload + keep)
    return protocol, src, dst, frame[payload:stop]


class Capture:
    """Captures UDP (and TCP with ``tcp=True``) on ``lo`` in a thread, from :meth:`start` (or
    entering the ``with``) to :meth:`stop`; only packets from or to ``ports`` when given."""

    def __init__(
        self, *, ports: Collection[int] | None = None, tcp: bool = False, keep: int | None = KEEP
    ) -> None:
        try:
            self._sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        except PermissionError as exc:
            raise PermissionError("capturing on lo needs root (CAP_NET_RAW)") from exc
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
        self._sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        _attach(self._sock, _filter(tcp))
        self._sock.bind(("lo", 0))
        self._sock.settimeout(0.2)
        self._ports = None if ports is None else frozenset(ports)
        self._keep = keep
        self._packets: list[Packet] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="capture", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(2.0)
        self._sock.close()

    def __enter__(self) -> Capture:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def packets(self, since: float = 0.0) -> list[Packet]:
        """The packets captured so far with a stamp at or after ``since``."""
        with self._lock:
            return [p for p in self._packets if p.at >= since]

    def payloads(self, protocol: str, port: int) -> list[bytes]:
        """Non-empty payloads of ``protocol`` from or to ``port``."""
        return [
            p.head
            for p in self.packets()
            if p.protocol == protocol and port in (p.src[1], p.dst[1]) and p.head
        ]

    def clear(self) -> None:
        with self._lock:
            self._packets.clear()

    def _run(self) -> None:
        space = socket.CMSG_SPACE(16)
        while not self._stop.is_set():
            try:
                frame, ancillary, _, address = self._sock.recvmsg(65535, space)
            except TimeoutError:
                continue
            except OSError:
                return
            if address[2] != PACKET_OUTGOING:
                continue
            parsed = parse_frame(frame, self._keep)
            if parsed is None:
                continue
            protocol, src, dst, head = parsed
            if self._ports is not None and src[1] not in self._ports and dst[1] not in self._ports:
                continue
            at = 0.0
            for level, kind, data in ancillary:
                if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
                    seconds, nanoseconds = struct.unpack("ll", data[:16])
                    at = seconds + nanoseconds / 1e9
            with self._lock:
                self._packets.append(Packet(at, protocol, src, dst, head))


def first(packets: list[Packet], dst_port: int, prefix: bytes, since: float) -> Packet | None:
    """The first packet to ``dst_port`` at or after ``since`` whose payload starts with
    ``prefix`` (e.g. ``b"REGISTER "``)."""
    for packet in sorted(packets, key=lambda p: p.at):
        if packet.at >= since and packet.dst[1] == dst_port and packet.head.startswith(prefix):
            return packet
    return None


def _is_rtp(packet: Packet) -> bool:
    """RTP version 2, and not RTCP (packet types 200-204 read as payload types 72-76)."""
    head = packet.head
    return (
        packet.protocol == "udp"
        and len(head) >= 12
        and head[0] >> 6 == 2
        and not 72 <= head[1] & 0x7F <= 76
    )


def rtp_times(
    packets: list[Packet], dst_port: int, start: float, end: float, payload_type: int = 0
) -> list[float]:
    """Stamps of the RTP packets with ``payload_type`` sent to ``dst_port`` in [start, end)."""
    return sorted(
        p.at
        for p in packets
        if p.dst[1] == dst_port
        and start <= p.at < end
        and _is_rtp(p)
        and p.head[1] & 0x7F == payload_type
    )


def rtp_numbers(packets: list[Packet], sources: range, to: range) -> list[tuple[float, int, int]]:
    """(stamp, sequence number, timestamp) of every RTP packet from an even port in
    ``sources`` (RTCP goes from the odd one) to a port in ``to``, in capture order."""
    return [
        (p.at, int.from_bytes(p.head[2:4], "big"), int.from_bytes(p.head[4:8], "big"))
        for p in packets
        if p.src[1] in sources and not p.src[1] % 2 and p.dst[1] in to and _is_rtp(p)
    ]
