"""SRTP (SDES) through kamailio over TLS, against baresip phones.

The door registers over TLS at kamailio, as in ``test_kamailio_tls``; ``INTERCOM_SRTP`` is not
set, so it is ``mandatory`` (the default with TLS):

* a phone with ``mediaenc=srtp-mand`` answers: audio compares both ways through SRTP, and no RTP
  payload on the door's ports is the cleartext G.711 of either side's known source (each
  packet carries its 80-bit tag);
* a phone without SRTP is refused: the call fails, the door's log says SRTP was refused or the
  phone refused RTP/SAVP, and the door never sends a single RTP packet;
* with ``INTERCOM_SRTP=optional`` a phone without SRTP gets RTP in clear (the fallback);
* the same phone calling the door (an allowed caller, through kamailio, down the door's TLS
  connection) is answered in SRTP: audio compares both ways and no payload is in clear.
"""

from __future__ import annotations

import asyncio
import wave
from pathlib import Path

import pytest

from benchmarks.capture import Capture
from intercom.media.g711 import ulaw_encode

from ..tls_certs import make_ca
from .audio_compare import compare_wavs, make_test_wav
from .baresip_harness import BaresipPeer, require_baresip
from .daemon_process import DaemonProcess
from .kamailio_harness import Kamailio, require_kamailio
from .one_number import door_at

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]

PASSWORD = "srtp-door-7e1a"
NAME = "localhost"
TALK_SECONDS = 3.0
SETTLE_SECONDS = 1.0
RTP_PORTS = range(46000, 46100)


def door(tmp_path: Path, server: Kamailio, ca_file: Path, microphone: Path,
         **settings: str) -> DaemonProcess:  # fmt: skip
    return door_at(
        tmp_path, f"{NAME}:{server.tls_port}", PASSWORD, microphone,
        INTERCOM_SIP_TRANSPORT="tls", INTERCOM_TLS_CA_FILE=str(ca_file),
        INTERCOM_RTP_PORTS=f"{RTP_PORTS.start}-{RTP_PORTS.stop - 1}", **settings,
    )  # fmt: skip


def ulaw_of(path: Path) -> bytes:
    with wave.open(str(path)) as wav:
        return ulaw_encode(wav.readframes(wav.getnframes()))


Result = tuple[dict[str, object], str, Capture, Path, Path]


async def call(tmp_path: Path, phone_encryption: str | None, door_wav: Path, phone_wav: Path,
               **settings: str) -> Result:  # fmt: skip
    """One press: the door calls ``family``; returns the last call, the door's log, the capture
    of the door's RTP ports, what the phone heard and what it played."""
    ca = make_ca(tmp_path / "ca")
    door_heard = tmp_path / "door-heard.wav"
    kamailio = Kamailio(tmp_path / "kamailio", password=PASSWORD, tls=ca.server(NAME))
    phone = BaresipPeer(
        phone_wav, user="family", workdir=tmp_path / "baresip", registrar=kamailio.address,
        password=PASSWORD, media_encryption=phone_encryption,
    )  # fmt: skip
    with Capture(ports=RTP_PORTS, keep=None) as capture:
        async with kamailio, phone:
            await phone.wait_registered()
            daemon = door(tmp_path, kamailio, ca.cert, door_wav,
                          INTERCOM_AUDIO_OUTPUT=f"wav:{door_heard}", **settings)  # fmt: skip
            async with daemon:
                await daemon.until(
                    lambda s: s["registration"]["state"] == "registered", 10, "registration"
                )
                assert (await daemon.cli("press"))[0] == 0
                status = await daemon.until(
                    lambda s: s["call"]["state"] == "connected"
                    or s["last_call"]["outcome"] is not None, 10, "answer or failure",
                )  # fmt: skip
                if status["last_call"]["outcome"] is None:
                    await asyncio.sleep(TALK_SECONDS)
                    await phone.hangup()
                    status = await daemon.until(
                        lambda s: s["last_call"]["outcome"] is not None, 10, "the call's end"
                    )
                assert await daemon.terminate() == 0
            last_call = status["last_call"]
            assert isinstance(last_call, dict)
            phone_heard = tmp_path / "none.wav"
            if last_call["outcome"] == "answered":
                await phone.wait_event("CALL_CLOSED", timeout=10)
                phone_heard = (await phone.recordings())[-1].received
    return last_call, daemon.log(), capture, phone_heard, door_heard


def assert_srtp_both_ways(result: Result, door_wav: Path, phone_wav: Path) -> None:
    """An answered call in SRTP: audio compares both ways, no key in the log, and no RTP
    payload on the door's ports is the cleartext G.711 of either side's source."""
    last_call, log, capture, phone_heard, door_heard = result
    assert last_call["outcome"] == "answered", last_call
    assert "Traceback" not in log and "SRTP AES_CM_128_HMAC_SHA1_80" in log, log
    assert "inline:" not in log.replace("inline:<redacted>", ""), "a key reached the log"
    to_phone = compare_wavs(door_wav, phone_heard, skip_seconds=SETTLE_SECONDS)
    to_door = compare_wavs(phone_wav, door_heard, skip_seconds=SETTLE_SECONDS)
    assert to_phone.local_correlation >= 0.9, to_phone
    assert to_door.local_correlation >= 0.9, to_door
    rtp = [p for port in RTP_PORTS[::2] for p in capture.payloads("udp", port)]
    assert len(rtp) > 200, "RTP crossed the door's ports both ways"
    clear = ulaw_of(door_wav) + ulaw_of(phone_wav)
    assert all(len(p) == 12 + 160 + 10 for p in rtp)  # PCMU, 20 ms, an 80-bit tag
    in_clear = [p for p in rtp if p[12:172] in clear]
    assert in_clear == [], f"{len(in_clear)} RTP payloads are the cleartext audio"


def test_audio_both_ways_through_srtp_and_no_payload_in_clear(tmp_path: Path) -> None:
    require_kamailio(), require_baresip()
    door_wav, phone_wav = tmp_path / "door.wav", tmp_path / "phone.wav"
    make_test_wav(door_wav, 8000, 20.0, "bursts", seed=31)
    make_test_wav(phone_wav, 8000, 20.0, "bursts", seed=32)
    result = asyncio.run(call(tmp_path, "srtp-mand", door_wav, phone_wav))
    assert_srtp_both_ways(result, door_wav, phone_wav)


def test_a_phone_without_srtp_is_refused_and_no_rtp_is_sent(tmp_path: Path) -> None:
    require_kamailio(), require_baresip()
    door_wav, phone_wav = tmp_path / "door.wav", tmp_path / "phone.wav"
    make_test_wav(door_wav, 8000, 5.0, "bursts", seed=33)
    make_test_wav(phone_wav, 8000, 5.0, "bursts", seed=34)
    last_call, log, capture, _, _ = asyncio.run(call(tmp_path, None, door_wav, phone_wav))
    assert last_call["outcome"] == "failed", last_call
    assert "Traceback" not in log, log
    # baresip without SRTP refuses an RTP/SAVP offer ("no common audio codecs"): 488
    assert "failed: failed (488)" in log, log
    sent = [p for p in capture.packets() if p.protocol == "udp" and p.src[1] in RTP_PORTS]
    assert sent == [], "the door sent RTP to a phone without SRTP"


def test_optional_falls_back_to_rtp_with_a_plain_phone(tmp_path: Path) -> None:
    require_kamailio(), require_baresip()
    door_wav, phone_wav = tmp_path / "door.wav", tmp_path / "phone.wav"
    make_test_wav(door_wav, 8000, 20.0, "bursts", seed=35)
    make_test_wav(phone_wav, 8000, 20.0, "bursts", seed=36)
    last_call, log, _, phone_heard, _ = asyncio.run(
        call(tmp_path, None, door_wav, phone_wav, INTERCOM_SRTP="optional")
    )
    assert last_call["outcome"] == "answered", last_call
    assert "RTP in clear" in log, log
    to_phone = compare_wavs(door_wav, phone_heard, skip_seconds=SETTLE_SECONDS)
    assert to_phone.local_correlation >= 0.9, to_phone


async def incoming_call(tmp_path: Path, door_wav: Path, phone_wav: Path) -> Result:
    """The phone (``srtp-mand``) calls the door through kamailio; the door, which allows it,
    answers; the phone hangs up. Returns as :func:`call` does."""
    ca = make_ca(tmp_path / "ca")
    door_heard = tmp_path / "door-heard.wav"
    kamailio = Kamailio(tmp_path / "kamailio", password=PASSWORD, tls=ca.server(NAME))
    phone = BaresipPeer(
        phone_wav, user="family", workdir=tmp_path / "baresip", registrar=kamailio.address,
        password=PASSWORD, media_encryption="srtp-mand",
    )  # fmt: skip
    with Capture(ports=RTP_PORTS, keep=None) as capture:
        async with kamailio, phone:
            await phone.wait_registered()
            daemon = door(tmp_path, kamailio, ca.cert, door_wav,
                          INTERCOM_AUDIO_OUTPUT=f"wav:{door_heard}",
                          INTERCOM_ALLOWED_CALLERS="family")  # fmt: skip
            async with daemon:
                await daemon.until(
                    lambda s: s["registration"]["state"] == "registered", 10, "registration"
                )
                await phone.dial(f"sip:door@{kamailio.address}")
                await daemon.until(lambda s: s["call"]["state"] == "connected", 10, "answer")
                await asyncio.sleep(TALK_SECONDS)
                await phone.hangup()
                status = await daemon.until(
                    lambda s: s["last_call"]["outcome"] is not None, 10, "the call's end"
                )
                assert await daemon.terminate() == 0
            await phone.wait_event("CALL_CLOSED", timeout=10)
            phone_heard = (await phone.recordings())[-1].received
    last_call = status["last_call"]
    assert isinstance(last_call, dict)
    return last_call, daemon.log(), capture, phone_heard, door_heard


def test_an_allowed_caller_with_srtp_is_answered_in_srtp(tmp_path: Path) -> None:
    require_kamailio(), require_baresip()
    door_wav, phone_wav = tmp_path / "door.wav", tmp_path / "phone.wav"
    make_test_wav(door_wav, 8000, 20.0, "bursts", seed=37)
    make_test_wav(phone_wav, 8000, 20.0, "bursts", seed=38)
    result = asyncio.run(incoming_call(tmp_path, door_wav, phone_wav))
    assert "incoming call from sip:family@" in result[1], result[1]
    assert_srtp_both_ways(result, door_wav, phone_wav)
