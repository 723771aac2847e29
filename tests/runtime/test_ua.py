"""Two runtime user agents on loopback: real sockets, real clock, bounded waits."""

from __future__ import annotations

import asyncio
import socket

import pytest

from intercom.app.settings import Settings
from intercom.runtime.ua import UaConfig, UserAgent
from intercom.sip.events import CallAnswered, CallEnded, CallFailed, IncomingCallReceived
from intercom.sip.locate import HostPort
from intercom.sip.message import Response, parse_message
from intercom.sip.uri import SipUri

SDP = b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"


def test_the_user_agent_takes_its_part_of_the_settings() -> None:
    settings = Settings(
        sip_server=HostPort("pbx.example", 5070), sip_user="door", sip_password="pw",
        sip_auth_user="door-auth", sip_expires=300, sip_outbound_proxy=HostPort("192.0.2.5"),
        sip_transport="tls", sip_bind=HostPort("::", 5061), tls_ca_file="/etc/ca.pem",
        tls_verify=False,
    )  # fmt: skip
    config = UaConfig.from_settings(settings, instance_id="urn:uuid:1")
    assert config == UaConfig(
        bind=HostPort("::", 5061), server=HostPort("pbx.example", 5070), transport="tls",
        user="door", password="pw", auth_user="door-auth", expires=300,
        outbound_proxy=HostPort("192.0.2.5"), instance_id="urn:uuid:1",
        tls_ca_file="/etc/ca.pem", tls_verify=False,
    )  # fmt: skip
    bare = UaConfig.from_settings(Settings())  # no user: "intercom"; no CA file: the system's
    assert (bare.user, bare.tls_ca_file, bare.server) == ("intercom", None, None)


async def call_and_hang_up(transport: str, *, callee_hangs_up: bool) -> None:
    door = UserAgent(UaConfig(bind=HostPort("127.0.0.1", 0), user="door", transport=transport))
    phone = UserAgent(
        UaConfig(bind=HostPort("127.0.0.1", 0), user="phone"), answer_offer=lambda call_id, o: SDP
    )
    await door.start()
    await phone.start()
    try:
        target = f"sip:phone@127.0.0.1:{phone.local_port}"
        if transport == "tcp":
            target += ";transport=tcp"
        call_id = door.call(SipUri.parse(target), SDP)
        incoming = await phone.wait_for(IncomingCallReceived, 5)
        assert isinstance(incoming, IncomingCallReceived)
        assert incoming.sdp == SDP and incoming.source_host == "127.0.0.1"
        phone.ring(incoming.call_id)
        phone.accept(incoming.call_id, SDP)
        answered = await door.wait_for(CallAnswered, 5)
        assert isinstance(answered, CallAnswered) and answered.call_id == call_id
        if callee_hangs_up:
            phone.hangup(incoming.call_id)
            ended = await door.wait_for(CallEnded, 5)
        else:
            door.hangup(call_id)
            ended = await phone.wait_for(CallEnded, 5)
        assert isinstance(ended, CallEnded) and ended.by_peer
    finally:
        await door.stop()
        await phone.stop()


@pytest.mark.parametrize("transport", ["udp", "tcp"])
@pytest.mark.parametrize("callee_hangs_up", [False, True], ids=["door-bye", "phone-bye"])
def test_call_between_two_user_agents(transport: str, callee_hangs_up: bool) -> None:
    asyncio.run(call_and_hang_up(transport, callee_hangs_up=callee_hangs_up))


def test_options_and_garbage_over_udp() -> None:
    async def main() -> tuple[bytes, bytes]:
        ua = UserAgent(UaConfig(bind=HostPort("127.0.0.1", 0)))
        await ua.start()
        loop = asyncio.get_running_loop()
        probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        probe.setblocking(False)
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
        try:
            destination = ("127.0.0.1", ua.local_port)
            # Garbage first: the daemon must survive it and keep answering.
            await loop.sock_sendto(probe, b"\x00\xffnot sip at all\r\n\r\n", destination)
            options = (
                f"OPTIONS sip:anyone@127.0.0.1 SIP/2.0\r\n"
                f"Via: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bKprobe1;rport\r\n"
                "From: <sip:probe@127.0.0.1>;tag=p1\r\nTo: <sip:anyone@127.0.0.1>\r\n"
                "Call-ID: probe-1\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\n"
                "Content-Length: 0\r\n\r\n"
            ).encode()
            await loop.sock_sendto(probe, options, destination)
            answer = await asyncio.wait_for(loop.sock_recv(probe, 65535), 5)
            bad = options.replace(b"SIP/2.0\r\n", b"SIP/7.0\r\n", 1).replace(b"probe1", b"probe2")
            await loop.sock_sendto(probe, bad, destination)
            refusal = await asyncio.wait_for(loop.sock_recv(probe, 65535), 5)
            return answer, refusal
        finally:
            probe.close()
            await ua.stop()

    answer, refusal = asyncio.run(main())
    response = parse_message(answer)
    assert isinstance(response, Response) and response.status == 200
    assert "INVITE" in (response.headers.get("Allow") or "")
    assert response.headers.get("Accept") and response.headers.get("Supported")
    assert refusal.startswith(b"SIP/2.0 505 ")


@pytest.mark.parametrize("callback", [True, False])
def test_the_event_queue_keeps_only_the_newest_events_when_nobody_reads_it(callback: bool) -> None:
    # With on_event (the daemon) the application has every event already: the queue keeps a
    # few calls' worth, so old events with their SDP bodies are not held for the daemon's life.
    from intercom.runtime import ua as ua_module
    from intercom.sip.events import RegistrationSucceeded

    seen: list[object] = []
    config = UaConfig(bind=HostPort("127.0.0.1", 0))
    agent = UserAgent(config, on_event=seen.append) if callback else UserAgent(config)
    kept = ua_module.EVENTS_KEPT_WITH_CALLBACK if callback else ua_module.EVENTS_KEPT
    assert kept <= ua_module.EVENTS_KEPT

    class Endpoint:
        events = [RegistrationSucceeded("pbx", n) for n in range(ua_module.EVENTS_KEPT + 50)]

        def datagrams_to_send(self) -> list[tuple[bytes, object]]:
            return []

        def next_event(self) -> object:
            return self.events.pop(0) if self.events else None

        def get_timer(self) -> None:
            return None

    agent._endpoint = Endpoint()  # type: ignore[assignment]
    agent._transmit()
    assert len(seen) == (ua_module.EVENTS_KEPT + 50 if callback else 0)  # the application's
    assert agent.events.qsize() == kept
    oldest_kept = ua_module.EVENTS_KEPT + 50 - kept
    assert agent.events.get_nowait() == RegistrationSucceeded("pbx", oldest_kept)


class SlowDns:
    """Answers ``phone.test`` with 127.0.0.1 once :attr:`release` is set."""

    def __init__(self) -> None:
        self.release = asyncio.Event()

    async def srv(self, name: str) -> list[object]:
        return []

    async def addresses(self, host: str) -> list[str]:
        await self.release.wait()
        return ["127.0.0.1"] if host == "phone.test" else []


@pytest.mark.parametrize("hang_up_first", [False, True], ids=["call", "hangup-during-dns"])
def test_the_call_id_exists_before_the_target_is_resolved(hang_up_first: bool) -> None:
    async def main() -> None:
        dns = SlowDns()
        door = UserAgent(UaConfig(bind=HostPort("127.0.0.1", 0), user="door"), dns=dns)
        phone = UserAgent(UaConfig(bind=HostPort("127.0.0.1", 0), user="phone"))
        await door.start()
        await phone.start()
        try:
            sent: list[str] = []
            target = SipUri("phone.test", "phone", phone.local_port)
            call_id = door.call(target, SDP, call_id="drawn-before", on_sent=sent.append)
            assert call_id == "drawn-before" and sent == []  # DNS has not answered yet
            if hang_up_first:
                assert door.hangup(call_id) is True  # carried out once the INVITE is out
            dns.release.set()
            incoming = await phone.wait_for(IncomingCallReceived, 5)
            assert isinstance(incoming, IncomingCallReceived)
            assert incoming.call_id == call_id and sent == [call_id]
            if hang_up_first:
                phone.ring(incoming.call_id)  # a provisional response lets the CANCEL go
                failed = await door.wait_for(CallFailed, 5)
                assert isinstance(failed, CallFailed) and failed.call_id == call_id
                assert failed.status == 487
        finally:
            await door.stop()
            await phone.stop()

    asyncio.run(main())
