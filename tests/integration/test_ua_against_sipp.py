"""Our runtime user agent against real sipp peers on 127.0.0.1.

sipp's exit status is the verdict on the wire (each scenario checks what it says in its header
comment); our events are checked too. Every wait is bounded.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from intercom.runtime.ua import UaConfig, UserAgent
from intercom.sip.events import (
    CallAnswered,
    CallEnded,
    CallFailed,
    CallProgressed,
    IncomingCallReceived,
    RegistrationFailed,
    RegistrationSucceeded,
)
from intercom.sip.locate import HostPort
from intercom.sip.registration import RegistrationState
from intercom.sip.uri import SipUri

from .sipp_harness import Sipp, SippResult, require_sipp

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]

SDP = (
    b"v=0\r\no=door 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    b"m=audio 40000 RTP/AVP 0 8\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n"
)


@pytest.fixture(autouse=True, scope="module")
def _sipp_installed() -> None:
    require_sipp()


def ua_config(**overrides: object) -> UaConfig:
    config = UaConfig(bind=HostPort("127.0.0.1", 0), user="door", keepalive_interval=None)
    for name, value in overrides.items():
        setattr(config, name, value)
    return config


async def with_peer(
    sipp: Sipp, ua: UserAgent, drive: Callable[[UserAgent, Sipp], Awaitable[None]]
) -> SippResult:
    """Start sipp, then the UA, drive it, and collect sipp's verdict (UA stopped after)."""
    async with sipp:
        await ua.start()
        try:
            try:
                await drive(ua, sipp)
            except Exception as exc:  # keep sipp's side of the story for the failure report
                seen = await sipp.stop()
                raise AssertionError(f"{exc!r} while driving the UA\n{seen.explain()}") from exc
            return await sipp.wait(timeout=30)
        finally:
            await ua.stop(timeout=3)


def run(sipp: Sipp, ua: UserAgent, drive: Callable[[UserAgent, Sipp], Awaitable[None]]) -> None:
    result = asyncio.run(with_peer(sipp, ua, drive))
    assert result.returncode == 0, result.explain()


def target(sipp: Sipp, user: str = "family") -> str:
    uri = f"sip:{user}@127.0.0.1:{sipp.port}"
    return uri + (";transport=tcp" if sipp.transport == "tcp" else "")


# -- registration -------------------------------------------------------------------------


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_digest_registration_then_unregister(transport: str) -> None:
    sipp = Sipp("registrar_digest.xml", transport=transport, timeout=30)  # type: ignore[arg-type]
    ua = UserAgent(
        ua_config(server=HostPort("127.0.0.1", sipp.port), password="secret", transport=transport)
    )

    async def drive(ua: UserAgent, sipp: Sipp) -> None:
        event = await ua.wait_for((RegistrationSucceeded, RegistrationFailed), 10)
        assert isinstance(event, RegistrationSucceeded), event
        assert event.expires == 60
        assert ua.endpoint.registration is not None
        assert ua.endpoint.registration.last_status == 200
        await ua.stop(timeout=5)  # un-REGISTER, Expires 0, answered 200
        assert ua.endpoint.registration.state is RegistrationState.UNREGISTERED

    run(sipp, ua, drive)


def test_wrong_password_fails_after_one_retry() -> None:
    sipp = Sipp("registrar_wrong_password.xml", timeout=20)
    ua = UserAgent(ua_config(server=HostPort("127.0.0.1", sipp.port), password="not-the-password"))

    async def drive(ua: UserAgent, sipp: Sipp) -> None:
        event = await ua.wait_for((RegistrationSucceeded, RegistrationFailed), 10)
        assert isinstance(event, RegistrationFailed)
        assert event.status == 401
        assert "intercom.test" in event.reason
        assert event.retry_in >= 10  # not hammered: sipp fails on a third REGISTER within 3 s
        result = await sipp.wait(timeout=10)
        assert result.returncode == 0, result.explain()

    run(sipp, ua, drive)


def test_423_interval_too_brief_is_honoured() -> None:
    sipp = Sipp("registrar_423.xml", timeout=30)
    ua = UserAgent(ua_config(server=HostPort("127.0.0.1", sipp.port), expires=60))

    async def drive(ua: UserAgent, sipp: Sipp) -> None:
        event = await ua.wait_for((RegistrationSucceeded, RegistrationFailed), 10)
        assert isinstance(event, RegistrationSucceeded), event
        assert event.expires == 120
        await ua.stop(timeout=5)

    run(sipp, ua, drive)


# -- calls from the door ------------------------------------------------------------------


def test_proxy_demanding_407_on_invite() -> None:
    sipp = Sipp("proxy_407_invite.xml", timeout=30)
    ua = UserAgent(ua_config(password="secret"))

    async def drive(ua: UserAgent, sipp: Sipp) -> None:
        call_id = ua.call(SipUri.parse(target(sipp)), SDP)
        answered = await ua.wait_for((CallAnswered, CallFailed), 10)
        assert isinstance(answered, CallAnswered), answered
        assert answered.call_id == call_id and answered.sdp
        ua.hangup(call_id)

    run(sipp, ua, drive)


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_callee_answers_then_hangs_up(transport: str) -> None:
    sipp = Sipp("callee_answer_bye_from_peer.xml", transport=transport, timeout=30)  # type: ignore[arg-type]
    ua = UserAgent(ua_config(transport=transport))

    async def drive(ua: UserAgent, sipp: Sipp) -> None:
        call_id = ua.call(SipUri.parse(target(sipp)), SDP)
        answered = await ua.wait_for((CallAnswered, CallFailed), 10)
        assert isinstance(answered, CallAnswered), answered
        ended = await ua.wait_for(CallEnded, 10)
        assert isinstance(ended, CallEnded)
        assert ended.call_id == call_id and ended.by_peer

    run(sipp, ua, drive)


def test_door_hangs_up_an_answered_call() -> None:
    sipp = Sipp("callee_answer_bye_from_ua.xml", timeout=30)
    ua = UserAgent(ua_config())

    async def drive(ua: UserAgent, sipp: Sipp) -> None:
        call_id = ua.call(SipUri.parse(target(sipp)), SDP)
        answered = await ua.wait_for((CallAnswered, CallFailed), 10)
        assert isinstance(answered, CallAnswered), answered
        await asyncio.sleep(0.2)
        assert ua.hangup(call_id)

    run(sipp, ua, drive)


def test_busy_callee() -> None:
    sipp = Sipp("callee_busy.xml", timeout=20)
    ua = UserAgent(ua_config())

    async def drive(ua: UserAgent, sipp: Sipp) -> None:
        ua.call(SipUri.parse(target(sipp)), SDP)
        failed = await ua.wait_for((CallAnswered, CallFailed), 10)
        assert isinstance(failed, CallFailed), failed
        assert failed.status == 486 and failed.reason == "busy"

    run(sipp, ua, drive)


def test_unanswered_call_is_cancelled() -> None:
    sipp = Sipp("callee_no_answer.xml", timeout=30)
    ua = UserAgent(ua_config())

    async def drive(ua: UserAgent, sipp: Sipp) -> None:
        call_id = ua.call(SipUri.parse(target(sipp)), SDP)
        ringing = await ua.wait_for(CallProgressed, 10)
        assert isinstance(ringing, CallProgressed) and ringing.status == 180
        ua.hangup(call_id)  # the ring timeout of the application does the same
        failed = await ua.wait_for((CallAnswered, CallFailed), 10)
        assert isinstance(failed, CallFailed), failed
        assert failed.status == 487 and failed.reason == "cancelled"

    run(sipp, ua, drive)


def test_forked_call_answered_twice_leaves_no_ghost_leg() -> None:
    sipp = Sipp("forking_two_answers.xml", timeout=40)
    ua = UserAgent(ua_config())

    async def drive(ua: UserAgent, sipp: Sipp) -> None:
        call_id = ua.call(SipUri.parse(target(sipp)), SDP)
        answered = await ua.wait_for((CallAnswered, CallFailed), 10)
        assert isinstance(answered, CallAnswered), answered
        assert "forkA" in answered.remote
        await asyncio.sleep(1.0)  # the second 200 arrives, is ACKed and BYEd meanwhile
        assert ua.endpoint.active_call_ids() == [call_id]
        ua.hangup(call_id)

    run(sipp, ua, drive)


# -- requests to the door -----------------------------------------------------------------


def test_options_probe_is_answered() -> None:
    ua = UserAgent(ua_config())

    async def main() -> SippResult:
        await ua.start()
        try:
            async with Sipp("options_prober.xml", remote=("127.0.0.1", ua.local_port)) as sipp:
                return await sipp.wait(timeout=15)
        finally:
            await ua.stop()

    result = asyncio.run(main())
    assert result.returncode == 0, result.explain()


def test_incoming_call_answered_and_ended_by_caller() -> None:
    ua = UserAgent(ua_config(), answer_offer=lambda call_id, offer: SDP)

    async def main() -> SippResult:
        await ua.start()
        try:
            async with Sipp("caller_incoming.xml", remote=("127.0.0.1", ua.local_port)) as sipp:
                incoming = await ua.wait_for(IncomingCallReceived, 10)
                assert isinstance(incoming, IncomingCallReceived)
                assert incoming.source_host == "127.0.0.1" and incoming.sdp
                ua.ring(incoming.call_id)
                ua.accept(incoming.call_id, SDP)
                ended = await ua.wait_for(CallEnded, 10)
                assert isinstance(ended, CallEnded) and ended.by_peer
                return await sipp.wait(timeout=15)
        finally:
            await ua.stop()

    result = asyncio.run(main())
    assert result.returncode == 0, result.explain()


def test_incoming_call_rejected() -> None:
    ua = UserAgent(ua_config())

    async def main() -> SippResult:
        await ua.start()
        try:
            remote = ("127.0.0.1", ua.local_port)
            async with Sipp(
                "caller_incoming_rejected.xml", remote=remote, variables={"status": "403"}
            ) as sipp:
                incoming = await ua.wait_for(IncomingCallReceived, 10)
                ua.reject(incoming.call_id, 403)  # type: ignore[attr-defined]
                return await sipp.wait(timeout=15)
        finally:
            await ua.stop()

    result = asyncio.run(main())
    assert result.returncode == 0, result.explain()
