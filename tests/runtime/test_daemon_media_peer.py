"""The daemon hears a call's media from the signalling peer's IP, in both directions.

The door (the in-process :class:`~intercom.runtime.daemon.Intercom`, on 127.0.0.1) and a phone
made of our own ``UserAgent`` and ``MediaCalls`` on 127.0.0.78 whose SDP names 127.0.0.99, an
address nothing sends from: its media really leaves from the signalling address, as through a
server behind NAT whose SDP names a private address. The door hears it only when the
signalling peer's host reached the call's stream: where its INVITE went (an outgoing call) or
where the INVITE came from (an incoming one). Audio then flows both ways.
"""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

import pytest

from intercom.app.settings import Settings
from intercom.runtime.daemon import Intercom
from intercom.runtime.media_calls import MediaCalls
from intercom.runtime.ua import UaConfig, UserAgent
from intercom.sip.events import CallAnswered, Event, IncomingCallReceived
from intercom.sip.locate import HostPort
from intercom.sip.uri import SipUri

from .test_daemon import running_door, wait_until

pytestmark = pytest.mark.timeout(20)

PHONE_HOST = "127.0.0.78"
SDP_ADDRESS = "127.0.0.99"  # in the phone's SDP; nothing is bound there
TALK = 1.0


class Phone:
    """Answers every call at once; its RTP leaves from PHONE_HOST, its SDP says SDP_ADDRESS."""

    def __init__(self) -> None:
        self.media = MediaCalls(
            Settings(
                sip_bind=HostPort(PHONE_HOST),
                rtp_ports=(45000, 45999),
                codecs=("PCMU",),
                audio_input="tone:1000",
                audio_output="null",
            ),
            SDP_ADDRESS,
            rng=random.Random(78),
        )
        self.ua = UserAgent(
            UaConfig(bind=HostPort(PHONE_HOST, 0), user="phone"),
            answer_offer=self.media.answer_offer,
            on_event=self._on_event,
        )

    def _on_event(self, event: Event) -> None:
        self.media.handle(event)
        if isinstance(event, IncomingCallReceived):
            asyncio.get_running_loop().call_soon(self._answer, event)

    def _answer(self, event: IncomingCallReceived) -> None:
        sdp = self.media.answer_incoming(event.call_id, event.sdp)
        assert sdp is not None and f"c=IN IP4 {SDP_ADDRESS}".encode() in sdp
        self.ua.accept(event.call_id, sdp)

    async def call(self, uri: str) -> str:
        audio, offer = self.media.new_offer()
        call_id = self.ua.call(SipUri.parse(uri), offer)
        self.media.attach(call_id, audio)
        return call_id


async def _talk_and_count(door: Intercom, phone: Phone) -> tuple[int, int, int]:
    """After TALK seconds of the call: (packets the phone got, the door got, door strangers)."""
    await wait_until(lambda: bool(phone.media.call_ids), 5, "the phone's call")
    (call_id,) = phone.media.call_ids
    await wait_until(lambda: door.doorbell.snapshot().call == "connected", 5, "answer")
    await asyncio.sleep(TALK)
    phone_stats = phone.media.stats(call_id)
    assert door.media is not None
    door_stats = door.media.stats(call_id)
    assert phone_stats is not None and door_stats is not None
    return phone_stats.packets_received, door_stats.packets_received, door_stats.strangers


def test_an_outgoing_call_hears_the_host_its_invite_went_to(tmp_path: Path) -> None:
    async def main() -> tuple[int, int, int]:
        phone = Phone()
        await phone.ua.start()
        try:
            target = f"sip:phone@{PHONE_HOST}:{phone.ua.local_port}"
            async with running_door(tmp_path, INTERCOM_CALL_TARGET=target) as door:
                door.press()
                return await _talk_and_count(door, phone)
        finally:
            phone.media.close_all()
            await phone.ua.stop()

    to_phone, to_door, strangers = asyncio.run(main())
    assert to_phone >= 0.5 * TALK * 50, to_phone  # the door latched onto the phone's address
    assert to_door >= 0.5 * TALK * 50, to_door
    assert strangers == 0


def test_an_incoming_call_hears_the_host_its_invite_came_from(tmp_path: Path) -> None:
    async def main() -> tuple[int, int, int]:
        phone = Phone()
        await phone.ua.start()
        try:
            async with running_door(
                tmp_path,
                INTERCOM_TRUSTED_HOSTS=PHONE_HOST,
                INTERCOM_ALLOWED_CALLERS=f"phone@{PHONE_HOST}",
            ) as door:
                call_id = await phone.call(f"sip:door@127.0.0.1:{door.ua.local_port}")
                answered = await phone.ua.wait_for(CallAnswered, 5)
                assert isinstance(answered, CallAnswered) and answered.call_id == call_id
                return await _talk_and_count(door, phone)
        finally:
            phone.media.close_all()
            await phone.ua.stop()

    to_phone, to_door, strangers = asyncio.run(main())
    assert to_phone >= 0.5 * TALK * 50, to_phone
    assert to_door >= 0.5 * TALK * 50, to_door
    assert strangers == 0
