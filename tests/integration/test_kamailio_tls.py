"""SIP over TLS against kamailio's TLS module, with a test CA made by the test.

`intercom run` registers as ``door`` over TLS at ``localhost`` (the certificate's dNSName; the
door opens no TLS listener), a baresip phone registers as ``family`` over UDP; a press calls the
phone through kamailio, the phone answers, audio goes both ways, the phone hangs up (its BYE
reaches the door over the door's own TLS connection: RFC 5923's alias). What crosses the TLS
port on ``lo`` holds no cleartext ``SIP/2.0`` while the UDP side shows it does hold SIP (the
capture works). A door given another CA refuses to register: one warning line in its log, the
same reason in ``status``: which name, which check.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from benchmarks.capture import Capture

from ..tls_certs import make_ca
from .audio_compare import compare_wavs, make_test_wav
from .baresip_harness import BaresipPeer, require_baresip
from .daemon_process import DaemonProcess
from .kamailio_harness import Kamailio, require_kamailio
from .one_number import door_at

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]

PASSWORD = "tls-door-51c2"
NAME = "localhost"  # resolves without DNS (/etc/hosts); the certificate names it
TALK_SECONDS = 3.0
SETTLE_SECONDS = 1.0


def door_over_tls(tmp_path: Path, server: Kamailio, ca_file: Path, microphone: Path,
                  **settings: str) -> DaemonProcess:  # fmt: skip
    return door_at(
        tmp_path, f"{NAME}:{server.tls_port}", PASSWORD, microphone,
        INTERCOM_SIP_TRANSPORT="tls", INTERCOM_TLS_CA_FILE=str(ca_file),
        **{"INTERCOM_SRTP": "off", **settings},  # SRTP: test_kamailio_srtp
    )  # fmt: skip


def test_the_door_registers_and_calls_a_phone_over_tls_with_nothing_in_clear(
    tmp_path: Path,
) -> None:
    require_kamailio(), require_baresip()
    ca = make_ca(tmp_path / "ca")
    door_wav, phone_wav = tmp_path / "door.wav", tmp_path / "phone.wav"
    make_test_wav(door_wav, 8000, 20.0, "bursts", seed=21)
    make_test_wav(phone_wav, 8000, 20.0, "bursts", seed=22)
    door_heard = tmp_path / "door-heard.wav"

    async def main() -> tuple[str, Capture, int, int, Path, Path]:
        kamailio = Kamailio(tmp_path / "kamailio", password=PASSWORD, tls=ca.server(NAME))
        phone = BaresipPeer(
            phone_wav, user="family", workdir=tmp_path / "baresip",
            registrar=kamailio.address, password=PASSWORD,
        )  # fmt: skip
        with Capture(ports={kamailio.port, kamailio.port + 1}, tcp=True, keep=None) as capture:
            async with kamailio, phone:
                await phone.wait_registered()
                daemon = door_over_tls(
                    tmp_path, kamailio, ca.cert, door_wav,
                    INTERCOM_AUDIO_OUTPUT=f"wav:{door_heard}", INTERCOM_RTP_PORTS="47000-47999",
                )  # fmt: skip
                async with daemon:
                    await daemon.until(
                        lambda s: s["registration"]["state"] == "registered", 10, "registration"
                    )
                    assert (await daemon.cli("press"))[0] == 0
                    await daemon.until(lambda s: s["call"]["state"] == "connected", 10, "answer")
                    await asyncio.sleep(TALK_SECONDS)
                    await phone.hangup()  # its BYE comes back over the door's TLS connection
                    status = await daemon.until(
                        lambda s: s["last_call"]["outcome"] is not None, 10, "the call's end"
                    )
                    assert status["last_call"]["outcome"] == "answered", status
                    assert await daemon.terminate() == 0
                await phone.wait_event("CALL_CLOSED", timeout=10)
                phone_heard = (await phone.recordings())[-1].received
        return daemon.log(), capture, kamailio.port, kamailio.tls_port, phone_heard, phone.played

    log, capture, udp_port, tls_port, phone_heard, phone_played = asyncio.run(main())
    assert "Traceback" not in log and PASSWORD not in log, log
    tls_bytes = b"".join(capture.payloads("tcp", tls_port))
    assert len(tls_bytes) > 2000, "the REGISTERs, INVITE, BYE and keepalives crossed the TLS port"
    assert b"SIP/2.0" not in tls_bytes and b"REGISTER" not in tls_bytes and b"door" not in tls_bytes
    assert any(b"SIP/2.0" in p for p in capture.payloads("udp", udp_port))  # the phone's side
    to_phone = compare_wavs(door_wav, phone_heard, skip_seconds=SETTLE_SECONDS)
    to_door = compare_wavs(phone_played, door_heard, skip_seconds=SETTLE_SECONDS)
    assert to_phone.local_correlation >= 0.9, to_phone
    assert to_door.local_correlation >= 0.9, to_door


def test_a_door_given_another_ca_refuses_to_register_in_one_clear_line(tmp_path: Path) -> None:
    require_kamailio()
    ca, other = make_ca(tmp_path / "ca"), make_ca(tmp_path / "other", "Other CA")
    microphone = tmp_path / "door.wav"
    make_test_wav(microphone, 8000, 5.0, "bursts", seed=23)

    async def main() -> tuple[dict[str, object], str, int]:
        async with Kamailio(tmp_path / "kamailio", password=PASSWORD, tls=ca.server(NAME)) as k:
            async with door_over_tls(tmp_path, k, other.cert, microphone) as daemon:
                status = await daemon.until(
                    lambda s: s["registration"]["state"] == "failed", 10, "a refusal"
                )
                assert await daemon.terminate() == 0
            kamailio_log = k.log()
            return status["registration"], daemon.log() + "\n@@@" + kamailio_log, k.tls_port

    registration, log, port = asyncio.run(main())
    reason = (
        f"tls:127.0.0.1:{port}: certificate of {NAME} refused: unknown CA "
        "(unable to get local issuer certificate)"
    )
    assert str(registration["reason"]).startswith(f"{reason}; retrying in "), registration
    door_log = log
    # The reason is logged once; the "ready" summary may name the registration's state too when
    # the refusal came before READY (which it does, or not, by a few milliseconds).
    refusals = [
        line
        for line in log.splitlines()
        if "refused" in line
        and "DEBUG" not in line
        and "intercom.runtime.daemon: - ready:" not in line
    ]
    assert refusals and all(line.startswith("WARNING intercom.sip.registration: registration at ")
                            and reason in line for line in refusals), door_log  # fmt: skip
    assert "Traceback" not in door_log, door_log
