"""Our runtime user agent against sipp as a callee behind an RFC 2543 strict router."""

from __future__ import annotations

import asyncio

import pytest

from intercom.runtime.ua import UserAgent
from intercom.sip.events import CallAnswered, CallFailed
from intercom.sip.uri import SipUri

from .sipp_harness import Sipp, require_sipp
from .test_ua_against_sipp import SDP, run, target, ua_config

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]


def test_the_ack_and_bye_go_through_a_strict_router() -> None:
    require_sipp()
    sipp = Sipp("callee_strict_router.xml", timeout=30)
    ua = UserAgent(ua_config())

    async def drive(ua: UserAgent, sipp: Sipp) -> None:
        call_id = ua.call(SipUri.parse(target(sipp)), SDP)
        answered = await ua.wait_for((CallAnswered, CallFailed), 10)
        assert isinstance(answered, CallAnswered), answered
        await asyncio.sleep(0.2)
        assert ua.hangup(call_id)

    run(sipp, ua, drive)
