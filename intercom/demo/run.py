"""``intercom demo``: a whole doorbell call on loopback, with nothing configured.

Three parties run in this process on 127.0.0.1: a PBX (:mod:`intercom.demo.pbx`: a digest
registrar and record-routing proxy), a simulated phone (:mod:`intercom.demo.phone`) registered
there as ``phone``, and the real daemon (:class:`~intercom.runtime.daemon.Intercom`, mock GPIO,
a 500 Hz tone as its microphone) registered as ``door`` with ``INTERCOM_CALL_TARGET=phone``.
The demo presses the button on the mock pin; the INVITE goes through the PBX, the phone rings
for a moment and answers, audio flows both ways directly between door and phone, the phone keys
the door code and the relay pulses, then the door hangs up as ``intercom hangup`` would and
shuts down (un-REGISTER). Every SIP message the PBX relays is drawn as a ladder, and the call's
figures are printed from both ends.
"""

from __future__ import annotations

import asyncio
import logging
import random
import tempfile
from dataclasses import dataclass, field
from typing import Any

from intercom.app.settings import load_settings
from intercom.media.stream import StreamStats
from intercom.runtime.daemon import Intercom
from intercom.runtime.hardware import open_hardware
from intercom.sip.core import Address
from intercom.sip.events import CallAnswered, CallEnded, RegistrationSucceeded
from intercom.sip.message import Message

from .ladder import Ladder, label_of
from .pbx import DemoPbx, Trace
from .phone import DemoPhone

HOST = "127.0.0.1"
DOOR_CODE = "2468"
RING_SECONDS = 1.0
TALK_SECONDS = 3.0
ACCOUNTS = {"door": "door-demo-password", "phone": "phone-demo-password"}
STEP_TIMEOUT = 10.0


@dataclass
class Outcome:
    """What the demo saw, for the summary."""

    hops: list[tuple[int, int, str]] = field(default_factory=list)  # source, destination port
    media_from: int | None = None  # the hop after which the call's audio flowed
    ports: dict[int, str] = field(default_factory=dict)  # port -> party
    registration: dict[str, Any] = field(default_factory=dict)
    status: dict[str, Any] = field(default_factory=dict)
    phone_stats: StreamStats | None = None
    opened: int = 0

    def trace(self, source: Address, destination: Address, message: Message) -> None:
        self.hops.append((source.port, destination.port, label_of(message)))

    def ladder(self) -> Ladder:
        ladder = Ladder(("door", "pbx", "phone"))
        codec = self.status.get("last_call", {}).get("codec")
        for index, (source, destination, label) in enumerate(self.hops):
            if index == self.media_from:
                ladder.media(f"RTP both ways, door <-> phone ({codec})")
            ladder.add(self.ports[source], self.ports[destination], label)
        return ladder


class _PbxSocket(asyncio.DatagramProtocol):
    """The PBX's UDP socket: each datagram goes through the sans-IO core, its output is sent."""

    def __init__(self) -> None:
        self.transport: asyncio.DatagramTransport | None = None
        self.pbx: DemoPbx | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        if self.pbx is None or self.transport is None:
            return
        for message, destination in self.pbx.receive(data, Address("udp", addr[0], addr[1])):
            self.transport.sendto(message.encode(), (destination.host, destination.port))


async def open_pbx(
    accounts: dict[str, str], trace: Trace | None = None
) -> tuple[DemoPbx, asyncio.BaseTransport]:
    """A demo PBX on a free UDP port of 127.0.0.1; close the transport to stop it."""
    loop = asyncio.get_running_loop()
    transport, pbx_socket = await loop.create_datagram_endpoint(_PbxSocket, local_addr=(HOST, 0))
    port = transport.get_extra_info("sockname")[1]
    pbx_socket.pbx = DemoPbx(Address("udp", HOST, port), accounts, random.Random(4), trace=trace)
    return pbx_socket.pbx, transport


async def _demo(socket_dir: str) -> Outcome:
    outcome = Outcome()
    loop = asyncio.get_running_loop()
    pbx, transport = await open_pbx(ACCOUNTS, outcome.trace)
    pbx_port = pbx.address.port
    server = f"{HOST}:{pbx_port}"
    phone = DemoPhone(
        host=HOST,
        server=server,
        user="phone",
        password=ACCOUNTS["phone"],
        ring_seconds=RING_SECONDS,
        port_range=(40000, 40999),
    )
    env = {
        "INTERCOM_SIP_SERVER": server,
        "INTERCOM_SIP_USER": "door",
        "INTERCOM_SIP_PASSWORD": ACCOUNTS["door"],
        "INTERCOM_SIP_BIND": f"{HOST}:0",
        "INTERCOM_CALL_TARGET": "phone",
        "INTERCOM_GPIO": "mock",
        "INTERCOM_DOOR_RELAY_PIN": "22",
        "INTERCOM_LED_PIN": "27",
        "INTERCOM_DOOR_CODE": DOOR_CODE,
        "INTERCOM_DOOR_PULSE": "1",
        "INTERCOM_AUDIO_INPUT": "tone:500",
        "INTERCOM_AUDIO_OUTPUT": "null",
        "INTERCOM_RTP_PORTS": "41000-41999",
        "INTERCOM_CONTROL_SOCKET": f"{socket_dir}/control.sock",
        "INTERCOM_STATE_DIR": str(socket_dir),
    }
    settings = load_settings(env, None)
    hardware = open_hardware(settings, loop)
    door = Intercom(settings, hardware, rng=random.Random(1))
    outcome.ports[pbx_port] = "pbx"
    try:
        await phone.ua.start()
        outcome.ports[phone.ua.local_port] = "phone"
        print(f"- a demo PBX listens on {server}; the phone registers there as 'phone'")
        await phone.ua.wait_for(RegistrationSucceeded, STEP_TIMEOUT)
        print("- the intercom starts and registers as 'door', calling 'phone' on a press")
        await door.start()
        outcome.ports[door.ua.local_port] = "door"
        outcome.registration = door.status()["registration"]
        print("- the visitor presses the button (GPIO17 on the mock pin factory)")
        pin = hardware.pin_factory.pin(settings.button_pin)
        pin.drive_low()
        pin.drive_high()
        await door.ua.wait_for(CallAnswered, STEP_TIMEOUT)
        await asyncio.sleep(0.05)  # the ACK reaches the phone
        outcome.media_from = len(outcome.hops)
        print(f"- the phone answered; audio flows both ways for {TALK_SECONDS:.0f} s")
        await asyncio.sleep(1.0)
        assert phone.call_id is not None
        print(f"- the phone keys the door code {DOOR_CODE}#")
        phone.media.send_dtmf(phone.call_id, DOOR_CODE + "#")
        await asyncio.sleep(TALK_SECONDS - 1.0)
        outcome.opened = door.status()["door"]["opened_count"]
        print("- intercom hangup: the door ends the call with BYE, then shuts down")
        door._command("hangup")
        await door.ua.wait_for(CallEnded, STEP_TIMEOUT)
        await asyncio.sleep(0.1)
        outcome.status = door.status()
        outcome.phone_stats = phone.stats
        return outcome
    finally:
        await door.stop()
        await phone.stop()
        transport.close()


def run_demo() -> int:
    """Run the demo and print what happened; 0 when the call was answered and carried audio."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    with tempfile.TemporaryDirectory(prefix="intercom-demo-") as socket_dir:
        outcome = asyncio.run(_demo(socket_dir))
    print()
    print(outcome.ladder().draw())
    print()
    registration = outcome.registration
    print(f"door registration: {registration.get('state')} "
          f"(last SIP status {registration.get('last_status')})")  # fmt: skip
    last = outcome.status["last_call"]
    print(f"call: {last['outcome']}, codec {last['codec']}, {last['duration']:.1f} s")
    print(f"door side:  sent {last['packets_sent']}, received {last['packets_received']}, "
          f"lost {last['packets_lost']}, jitter {last['jitter_ms']} ms")  # fmt: skip
    phone_stats = outcome.phone_stats
    if phone_stats is not None:
        print(f"phone side: sent {phone_stats.packets_sent}, received "
              f"{phone_stats.packets_received}, lost {phone_stats.packets_lost}, "
              f"jitter {phone_stats.jitter_ms} ms")  # fmt: skip
    print(f"door opened {outcome.opened} time(s) by the code")
    ok = (
        registration.get("state") == "registered"
        and last["outcome"] == "answered"
        and (last["packets_received"] or 0) > 0
        and outcome.opened == 1
    )
    print("demo: ok" if ok else "demo: FAILED")
    return 0 if ok else 1
