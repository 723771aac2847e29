"""`intercom run` against sipp as its PBX: register, call, open, hang up, unregister.

The daemon runs as a process with mock GPIO, a WAV file as its microphone and a WAV recording
as its speaker; `intercom press|open|hangup|status` drive it as a user would, and SIGTERM ends
it. sipp plays the PBX of tests/integration/sipp/: its exit status is the verdict on the wire
(each scenario checks what its header comment says), the daemon's status and log the verdict on
the door's side.
"""

from __future__ import annotations

import asyncio
import math
import re
import struct
import wave
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from .daemon_process import DaemonProcess
from .sipp_harness import Sipp, require_sipp

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]

HOST = "127.0.0.1"
PASSWORD = "Door-Pass-7c1e"
PULSE = 0.2


@pytest.fixture(autouse=True, scope="module")
def _sipp_installed() -> None:
    require_sipp()


def write_tone_wav(path: Path, hz: float = 800.0, seconds: float = 2.0, rate: int = 8000) -> None:
    """A mono 16-bit sine, the door's microphone."""
    samples = (
        int(8000 * math.sin(2 * math.pi * hz * n / rate)) for n in range(int(seconds * rate))
    )
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(b"".join(struct.pack("<h", s) for s in samples))


def door_settings(tmp_path: Path, **settings: str) -> dict[str, str]:
    """What every test here gives the daemon, plus ``settings``."""
    microphone = tmp_path / "microphone.wav"
    write_tone_wav(microphone)
    return {
        "INTERCOM_SIP_BIND": f"{HOST}:0",
        "INTERCOM_GPIO": "mock",
        "INTERCOM_DOOR_RELAY_PIN": "22",
        "INTERCOM_DOOR_PULSE": str(PULSE),
        "INTERCOM_AUDIO_INPUT": f"wav:{microphone}",
        "INTERCOM_AUDIO_OUTPUT": f"wav:{tmp_path / 'speaker.wav'}",
        "INTERCOM_RTP_PORTS": "48000-48999",
        "INTERCOM_LOG_LEVEL": "DEBUG",
        **settings,
    }


def assert_clean_log(log: str, *secrets: str) -> None:
    assert "Traceback" not in log, log
    for secret in secrets:
        assert secret not in log, f"{secret!r} leaked into the daemon's log"


# -- A: register, call through the server, open, hang up, unregister -----------------------


async def _register_call_unregister(tmp_path: Path) -> None:
    pbx = Sipp(
        "pbx_register_call.xml",
        calls=2,
        timeout=60,
        recv_timeout=40,
        variables={"password": PASSWORD},
        extra_args=["-rtp_echo"],
    )
    daemon = DaemonProcess(tmp_path, door_settings(
        tmp_path,
        INTERCOM_SIP_SERVER=f"{HOST}:{pbx.port}",
        INTERCOM_SIP_USER="door",
        INTERCOM_SIP_PASSWORD=PASSWORD,
        INTERCOM_SIP_EXPIRES="3600",
        INTERCOM_CALL_TARGET="family",
    ))  # fmt: skip
    async with pbx:
        try:
            await daemon.start()
            status = await daemon.until(
                lambda s: s["registration"]["state"] != "registering", 10, "registration outcome"
            )
            assert {k: v for k, v in status["registration"].items() if k != "since"} == {
                "state": "registered",
                "last_status": 200,
            }  # fmt: skip, status
            assert status["call"]["state"] == "idle"

            assert (await daemon.cli("press"))[0] == 0
            seen: list[str] = []

            def connected(s: dict[str, Any]) -> bool:
                seen.append(str(s["call"]["state"]))
                return seen[-1] == "connected"

            await daemon.until(connected, 10, "connected call")
            assert seen[0] in ("calling", "ringing"), seen
            assert "ringing" in seen, seen  # sipp rings for 1.5 s before it answers

            code, _, err = await daemon.cli("open")
            assert code == 0, err
            status = await daemon.until(lambda s: s["door"]["opened_count"] >= 1, 5, "door opened")
            assert status["door"] == {"opened_count": 1, "locked_out": False}
            assert "door opened from the control socket" in daemon.log()

            await asyncio.sleep(1.0)  # sipp echoes the door's audio meanwhile
            assert (await daemon.cli("hangup"))[0] == 0
            status = await daemon.until(
                lambda s: s["last_call"]["outcome"] is not None, 10, "the call's end"
            )
            last = status["last_call"]
            assert status["call"]["state"] == "idle"
            assert last["outcome"] == "answered", last
            assert last["codec"] == "PCMU", last
            assert last["packets_sent"] > 25 and last["packets_received"] > 25, last
            assert last["duration"] >= 1.0, last

            assert await daemon.terminate() == 0
            result = await pbx.wait(timeout=15)
        finally:
            await daemon.kill()
    assert result.ok, result.explain()
    registers = [m for m in re.split(r"\n-{5,}", result.messages) if "REGISTER sip:" in m]
    assert len(registers) >= 3, result.messages
    assert re.search(r"(?im)^expires:\s*0\s*$|;\s*expires=0\b", registers[-1]), registers[-1]
    assert "un-REGISTER with expires 0" in result.logs, result.logs
    response = re.search(r'response="([0-9a-f]+)"', result.messages)
    assert response is not None, result.messages
    assert_clean_log(daemon.log(), PASSWORD, response.group(1))
    # The call's speaker recording holds sipp's echo of the door's 800 Hz microphone with the
    # "opened" beeps (1500 Hz) laid over it: the beeps did not take the speaker from the call.
    with wave.open(str(tmp_path / "speaker.wav"), "rb") as wav:
        rate = wav.getframerate()
        heard = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2").astype(float)
    assert rate == 8000 and len(heard) >= rate, (rate, len(heard))
    spectrum = np.abs(np.fft.rfft(heard * np.hanning(len(heard)))) ** 2
    freqs = np.fft.rfftfreq(len(heard), 1 / rate)

    def band(hz: float) -> float:
        return float(spectrum[np.abs(freqs - hz) <= 20].sum())

    assert band(800) > 0.3 * spectrum.sum(), "no echo of the microphone in the call"
    assert band(1500) > 100 * band(1100), "no 'opened' beeps in the call's audio"


def test_register_call_open_hangup_and_unregister_through_the_pbx(tmp_path: Path) -> None:
    asyncio.run(_register_call_unregister(tmp_path))


# -- B: intercom hangup while the phone rings is a CANCEL ----------------------------------


async def _cancel_while_ringing(tmp_path: Path) -> None:
    phone = Sipp("callee_no_answer.xml", timeout=40, recv_timeout=30)
    daemon = DaemonProcess(tmp_path, door_settings(
        tmp_path, INTERCOM_CALL_TARGET=f"sip:family@{HOST}:{phone.port}",
    ))  # fmt: skip
    async with phone:
        try:
            await daemon.start()
            assert (await daemon.status())["registration"]["state"] == "disabled"
            assert (await daemon.cli("press"))[0] == 0
            await daemon.until(lambda s: s["call"]["state"] == "ringing", 10, "ringing call")
            assert (await daemon.cli("hangup"))[0] == 0
            status = await daemon.until(
                lambda s: s["last_call"]["outcome"] is not None, 10, "the call's end"
            )
            assert status["last_call"]["outcome"] == "cancelled", status
            assert status["call"]["state"] == "idle"
            result = await phone.wait(timeout=15)
            assert await daemon.terminate() == 0
        finally:
            await daemon.kill()
    assert result.ok, result.explain()
    assert re.search(r"(?m)^CANCEL sip:family@", result.messages), result.messages
    assert_clean_log(daemon.log())


def test_hangup_while_ringing_cancels_the_call(tmp_path: Path) -> None:
    asyncio.run(_cancel_while_ringing(tmp_path))


# -- C: the door code keyed as SIP INFO opens the door and never reaches the log -----------


async def start_and_call(daemon: DaemonProcess) -> dict[str, Any]:
    """Start the daemon, press, and wait for the call (to a phone that keys 2580) to end."""
    await daemon.start()
    assert (await daemon.cli("press"))[0] == 0
    return await daemon.until(lambda s: s["last_call"]["outcome"] is not None, 15, "the end")


async def _door_code_by_info(tmp_path: Path) -> None:
    phone = Sipp("callee_keys_code_by_info.xml", timeout=40, recv_timeout=30)
    daemon = DaemonProcess(tmp_path, door_settings(
        tmp_path, INTERCOM_CALL_TARGET=f"sip:family@{HOST}:{phone.port}",
        INTERCOM_DOOR_CODE="2580",
    ))  # fmt: skip
    async with phone:
        try:
            status = await start_and_call(daemon)
            assert status["door"]["opened_count"] == 1, status
            assert status["last_call"]["outcome"] == "answered", status
            code, out, _ = await daemon.cli("status", "--json")
            assert code == 0 and "2580" not in out
            result = await phone.wait(timeout=15)
            assert await daemon.terminate() == 0
        finally:
            await daemon.kill()
    assert result.ok, result.explain()
    assert "Signal=2" in result.messages  # the code did travel, as INFO bodies
    log = daemon.log()
    assert "door opened by the door code" in log, log
    # At DEBUG the whole SIP traffic is logged, yet no key of the code: not the INFO bodies,
    # not the events that carry them, not the digits the door lock judged.
    assert_clean_log(log, "2580", "Signal=", "DtmfDigit", "dtmf-relay\n\n")
    assert "bytes of application/dtmf-relay>" in log, log


def test_door_code_by_info_opens_and_is_never_logged(tmp_path: Path) -> None:
    asyncio.run(_door_code_by_info(tmp_path))


# -- D: the lockout outlives a killed daemon ----------------------------------------------


async def _lockout_survives_a_kill(tmp_path: Path) -> None:
    state = tmp_path / "state"
    settings = door_settings(
        tmp_path, INTERCOM_DOOR_CODE="1111", INTERCOM_DOOR_CODE_ATTEMPTS="1",
        INTERCOM_DOOR_LOCKOUT="600", INTERCOM_STATE_DIR=str(state),
    )  # fmt: skip
    phone = Sipp("callee_keys_code_by_info.xml", timeout=40, recv_timeout=30)
    settings["INTERCOM_CALL_TARGET"] = f"sip:family@{HOST}:{phone.port}"
    daemon = DaemonProcess(tmp_path, settings)
    async with phone:
        try:
            status = await start_and_call(daemon)
            assert status["door"] == {"opened_count": 0, "locked_out": True}, status
            result = await phone.wait(timeout=15)
            # As a stranger who provoked an out-of-memory kill would have it: no clean stop.
            await daemon.kill()
            kept = state / "state.json"
            assert oct(kept.stat().st_mode & 0o777) == "0o600"
            assert "1111" not in kept.read_text() and "2580" not in kept.read_text()
            await daemon.start()
            status = await daemon.status()
            assert status["door"]["locked_out"] is True, status
            assert await daemon.terminate() == 0
        finally:
            await daemon.kill()
    assert result.ok, result.explain()
    log = daemon.log()
    assert "door code locked out for" in log and "kept across the restart" in log, log
    assert_clean_log(log, "1111", "2580")


def test_the_door_code_lockout_outlives_a_killed_daemon(tmp_path: Path) -> None:
    asyncio.run(_lockout_survives_a_kill(tmp_path))
