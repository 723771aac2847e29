"""A callee removes the audio of an answered call by re-INVITE (RFC 3264 §8.2), against sipp.

The door's user agent and media (``MediaCalls``, as the daemon wires them) call sipp running
callee_reoffer_port0.xml: its re-INVITE offers audio at port 0, and sipp's exit status says
whether the door answered 200 with its own audio at port 0 and then took the BYE of a call that
was still up.
"""

from __future__ import annotations

import asyncio
import random

import pytest

from intercom.hw.audio_files import NullSink, NullSource
from intercom.runtime.media_calls import MediaCalls, MediaConfig
from intercom.runtime.ua import UaConfig, UserAgent
from intercom.sip.events import CallAnswered, CallEnded, CallFailed
from intercom.sip.locate import HostPort
from intercom.sip.uri import SipUri

from .sipp_harness import Sipp, require_sipp

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


async def _call(sipp: Sipp, media: MediaCalls) -> None:
    ua = UserAgent(
        UaConfig(bind=HostPort("127.0.0.1", 0), user="door", keepalive_interval=None),
        answer_offer=media.answer_offer,
        on_event=media.handle,
    )
    async with sipp:
        await ua.start()
        try:
            audio, offer = media.new_offer()
            call_id = ua.call(SipUri.parse(f"sip:family@127.0.0.1:{sipp.port}"), offer)
            media.attach(call_id, audio)
            answered = await ua.wait_for((CallAnswered, CallFailed), 10)
            assert isinstance(answered, CallAnswered), answered
            ended = await ua.wait_for(CallEnded, 10)
            assert isinstance(ended, CallEnded) and ended.by_peer
            result = await sipp.wait(timeout=30)
        finally:
            media.close_all()
            await ua.stop(timeout=3)
    assert result.returncode == 0, result.explain()


def test_a_reoffer_with_audio_at_port_0_is_answered_at_port_0_and_the_call_goes_on() -> None:
    require_sipp()
    media = MediaCalls(
        MediaConfig(
            address="127.0.0.1",
            bind_host="127.0.0.1",
            port_range=(46000, 46999),
            codecs=("PCMU",),
        ),
        rng=random.Random(5),
        open_audio=lambda rate: (NullSource(rate), NullSink(rate)),
    )
    asyncio.run(_call(Sipp("callee_reoffer_port0.xml", timeout=30), media))
