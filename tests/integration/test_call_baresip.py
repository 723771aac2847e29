"""A real call from our stack to baresip: audio both ways, DTMF from the phone, for each codec.

Our UserAgent calls baresip (auto-answer) on loopback. The door side plays a known WAV through
the ``wav:`` input and records what it hears through the ``wav:`` output; baresip plays its own
WAV and records what it decodes. Each recording must be the other side's signal: every part of
it from SETTLE_SECONDS to half a second before its end must lie in a half-second window whose
normalised cross-correlation with that signal is at least 0.9 at one lag (the local
correlation of audio_compare: each window finds its own lag within 60 ms of the global one,
because an adaptive jitter buffer legitimately moves the lag by a 20 ms frame whenever it grows
or shrinks its delay, at any time of the call). DTMF keyed on baresip must arrive as the right
digits. The harness itself is proven baresip-to-baresip in test_baresip_harness.py.
"""

from __future__ import annotations

import asyncio
import logging
import random
from dataclasses import dataclass
from pathlib import Path

import pytest

from intercom.app.settings import Settings
from intercom.media.dtmf import DtmfDigit
from intercom.media.stream import StreamStats
from intercom.runtime.media_calls import MediaCalls
from intercom.runtime.ua import UaConfig, UserAgent
from intercom.sip.events import CallAnswered, CallEnded, IncomingCallReceived
from intercom.sip.locate import HostPort
from intercom.sip.uri import SipUri
from tests.integration.audio_compare import Comparison, compare_wavs, make_test_wav
from tests.integration.baresip_harness import BaresipPeer, CallRecording, require_baresip

logger = logging.getLogger(__name__)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(40)]

TALK_SECONDS = 5.0
SETTLE_SECONDS = 1.0
"""Judged from here on: before it are the call's first packets and each side's prefetch. The
jitter buffers' delay adjustments (a frame dropped or inserted, here or later) are allowed
for by the local correlation, not by this skip."""
MIN_CORRELATION = 0.9
DTMF = "1379*#"


def _assert_carries(direction: str, result: Comparison, explain: str) -> None:
    """The recording is the signal sent, allowing for adaptive playout; log the figures."""
    logger.info("- %s: %s", direction, result)
    assert result.local_correlation >= MIN_CORRELATION, f"{direction}: {result}\n{explain}"


@dataclass
class CallResult:
    door_wav: Path
    door_recording: Path
    phone: BaresipPeer
    phone_recording: CallRecording
    digits: list[DtmfDigit]
    stats: StreamStats


async def _call_baresip(codec: str, rate: int, tmp_path: Path) -> CallResult:
    door_wav, phone_wav = tmp_path / "door.wav", tmp_path / "phone.wav"
    make_test_wav(door_wav, rate, 20.0, "bursts", seed=101)
    make_test_wav(phone_wav, rate, 20.0, "bursts", seed=202)
    door_recording = tmp_path / "door-heard.wav"
    digits: list[DtmfDigit] = []
    media = MediaCalls(
        Settings(
            sip_bind=HostPort("127.0.0.1"),
            rtp_ports=(41000, 41999),
            codecs=(codec,),
            audio_input=f"wav:{door_wav}",
            audio_output=f"wav:{door_recording}",
        ),
        "127.0.0.1",
        rng=random.Random(7),
        on_digit=lambda call_id, digit: digits.append(digit),
    )
    ua = UserAgent(
        UaConfig(bind=HostPort("127.0.0.1", 0), user="door"),
        answer_offer=media.answer_offer,
        on_event=media.handle,
    )
    async with BaresipPeer(
        phone_wav, user="bob", codecs=[codec], workdir=tmp_path / "phone"
    ) as phone:
        await ua.start()
        try:
            audio, offer = media.new_offer()
            call_id = ua.call(SipUri.parse(phone.sip_uri), offer)
            media.attach(call_id, audio)
            await ua.wait_for(CallAnswered, 5)
            await phone.wait_event("CALL_RTPESTAB", 5)
            await asyncio.sleep(1.0)
            await phone.send_dtmf(DTMF)
            await asyncio.sleep(TALK_SECONDS - 1.0)
            stats = media.stats(call_id)
            assert stats is not None
            ua.hangup(call_id)
            await ua.wait_for(CallEnded, 5)
            closed = await phone.wait_event("CALL_CLOSED", 5)
            assert closed.param == "Connection reset by peer", phone.explain()
            (recording,) = await phone.recordings()
        finally:
            media.close_all()
            await ua.stop()
    assert media.last_stats is not None
    return CallResult(door_wav, door_recording, phone, recording, digits, media.last_stats)


@pytest.mark.parametrize(("codec", "rate"), [("PCMU", 8000), ("PCMA", 8000), ("G722", 16000)])
def test_call_carries_audio_both_ways_and_dtmf(codec: str, rate: int, tmp_path: Path) -> None:
    require_baresip()
    result = asyncio.run(_call_baresip(codec, rate, tmp_path))
    explain = result.phone.explain()
    decoder = {"PCMU": "PCMU 8000Hz", "PCMA": "PCMA 8000Hz", "G722": "G722 16000Hz"}[codec]
    assert f"Set audio decoder: {decoder}" in result.phone.output(), explain

    to_phone = compare_wavs(
        result.door_wav, result.phone_recording.received, skip_seconds=SETTLE_SECONDS
    )
    to_door = compare_wavs(result.phone.played, result.door_recording, skip_seconds=SETTLE_SECONDS)
    _assert_carries("door -> phone", to_phone, explain)
    _assert_carries("phone -> door", to_door, explain)
    # The comparison can fail: the door's own signal is not what it heard, at any lag.
    mixed_up = compare_wavs(result.door_wav, result.door_recording, skip_seconds=SETTLE_SECONDS)
    assert mixed_up.local_correlation < 0.3, str(mixed_up)

    assert "".join(d.digit for d in result.digits) == DTMF, explain
    assert all(d.source == "rtp" and d.duration_ms > 0 for d in result.digits)

    stats = result.stats
    assert stats.codec == codec
    frames = TALK_SECONDS * 50
    events = 15 * len(DTMF)  # RFC 4733 packets share the stream's sequence numbers
    assert frames * 0.9 < stats.packets_sent < frames * 1.3, stats
    assert frames * 0.8 < stats.packets_received < frames * 1.3 + events, stats
    assert stats.packets_lost == 0, stats


async def _baresip_calls_door(tmp_path: Path) -> CallResult:
    """baresip offers G.722 then PCMU; the door answers with G.722, the offerer's first."""
    door_wav, phone_wav = tmp_path / "door.wav", tmp_path / "phone.wav"
    make_test_wav(door_wav, 16000, 20.0, "bursts", seed=303)
    make_test_wav(phone_wav, 16000, 20.0, "bursts", seed=404)
    door_recording = tmp_path / "door-heard.wav"
    media = MediaCalls(
        Settings(
            sip_bind=HostPort("127.0.0.1"),
            rtp_ports=(42000, 42999),
            codecs=("PCMU", "G722", "PCMA"),  # our order; the offerer's preference wins
            audio_input=f"wav:{door_wav}",
            audio_output=f"wav:{door_recording}",
        ),
        "127.0.0.1",
        rng=random.Random(8),
    )
    ua = UserAgent(
        UaConfig(bind=HostPort("127.0.0.1", 0), user="door"),
        answer_offer=media.answer_offer,
        on_event=media.handle,
    )
    async with BaresipPeer(
        phone_wav, user="bob", codecs=["G722", "PCMU"], workdir=tmp_path / "phone"
    ) as phone:
        await ua.start()
        try:
            await phone.dial(f"sip:door@127.0.0.1:{ua.local_port}")
            incoming = await ua.wait_for(IncomingCallReceived, 5)
            assert isinstance(incoming, IncomingCallReceived) and incoming.sdp is not None
            answer = media.answer_incoming(incoming.call_id, incoming.sdp)
            assert answer is not None and b"G722/8000" in answer, answer
            ua.accept(incoming.call_id, answer)
            await phone.wait_event("CALL_ESTABLISHED", 5)
            await asyncio.sleep(TALK_SECONDS)
            await phone.hangup()
            ended = await ua.wait_for(CallEnded, 5)
            assert isinstance(ended, CallEnded) and ended.by_peer
            (recording,) = await phone.recordings()
        finally:
            media.close_all()
            await ua.stop()
    assert media.last_stats is not None
    return CallResult(door_wav, door_recording, phone, recording, [], media.last_stats)


def test_incoming_call_from_a_peer_offering_g722_is_answered_in_g722(tmp_path: Path) -> None:
    require_baresip()
    result = asyncio.run(_baresip_calls_door(tmp_path))
    explain = result.phone.explain()
    assert "Set audio decoder: G722 16000Hz" in result.phone.output(), explain
    assert result.stats.codec == "G722"
    to_phone = compare_wavs(
        result.door_wav, result.phone_recording.received, skip_seconds=SETTLE_SECONDS
    )
    to_door = compare_wavs(result.phone.played, result.door_recording, skip_seconds=SETTLE_SECONDS)
    _assert_carries("door -> phone", to_phone, explain)
    _assert_carries("phone -> door", to_door, explain)
    assert to_door.rate == 16000  # wideband all the way to the recording
