"""MediaCalls on loopback: real calls between two of our user agents, and the media edge cases.

The call tests wire each side as an application would (``MediaCalls`` + ``UserAgent`` with
``answer_offer=media.answer_offer`` and every event through ``media.handle``): the door calls
the phone, each side plays its own tone (``tone:``) and records what it hears (``wav:``). A
recording must have the OTHER side's tone as its dominant frequency, so audio that goes
nowhere, loops back to its sender or is decoded at the wrong rate fails the test.

The edge cases drive MediaCalls directly, with a fake peer built from the same pieces
(OfferAnswer for its SDP, CallMedia for its RTP) where one is needed.
"""

from __future__ import annotations

import asyncio
import logging
import random
import socket
import time
import wave
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pytest

from intercom.app.settings import Settings
from intercom.feedback import Tone
from intercom.hw.audio import AudioSink, AudioSource
from intercom.hw.audio_files import NullSink, NullSource, ToneSource
from intercom.media.dtmf import DtmfDigit
from intercom.media.offer_answer import LocalMedia, OfferAnswer
from intercom.media.pcm import silence
from intercom.media.rtcp import build_receiver_report
from intercom.media.sdp import parse_sdp
from intercom.media.stream import MediaStream, StreamStats
from intercom.runtime.call_media import CallMedia
from intercom.runtime.media_calls import MediaCalls
from intercom.runtime.rtp_socket import RtpSockets
from intercom.runtime.ua import UaConfig, UserAgent
from intercom.sip.events import CallAnswered, CallEnded, Event, IncomingCallReceived
from intercom.sip.locate import HostPort
from intercom.sip.uri import SipUri
from tests.pcm_arrays import samples as pcm_samples

HOST = "127.0.0.1"
DOOR_TONE = 500
PHONE_TONE = 1200
TALK_SECONDS = 1.5
DOOR_PORTS = (43000, 43999)
PHONE_PORTS = (44000, 44999)
PEER_PORTS = (45000, 45999)


# -- helpers --------------------------------------------------------------------------------------


def _rtp_port(sdp: bytes) -> int:
    return parse_sdp(sdp).media[0].port


def _can_bind(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
    return True


def _read_wav(path: Path) -> tuple[np.ndarray, int]:
    with wave.open(str(path), "rb") as wav:
        assert wav.getnchannels() == 1 and wav.getsampwidth() == 2
        rate = wav.getframerate()
        samples = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2")
    return samples, rate


def _dominant_frequency(samples: np.ndarray, rate: int) -> float:
    signal = samples.astype(np.float64) * np.hanning(len(samples))
    spectrum = np.abs(np.fft.rfft(signal))
    spectrum[0] = 0.0
    return float(np.argmax(spectrum)) * rate / len(samples)


def _band_power(samples: np.ndarray, rate: int, frequency: float) -> float:
    """Spectral power within 10 Hz of ``frequency``."""
    spectrum = np.abs(np.fft.rfft(samples.astype(np.float64) * np.hanning(len(samples)))) ** 2
    freqs = np.fft.rfftfreq(len(samples), 1 / rate)
    return float(spectrum[np.abs(freqs - frequency) <= 10].sum())


def _assert_flowing(stats: StreamStats | None, codec: str, seconds: float) -> None:
    """Packets both ways at about 50 per second, none lost."""
    assert stats is not None
    assert stats.codec == codec, stats
    frames = seconds * 50
    assert frames * 0.7 <= stats.packets_sent <= frames * 1.4, stats
    assert frames * 0.6 <= stats.packets_received <= frames * 1.4, stats
    assert stats.packets_lost == 0, stats


def _null_audio(rate: int) -> tuple[AudioSource, AudioSink]:
    return NullSource(rate), NullSink(rate)


def _connect(door: MediaCalls, phone: MediaCalls, call_id: str) -> None:
    """The media of a call from ``door`` to ``phone`` without SIP: offer, answer, answered."""
    audio, offer = door.new_offer()
    door.attach(call_id, audio)
    answer = phone.answer_incoming(call_id, offer)
    assert answer is not None
    door.handle(CallAnswered(call_id, answer, "<sip:phone@test>"))


# -- calls between two user agents ----------------------------------------------------------------


@dataclass
class Side:
    """One end of a call: its media, its user agent and what it heard."""

    media: MediaCalls
    ua: UserAgent
    recording: Path
    digits: list[DtmfDigit] = field(default_factory=list)
    answers: list[bytes] = field(default_factory=list)  # the SDP answers it sent


def _door(codecs: tuple[str, ...], tmp_path: Path) -> Side:
    recording = tmp_path / "door-heard.wav"
    digits: list[DtmfDigit] = []
    media = MediaCalls(
        Settings(
            sip_bind=HostPort(HOST),
            rtp_ports=DOOR_PORTS,
            codecs=codecs,
            audio_input=f"tone:{DOOR_TONE}",
            audio_output=f"wav:{recording}",
        ),
        HOST,
        rng=random.Random(21),
        on_digit=lambda call_id, digit: digits.append(digit),
    )
    ua = UserAgent(
        UaConfig(bind=HostPort(HOST, 0), user="door"),
        answer_offer=media.answer_offer,
        on_event=media.handle,
    )
    return Side(media, ua, recording, digits)


def _phone(codecs: tuple[str, ...], tmp_path: Path) -> Side:
    """A phone that answers every call at once, as MediaCalls + UserAgent would in an app."""
    recording = tmp_path / "phone-heard.wav"
    digits: list[DtmfDigit] = []
    media = MediaCalls(
        Settings(
            sip_bind=HostPort(HOST),
            rtp_ports=PHONE_PORTS,
            codecs=codecs,
            audio_input=f"tone:{PHONE_TONE}",
            audio_output=f"wav:{recording}",
        ),
        HOST,
        rng=random.Random(22),
        on_digit=lambda call_id, digit: digits.append(digit),
    )
    answers: list[bytes] = []

    def answer(event: IncomingCallReceived) -> None:
        sdp = media.answer_incoming(event.call_id, event.sdp)
        if sdp is None:
            ua.reject(event.call_id, 488)
            return
        answers.append(sdp)
        ua.accept(event.call_id, sdp)

    def on_event(event: Event) -> None:
        media.handle(event)
        if isinstance(event, IncomingCallReceived):
            # Not from inside the user agent's event delivery: the next turn of the loop.
            asyncio.get_running_loop().call_soon(answer, event)

    ua = UserAgent(
        UaConfig(bind=HostPort(HOST, 0), user="phone"),
        answer_offer=media.answer_offer,
        on_event=on_event,
    )
    return Side(media, ua, recording, digits, answers)


async def _start_call(door: Side, phone: Side) -> str:
    """The door calls the phone; returns the Call-ID once answered."""
    await door.ua.start()
    await phone.ua.start()
    audio, offer = door.media.new_offer()
    call_id = door.ua.call(SipUri.parse(f"sip:phone@{HOST}:{phone.ua.local_port}"), offer)
    door.media.attach(call_id, audio)
    answered = await door.ua.wait_for(CallAnswered, 5)
    assert isinstance(answered, CallAnswered) and answered.call_id == call_id
    assert phone.media.call_ids == [call_id] and door.media.call_ids == [call_id]
    return call_id


async def _hang_up(door: Side, phone: Side, call_id: str) -> None:
    assert door.ua.hangup(call_id)
    await door.ua.wait_for(CallEnded, 5)
    ended = await phone.ua.wait_for(CallEnded, 5)
    assert isinstance(ended, CallEnded) and ended.by_peer


async def _stop(*sides: Side) -> None:
    for side in sides:
        side.media.close_all()
        await side.ua.stop()


@dataclass
class CallOutcome:
    door_stats: StreamStats | None
    phone_stats: StreamStats | None
    sockets: list[RtpSockets]  # held, so only close() can free their ports
    ports: list[int]


async def _talk(door: Side, phone: Side) -> CallOutcome:
    try:
        call_id = await _start_call(door, phone)
        sockets = [side.media._calls[call_id].sockets for side in (door, phone)]
        await asyncio.sleep(TALK_SECONDS)
        door_stats = door.media.stats(call_id)
        phone_stats = phone.media.stats(call_id)
        await _hang_up(door, phone, call_id)
        assert door.media.call_ids == [] and phone.media.call_ids == []
    finally:
        await _stop(door, phone)
    (answer,) = phone.answers
    ports = [sockets[0].port, _rtp_port(answer)]
    assert ports[1] == sockets[1].port
    return CallOutcome(door_stats, phone_stats, sockets, ports)


@pytest.mark.timeout(15)
@pytest.mark.parametrize(("codec", "rate"), [("PCMU", 8000), ("G722", 16000)])
def test_a_call_carries_each_sides_tone_to_the_other(codec: str, rate: int, tmp_path: Path) -> None:
    door, phone = _door((codec,), tmp_path), _phone((codec,), tmp_path)
    outcome = asyncio.run(_talk(door, phone))

    _assert_flowing(outcome.door_stats, codec, TALK_SECONDS)
    _assert_flowing(outcome.phone_stats, codec, TALK_SECONDS)

    for side, heard, own in ((door, PHONE_TONE, DOOR_TONE), (phone, DOOR_TONE, PHONE_TONE)):
        samples, recorded_rate = _read_wav(side.recording)
        assert recorded_rate == rate
        assert TALK_SECONDS * 0.7 <= len(samples) / rate <= TALK_SECONDS + 1.0
        assert abs(_dominant_frequency(samples, rate) - heard) < 5.0, side.recording
        assert _band_power(samples, rate, heard) > 1000 * _band_power(samples, rate, own)

        final = side.media.last_stats
        assert final is not None and final.codec == codec
        assert final.packets_lost == 0, final

    # The figures at hang-up include the ones seen during the call.
    assert door.media.last_stats is not None and outcome.door_stats is not None
    assert door.media.last_stats.packets_sent >= outcome.door_stats.packets_sent
    # Sockets closed: both RTP/RTCP pairs can be bound again.
    for port in outcome.ports:
        assert _can_bind(port) and _can_bind(port + 1), port


@pytest.mark.timeout(15)
def test_dtmf_both_ways_arrives_in_order_as_rtp_events(tmp_path: Path) -> None:
    door, phone = _door(("PCMA",), tmp_path), _phone(("PCMA",), tmp_path)

    async def main() -> None:
        try:
            call_id = await _start_call(door, phone)
            door.media.send_dtmf(call_id, "12#")
            phone.media.send_dtmf(call_id, "*0D")
            deadline = time.monotonic() + 3.0
            while (len(door.digits) < 3 or len(phone.digits) < 3) and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            with pytest.raises(ValueError):
                door.media.send_dtmf(call_id, "1x")  # refused before anything is queued
            stats = door.media.stats(call_id)
            assert stats is not None and stats.codec == "PCMA" and stats.packets_lost == 0
            await _hang_up(door, phone, call_id)
        finally:
            await _stop(door, phone)

    asyncio.run(main())
    assert [d.digit for d in phone.digits] == ["1", "2", "#"]
    assert [d.digit for d in door.digits] == ["*", "0", "D"]
    for digit in phone.digits + door.digits:
        assert digit.source == "rtp"
        assert 100 <= digit.duration_ms <= 300, digit


@pytest.mark.timeout(10)
def test_an_invite_without_offer_gets_ours_and_media_starts_with_the_answer_in_the_ack(
    tmp_path: Path,
) -> None:
    """RFC 3261 §13.2.1: the phone's 200 carries its offer, the caller's ACK the answer."""
    phone = _phone(("PCMU",), tmp_path)
    listener = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    listener.bind((HOST, 0))
    listener.settimeout(2.0)
    caller_media = OfferAnswer(LocalMedia(HOST, listener.getsockname()[1], ("PCMU",)), 9)
    caller = UserAgent(
        UaConfig(bind=HostPort(HOST, 0), user="caller"),
        answer_offer=lambda call_id, offer: caller_media.answer(offer)[0],
    )

    async def main() -> bytes:
        await caller.start()
        await phone.ua.start()
        try:
            caller.call(SipUri.parse(f"sip:phone@{HOST}:{phone.ua.local_port}"), None)
            await caller.wait_for(CallAnswered, 5)
            return await asyncio.get_running_loop().run_in_executor(None, listener.recv, 2048)
        finally:
            await _stop(phone)
            await caller.stop()

    with listener:
        packet = asyncio.run(main())
    assert phone.answers and b"m=audio" in phone.answers[0]  # the phone's 200 held an offer
    assert packet[0] >> 6 == 2 and packet[1] & 0x7F == 0  # RTP version 2, PCMU


@pytest.mark.timeout(10)
def test_dtmf_queued_before_the_answer_is_checked_at_once_and_sent_once_media_starts() -> None:
    heard: list[tuple[str, DtmfDigit]] = []
    door = MediaCalls(
        Settings(sip_bind=HostPort(HOST), rtp_ports=DOOR_PORTS, codecs=("PCMU",)),
        HOST,
        rng=random.Random(71),
        open_audio=_null_audio,
    )
    phone = MediaCalls(
        Settings(sip_bind=HostPort(HOST), rtp_ports=PHONE_PORTS, codecs=("PCMU",)),
        HOST,
        rng=random.Random(72),
        open_audio=_null_audio,
        on_digit=lambda call_id, digit: heard.append((call_id, digit)),
    )
    call_id = "early-dtmf@test"

    async def main() -> None:
        audio, offer = door.new_offer()
        door.attach(call_id, audio)
        with pytest.raises(ValueError, match="'x' is not a DTMF digit"):
            door.send_dtmf(call_id, "5x")  # no media yet: refused here, not in handle() later
        door.send_dtmf(call_id, "7a")
        door.send_dtmf("no-such-call", "1")  # ignored
        answer = phone.answer_incoming(call_id, offer)
        assert answer is not None
        door.handle(CallAnswered(call_id, answer, "<sip:phone@test>"))  # must not raise
        deadline = time.monotonic() + 2.0
        while len(heard) < 2 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        door.close_all()
        phone.close_all()

    asyncio.run(main())
    assert [(call, digit.digit, digit.source) for call, digit in heard] == [
        (call_id, "7", "rtp"),
        (call_id, "A", "rtp"),
    ]


@pytest.mark.timeout(10)
def test_an_answer_renumbering_telephone_events_keeps_dtmf_both_ways() -> None:
    """Our offer names telephone-event 101, the answer 96 (RFC 3264 §5.1: each side receives
    with its own SDP's numbers): the door sends its digit as 96 and hears the peer's 101."""
    heard: list[DtmfDigit] = []
    door = MediaCalls(
        Settings(sip_bind=HostPort(HOST), rtp_ports=DOOR_PORTS, codecs=("PCMU",)),
        HOST,
        rng=random.Random(81),
        open_audio=_null_audio,
        on_digit=lambda call_id, digit: heard.append(digit),
    )
    call_id = "renumbered@test"

    async def main() -> set[int]:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as peer:
            peer.bind((HOST, 0))
            peer.setblocking(False)
            port = peer.getsockname()[1]
            audio, offer = door.new_offer()
            door.attach(call_id, audio)
            answer = (
                f"v=0\r\no=- 1 1 IN IP4 {HOST}\r\ns=-\r\nc=IN IP4 {HOST}\r\nt=0 0\r\n"
                f"m=audio {port} RTP/AVP 0 96\r\na=rtpmap:96 telephone-event/8000\r\n"
            )
            door.handle(CallAnswered(call_id, answer.encode(), "<sip:peer@test>"))
            door.send_dtmf(call_id, "9")
            # The peer's stack sends with the numbers of the door's offer: 101.
            theirs = OfferAnswer(LocalMedia(HOST, port, ("PCMU",)), 9).answer(offer)[1]
            assert theirs.dtmf_payload_type == 101
            peer_stream = MediaStream(theirs, rng=random.Random(82), cname="peer@test")
            peer_stream.send_dtmf("3")
            types: set[int] = set()
            for _ in range(15):
                peer.sendto(peer_stream.send_frame(silence(8000)) or b"", (HOST, _rtp_port(offer)))
                await asyncio.sleep(0.02)
                while True:
                    try:
                        types.add(peer.recv(2048)[1] & 0x7F)
                    except BlockingIOError:
                        break
            door.close_all()
        return types

    types = asyncio.run(main())
    assert types == {0, 96}  # audio and the door's digit, as the answer numbered it
    assert [(d.digit, d.source) for d in heard] == [("3", "rtp")]


# -- a codec change by re-offer -------------------------------------------------------------------


@pytest.mark.timeout(10)
def test_a_re_offer_changes_the_codec_and_media_goes_on() -> None:
    opened_rates: list[int] = []

    def door_audio(rate: int) -> tuple[AudioSource, AudioSink]:
        opened_rates.append(rate)
        return ToneSource(DOOR_TONE, rate), NullSink(rate)

    door = MediaCalls(
        Settings(sip_bind=HostPort(HOST), rtp_ports=DOOR_PORTS, codecs=("PCMU", "G722")),
        HOST,
        rng=random.Random(31),
        open_audio=door_audio,
    )
    rng = random.Random(32)
    peer_sockets = RtpSockets(HOST, PEER_PORTS, rng)
    peer_offers = OfferAnswer(LocalMedia(HOST, peer_sockets.port, ("PCMU",)), 77)
    call_id = "reoffer@test"

    async def main() -> None:
        answer = door.answer_incoming(call_id, peer_offers.offer())
        assert answer is not None
        door_port = _rtp_port(answer)
        negotiated = peer_offers.receive_answer(answer)
        assert negotiated.codec == "PCMU" and negotiated.remote_port == door_port
        peer = CallMedia(
            peer_sockets,
            MediaStream(negotiated, rng=rng, cname="peer@test"),
            lambda rate: (ToneSource(PHONE_TONE, rate), NullSink(rate)),
            on_digit=lambda digit: None,
            on_timeout=lambda: None,
        )
        peer.start(asyncio.get_running_loop())
        try:
            await asyncio.sleep(0.5)
            before = door.stats(call_id)
            _assert_flowing(before, "PCMU", 0.5)

            # A re-offer without a common codec is refused; the call keeps its codec.
            peer_offers.local = LocalMedia(HOST, peer_sockets.port, ("PCMA",))
            assert door.answer_offer(call_id, peer_offers.offer()) is None
            assert door.answer_offer("no-such-call", peer_offers.offer()) is None

            peer_offers.local = LocalMedia(HOST, peer_sockets.port, ("G722",))
            new_answer = door.answer_offer(call_id, peer_offers.offer())
            assert new_answer is not None
            audio = parse_sdp(new_answer).media[0]
            assert audio.port == door_port  # same sockets, new codec
            assert audio.formats[0] == "9"
            renegotiated = peer_offers.receive_answer(new_answer)
            assert renegotiated.codec == "G722"
            peer.update(renegotiated)
            switched = door.stats(call_id)
            assert switched is not None and switched.codec == "G722"

            await asyncio.sleep(0.5)
            after = door.stats(call_id)
            peer_after = peer.stats()
        finally:
            peer.close()
            door.close_all()
        assert after is not None and after.codec == "G722"
        assert after.packets_sent >= switched.packets_sent + 18, (switched, after)
        assert after.packets_received >= switched.packets_received + 18, (switched, after)
        assert after.packets_lost == 0 and after.dropped <= 3, after
        assert peer_after.codec == "G722" and peer_after.packets_lost == 0, peer_after
        assert peer_after.dropped <= 3, peer_after  # PCMU packets in flight at the switch

    asyncio.run(main())
    assert opened_rates == [8000, 16000]  # the devices follow the codec's sample rate


def _audio_at_port_0() -> bytes:
    return (f"v=0\r\no=- 9 3 IN IP4 {HOST}\r\ns=-\r\nc=IN IP4 {HOST}\r\nt=0 0\r\n"
            "m=audio 0 RTP/AVP 0\r\n").encode()  # fmt: skip


@pytest.mark.timeout(10)
def test_a_re_offer_removing_the_audio_gets_a_port_0_answer_and_the_call_stays() -> None:
    """RFC 3264 §8.2: audio at port 0 in a re-offer removes the stream: the answer says port 0,
    the door stops sending and no media timeout ends the call; audio offered again resumes."""
    timeouts: list[str] = []
    door = MediaCalls(
        Settings(
            sip_bind=HostPort(HOST), rtp_ports=DOOR_PORTS, codecs=("PCMU",), media_timeout=0.5
        ),
        HOST,
        rng=random.Random(91),
        open_audio=_null_audio,
        on_timeout=timeouts.append,
    )
    call_id = "removed@test"

    async def main() -> tuple[int, int, int]:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as peer:
            peer.bind((HOST, 0))
            peer.setblocking(False)
            theirs = OfferAnswer(LocalMedia(HOST, peer.getsockname()[1], ("PCMU",)), 9)
            first = door.answer_incoming(call_id, theirs.offer())
            assert first is not None
            await asyncio.sleep(0.2)
            before = _drain_count(peer)
            answer = door.answer_offer(call_id, _audio_at_port_0())
            assert answer is not None and _rtp_port(answer) == 0
            await asyncio.sleep(0.05)
            _drain_count(peer)  # packets in flight
            await asyncio.sleep(1.0)  # twice the media timeout
            during = _drain_count(peer)
            assert door.call_ids == [call_id] and timeouts == []
            back = door.answer_offer(call_id, theirs.offer())
            assert back is not None and _rtp_port(back) == _rtp_port(first)  # same sockets
            await asyncio.sleep(0.2)
            after = _drain_count(peer)
            door.close_all()
        return before, during, after

    before, during, after = asyncio.run(main())
    assert before >= 5 and during == 0 and after >= 5, (before, during, after)
    assert timeouts == []

    answer = door.answer_incoming("no-audio@test", _audio_at_port_0())  # a new call alike
    assert answer is not None and _rtp_port(answer) == 0
    assert door.call_ids == ["no-audio@test"] and door.stats("no-audio@test") is None
    assert door.close("no-audio@test") is None and door.call_ids == []


# -- refusals, timeouts, failing devices ----------------------------------------------------------


def _two_port_range() -> tuple[int, int]:
    rng = random.Random()
    for _ in range(200):
        low = rng.randrange(46000, 47000, 2)
        if _can_bind(low) and _can_bind(low + 1):
            return low, low + 1
    raise RuntimeError("no free port pair")


@pytest.mark.timeout(10)
def test_an_offer_without_a_common_codec_leaves_nothing_behind(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="intercom.runtime.media_calls")
    low, high = _two_port_range()  # a single pair: it must come back for the next call
    door = MediaCalls(
        Settings(sip_bind=HostPort(HOST), rtp_ports=(low, high), codecs=("PCMU",)),
        HOST,
        rng=random.Random(41),
        open_audio=_null_audio,
    )
    offer = OfferAnswer(LocalMedia(HOST, 9000, ("G722", "PCMA")), 5).offer()
    assert door.answer_incoming("refused@test", offer) is None
    assert door.call_ids == [] and door.stats("refused@test") is None
    assert door.close("refused@test") is None
    assert _can_bind(low) and _can_bind(high)
    assert any("refused@test" in r.getMessage() for r in caplog.records)

    async def accept_next() -> int:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as peer:
            peer.bind((HOST, 0))
            good = OfferAnswer(LocalMedia(HOST, peer.getsockname()[1], ("PCMU",)), 6).offer()
            answer = door.answer_incoming("accepted@test", good)
            door.close_all()
        assert answer is not None
        return _rtp_port(answer)

    assert asyncio.run(accept_next()) == low


def _door_that_times_out(seed: int) -> tuple[MediaCalls, asyncio.Future[float], list[str]]:
    """Media with a 0.5 s media timeout (on the running loop); the future is set to the
    monotonic time of the first timeout, the list holds every Call-ID reported."""
    timed_out: asyncio.Future[float] = asyncio.get_running_loop().create_future()
    reports: list[str] = []

    def on_timeout(call_id: str) -> None:
        reports.append(call_id)
        if not timed_out.done():
            timed_out.set_result(time.monotonic())

    door = MediaCalls(
        Settings(sip_bind=HostPort(HOST), rtp_ports=DOOR_PORTS, media_timeout=0.5),
        HOST,
        rng=random.Random(seed),
        open_audio=_null_audio,
        on_timeout=on_timeout,
    )
    return door, timed_out, reports


@pytest.mark.timeout(10)
def test_a_silent_peer_ends_in_a_media_timeout() -> None:
    async def main() -> None:
        door, timed_out, reports = _door_that_times_out(seed=51)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
            silent.bind((HOST, 0))
            silent.setblocking(False)
            audio, offer = door.new_offer()
            door.attach("silent@test", audio)
            fake = OfferAnswer(LocalMedia(HOST, silent.getsockname()[1], ("PCMU",)), 9)
            fake_answer, _ = fake.answer(offer)
            started = time.monotonic()
            door.handle(CallAnswered("silent@test", fake_answer, "<sip:silent@test>"))
            at = await asyncio.wait_for(timed_out, 2.0)
            await asyncio.sleep(0.1)  # a second report would come within a tick or two
            received = 0
            while True:
                try:
                    silent.recv(2048)
                except BlockingIOError:
                    break
                received += 1
        assert 0.5 <= at - started <= 1.0, at - started
        assert reports == ["silent@test"]
        assert 20 <= received <= 60  # we kept sending to the silent peer until the timeout
        stats = door.close("silent@test")
        assert stats is not None and stats.packets_received == 0
        assert door.call_ids == []

    asyncio.run(main())


@pytest.mark.timeout(10)
def test_a_peer_sending_only_rtcp_keeps_the_call_and_a_strangers_rtcp_does_not() -> None:
    """A phone on hold without music sends RTCP and no RTP (RFC 3550 §6.3.5): the call lasts
    past the media timeout while the peer's RTCP comes, and ends once only a stranger's does."""

    async def main() -> tuple[float, float, list[str]]:
        door, timed_out, reports = _door_that_times_out(seed=53)
        peer, stranger = (socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(2))
        with peer, stranger:
            peer.bind((HOST, 0))
            stranger.bind((STRANGER, 0))
            audio, offer = door.new_offer()
            door.attach("on-hold@test", audio)
            fake = OfferAnswer(LocalMedia(HOST, peer.getsockname()[1], ("PCMU",)), 9)
            fake.local = replace(fake.local, direction="sendonly")  # the phone holds
            door.handle(CallAnswered("on-hold@test", fake.answer(offer)[0], "<sip:p@test>"))
            rtcp_port = _rtp_port(offer) + 1
            report = build_receiver_report(0x1234)
            started = time.monotonic()
            while time.monotonic() - started < 1.5:  # three media timeouts of RTCP only
                peer.sendto(report, (HOST, rtcp_port))
                stranger.sendto(report, (HOST, rtcp_port))
                await asyncio.sleep(0.1)
                assert not timed_out.done()
            peer_stopped = time.monotonic()
            while not timed_out.done() and time.monotonic() - peer_stopped < 2.0:
                stranger.sendto(report, (HOST, rtcp_port))
                await asyncio.sleep(0.1)
            at = await asyncio.wait_for(timed_out, 0.1)
            stats = door.close("on-hold@test")
        assert stats is not None and stats.packets_received == 0 and stats.strangers >= 15
        return peer_stopped, at, reports

    peer_stopped, at, reports = asyncio.run(main())
    assert 0.3 <= at - peer_stopped <= 1.0, at - peer_stopped
    assert reports == ["on-hold@test"]


@pytest.mark.timeout(10)
@pytest.mark.parametrize(
    ("audio_input", "audio_output", "complaint"),
    [
        ("wav:/nonexistent.wav", "null", "the call carries silence"),
        ("null", "wav:/nonexistent-dir/heard.wav", "received audio is discarded"),
    ],
    ids=["input", "output"],
)
def test_a_failing_audio_device_leaves_a_working_call_and_one_error_line(
    audio_input: str,
    audio_output: str,
    complaint: str,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    phone_recording = tmp_path / "phone-heard.wav"
    door = MediaCalls(
        Settings(
            sip_bind=HostPort(HOST), rtp_ports=DOOR_PORTS, codecs=("PCMU",),
            audio_input=audio_input, audio_output=audio_output,
        ),
        HOST,
        rng=random.Random(61),
    )  # fmt: skip
    phone = MediaCalls(
        Settings(
            sip_bind=HostPort(HOST), rtp_ports=PHONE_PORTS, codecs=("PCMU",),
            audio_input=f"tone:{PHONE_TONE}", audio_output=f"wav:{phone_recording}",
        ),
        HOST,
        rng=random.Random(62),
    )  # fmt: skip
    call_id = "broken-device@test"

    async def main() -> StreamStats | None:
        _connect(door, phone, call_id)
        await asyncio.sleep(0.6)
        stats = door.stats(call_id)
        door.close_all()
        phone.close_all()
        return stats

    stats = asyncio.run(main())
    _assert_flowing(stats, "PCMU", 0.6)
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1, [r.getMessage() for r in errors]
    message = errors[0].getMessage()
    assert errors[0].name == "intercom.runtime.media_calls"
    assert (audio_input if "wav:" in audio_input else audio_output) in message
    assert complaint in message
    if "wav:" in audio_input:  # the phone heard the door's silence
        samples, _ = _read_wav(phone_recording)
        assert len(samples) > 8000 * 0.3 and int(np.abs(samples.astype(np.int32)).max()) < 50


# -- a tone over the call's audio -------------------------------------------------------------


class _Speaker:
    """A sink that keeps every frame it is given."""

    def __init__(self, sample_rate: int) -> None:
        self.sample_rate = sample_rate
        self.frames: list[bytes] = []

    def start(self) -> None:
        pass

    def write_frame(self, frame: bytes) -> None:
        self.frames.append(frame)

    def close(self) -> None:
        pass

    def stats(self) -> dict[str, int]:
        return {"frames": len(self.frames)}


def test_a_tone_during_a_call_is_laid_over_the_call_audio_on_the_same_speaker() -> None:
    speakers: list[_Speaker] = []

    def door_audio(rate: int) -> tuple[AudioSource, AudioSink]:
        speakers.append(_Speaker(rate))
        return NullSource(rate), speakers[-1]

    door = MediaCalls(
        Settings(sip_bind=HostPort(HOST), rtp_ports=DOOR_PORTS, codecs=("PCMU",)),
        HOST,
        rng=random.Random(81),
        open_audio=door_audio,
    )
    phone = MediaCalls(
        Settings(sip_bind=HostPort(HOST), rtp_ports=PHONE_PORTS, codecs=("PCMU",)),
        HOST,
        rng=random.Random(82),
        open_audio=lambda rate: (ToneSource(400, rate), NullSink(rate)),
    )
    assert not door.play_tone(Tone.OPENED)  # no call: the caller plays it on the idle speaker

    async def main() -> int:
        _connect(door, phone, "cue@test")
        await asyncio.sleep(0.6)
        (speaker,) = speakers
        before = len(speaker.frames)
        assert door.play_tone(Tone.OPENED)
        await asyncio.sleep(0.6)
        assert not door.play_tone(None)  # stopping is always also passed on
        door.close_all()
        phone.close_all()
        return before

    before = asyncio.run(main())
    (speaker,) = speakers  # the call's speaker only: the tone opened no second device
    rate = speaker.sample_rate
    call_part = pcm_samples(b"".join(speaker.frames[before - 14 : before]))
    cue_part = pcm_samples(b"".join(speaker.frames[before : before + 14]))  # the 260 ms of beeps
    after = pcm_samples(b"".join(speaker.frames[before + 16 : before + 30]))
    for part in (call_part, after):  # the phone's 400 Hz alone
        assert _band_power(part, rate, 1500) < 0.01 * _band_power(part, rate, 400)
    # The beeps and the phone's voice together, the voice undiminished.
    assert _band_power(cue_part, rate, 1500) > 100 * _band_power(call_part, rate, 1500)
    assert _band_power(cue_part, rate, 400) > 0.8 * _band_power(call_part, rate, 400)


# -- media belongs to the call's peer -------------------------------------------------------------

SIGNALLING_PEER = "127.0.0.5"  # the server the INVITE went to (or came from), anchoring media
STRANGER = "127.0.0.66"


def _pcmu(seq: int, ssrc: int) -> bytes:
    return bytes([0x80, 0]) + seq.to_bytes(2) + (seq * 160).to_bytes(4) + ssrc.to_bytes(4) \
        + bytes(160)  # fmt: skip


def _drain_count(sock: socket.socket) -> int:
    count = 0
    while True:
        try:
            sock.recv(2048)
        except BlockingIOError:
            return count
        count += 1


@pytest.mark.timeout(10)
@pytest.mark.parametrize("incoming", [False, True], ids=["outgoing", "incoming"])
def test_the_signalling_peer_reaches_the_stream_and_a_stranger_gets_nothing(
    incoming: bool, caplog: pytest.LogCaptureFixture
) -> None:
    """The SDP names 127.0.0.1 (a silent socket); the media really comes from the signalling
    peer's IP, as through a server behind NAT. A stranger sprays PCMU at the door's RTP port
    before and while the peer talks: the door's audio goes to the peer, never to the stranger."""
    caplog.set_level(logging.INFO, logger="intercom")

    async def main() -> tuple[StreamStats | None, int, int, int]:
        door = MediaCalls(
            Settings(sip_bind=HostPort(HOST), rtp_ports=DOOR_PORTS, codecs=("PCMU",)),
            HOST,
            rng=random.Random(61),
            open_audio=_null_audio,
        )
        sdp_side, peer, stranger = (socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                                    for _ in range(3))  # fmt: skip
        with sdp_side, peer, stranger:
            for sock, host in ((sdp_side, HOST), (peer, SIGNALLING_PEER), (stranger, STRANGER)):
                sock.bind((host, 0))
                sock.setblocking(False)
            theirs = OfferAnswer(LocalMedia(HOST, sdp_side.getsockname()[1], ("PCMU",)), 9)
            if incoming:
                answer = door.answer_incoming(
                    "peer@test", theirs.offer(), peer_host=SIGNALLING_PEER
                )
                assert answer is not None
                door_port = _rtp_port(answer)
            else:
                audio, offer = door.new_offer()
                door.attach("peer@test", audio, peer_host=SIGNALLING_PEER)
                door.handle(CallAnswered("peer@test", theirs.answer(offer)[0], "<sip:p@test>"))
                door_port = _rtp_port(offer)
            target = (HOST, door_port)
            for n in range(15):  # 0.3 s of the stranger alone
                stranger.sendto(_pcmu(n, 0x6666), target)
                await asyncio.sleep(0.02)
            _drain_count(sdp_side)
            for n in range(25):  # 0.5 s of both
                stranger.sendto(_pcmu(100 + n, 0x6666), target)
                peer.sendto(_pcmu(n, 0x1234), target)
                await asyncio.sleep(0.02)
            await asyncio.sleep(0.1)
            counts = _drain_count(peer), _drain_count(stranger), _drain_count(sdp_side)
            stats = door.close("peer@test")
        return stats, *counts

    stats, to_peer, to_stranger, to_sdp = asyncio.run(main())
    assert to_stranger == 0
    assert to_peer >= 15, to_peer  # latched to the signalling peer's address
    assert to_sdp <= 3, to_sdp  # packets in flight when the latch moved
    assert stats is not None
    assert stats.packets_received >= 20 and stats.strangers >= 35, stats
    stream_lines = [r for r in caplog.records if r.name == "intercom.media.stream"]
    assert len(stream_lines) == 1, [r.getMessage() for r in stream_lines]  # the latch, once
    summaries = [r.getMessage() for r in caplog.records if "other than the call's peer" in
                 r.getMessage()]  # fmt: skip
    assert summaries == [f"x media: {stats.strangers} RTP/RTCP packets from sources other than "
                         "the call's peer dropped"]  # fmt: skip


# -- the order of a tick ----------------------------------------------------------------------


class _RecordingSockets:
    """Stands in for RtpSockets: notes each send and drain in order."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def drain(self, on_rtp: object, on_rtcp: object, now: float) -> None:
        self.calls.append("drain")

    def send_rtp(self, data: bytes, destination: tuple[str, int]) -> None:
        self.calls.append("send")

    def send_rtcp(self, data: bytes, destination: tuple[str, int]) -> None:
        pass

    def close(self) -> None:
        pass


@pytest.mark.timeout(10)
def test_each_tick_sends_its_frame_before_it_drains_and_plays() -> None:
    """The packet's send time is the wake-up plus one encode: the drain and the playout, whose
    cost varies with what arrived, come after it."""
    sockets = _RecordingSockets()
    negotiated = OfferAnswer(LocalMedia(HOST, 40000, ("PCMU",)), 5)
    media = negotiated.receive_answer(OfferAnswer(LocalMedia(HOST, 40002, ("PCMU",)), 6).answer(
        negotiated.offer())[0])  # fmt: skip
    stream = MediaStream(media, rng=random.Random(7), cname="order@test")
    call = CallMedia(
        sockets,  # type: ignore[arg-type]
        stream,
        lambda rate: (ToneSource(DOOR_TONE, rate), NullSink(rate)),
        on_digit=lambda digit: None,
        on_timeout=lambda: None,
    )

    async def main() -> None:
        call.start(asyncio.get_running_loop())
        deadline = time.monotonic() + 5.0
        while sockets.calls.count("drain") < 5 and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        call.close()

    asyncio.run(main())
    calls = sockets.calls
    assert calls.count("drain") >= 5, calls
    assert calls[0] == "send", calls
    # Each drain follows its tick's send (a late tick sends the frames it missed first).
    assert "drain,drain" not in ",".join(calls), calls
