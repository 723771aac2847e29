"""RTP Bleed against `intercom run`: a stranger sprays the door's RTP port range during a call.

The daemon (mock GPIO, a mock door relay, a door code, a small RTP port range) calls a sipp
callee on 127.0.0.1 that rings for a second and answers with an SDP naming the test's own RTP
socket there: the test plays the phone's media, a PCMU stream every 20 ms, sent (RFC 4961
symmetric RTP) to wherever the door's RTP comes from, and keys digits as RFC 4733
telephone-events when told to. A stranger on 127.0.0.66 sprays every port of the range with
PCMU frames and with the door code as telephone-events, from before the answer until after the
hang-up. It must get nothing from the door and open nothing, while the phone's audio flows
both ways; and the phone's own door code still opens the door (so the test can fail).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import random
import re
import socket
import struct
import wave
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from intercom.media.dtmf import DtmfSender

from .daemon_process import DaemonProcess
from .peer_support import UDP, claim_ports
from .sipp_harness import Sipp, require_sipp

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]

HOST = "127.0.0.1"
STRANGER_HOST = "127.0.0.66"
DOOR_CODE = "863204"  # six digits: a number in the log (an SDP id, a port) is unlikely to be it
RANGE_SIZE = 12  # INTERCOM_RTP_PORTS: six RTP/RTCP pairs, every port of them sprayed
FRAME = 0.02
TALK = 3.0  # seconds of the connected call
MEDIA_LOGGERS = re.compile(
    r"[A-Z]+ intercom\.(media\.|runtime\.(call_media|rtp_socket|media_calls))"
)


@pytest.fixture(autouse=True, scope="module")
def _sipp_installed() -> None:
    require_sipp()


def _rtp(pt: int, seq: int, timestamp: int, ssrc: int, payload: bytes, marker: bool) -> bytes:
    return struct.pack("!BBHII", 0x80, pt | (0x80 if marker else 0), seq & 0xFFFF,
                       timestamp & 0xFFFFFFFF, ssrc) + payload  # fmt: skip


@dataclass
class RtpEndpoint:
    """A UDP socket that sends one packet per 20 ms tick: PCMU, or the digits it was told to key
    as telephone-events (payload type 101) in place of the audio, as a phone does."""

    sock: socket.socket
    ssrc: int
    seq: int = 0
    timestamp: int = 0
    received: int = 0
    sources: set[tuple[str, int]] = field(default_factory=set)
    _events: list[tuple[bytes, bool, int]] = field(default_factory=list)

    def key(self, digits: str) -> None:
        for n, digit in enumerate(digits):
            start = self.timestamp + 1600 * (n + 1)  # each event its own start timestamp
            self._events += [(p, m, start) for p, m in DtmfSender().packets(digit)]
            self._events += [(b"", False, -1)] * 3  # a pause of three audio frames between

    def drain(self) -> None:
        while True:
            try:
                _, source = self.sock.recvfrom(2048)
            except BlockingIOError:
                return
            except OSError:  # an ICMP error reported on the socket
                continue
            self.received += 1
            self.sources.add(source)

    def next_packet(self) -> bytes:
        self.seq += 1
        self.timestamp += 160
        while self._events:
            payload, marker, start = self._events.pop(0)
            if start >= 0:
                return _rtp(101, self.seq, start, self.ssrc, payload, marker)
            break
        return _rtp(0, self.seq, self.timestamp, self.ssrc, b"\x7f" * 160, self.seq == 1)


async def _phone(phone: RtpEndpoint, stop: asyncio.Event) -> None:
    """The phone's media: symmetric RTP, sent to where the door's RTP comes from."""
    while not stop.is_set():
        phone.drain()
        if phone.sources:
            destination = next(iter(phone.sources))
            with contextlib.suppress(OSError):
                phone.sock.sendto(phone.next_packet(), destination)
        await asyncio.sleep(FRAME)


async def _stranger(stranger: RtpEndpoint, keys: str, ports: range, stop: asyncio.Event) -> int:
    """PCMU, and ``keys`` over and over as telephone-events, to every port of the range; returns
    the number of datagrams sent."""
    sent = 0
    stranger.key(keys * 100)
    while not stop.is_set():
        stranger.drain()
        packet = stranger.next_packet()
        audio = _rtp(0, stranger.seq, stranger.timestamp, stranger.ssrc, bytes(160), False)
        for port in ports:
            for data in (packet, audio):
                with contextlib.suppress(OSError):
                    stranger.sock.sendto(data, (HOST, port))
                    sent += 1
        await asyncio.sleep(FRAME)
    return sent


def _microphone(path: Path) -> None:
    rate = 8000
    samples = (int(8000 * math.sin(2 * math.pi * 800 * n / rate)) for n in range(2 * rate))
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(b"".join(struct.pack("<h", s) for s in samples))


def _udp(host: str) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((host, 0))
    sock.setblocking(False)
    return sock


@dataclass
class Outcome:
    connected: dict[str, object]
    final: dict[str, object]
    log: str
    phone: RtpEndpoint
    stranger: RtpEndpoint
    stranger_sent: int


async def _attack(tmp_path: Path, *, phone_keys: str | None, stranger_keys: str) -> Outcome:
    low = claim_ports([UDP] * RANGE_SIZE, even=True)
    ports = range(low, low + RANGE_SIZE)
    rng = random.Random()
    with _udp(HOST) as phone_sock, _udp(STRANGER_HOST) as stranger_sock:
        phone = RtpEndpoint(phone_sock, ssrc=rng.getrandbits(32))
        stranger = RtpEndpoint(stranger_sock, ssrc=rng.getrandbits(32))
        callee = Sipp(
            "callee_answer_media_port.xml",
            timeout=40,
            recv_timeout=30,
            variables={"rtp_port": str(phone_sock.getsockname()[1])},
        )
        microphone = tmp_path / "microphone.wav"
        _microphone(microphone)
        daemon = DaemonProcess(tmp_path, {
            "INTERCOM_SIP_BIND": f"{HOST}:0",
            "INTERCOM_CALL_TARGET": f"sip:family@{HOST}:{callee.port}",
            "INTERCOM_GPIO": "mock",
            "INTERCOM_DOOR_RELAY_PIN": "22",
            "INTERCOM_DOOR_PULSE": "0.2",
            "INTERCOM_DOOR_CODE": DOOR_CODE,
            "INTERCOM_AUDIO_INPUT": f"wav:{microphone}",
            "INTERCOM_AUDIO_OUTPUT": "null",
            "INTERCOM_CODECS": "PCMU",
            "INTERCOM_RTP_PORTS": f"{ports[0]}-{ports[-1]}",
            "INTERCOM_LOG_LEVEL": "DEBUG",
        })  # fmt: skip
        stop = asyncio.Event()
        async with callee:
            try:
                await daemon.start()
                spray = asyncio.create_task(_stranger(stranger, stranger_keys, ports, stop))
                talk = asyncio.create_task(_phone(phone, stop))
                await asyncio.sleep(0.3)  # the stranger sprays before the call exists
                assert (await daemon.cli("press"))[0] == 0
                connected = await daemon.until(
                    lambda s: s["call"]["state"] == "connected", 15, "connected call"
                )
                await asyncio.sleep(TALK / 3)
                if phone_keys is not None:
                    phone.key(phone_keys)
                await asyncio.sleep(2 * TALK / 3)
                assert (await daemon.cli("hangup"))[0] == 0
                final = await daemon.until(
                    lambda s: s["last_call"]["outcome"] is not None, 10, "the call's end"
                )
                await asyncio.sleep(0.3)  # and after the call
                stop.set()
                sent = await asyncio.wait_for(spray, 5)
                await asyncio.wait_for(talk, 5)
                stranger.drain()
                assert await daemon.terminate() == 0
                result = await callee.wait(timeout=15)
            finally:
                stop.set()
                await daemon.kill()
        assert result.ok, result.explain()
    return Outcome(connected, final, daemon.log(), phone, stranger, sent)


def _assert_call_went_on(outcome: Outcome) -> None:
    last = outcome.final["last_call"]
    assert isinstance(last, dict)
    assert last["outcome"] == "answered", last
    frames = TALK / FRAME
    assert outcome.phone.received >= 0.6 * frames, outcome.phone.received  # door -> phone
    assert last["packets_received"] >= 0.6 * frames, last  # phone -> door
    assert last["packets_sent"] >= 0.6 * frames, last
    assert len(outcome.phone.sources) == 1, outcome.phone.sources  # one RTP port of the door


def _assert_quiet_log(outcome: Outcome) -> None:
    log = outcome.log
    assert "Traceback" not in log, log
    # As a token of its own: a random SDP session id may contain the digits by chance.
    assert not re.search(rf"(?<![0-9]){DOOR_CODE}(?![0-9])", log), "the door code reached the log"
    assert STRANGER_HOST not in log, "a stranger's packet was logged"
    lines = log.splitlines()
    media_lines = [line for line in lines if MEDIA_LOGGERS.match(line)]
    assert len(media_lines) <= 10, media_lines  # start, latch, summaries: none per packet
    assert len(lines) < 400, len(lines)  # SIP at DEBUG; thousands of packets left no trace
    summary = re.search(r"x media: (\d+) RTP/RTCP packets from sources other than the call", log)
    assert summary is not None, log
    assert int(summary.group(1)) >= 100, summary.group(0)


def test_a_stranger_spraying_the_rtp_ports_hears_nothing_and_opens_nothing(
    tmp_path: Path,
) -> None:
    outcome = asyncio.run(_attack(tmp_path, phone_keys=None, stranger_keys="*" + DOOR_CODE))
    assert outcome.stranger_sent >= 1000, outcome.stranger_sent
    assert outcome.stranger.received == 0, "the door's audio reached the stranger"
    assert outcome.final["door"] == {"opened_count": 0, "locked_out": False}, outcome.final
    assert "door opened" not in outcome.log
    assert "(door relay): pulse" not in outcome.log  # the mock relay never pulsed
    _assert_call_went_on(outcome)
    _assert_quiet_log(outcome)


def test_the_phones_own_door_code_opens_the_door_meanwhile(tmp_path: Path) -> None:
    """The stranger keys wrong codes meanwhile: had they reached the lock, they would have
    spoilt the phone's entry or locked the door out."""
    outcome = asyncio.run(_attack(tmp_path, phone_keys=DOOR_CODE, stranger_keys="9#"))
    assert outcome.stranger.received == 0, "the door's audio reached the stranger"
    assert outcome.final["door"] == {"opened_count": 1, "locked_out": False}, outcome.final
    assert "door opened by the door code" in outcome.log
    assert "(door relay): pulse" in outcome.log
    _assert_call_went_on(outcome)
    _assert_quiet_log(outcome)
