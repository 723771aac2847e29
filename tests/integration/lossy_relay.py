"""A UDP relay on loopback that drops a share of the datagrams each way (tests only).

It stands between one client (the door) and one server (kamailio): what the client sends to
the relay's ``address`` goes on to the server from the relay's own upstream socket, and what the
server sends back there returns to the client. Each datagram is dropped with probability
``loss``, drawn from a seeded generator so a run is repeatable; the counts are kept.
"""

from __future__ import annotations

import asyncio
import random
from typing import cast

__all__ = ["LossyRelay"]

Address = tuple[str, int]


class _Side(asyncio.DatagramProtocol):
    def __init__(self, relay: LossyRelay, upstream: bool) -> None:
        self.relay = relay
        self.upstream = upstream
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: Address) -> None:
        self.relay.forward(data, addr, from_server=self.upstream)


class LossyRelay:
    """Relay between a client and ``server``; see the module docstring."""

    def __init__(self, server: Address, *, loss: float, seed: int = 1) -> None:
        self.server = server
        self.loss = loss
        self._rng = random.Random(seed)
        self._client: Address | None = None
        self._front: _Side | None = None
        self._back: _Side | None = None
        self.passed = {"to server": 0, "to client": 0}
        self.dropped = {"to server": 0, "to client": 0}

    @property
    def address(self) -> Address:
        assert self._front is not None and self._front.transport is not None
        host, port = self._front.transport.get_extra_info("sockname")[:2]
        return str(host), int(port)

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        _, self._front = await loop.create_datagram_endpoint(
            lambda: _Side(self, upstream=False), local_addr=("127.0.0.1", 0)
        )
        _, self._back = await loop.create_datagram_endpoint(
            lambda: _Side(self, upstream=True), local_addr=("127.0.0.1", 0)
        )

    def forward(self, data: bytes, source: Address, *, from_server: bool) -> None:
        if from_server:
            way, side, target = "to client", self._front, self._client
        else:
            self._client = source
            way, side, target = "to server", self._back, self.server
        if target is None or side is None or side.transport is None:
            return
        if self._rng.random() < self.loss:
            self.dropped[way] += 1
            return
        self.passed[way] += 1
        side.transport.sendto(data, target)

    def close(self) -> None:
        for side in (self._front, self._back):
            if side is not None and side.transport is not None:
                side.transport.close()

    async def __aenter__(self) -> LossyRelay:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()
