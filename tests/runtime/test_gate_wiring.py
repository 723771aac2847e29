"""The runtime hands the application's trust to the SIP gate, and keeps it current.

The user agent reports every address the server's name resolves to; the daemon trusts them
(and INTERCOM_TRUSTED_HOSTS) at the gate, so a stranger's INVITE gets a stateless 403 on the
wire before the doorbell hears of it, while a trusted host's INVITE still reaches the doorbell.
"""

from __future__ import annotations

import asyncio
import logging
import random
import socket
from pathlib import Path
from typing import Any, cast

import pytest

from intercom.app.settings import load_settings
from intercom.runtime.daemon import Intercom
from intercom.runtime.hardware import open_hardware
from intercom.runtime.systemd import SystemdNotifier
from intercom.runtime.transport import UDP_RECEIVE_BUFFER, SipTransport
from intercom.runtime.ua import UaConfig, UserAgent
from intercom.sip.build import make_response
from intercom.sip.locate import HostPort, SrvRecord
from intercom.sip.message import Request, parse_message

pytestmark = pytest.mark.timeout(20)

SERVER = "127.0.0.9"


class TwoAddressDns:
    """pbx.test has two addresses and no SRV records."""

    async def srv(self, name: str) -> list[SrvRecord]:
        return []

    async def addresses(self, host: str) -> list[str]:
        return [SERVER, "127.0.0.10"] if host == "pbx.test" else []


def test_every_address_of_the_server_is_reported_when_it_is_resolved() -> None:
    reported: list[list[str]] = []

    async def main() -> None:
        ua = UserAgent(
            UaConfig(bind=HostPort("127.0.0.1", 0), server=HostPort("pbx.test", 5999), user="door"),
            dns=TwoAddressDns(),
            on_server_addresses=reported.append,
        )
        await ua.start()
        await ua.stop(timeout=0.1)

    asyncio.run(main())
    assert reported == [[SERVER, "127.0.0.10"]]


def test_the_outbound_proxy_is_reported_with_the_server() -> None:
    """The proxy's INVITEs are trusted and its P-Asserted-Identity believed, as the server's."""
    reported: list[list[str]] = []

    async def main() -> None:
        ua = UserAgent(
            UaConfig(
                bind=HostPort("127.0.0.1", 0),
                server=HostPort("pbx.test", 5999),
                user="door",
                outbound_proxy=HostPort("127.0.0.11", 5998),
            ),
            dns=TwoAddressDns(),
            on_server_addresses=reported.append,
        )
        await ua.start()
        await ua.stop(timeout=0.1)

    asyncio.run(main())
    assert reported[-1] == [SERVER, "127.0.0.10", "127.0.0.11"]


def invite(port: int, host: str, n: int) -> bytes:
    return (
        f"INVITE sip:door@127.0.0.1 SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP {host}:{port};branch=z9hG4bKw{n};rport\r\n"
        f"From: <sip:mallory@{host}>;tag=w{n}\r\nTo: <sip:door@127.0.0.1>\r\n"
        f"Call-ID: wiring-{n}\r\nCSeq: 1 INVITE\r\nMax-Forwards: 70\r\n"
        f"Contact: <sip:mallory@{host}:{port}>\r\nContent-Length: 0\r\n\r\n"
    ).encode()


async def ask(host: str, door_port: int, n: int) -> bytes:
    """An INVITE from ``host``; the first answer that is not a 100."""
    loop = asyncio.get_running_loop()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.setblocking(False)
        sock.bind((host, 0))
        await loop.sock_sendto(
            sock, invite(sock.getsockname()[1], host, n), ("127.0.0.1", door_port)
        )
        while True:
            answer = await asyncio.wait_for(loop.sock_recv(sock, 65535), 5)
            if not answer.startswith(b"SIP/2.0 100 "):
                return answer


class Registrar(asyncio.DatagramProtocol):
    """Answers every REGISTER 200 with its Contact, as a registrar that knows the door."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        request = parse_message(data)
        if isinstance(request, Request) and request.method == "REGISTER":
            response = make_response(request, 200, to_tag="reg")
            response.headers.add("Contact", f"{request.headers.get('Contact')};expires=600")
            self.transport.sendto(response.encode(), addr)


def test_the_daemon_refuses_strangers_at_the_gate_and_lets_its_server_through(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)

    async def main() -> tuple[bytes, bytes, int, int, list[str]]:
        loop = asyncio.get_running_loop()
        registrar, _ = await loop.create_datagram_endpoint(Registrar, local_addr=(SERVER, 0))
        env = {
            "INTERCOM_SIP_SERVER": f"{SERVER}:{registrar.get_extra_info('sockname')[1]}",
            "INTERCOM_SIP_USER": "door",
            "INTERCOM_SIP_BIND": "127.0.0.1:0",
            "INTERCOM_GPIO": "mock",
            "INTERCOM_AUDIO_INPUT": "null",
            "INTERCOM_AUDIO_OUTPUT": "null",
            "INTERCOM_CONTROL_SOCKET": str(tmp_path / "control.sock"),
            "INTERCOM_ALLOWED_CALLERS": "alice",
        }
        config = load_settings(env, None)
        hardware = open_hardware(config, loop)
        door = Intercom(config, hardware, rng=random.Random(3), notifier=SystemdNotifier({}))
        await door.start()
        try:
            assert door.status()["registration"]["state"] == "registered"
            policy = door.doorbell.policy
            trusted = [host for host in (SERVER, "127.0.0.1") if policy.is_server(host)]
            endpoint = door.ua.endpoint
            stranger = await ask("127.0.0.1", door.ua.local_port, 1)
            held_after_stranger = endpoint.held().server_transactions
            server = await ask(SERVER, door.ua.local_port, 2)
            held = endpoint.held().server_transactions
            return stranger, server, held_after_stranger, held, trusted
        finally:
            await door.stop()
            registrar.close()

    stranger, server, held_after_stranger, held_after_server, trusted = asyncio.run(main())
    assert trusted == [SERVER]  # resolved, and handed to the policy
    assert stranger.startswith(b"SIP/2.0 403 ") and server.startswith(b"SIP/2.0 403 ")
    assert held_after_stranger == 0  # stateless: nothing held for the stranger
    assert held_after_server == 1  # the server's INVITE has its transaction...
    assert "caller not allowed" in caplog.text  # ...and the doorbell judged its caller
    assert "INVITE from 127.0.0.1 refused with 403: untrusted source 127.0.0.1" in caplog.text
    assert f"untrusted source {SERVER}" not in caplog.text


def test_the_sip_udp_socket_has_room_for_a_burst() -> None:
    async def main() -> int:
        transport = SipTransport(lambda data, source: None)
        await transport.start("127.0.0.1", 0)
        try:
            assert transport._udp is not None
            sock = transport._udp.get_extra_info("socket")
            return int(sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF))
        finally:
            await transport.close()

    ceiling = int(Path("/proc/sys/net/core/rmem_max").read_text())
    default = int(Path("/proc/sys/net/core/rmem_default").read_text())
    wanted = min(UDP_RECEIVE_BUFFER, ceiling)
    assert asyncio.run(main()) >= max(wanted, default)  # Linux reports twice what it grants


class LateDns(TwoAddressDns):
    """pbx.test does not resolve at the first question, then does."""

    def __init__(self) -> None:
        self.asked = 0

    async def addresses(self, host: str) -> list[str]:
        self.asked += 1
        return [] if self.asked == 1 else await super().addresses(host)


def test_a_server_that_did_not_resolve_at_boot_is_reported_once_the_register_resolves_it() -> None:
    reported: list[list[str]] = []

    async def main() -> None:
        ua = UserAgent(
            UaConfig(bind=HostPort("127.0.0.1", 0), server=HostPort("pbx.test", 5999), user="door"),
            dns=LateDns(),
            on_server_addresses=reported.append,
        )
        await ua.start()  # the lookup fails: the REGISTER waits for the name, asks again
        for _ in range(100):
            if reported:
                break
            await asyncio.sleep(0.01)
        await ua.stop(timeout=0.1)

    asyncio.run(main())
    assert reported[0] == [SERVER, "127.0.0.10"]
