"""`intercom run` attacked on loopback: every request answered, dialogs matched whole.

A raw UDP peer on 127.0.0.0/8 (trusted, its caller allowed) sends what once broke the SIP core:
INVITEs with ``Contact: *`` (once raised out of the endpoint: no answer, a transaction held
forever) and absurd ``Session-Expires`` values (once raised out of ``accept``); each must get a
final response. Then it calls the door for real, and with the right Call-ID but forged tags
sends a BYE, a re-INVITE, an UPDATE and an INFO: each gets 481 and the call stays connected,
until the real BYE ends it (RFC 3261 §12.2.2).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from intercom.sip.message import Response, parse_message

from .daemon_process import DaemonProcess
from .sipp_harness import free_media_port, free_port

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

HOST = "127.0.0.1"
ALICE = "sip:alice@pbx.test"
RESPONSE_TIMEOUT = 5.0


class Peer(asyncio.DatagramProtocol):
    """One UDP socket of the attacker: datagrams received go to a queue."""

    def __init__(self) -> None:
        self.received: asyncio.Queue[bytes] = asyncio.Queue()
        self.transport: asyncio.DatagramTransport | None = None

    def datagram_received(self, data: bytes, addr: tuple[str | object, int]) -> None:
        self.received.put_nowait(data)

    @property
    def address(self) -> tuple[str, int]:
        assert self.transport is not None
        host, port = self.transport.get_extra_info("sockname")[:2]
        return host, port

    def send(self, data: bytes, door: tuple[str, int]) -> None:
        assert self.transport is not None
        self.transport.sendto(data, door)

    async def final(self, call_id: str, method: str, timeout: float = RESPONSE_TIMEOUT) -> Response:
        """The first final response to ``method`` in ``call_id`` (provisionals skipped)."""
        try:
            async with asyncio.timeout(timeout):
                while True:
                    message = parse_message(await self.received.get())
                    if (
                        isinstance(message, Response)
                        and message.call_id == call_id
                        and message.cseq.method == method
                        and message.status >= 200
                    ):
                        return message
        except TimeoutError:
            raise AssertionError(
                f"no final response to {method} {call_id} in {timeout} s"
            ) from None

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


async def open_peer(host: str, port: int = 0) -> Peer:
    loop = asyncio.get_running_loop()
    transport, peer = await loop.create_datagram_endpoint(Peer, local_addr=(host, port))
    peer.transport = transport
    return peer


def request(
    method: str, peer: Peer, *, call_id: str, cseq: int, branch: str,
    from_tag: str | None = "alice1", to_tag: str | None = None, extra: str = "", body: bytes = b"",
) -> bytes:  # fmt: skip
    host, port = peer.address
    from_ = f"<{ALICE}>" + (f";tag={from_tag}" if from_tag else "")
    to = "<sip:door@127.0.0.1>" + (f";tag={to_tag}" if to_tag else "")
    head = (
        f"{method} sip:door@127.0.0.1 SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP {host}:{port};branch=z9hG4bK{branch};rport\r\n"
        f"Max-Forwards: 70\r\nFrom: {from_}\r\nTo: {to}\r\nCall-ID: {call_id}\r\n"
        f"CSeq: {cseq} {method}\r\n{extra}"
    )
    if "Contact" not in extra:
        head += f"Contact: <sip:alice@{host}:{port}>\r\n"
    if body:
        head += "Content-Type: application/sdp\r\n"
    return (head + f"Content-Length: {len(body)}\r\n\r\n").encode() + body


def offer(rtp_port: int) -> bytes:
    return (
        f"v=0\r\no=alice 1 1 IN IP4 {HOST}\r\ns=-\r\nc=IN IP4 {HOST}\r\nt=0 0\r\n"
        f"m=audio {rtp_port} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=sendrecv\r\n"
    ).encode()


def ack(peer: Peer, response: Response, *, call_id: str, cseq: int, branch: str) -> bytes:
    """An ACK for ``response`` (a 2xx: new branch; a non-2xx: the INVITE's)."""
    return request("ACK", peer, call_id=call_id, cseq=cseq, branch=branch, to_tag=response.to.tag)


async def _attack(tmp_path: Path) -> None:
    door_port = free_port()
    door = (HOST, door_port)
    daemon = DaemonProcess(tmp_path, {
        "INTERCOM_SIP_BIND": f"{HOST}:{door_port}",
        "INTERCOM_TRUSTED_HOSTS": "127.0.0.0/8",
        "INTERCOM_ALLOWED_CALLERS": ALICE,
        "INTERCOM_ANSWER_DELAY": "0",
        "INTERCOM_AUDIO_INPUT": "tone:700",
        "INTERCOM_AUDIO_OUTPUT": "null",
        "INTERCOM_RTP_PORTS": "46000-46999",
        "INTERCOM_LOG_LEVEL": "INFO",
    })  # fmt: skip
    try:
        await daemon.start()

        # 1. 200 INVITEs with Contact: *, each from its own loopback address so that no rate
        #    limit decides the outcome: each gets 400 Bad Contact.
        for i in range(200):
            peer = await open_peer(f"127.0.{10 + i // 200}.{1 + i % 200}")
            try:
                peer.send(request("INVITE", peer, call_id=f"star{i}", cseq=1, branch=f"s{i}",
                                  extra="Contact: *\r\n", body=offer(4000)), door)  # fmt: skip
                response = await peer.final(f"star{i}", "INVITE")
                assert (response.status, response.reason) == (400, "Bad Contact"), i
                peer.send(ack(peer, response, call_id=f"star{i}", cseq=1, branch=f"s{i}"), door)
            finally:
                peer.close()

        # 2. Absurd Session-Expires: 400 Bad Session-Expires; too small a one: 422 (RFC 4028).
        absurd = ["9" * 5000, "-1", "abc", "1800;refresher=nobody", "٣٠٠"]
        for i, value in enumerate(absurd):
            peer = await open_peer(f"127.0.20.{1 + i}")
            try:
                peer.send(request("INVITE", peer, call_id=f"se{i}", cseq=1, branch=f"se{i}",
                                  extra=f"Session-Expires: {value}\r\n", body=offer(4000)),
                          door)  # fmt: skip
                response = await peer.final(f"se{i}", "INVITE")
                assert (response.status, response.reason) == (400, "Bad Session-Expires"), value
            finally:
                peer.close()
        peer = await open_peer("127.0.20.99")
        try:
            small = "Supported: timer\r\nSession-Expires: 10\r\n"
            peer.send(request("INVITE", peer, call_id="small", cseq=1, branch="small",
                              extra=small, body=offer(4000)), door)  # fmt: skip
            response = await peer.final("small", "INVITE")
            assert (response.status, response.headers.get("Min-SE")) == (422, "90")
        finally:
            peer.close()
        assert (await daemon.status())["call"]["state"] == "idle"

        # 3. A real call from alice, answered at once.
        alice = await open_peer("127.0.30.1")
        rtp = await open_peer(HOST, free_media_port())  # the door's audio lands here, unread
        try:
            call_id = "real-call"
            alice.send(request("INVITE", alice, call_id=call_id, cseq=1, branch="real",
                               body=offer(rtp.address[1])), door)  # fmt: skip
            ok = await alice.final(call_id, "INVITE", timeout=10.0)
            assert ok.status == 200, ok
            ours = ok.to.tag
            assert ours
            alice.send(ack(alice, ok, call_id=call_id, cseq=1, branch="realack"), door)
            await daemon.until(lambda s: s["call"]["state"] == "connected", 10, "connected call")

            # 4. The right Call-ID, forged tags: 481 each, and the call stays up.
            forgeries = [
                ("BYE", "mallory", ours, b""),  # a stranger's From-tag
                ("BYE", "alice1", "guess", b""),  # a guessed To-tag
                ("INVITE", "alice1", "guess", offer(4000)),  # would move the audio away
                ("UPDATE", ours, "alice1", offer(4000)),  # tags swapped
                ("INFO", None, ours, b""),  # no From-tag at all
            ]
            for i, (method, from_tag, to_tag, body) in enumerate(forgeries):
                alice.send(request(method, alice, call_id=call_id, cseq=10 + i, branch=f"f{i}",
                                   from_tag=from_tag, to_tag=to_tag, body=body), door)  # fmt: skip
                response = await alice.final(call_id, method)
                assert response.status == 481, (method, response)
                if method == "INVITE":
                    alice.send(request("ACK", alice, call_id=call_id, cseq=10 + i,
                                       branch=f"f{i}", from_tag=from_tag,
                                       to_tag=response.to.tag), door)  # fmt: skip
            await asyncio.sleep(0.3)
            status = await daemon.status()
            assert status["call"]["state"] == "connected", status

            # 5. Alice's own BYE still ends it.
            alice.send(request("BYE", alice, call_id=call_id, cseq=2, branch="realbye",
                               to_tag=ours), door)  # fmt: skip
            assert (await alice.final(call_id, "BYE")).status == 200
            status = await daemon.until(
                lambda s: s["last_call"]["outcome"] is not None, 10, "the call's end"
            )
            assert status["last_call"]["outcome"] == "answered"
        finally:
            alice.close()
            rtp.close()

        assert await daemon.terminate() == 0
    finally:
        await daemon.kill()
    log = daemon.log()
    assert "Traceback" not in log, log
    assert "answering 500" not in log, log  # nothing reached the last line of defence
    assert log.count(": 400 Bad Contact") == 200, log  # one line each, no traceback
    assert log.count(": 400 Bad Session-Expires") == len(absurd), log
    assert log.count("but not its tags: 481") == len(forgeries), log


def test_attacks_get_answers_and_forged_tags_change_nothing(tmp_path: Path) -> None:
    asyncio.run(asyncio.wait_for(_attack(tmp_path), 100))
