"""What crosses ``lo``, read with an AF_PACKET socket (root, as CI runs): every IPv4 TCP or UDP
payload to or from a set of ports, with its protocol and ports, for tests that must show what a
peer on the path would see (no cleartext SIP on a TLS port).

    with LoopbackCapture({5061}) as capture:
        ...
    tls_bytes = capture.payloads("tcp", 5061)
"""

from __future__ import annotations

import socket
import struct
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field

import pytest

__all__ = ["LoopbackCapture", "Packet"]

ETH_P_ALL = 0x0003
_ETHERNET = 14  # lo frames carry an all-zero Ethernet header


@dataclass(frozen=True)
class Packet:
    protocol: str  # "tcp" or "udp"
    source_port: int
    destination_port: int
    payload: bytes


@dataclass
class LoopbackCapture:
    ports: set[int]
    packets: list[Packet] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _socket: socket.socket | None = None

    def __enter__(self) -> LoopbackCapture:
        try:
            sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        except PermissionError:
            pytest.fail("capturing on lo needs root (CAP_NET_RAW), as CI runs the tests")
        sock.bind(("lo", 0))
        sock.settimeout(0.1)
        self._socket = sock
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(2.0)
        if self._socket is not None:
            self._socket.close()

    def payloads(self, protocol: str, port: int) -> list[bytes]:
        """Non-empty payloads of ``protocol`` from or to ``port``."""
        return [p.payload for p in self._matching(protocol, [port]) if p.payload]

    def _matching(self, protocol: str, ports: Iterable[int]) -> list[Packet]:
        wanted = set(ports)
        return [
            p
            for p in list(self.packets)
            if p.protocol == protocol and {p.source_port, p.destination_port} & wanted
        ]

    def _run(self) -> None:
        assert self._socket is not None
        while not self._stop.is_set():
            try:
                frame, info = self._socket.recvfrom(65535)
            except TimeoutError:
                continue
            except OSError:
                return
            if info[2] == socket.PACKET_OUTGOING:
                continue  # lo shows each packet twice: keep the incoming copy
            packet = _parse(frame)
            if packet is not None and {packet.source_port, packet.destination_port} & self.ports:
                self.packets.append(packet)


def _parse(frame: bytes) -> Packet | None:
    ip = frame[_ETHERNET:]
    if len(ip) < 20 or ip[0] >> 4 != 4:
        return None
    header = (ip[0] & 0x0F) * 4
    total = struct.unpack("!H", ip[2:4])[0]
    protocol = ip[9]
    segment = ip[header:total]
    if protocol == socket.IPPROTO_UDP and len(segment) >= 8:
        source, destination = struct.unpack("!HH", segment[:4])
        return Packet("udp", source, destination, segment[8:])
    if protocol == socket.IPPROTO_TCP and len(segment) >= 20:
        source, destination = struct.unpack("!HH", segment[:4])
        offset = (segment[12] >> 4) * 4
        return Packet("tcp", source, destination, segment[offset:])
    return None
