"""A PCMU call in a process of its own, wired as the daemon wires one, reporting whether numpy
(or soxr, or the G.722 extension) was ever imported: run by ``test_g711_call_without_numpy``.

    python -m tests.runtime.g711_call_child DIRECTORY

The door's ``MediaCalls`` (``wav:`` input at 8 kHz, ``null`` output, as the benchmark's door)
calls a phone of the same pieces (``null`` input, ``wav:`` recording) through two real
``UserAgent``s on loopback; the door lays the "door opened" beeps over the call's audio, the
call talks for a second and is hung up. The daemon's own modules are imported first, so what
the running daemon imports counts too. One JSON line goes to stdout: the modules found, the
stack of the first numpy import (None when there was none), and both sides' figures.
"""

from __future__ import annotations

import asyncio
import importlib.abc
import json
import math
import random
import sys
import traceback
import wave
from dataclasses import asdict
from importlib.machinery import ModuleSpec
from pathlib import Path
from types import ModuleType
from typing import Any

FORBIDDEN = ("numpy", "soxr", "G722")
RATE = 8000
VOICE_HZ = 700
TALK_SECONDS = 1.0


class ImportWatch(importlib.abc.MetaPathFinder):
    """Notes the stack of the first import of a forbidden module; never blocks it."""

    first: str | None = None

    def find_spec(
        self, fullname: str, path: Any, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        if self.first is None and fullname.split(".")[0] in FORBIDDEN:
            self.first = f"{fullname}\n" + "".join(traceback.format_stack(limit=25))
        return None


def write_voice(path: Path) -> None:
    """One second of a tone at -12 dBFS, mono 16-bit at 8 kHz, written without numpy."""
    frames = bytearray()
    for n in range(RATE):
        value = round(8000 * math.sin(2 * math.pi * VOICE_HZ * n / RATE))
        frames += value.to_bytes(2, "little", signed=True)
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(RATE)
        wav.writeframes(bytes(frames))


async def call(directory: Path) -> dict[str, Any]:
    from intercom.app.settings import Settings
    from intercom.feedback import Tone
    from intercom.runtime.media_calls import MediaCalls
    from intercom.runtime.ua import UaConfig, UserAgent
    from intercom.sip.events import CallAnswered, CallEnded, Event, IncomingCallReceived
    from intercom.sip.locate import HostPort
    from intercom.sip.uri import SipUri

    host = "127.0.0.1"
    voice = directory / "voice.wav"
    write_voice(voice)
    door = MediaCalls(
        Settings(sip_bind=HostPort(host), rtp_ports=(46000, 46999), codecs=("PCMU",),
                 audio_input=f"wav:{voice}", audio_output="null"),
        host,
        rng=random.Random(31),
    )  # fmt: skip
    phone = MediaCalls(
        Settings(sip_bind=HostPort(host), rtp_ports=(47000, 47999), codecs=("PCMU",),
                 audio_input="null", audio_output=f"wav:{directory / 'heard.wav'}"),
        host,
        rng=random.Random(32),
    )  # fmt: skip
    door_ua = UserAgent(
        UaConfig(bind=HostPort(host, 0), user="door"),
        answer_offer=door.answer_offer,
        on_event=door.handle,
    )

    def answer(event: IncomingCallReceived) -> None:
        sdp = phone.answer_incoming(event.call_id, event.sdp)
        assert sdp is not None
        phone_ua.accept(event.call_id, sdp)

    def on_phone_event(event: Event) -> None:
        phone.handle(event)
        if isinstance(event, IncomingCallReceived):
            asyncio.get_running_loop().call_soon(answer, event)

    phone_ua = UserAgent(
        UaConfig(bind=HostPort(host, 0), user="phone"),
        answer_offer=phone.answer_offer,
        on_event=on_phone_event,
    )
    await door_ua.start()
    await phone_ua.start()
    try:
        audio, offer = door.new_offer()
        call_id = door_ua.call(SipUri.parse(f"sip:phone@{host}:{phone_ua.local_port}"), offer)
        door.attach(call_id, audio)
        answered = await door_ua.wait_for(CallAnswered, 5)
        assert isinstance(answered, CallAnswered)
        await asyncio.sleep(TALK_SECONDS / 2)
        door.play_tone(Tone.OPENED)  # laid over the call's audio at the door's speaker
        await asyncio.sleep(TALK_SECONDS / 2)
        door_ua.hangup(call_id)
        await door_ua.wait_for(CallEnded, 5)
        await phone_ua.wait_for(CallEnded, 5)
    finally:
        door.close_all()
        phone.close_all()
        await door_ua.stop()
        await phone_ua.stop()
    return {
        "door": asdict(door.last_stats) if door.last_stats else None,
        "phone": asdict(phone.last_stats) if phone.last_stats else None,
    }


def main() -> None:
    watch = ImportWatch()
    sys.meta_path.insert(0, watch)
    import intercom.runtime.daemon  # noqa: F401  (what `intercom run` holds in memory)

    figures = asyncio.run(call(Path(sys.argv[1])))
    loaded = sorted(name for name in sys.modules if name.split(".")[0] in FORBIDDEN)
    print(json.dumps({"modules": loaded, "first_import": watch.first, **figures}))


if __name__ == "__main__":
    main()
