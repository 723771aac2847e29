"""``intercom demo``: a whole doorbell call on loopback, with nothing configured.

The real daemon (:class:`~intercom.runtime.daemon.Intercom`, mock GPIO, a 500 Hz tone as its
microphone) and a simulated phone (our own user agent and media, a 1200 Hz tone as its voice)
run on 127.0.0.1. The demo presses the button on the mock pin, the phone rings for a moment and
answers, audio flows both ways, the phone keys the door code and the relay pulses, then the call
is hung up as ``intercom hangup`` would. Every SIP message is drawn as a ladder, and the call's
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
from intercom.sip.core import Address
from intercom.sip.events import CallAnswered, CallEnded, Event, IncomingCallReceived

from .daemon import Intercom
from .hardware import open_hardware
from .media_calls import MediaCalls, MediaConfig
from .ua import UaConfig, UserAgent

HOST = "127.0.0.1"
DOOR_CODE = "2468"
RING_SECONDS = 1.0
TALK_SECONDS = 3.0
WIDTH = 44


@dataclass
class Ladder:
    """SIP messages as sent on the wire, from the wire log (both parties are in this process)."""

    ports: dict[int, str] = field(default_factory=dict)  # port -> party name
    rows: list[tuple[str, str, str]] = field(default_factory=list)  # sender, receiver, line

    def handler(self) -> logging.Handler:
        ladder = self

        class Collect(logging.Handler):
            def emit(self, record: logging.LogRecord) -> None:
                direction, peer, text = record.args  # type: ignore[misc]
                if direction == ">" and isinstance(peer, Address):
                    ladder.add(peer.port, str(text).split("\n", 1)[0])

        return Collect(logging.DEBUG)

    def add(self, destination_port: int, first_line: str) -> None:
        receiver = self.ports.get(destination_port, "?")
        sender = next((name for name in self.ports.values() if name != receiver), "?")
        label = first_line.removeprefix("SIP/2.0 ").split(" sip:", 1)[0]
        self.rows.append((sender, receiver, label[: WIDTH - 6]))

    def draw(self) -> str:
        lines = [f"{'door':<{WIDTH + 1}}phone", f"|{'':{WIDTH}}|"]
        for sender, _, label in self.rows:
            if sender == "door":
                arrow = f" {label} ".center(WIDTH - 1, "-") + ">"
            else:
                arrow = "<" + f" {label} ".center(WIDTH - 1, "-")
            lines.append(f"|{arrow}|")
        return "\n".join(lines)


class DemoPhone:
    """A phone that rings for a moment, answers, and can key digits."""

    def __init__(self) -> None:
        self.media = MediaCalls(
            MediaConfig(
                address=HOST,
                bind_host=HOST,
                port_range=(40000, 40999),
                audio_input="tone:1200",
                audio_output="null",
            ),
            rng=random.Random(2),
        )
        self.ua = UserAgent(
            UaConfig(bind=f"{HOST}:0", user="phone"),
            answer_offer=self.media.answer_offer,
            on_event=self._on_event,
        )
        self.call_id: str | None = None
        self.stats: StreamStats | None = None

    def _on_event(self, event: Event) -> None:
        if isinstance(event, CallEnded):
            self.stats = self.media.close(event.call_id)
        self.media.handle(event)
        if isinstance(event, IncomingCallReceived):
            self.call_id = event.call_id
            self.ring_then_answer(event.call_id, event.sdp)

    def ring_then_answer(self, call_id: str, sdp: bytes | None) -> None:
        self.ua.ring(call_id)

        def answer() -> None:
            answer = self.media.answer_incoming(call_id, sdp)
            if answer is None:
                self.ua.reject(call_id, 488)
            else:
                self.ua.accept(call_id, answer)

        asyncio.get_running_loop().call_later(RING_SECONDS, answer)


async def _demo(socket_dir: str) -> tuple[Ladder, dict[str, Any], StreamStats | None, int]:
    ladder = Ladder()
    wire = logging.getLogger("intercom.sip.wire")
    wire.setLevel(logging.DEBUG)
    wire.propagate = False
    handler = ladder.handler()
    wire.addHandler(handler)
    phone = DemoPhone()
    await phone.ua.start()
    env = {
        "INTERCOM_SIP_BIND": f"{HOST}:0",
        "INTERCOM_CALL_TARGET": f"sip:phone@{HOST}:{phone.ua.local_port}",
        "INTERCOM_GPIO": "mock",
        "INTERCOM_DOOR_RELAY_PIN": "22",
        "INTERCOM_LED_PIN": "27",
        "INTERCOM_DOOR_CODE": DOOR_CODE,
        "INTERCOM_DOOR_PULSE": "1",
        "INTERCOM_AUDIO_INPUT": "tone:500",
        "INTERCOM_AUDIO_OUTPUT": "null",
        "INTERCOM_RTP_PORTS": "41000-41999",
        "INTERCOM_CONTROL_SOCKET": f"{socket_dir}/control.sock",
    }
    settings = load_settings(env, None)
    hardware = open_hardware(settings, asyncio.get_running_loop())
    door = Intercom(settings, hardware, rng=random.Random(1))
    try:
        await door.start()
        ladder.ports = {door.ua.local_port: "door", phone.ua.local_port: "phone"}
        print("- the visitor presses the button (GPIO17 on the mock pin factory)")
        pin = hardware.pin_factory.pin(settings.button_pin)
        pin.drive_low()
        pin.drive_high()
        await door.ua.wait_for(CallAnswered, 10)
        print(f"- the phone answered; audio flows both ways for {TALK_SECONDS:.0f} s")
        await asyncio.sleep(1.0)
        assert phone.call_id is not None
        print(f"- the phone keys the door code {DOOR_CODE}#")
        phone.media.send_dtmf(phone.call_id, DOOR_CODE + "#")
        await asyncio.sleep(TALK_SECONDS - 1.0)
        opened = door.status()["door"]["opened_count"]
        print("- intercom hangup: the door ends the call with BYE")
        door._command("hangup")
        await door.ua.wait_for(CallEnded, 5)
        await asyncio.sleep(0.1)
        return ladder, door.status(), phone.stats, opened
    finally:
        await door.stop()
        phone.media.close_all()
        await phone.ua.stop()
        wire.removeHandler(handler)


def run_demo() -> int:
    """Run the demo and print what happened; 0 when the call was answered and carried audio."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    with tempfile.TemporaryDirectory(prefix="intercom-demo-") as socket_dir:
        ladder, status, phone_stats, opened = asyncio.run(_demo(socket_dir))
    print()
    print(ladder.draw())
    print()
    last = status["last_call"]
    print(f"call: {last['outcome']}, codec {last['codec']}, {last['duration']:.1f} s")
    print(f"door side:  sent {last['packets_sent']}, received {last['packets_received']}, "
          f"lost {last['packets_lost']}, jitter {last['jitter_ms']} ms")  # fmt: skip
    if phone_stats is not None:
        print(f"phone side: sent {phone_stats.packets_sent}, received "
              f"{phone_stats.packets_received}, lost {phone_stats.packets_lost}, "
              f"jitter {phone_stats.jitter_ms} ms")  # fmt: skip
    print(f"door opened {opened} time(s) by the code")
    ok = last["outcome"] == "answered" and (last["packets_received"] or 0) > 0 and opened == 1
    print("demo: ok" if ok else "demo: FAILED")
    return 0 if ok else 1
