"""A door registered over TCP keeps its connection open with RFC 5626 CRLF keepalives, past the
idle timeout, and registers again over a new connection as soon as the registrar closes it."""

from __future__ import annotations

import asyncio

from intercom.runtime.ua import UaConfig, UserAgent
from intercom.sip.events import RegistrationSucceeded
from intercom.sip.locate import HostPort

TIMEOUT = 5.0


class FakeRegistrar:
    """A TCP registrar on loopback: answers every REGISTER with 200 and pongs every ping."""

    def __init__(self) -> None:
        self.connections: asyncio.Queue[asyncio.StreamWriter] = asyncio.Queue()
        self.pings = 0
        self.server: asyncio.Server | None = None

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return int(self.server.sockets[0].getsockname()[1])

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections.put_nowait(writer)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                if head == b"\r\n\r\n":
                    self.pings += 1
                    writer.write(b"\r\n")
                    continue
                names = ("Via", "From", "To", "Call-ID", "CSeq")
                copied = [h for h in head.decode().split("\r\n") if h.split(":")[0] in names]
                ok = ["SIP/2.0 200 OK", *copied, "Expires: 600", "Content-Length: 0", "", ""]
                writer.write("\r\n".join(ok).encode())
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()


def test_tcp_registration_flow_is_kept_alive_and_replaced_when_it_breaks() -> None:
    async def main() -> None:
        registrar = FakeRegistrar()
        port = await registrar.start()
        door = UserAgent(
            UaConfig(bind=HostPort("127.0.0.1", 0), server=HostPort("127.0.0.1", port),
                     transport="tcp", user="door", keepalive_interval=0.2, idle_timeout=0.3)
        )  # fmt: skip
        await door.start()
        try:
            await door.wait_for(RegistrationSucceeded, TIMEOUT)
            first = await asyncio.wait_for(registrar.connections.get(), TIMEOUT)
            await asyncio.sleep(1.0)  # past the idle timeout, pinged all along
            assert registrar.pings >= 3 and not first.is_closing()
            assert registrar.connections.empty()
            first.close()  # the registrar restarts
            await asyncio.wait_for(registrar.connections.get(), 1.0)  # a new flow at once
            await door.wait_for(RegistrationSucceeded, 1.0)
        finally:
            await door.stop()
            assert registrar.server is not None
            registrar.server.close()

    asyncio.run(main())
