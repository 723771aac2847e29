"""Host names in a peer's Contact are resolved by the runtime (RFC 3263) before the ACK and
the BYE go out, and a name that does not resolve ends the call with a reason."""

from __future__ import annotations

import asyncio

import pytest

from intercom.runtime.ua import UaConfig, UserAgent
from intercom.sip.events import CallAnswered, CallEnded, CallFailed, IncomingCallReceived
from intercom.sip.locate import HostPort, SrvRecord
from intercom.sip.uri import SipUri

pytestmark = pytest.mark.timeout(20)

SDP = b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"


class PhoneDns:
    """phone.test is 127.0.0.1 when ``known``; nothing else resolves."""

    def __init__(self, known: bool) -> None:
        self.known = known
        self.asked: list[str] = []
        self.srv_asked: list[str] = []

    async def srv(self, name: str) -> list[SrvRecord]:
        self.srv_asked.append(name)
        return []

    async def addresses(self, host: str) -> list[str]:
        self.asked.append(host)
        return ["127.0.0.1"] if self.known and host == "phone.test" else []


async def call_a_phone_named_in_its_contact(known: bool) -> tuple[CallEnded, CallEnded | None]:
    dns = PhoneDns(known)
    door = UserAgent(UaConfig(bind=HostPort("127.0.0.1", 0), user="door"), dns=dns)
    phone = UserAgent(
        UaConfig(bind=HostPort("127.0.0.1", 0), user="phone", advertised_host="phone.test"),
        answer_offer=lambda call_id, offer: SDP,
    )
    await door.start()
    await phone.start()
    try:
        call_id = door.call(SipUri.parse(f"sip:phone@127.0.0.1:{phone.local_port}"), SDP)
        incoming = await phone.wait_for(IncomingCallReceived, 5)
        assert isinstance(incoming, IncomingCallReceived)
        phone.accept(incoming.call_id, SDP)
        assert isinstance(await door.wait_for(CallAnswered, 5), CallAnswered)
        if known:
            await asyncio.sleep(0.2)  # the ACK reaches the phone
            door.hangup(call_id)
            at_door = await door.wait_for(CallEnded, 5)
            at_phone = await phone.wait_for(CallEnded, 5)
            assert isinstance(at_phone, CallEnded)
        else:
            at_door, at_phone = await door.wait_for(CallEnded, 5), None
        assert isinstance(at_door, CallEnded) and "phone.test" in dns.asked
        assert dns.srv_asked == []  # the Contact names its port: no SRV (RFC 3263 §4.2)
        return at_door, at_phone
    finally:
        await door.stop(timeout=0.1)
        await phone.stop(timeout=0.1)


def test_the_ack_and_bye_go_to_the_resolved_contact() -> None:
    at_door, at_phone = asyncio.run(call_a_phone_named_in_its_contact(known=True))
    assert at_door == CallEnded(at_door.call_id, "hung up", by_peer=False)
    assert at_phone == CallEnded(at_door.call_id, "BYE from peer", by_peer=True)


def test_a_contact_that_does_not_resolve_ends_the_call_with_the_reason() -> None:
    at_door, _ = asyncio.run(call_a_phone_named_in_its_contact(known=False))
    assert at_door.reason == "ACK not sent: cannot resolve phone.test"
    assert not at_door.by_peer


class OnceDns:
    """Answers the first question (nothing); any later one never returns."""

    def __init__(self) -> None:
        self.asked = 0

    async def srv(self, name: str) -> list[SrvRecord]:
        return []

    async def addresses(self, host: str) -> list[str]:
        self.asked += 1
        if self.asked > 1:
            await asyncio.Event().wait()
        return []


def test_a_call_target_that_does_not_resolve_fails_after_one_lookup() -> None:
    async def main() -> CallFailed:
        door = UserAgent(UaConfig(bind=HostPort("127.0.0.1", 0), user="door"), dns=OnceDns())
        await door.start()
        try:
            door.call(SipUri.parse("sip:phone@nowhere.test"), SDP)
            failed = await door.wait_for(CallFailed, 5)
            assert isinstance(failed, CallFailed)
            return failed
        finally:
            await door.stop(timeout=0.1)

    failed = asyncio.run(main())
    assert (failed.status, failed.reason) == (None, "unreachable")
