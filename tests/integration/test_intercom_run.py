"""`intercom run` as a process, driven by the `intercom` command through its control socket.

The daemon runs with mock GPIO, a tone as its microphone and a WAV recording as its speaker, no
SIP server (direct calls); a phone made of our own user agent and media answers in this test's
event loop. press -> the phone rings and answers -> status shows connected -> hangup sends BYE
-> status shows the last call answered with packets both ways -> SIGTERM exits 0.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import sys
import time
from pathlib import Path

import pytest

from intercom.runtime.media_calls import MediaCalls, MediaConfig
from intercom.runtime.ua import UaConfig, UserAgent
from intercom.sip.events import CallEnded, Event, IncomingCallReceived

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

HOST = "127.0.0.1"


async def _intercom(*args: str, env: dict[str, str]) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "intercom", *args, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), 20)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def _status(env: dict[str, str]) -> dict:
    code, out, err = await _intercom("status", "--json", env=env)
    assert code == 0, err
    return json.loads(out)


async def _until(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not await predicate():
        assert time.monotonic() < deadline, f"no {what} within {timeout} s"
        await asyncio.sleep(0.1)


async def _scenario(tmp_path: Path) -> None:
    phone_media = MediaCalls(
        MediaConfig(
            address=HOST,
            bind_host=HOST,
            port_range=(46000, 46999),
            audio_input="tone:1200",
            audio_output="null",
        ),
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
        UaConfig(bind=f"{HOST}:0", user="phone"),
        answer_offer=phone_media.answer_offer,
        on_event=on_event,
    )
    await phone.start()
    socket_path = tmp_path / "control.sock"
    env = {k: v for k, v in os.environ.items() if not k.startswith("INTERCOM_")}
    env.update({
        "INTERCOM_SIP_BIND": f"{HOST}:0",
        "INTERCOM_CALL_TARGET": f"sip:phone@{HOST}:{phone.local_port}",
        "INTERCOM_GPIO": "mock",
        "INTERCOM_AUDIO_INPUT": "tone:500",
        "INTERCOM_AUDIO_OUTPUT": f"wav:{tmp_path / 'door-heard.wav'}",
        "INTERCOM_RTP_PORTS": "47000-47999",
        "INTERCOM_CONTROL_SOCKET": str(socket_path),
    })  # fmt: skip
    daemon = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "intercom", "run", env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:

        async def socket_ready() -> bool:
            return socket_path.exists()

        await _until(socket_ready, 10, "control socket")
        status = await _status(env)
        assert status["registration"]["state"] == "disabled"
        assert status["call"]["state"] == "idle"

        assert (await _intercom("press", env=env))[0] == 0

        async def connected() -> bool:
            return (await _status(env))["call"]["state"] == "connected"

        await _until(connected, 10, "connected call")
        await asyncio.sleep(1.5)
        assert (await _intercom("hangup", env=env))[0] == 0

        async def phone_hung_up() -> bool:
            return bool(ended)

        await _until(phone_hung_up, 5, "BYE at the phone")
        assert ended[0].by_peer
        await asyncio.sleep(0.3)
        last = (await _status(env))["last_call"]
        assert last["outcome"] == "answered", last
        assert last["packets_sent"] > 40 and last["packets_received"] > 40, last
        assert last["packets_lost"] == 0, last

        daemon.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(daemon.wait(), 5)
        assert code == 0
        assert not socket_path.exists()
    finally:
        if daemon.returncode is None:
            daemon.kill()
            await daemon.wait()
        phone_media.close_all()
        await phone.stop()
    assert daemon.stderr is not None
    log = (await daemon.stderr.read()).decode()
    assert "Traceback" not in log, log


def test_intercom_run_press_hangup_status_and_sigterm(tmp_path: Path) -> None:
    asyncio.run(_scenario(tmp_path))
