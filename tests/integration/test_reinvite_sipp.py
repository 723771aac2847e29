"""re-INVITEs in an answered call, against sipp as the callee.

The door's user agent and media (``MediaCalls``, as the daemon wires them) call sipp, and sipp's
exit status says whether the door did its part, then took the BYE of a call that was still up:

* callee_reoffer_port0.xml re-offers audio at port 0 (RFC 3264 §8.2): the door answers 200 with
  its own audio at port 0.
* callee_session_refresh_reinvite.xml asks the door to refresh the session every 90 s
  (RFC 4028) and does not allow UPDATE: the door refreshes with a re-INVITE at 45 s, and when
  that meets 491 it tries again after 2.1-4 s (RFC 3261 §14.1). About 50 s.
"""

from __future__ import annotations

import asyncio
import random

import pytest

from intercom.app.settings import Settings
from intercom.hw.audio_files import NullSink, NullSource
from intercom.runtime.media_calls import MediaCalls
from intercom.runtime.ua import UaConfig, UserAgent
from intercom.sip.events import CallAnswered, CallEnded, CallFailed
from intercom.sip.locate import HostPort
from intercom.sip.uri import SipUri

from .sipp_harness import Sipp, require_sipp

pytestmark = pytest.mark.integration


async def _call(sipp: Sipp, media: MediaCalls, call_seconds: float) -> None:
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
            ended = await ua.wait_for(CallEnded, call_seconds)
            assert isinstance(ended, CallEnded) and ended.by_peer, ended
            result = await sipp.wait(timeout=10)
        finally:
            media.close_all()
            await ua.stop(timeout=3)
    assert result.returncode == 0, result.explain()


def _media() -> MediaCalls:
    return MediaCalls(
        Settings(
            sip_bind=HostPort("127.0.0.1"),
            rtp_ports=(46000, 46999),
            codecs=("PCMU",),
        ),
        "127.0.0.1",
        rng=random.Random(5),
        open_audio=lambda rate: (NullSource(rate), NullSink(rate)),
    )


@pytest.mark.timeout(60)
def test_a_reoffer_with_audio_at_port_0_is_answered_at_port_0_and_the_call_goes_on() -> None:
    require_sipp()
    asyncio.run(_call(Sipp("callee_reoffer_port0.xml", timeout=30), _media(), call_seconds=10))


@pytest.mark.timeout(120)
def test_a_peer_without_update_gets_a_refresh_by_reinvite_retried_after_491() -> None:
    require_sipp()
    sipp = Sipp("callee_session_refresh_reinvite.xml", timeout=90)
    asyncio.run(_call(sipp, _media(), call_seconds=80))
