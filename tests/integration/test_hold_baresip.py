"""A real phone holds the door's call without music: baresip's ``hold`` re-INVITEs with
``a=sendonly`` and then sends no RTP, only its RTCP reports (RFC 3550 §6.3.5, RFC 3264 §8.4).
The door answers ``recvonly`` and keeps the call past its media timeout, heard alive by that
RTCP; once baresip resumes, audio flows again and the call ends by a BYE, not by the timeout.
"""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

import pytest

from intercom.app.settings import Settings
from intercom.runtime.media_calls import MediaCalls
from intercom.runtime.ua import UaConfig, UserAgent
from intercom.sip.events import CallAnswered, CallEnded
from intercom.sip.locate import HostPort
from intercom.sip.uri import SipUri
from tests.integration.audio_compare import make_test_wav
from tests.integration.baresip_harness import BaresipPeer, require_baresip

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

MEDIA_TIMEOUT = 8.0
"""Longer than baresip's RTCP interval (5 s, randomised to at most 7.5 s, RFC 3550 §6.3.1)."""
HOLD_SECONDS = 2 * MEDIA_TIMEOUT + 1


async def _held(tmp_path: Path) -> tuple[list[str], int, int, int]:
    door_wav, phone_wav = tmp_path / "door.wav", tmp_path / "phone.wav"
    make_test_wav(door_wav, 8000, 30.0, "bursts", seed=11)
    make_test_wav(phone_wav, 8000, 30.0, "bursts", seed=12)
    timeouts: list[str] = []
    media = MediaCalls(
        Settings(
            sip_bind=HostPort("127.0.0.1"),
            rtp_ports=(43000, 43999),
            codecs=("PCMU",),
            audio_input=f"wav:{door_wav}",
            audio_output="null",
            media_timeout=MEDIA_TIMEOUT,
        ),
        "127.0.0.1",
        rng=random.Random(9),
        on_timeout=timeouts.append,
    )
    ua = UserAgent(
        UaConfig(bind=HostPort("127.0.0.1", 0), user="door"),
        answer_offer=media.answer_offer,
        on_event=media.handle,
    )
    async with BaresipPeer(phone_wav, user="bob", workdir=tmp_path / "phone") as phone:
        await ua.start()
        try:
            audio, offer = media.new_offer()
            call_id = ua.call(SipUri.parse(phone.sip_uri), offer)
            media.attach(call_id, audio)
            await ua.wait_for(CallAnswered, 5)
            await phone.wait_event("CALL_RTPESTAB", 5)
            await phone.command("hold")
            await asyncio.sleep(1.0)  # the re-INVITE and the packets in flight
            before = media.stats(call_id)
            await asyncio.sleep(HOLD_SECONDS)
            during = media.stats(call_id)
            assert media.call_ids == [call_id], phone.explain()
            await phone.command("resume")
            await asyncio.sleep(2.0)
            after = media.stats(call_id)
            assert before is not None and during is not None and after is not None
            ua.hangup(call_id)
            await ua.wait_for(CallEnded, 5)
        finally:
            media.close_all()
            await ua.stop()
    return (timeouts, before.packets_received, during.packets_received,
            after.packets_received)  # fmt: skip


def test_a_phone_holding_without_music_keeps_the_call_by_its_rtcp(tmp_path: Path) -> None:
    require_baresip()
    timeouts, before, during, after = asyncio.run(_held(tmp_path))
    assert timeouts == []
    assert during - before <= 5, (before, during)  # no RTP while held
    assert after - during >= 50, (during, after)  # audio again after the resume
