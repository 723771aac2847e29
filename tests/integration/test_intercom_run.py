"""`intercom run` as a process, driven by the `intercom` command through its control socket.

The daemon runs with mock GPIO, a tone as its microphone and a WAV recording as its speaker, no
SIP server (direct calls); a phone made of our own user agent and media answers in this test's
event loop. press -> the phone rings and answers -> status shows connected -> hangup sends BYE
-> status shows the last call answered with packets both ways -> SIGTERM exits 0.
"""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

import pytest

from intercom.app.settings import Settings
from intercom.runtime.media_calls import MediaCalls
from intercom.runtime.ua import UaConfig, UserAgent
from intercom.sip.events import CallEnded, Event, IncomingCallReceived
from intercom.sip.locate import HostPort

from .daemon_process import DaemonProcess

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

HOST = "127.0.0.1"


async def _scenario(tmp_path: Path) -> None:
    phone_media = MediaCalls(
        Settings(
            sip_bind=HostPort(HOST),
            rtp_ports=(46000, 46999),
            audio_input="tone:1200",
            audio_output="null",
        ),
        HOST,
        rng=random.Random(5),
    )
    ended: list[CallEnded] = []

    def on_event(event: Event) -> None:
        phone_media.handle(event)
        if isinstance(event, IncomingCallReceived):
            answer = phone_media.answer_incoming(event.call_id, event.sdp)
            assert answer is not None
            phone.accept(event.call_id, answer)
        elif isinstance(event, CallEnded):
            ended.append(event)

    phone = UserAgent(
        UaConfig(bind=HostPort(HOST, 0), user="phone"),
        answer_offer=phone_media.answer_offer,
        on_event=on_event,
    )
    await phone.start()
    daemon = DaemonProcess(tmp_path, {
        "INTERCOM_SIP_BIND": f"{HOST}:0",
        "INTERCOM_CALL_TARGET": f"sip:phone@{HOST}:{phone.local_port}",
        "INTERCOM_AUDIO_INPUT": "tone:500",
        "INTERCOM_AUDIO_OUTPUT": f"wav:{tmp_path / 'door-heard.wav'}",
        "INTERCOM_RTP_PORTS": "47000-47999",
    })  # fmt: skip
    try:
        await daemon.start()
        status = await daemon.status()
        assert status["registration"]["state"] == "disabled"
        assert status["call"]["state"] == "idle"

        assert (await daemon.cli("press"))[0] == 0
        await daemon.until(lambda s: s["call"]["state"] == "connected", 10, "connected call")
        await asyncio.sleep(1.5)
        assert (await daemon.cli("hangup"))[0] == 0

        deadline = asyncio.get_running_loop().time() + 5
        while not ended:
            assert asyncio.get_running_loop().time() < deadline, "no BYE at the phone within 5 s"
            await asyncio.sleep(0.05)
        assert ended[0].by_peer
        status = await daemon.until(lambda s: s["last_call"]["outcome"] is not None, 5, "last call")
        last = status["last_call"]
        assert last["outcome"] == "answered", last
        assert last["packets_sent"] > 40 and last["packets_received"] > 40, last
        assert last["packets_lost"] == 0, last

        assert await daemon.terminate() == 0
        assert not daemon.socket_path.exists()
    finally:
        await daemon.kill()
        phone_media.close_all()
        await phone.stop()
    assert "Traceback" not in daemon.log(), daemon.log()


def test_intercom_run_press_hangup_status_and_sigterm(tmp_path: Path) -> None:
    asyncio.run(_scenario(tmp_path))
