"""The runtime user agent re-registers at once when the Pi's own address changes."""

from __future__ import annotations

import asyncio

import pytest

from intercom.runtime import ua as ua_module
from intercom.runtime.ua import UaConfig, UserAgent
from intercom.sip.events import RegistrationSucceeded
from intercom.sip.locate import HostPort
from intercom.sip.message import Request, parse_message


class Registrar(asyncio.DatagramProtocol):
    """Answers every REGISTER 200 (Expires 600) and keeps its Contact headers."""

    def __init__(self) -> None:
        self.contacts: list[str] = []
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        request = parse_message(data)
        if not isinstance(request, Request) or request.method != "REGISTER":
            return
        self.contacts.append(request.headers.get("Contact") or "")
        head = ["SIP/2.0 200 OK", *(f"Via: {v}" for v in request.headers.get_all("Via"))]
        head += [f"{name}: {request.headers.get(name)}" for name in ("From", "To", "Call-ID")]
        head += [f"CSeq: {request.headers.get('CSeq')}", "Expires: 600", "Content-Length: 0"]
        assert self.transport is not None
        self.transport.sendto(("\r\n".join(head) + "\r\n\r\n").encode(), addr)


def test_a_new_local_address_is_registered_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    address = ["127.0.0.1"]
    monkeypatch.setattr(ua_module, "_local_address_towards", lambda bind, peer: address[0])

    async def main() -> list[str]:
        loop = asyncio.get_running_loop()
        registrar = Registrar()
        transport, _ = await loop.create_datagram_endpoint(
            lambda: registrar, local_addr=("127.0.0.1", 0)
        )
        port = transport.get_extra_info("sockname")[1]
        door = UserAgent(
            UaConfig(bind=HostPort("127.0.0.1", 0), server=HostPort("127.0.0.1", port),
                     user="door", keepalive_interval=None, instance_id="urn:uuid:1")
        )  # fmt: skip
        await door.start()
        try:
            await door.wait_for(RegistrationSucceeded, 5)
            address[0] = "127.0.0.2"  # DHCP, roaming: seen after the next registration outcome
            door.endpoint.registration.refresh_now(loop.time())  # type: ignore[union-attr]
            door._transmit()
            await door.wait_for(RegistrationSucceeded, 5)
            await door.wait_for(RegistrationSucceeded, 5)  # the moved binding
        finally:
            await door.stop()
            transport.close()
        return registrar.contacts

    contacts = asyncio.run(main())
    port = contacts[0].split(":")[2].split(">")[0]
    assert contacts[2] == (
        f'<sip:door@127.0.0.2:{port}>;+sip.instance="<urn:uuid:1>";reg-id=1, '
        f"<sip:door@127.0.0.1:{port}>;expires=0"
    )
