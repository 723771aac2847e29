"""The one-number service: two phone implementations on one address of record, through kamailio.

kamailio (Debian) is the registrar and forking proxy, with digest on REGISTER and INVITE. A
baresip phone and a linphone phone (linphonec, headless) both register as ``family``; the door,
`intercom run` as a process, registers as ``door`` and calls ``family`` on a press. Each run:

* both phones ring (the server forked the INVITE);
* one answers; the other gets kamailio's CANCEL and stops ringing;
* the door and the answering phone talk (PCMU): each side plays its own test signal and the
  other side's recording must be that signal (tests/integration/audio_compare.py);
* the call ends by a BYE from the door (`intercom hangup`) or from the phone.

Both orders of answering and both directions of BYE run: linphone answers and the door hangs
up, baresip answers and hangs up itself.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Literal

import pytest

from .audio_compare import Comparison, compare_wavs, make_test_wav
from .baresip_harness import require_baresip
from .kamailio_harness import Kamailio, require_kamailio
from .linphone_harness import require_linphone
from .one_number import door_at, family_phones

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

logger = logging.getLogger(__name__)

PASSWORD = "one-number-7f3a"
TALK_SECONDS = 4.0
SETTLE_SECONDS = 1.0
MIN_CORRELATION = 0.9

Phone = Literal["linphone", "baresip"]


def assert_carries(direction: str, result: Comparison, explain: str) -> None:
    logger.info("- %s: %s", direction, result)
    assert result.local_correlation >= MIN_CORRELATION, f"{direction}: {result}\n{explain}"


async def _one_number_call(tmp_path: Path, answerer: Phone, bye_from: Literal["door", "phone"]):
    require_kamailio(), require_baresip(), require_linphone()
    door_wav, linphone_wav, baresip_wav = (tmp_path / f"{n}.wav" for n in ("door", "lin", "bare"))
    make_test_wav(door_wav, 8000, 20.0, "bursts", seed=11)
    make_test_wav(linphone_wav, 8000, 20.0, "bursts", seed=12)
    make_test_wav(baresip_wav, 8000, 20.0, "bursts", seed=13)
    door_heard = tmp_path / "door-heard.wav"
    async with Kamailio(tmp_path / "kamailio", password=PASSWORD) as server:
        phones = family_phones(tmp_path, server.address, PASSWORD, linphone_wav, baresip_wav)
        async with phones as (linphone, baresip):
            daemon = door_at(
                tmp_path, server.address, PASSWORD, door_wav,
                INTERCOM_AUDIO_OUTPUT=f"wav:{door_heard}", INTERCOM_RTP_PORTS="46000-46999",
            )  # fmt: skip
            async with daemon:
                await daemon.until(
                    lambda s: s["registration"]["state"] == "registered", 10, "registration"
                )
                assert (await daemon.cli("press"))[0] == 0
                linphone_call = await linphone.wait_incoming(10)  # both phones ring
                await baresip.wait_event("CALL_INCOMING", timeout=10)
                if answerer == "linphone":
                    await linphone.answer(linphone_call)
                    closed = await baresip.wait_event("CALL_CLOSED", timeout=10)
                    assert "486" not in (closed.param or ""), baresip.explain()  # cancelled
                else:
                    await baresip.accept()
                    await linphone.wait_ended(linphone_call, 10)  # stopped ringing
                    assert f"Call {linphone_call} with" not in "".join(
                        line for line in linphone.lines if "connected" in line
                    ), linphone.output()  # cancelled, never answered
                await daemon.until(lambda s: s["call"]["state"] == "connected", 10, "answer")
                await asyncio.sleep(TALK_SECONDS)
                if bye_from == "door":
                    assert (await daemon.cli("hangup"))[0] == 0
                elif answerer == "linphone":
                    await linphone.hangup(linphone_call)
                else:
                    await baresip.hangup()
                status = await daemon.until(
                    lambda s: s["last_call"]["outcome"] is not None, 10, "the call's end"
                )
                assert status["last_call"]["outcome"] == "answered", status
                assert status["last_call"]["codec"] == "PCMU", status
                assert await daemon.terminate() == 0
            if answerer == "baresip":
                await baresip.wait_event("CALL_CLOSED", timeout=10)
                phone_heard = (await baresip.recordings())[-1].received
                phone_played = baresip.played
            else:
                await linphone.wait_ended(linphone_call, 10)
                phone_heard, phone_played = linphone.recording, linphone_wav
            explain = f"{daemon.log()[-4000:]}\n{baresip.explain()}\n{linphone.output()[-3000:]}"
    log = daemon.log()
    assert "Traceback" not in log and PASSWORD not in log, log
    assert "180 Ringing from 2 phones" in log, log  # the server forked to both
    to_phone = compare_wavs(door_wav, phone_heard, skip_seconds=SETTLE_SECONDS)
    to_door = compare_wavs(phone_played, door_heard, skip_seconds=SETTLE_SECONDS)
    assert_carries(f"door -> {answerer}", to_phone, explain)
    assert_carries(f"{answerer} -> door", to_door, explain)
    other = baresip_wav if answerer == "linphone" else linphone_wav
    assert compare_wavs(other, door_heard, skip_seconds=SETTLE_SECONDS).local_correlation < 0.3


def test_linphone_answers_and_the_door_hangs_up(tmp_path: Path) -> None:
    asyncio.run(_one_number_call(tmp_path, "linphone", "door"))


def test_baresip_answers_and_hangs_up(tmp_path: Path) -> None:
    asyncio.run(_one_number_call(tmp_path, "baresip", "phone"))
