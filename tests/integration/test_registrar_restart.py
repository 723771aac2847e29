"""The day the PBX reboots: kamailio stopped and started again on its port, with an empty
location table, and the door registered again within a bound, so that a press rings a phone.

* TCP: the registration's connection stays open past the (shortened) idle timeout, kept alive by
  RFC 5626 CRLF pings; kamailio's exit closes it, and that makes the door register again at once.
* UDP: the next keepalive to the stopped kamailio draws an ICMP port unreachable, which fails the
  flow; the door climbs its retry ladder and registers as soon as kamailio answers again.

The door is the runtime's UserAgent in-process (its keepalive interval and idle timeout
injected); the phone is linphone, registering at the restarted kamailio.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from intercom.runtime.ua import UaConfig, UserAgent
from intercom.sip.events import RegistrationFailed, RegistrationSucceeded
from intercom.sip.locate import HostPort
from intercom.sip.uri import SipUri

from .audio_compare import make_test_wav
from .kamailio_harness import Kamailio, require_kamailio
from .linphone_harness import LinphonePeer, require_linphone

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]

PASSWORD = "restart-5e2a"
KEEPALIVE = 0.5
IDLE_TIMEOUT = 1.0
BOUND = 8.0  # the retry ladder's first step is at most 5 s
OFFER = (b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
         b"m=audio 45990 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n")  # fmt: skip


async def _restart(tmp_path: Path, transport: str) -> float:
    require_kamailio(), require_linphone()
    phone_wav = tmp_path / "phone.wav"
    make_test_wav(phone_wav, 8000, 5.0, "bursts", seed=31)
    server = Kamailio(tmp_path / "kamailio", password=PASSWORD)
    await server.start()
    door = UserAgent(
        UaConfig(bind=HostPort("127.0.0.1", 0), server=HostPort("127.0.0.1", server.port),
                 transport=transport, user="door", password=PASSWORD,
                 keepalive_interval=KEEPALIVE, idle_timeout=IDLE_TIMEOUT)
    )  # fmt: skip
    try:
        await door.start()
        await door.wait_for(RegistrationSucceeded, 10)
        await asyncio.sleep(2 * IDLE_TIMEOUT)
        if transport == "tcp":  # the flow outlived the idle timeout
            assert door._transport.connection_count == 1
        assert door.events.empty(), "re-registered before the restart"
        loop = asyncio.get_running_loop()
        await server.stop()
        if transport == "udp":  # nothing closes: the next keepalive's ICMP error tells
            await door.wait_for(RegistrationFailed, 10 * KEEPALIVE)
        started = loop.time()
        await server.start()  # the same port, an empty location table
        await door.wait_for(RegistrationSucceeded, BOUND)
        recovered = loop.time() - started
        async with LinphonePeer(phone_wav, tmp_path / "linphone") as phone:
            await phone.register("family", server.address, PASSWORD)
            target = SipUri("127.0.0.1", "family", server.port)
            if transport == "tcp":
                target = target.with_params(transport="tcp")
            call_id = door.call(target, OFFER)  # the next press rings
            await phone.wait_incoming(10)
            door.hangup(call_id)
        return recovered
    finally:
        await door.stop()
        await server.stop()


@pytest.mark.parametrize("transport", ["tcp", "udp"])
def test_door_registers_again_after_the_registrar_restarts(tmp_path: Path, transport: str) -> None:
    assert asyncio.run(_restart(tmp_path, transport)) < BOUND
