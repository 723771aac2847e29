"""Forged responses against `intercom run`: knowing a call's Call-ID gives no say over it.

The daemon (mock GPIO, a tone as microphone, PCMU) calls a phone played by the test on
127.0.0.1: it rings (180), then answers with an SDP naming its own RTP socket, and talks
symmetric RTP. A stranger on 127.0.0.66 learnt the Call-ID (the door logs it at INFO and hands
it to INTERCOM_ON_RING): while the phone rings it sends a forged 183 with SDP naming its own RTP
port and a forged 200 with its own Contact, and once the call is connected another forged 200
and 183. Nothing may come of it: the door's audio never reaches the stranger's RTP port, the
door sends nothing to the stranger (no ACK, no BYE to its Contact), and the call goes on with
the real phone. Once with the stranger as an untrusted host (the gate drops its responses
unparsed) and once inside ``INTERCOM_TRUSTED_HOSTS`` (they reach the endpoint, which drops them:
they match no request of the door's).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import re
import socket
from dataclasses import dataclass
from pathlib import Path

import pytest

from intercom.sip.message import Request, parse_message

from .daemon_process import DaemonProcess
from .peer_support import UDP, claim_ports
from .sipp_harness import free_port
from .test_attack_media import RtpEndpoint
from .test_attack_sip_state import Peer, open_peer

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]

HOST = "127.0.0.1"
STRANGER_HOST = "127.0.0.66"
FRAME = 0.02
TALK = 2.0  # seconds of the connected call
STEP = 10.0  # bound of every wait for the daemon or a message


def sdp(host: str, port: int) -> bytes:
    return (
        f"v=0\r\no=peer 1 1 IN IP4 {host}\r\ns=-\r\nc=IN IP4 {host}\r\nt=0 0\r\n"
        f"m=audio {port} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=sendrecv\r\n"
    ).encode()


def genuine(request: Request, status: int, contact: tuple[str, int], body: bytes = b"") -> bytes:
    """The phone's response to the door's ``request``: its Vias, From, To (tag "phone1" added
    to an INVITE's), Call-ID and CSeq repeated, its own Contact."""
    to = request.headers.get("To") or ""
    if ";tag=" not in to:
        to += ";tag=phone1"
    head = [f"SIP/2.0 {status} Phone", *(f"Via: {v}" for v in request.headers.get_all("Via"))]
    head += [
        f"From: {request.headers.get('From')}", f"To: {to}", f"Call-ID: {request.call_id}",
        f"CSeq: {request.headers.get('CSeq')}", f"Contact: <sip:family@{contact[0]}:{contact[1]}>",
    ]  # fmt: skip
    if body:
        head.append("Content-Type: application/sdp")
    return ("\r\n".join(head) + f"\r\nContent-Length: {len(body)}\r\n\r\n").encode() + body


def forged(call_id: str, status: int, door: tuple[str, int], stranger: tuple[str, int],
           *, to_tag: str, body: bytes = b"") -> bytes:  # fmt: skip
    """The stranger's response: the right Call-ID, and a branch and From-tag of its guessing."""
    head = [
        f"SIP/2.0 {status} Forged",
        f"Via: SIP/2.0/UDP {door[0]}:{door[1]};branch=z9hG4bK{random.getrandbits(48):x};rport",
        f"From: <sip:door@{door[0]}>;tag={random.getrandbits(32):x}",
        f"To: <sip:family@{HOST}>;tag={to_tag}",
        f"Call-ID: {call_id}",
        "CSeq: 1 INVITE",
        f"Contact: <sip:mallory@{stranger[0]}:{stranger[1]}>",
    ]
    if body:
        head.append("Content-Type: application/sdp")
    return ("\r\n".join(head) + f"\r\nContent-Length: {len(body)}\r\n\r\n").encode() + body


async def next_request(peer: Peer, method: str, timeout: float = STEP) -> Request:
    """The next request ``method`` the peer gets (anything else is skipped)."""
    try:
        async with asyncio.timeout(timeout):
            while True:
                message = parse_message(await peer.received.get())
                if isinstance(message, Request) and message.method == method:
                    return message
    except TimeoutError:
        raise AssertionError(f"no {method} within {timeout} s") from None


async def answer_until_acked(phone: Peer, invite: Request, door: tuple[str, int],
                             ok: bytes) -> None:  # fmt: skip
    """Send the 200 (again every T1, as a UAS does) until the door's ACK comes."""
    try:
        async with asyncio.timeout(STEP):
            while True:
                phone.send(ok, door)
                with contextlib.suppress(TimeoutError):
                    ack = await next_request(phone, "ACK", timeout=0.5)
                    assert ack.call_id == invite.call_id
                    return
    except TimeoutError:
        raise AssertionError(f"no ACK for the phone's 200 within {STEP} s") from None


async def talk(phone_rtp: RtpEndpoint, door_rtp: tuple[str, int], stop: asyncio.Event) -> None:
    """The phone's media: PCMU every 20 ms to the door's RTP port (symmetric RTP)."""
    while not stop.is_set():
        phone_rtp.drain()
        with contextlib.suppress(OSError):
            phone_rtp.sock.sendto(phone_rtp.next_packet(), door_rtp)
        await asyncio.sleep(FRAME)


async def listen(rtp: RtpEndpoint, stop: asyncio.Event) -> None:
    while not stop.is_set():
        rtp.drain()
        await asyncio.sleep(FRAME)


def _udp(host: str, port: int = 0) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((host, port))
    sock.setblocking(False)
    return sock


@dataclass
class Outcome:
    ringing_state: str  #: the door's call state once the forgeries while ringing were in
    connected_state: str  #: and once those while connected were
    final: dict[str, object]
    log: str
    phone_rtp: RtpEndpoint
    stranger_rtp: RtpEndpoint
    stranger_sip: list[bytes]


async def _attack(tmp_path: Path, settings: dict[str, str]) -> Outcome:
    door = (HOST, free_port())
    low = claim_ports([UDP] * 4, even=True)  # the door's RTP range
    rng = random.Random()
    phone = await open_peer(HOST)
    stranger = await open_peer(STRANGER_HOST)
    phone_rtp = RtpEndpoint(_udp(HOST), ssrc=rng.getrandbits(32))
    stranger_rtp = RtpEndpoint(_udp(STRANGER_HOST), ssrc=rng.getrandbits(32))
    phone_contact = phone.address
    phone_media = phone_rtp.sock.getsockname()[1]
    stranger_media = stranger_rtp.sock.getsockname()[1]
    daemon = DaemonProcess(tmp_path, {
        "INTERCOM_SIP_BIND": f"{door[0]}:{door[1]}",
        "INTERCOM_CALL_TARGET": f"sip:family@{HOST}:{phone_contact[1]}",
        "INTERCOM_AUDIO_INPUT": "tone:700",
        "INTERCOM_AUDIO_OUTPUT": "null",
        "INTERCOM_CODECS": "PCMU",
        "INTERCOM_RTP_PORTS": f"{low}-{low + 3}",
        "INTERCOM_LOG_LEVEL": "INFO",
        **settings,
    })  # fmt: skip
    stop = asyncio.Event()
    tasks: list[asyncio.Task[None]] = []
    try:
        await daemon.start()
        tasks.append(asyncio.create_task(listen(stranger_rtp, stop)))
        assert (await daemon.cli("press"))[0] == 0
        invite = await next_request(phone, "INVITE")
        offer = re.search(rb"m=audio (\d+) ", invite.body)
        assert offer is not None, invite.body
        door_rtp = (HOST, int(offer.group(1)))
        phone.send(genuine(invite, 180, phone_contact), door)
        await daemon.until(lambda s: s["call"]["state"] == "ringing", STEP, "ringing")

        # While the phone rings: a forged 183 with early media for the stranger, a forged 200.
        call_id = invite.call_id
        where = stranger.address
        for _ in range(3):
            stranger.send(forged(call_id, 183, door, where, to_tag="m1",
                                 body=sdp(STRANGER_HOST, stranger_media)), door)  # fmt: skip
            stranger.send(forged(call_id, 200, door, where, to_tag="m1",
                                 body=sdp(STRANGER_HOST, stranger_media)), door)  # fmt: skip
        await asyncio.sleep(1.0)  # time for the door to (wrongly) send audio or an ACK
        ringing_state = str((await daemon.status())["call"]["state"])

        # The phone answers; the call goes on with it.
        ok = genuine(invite, 200, phone_contact, sdp(HOST, phone_media))
        await answer_until_acked(phone, invite, door, ok)
        await daemon.until(lambda s: s["call"]["state"] == "connected", STEP, "connected call")
        tasks.append(asyncio.create_task(talk(phone_rtp, door_rtp, stop)))
        await asyncio.sleep(TALK / 2)

        # Connected: another "answer" of the stranger's own, and one with the phone's tag.
        for tag in ("m2", "phone1"):
            stranger.send(forged(call_id, 200, door, where, to_tag=tag,
                                 body=sdp(STRANGER_HOST, stranger_media)), door)  # fmt: skip
            stranger.send(forged(call_id, 183, door, where, to_tag=tag,
                                 body=sdp(STRANGER_HOST, stranger_media)), door)  # fmt: skip
        await asyncio.sleep(TALK / 2)
        connected_state = str((await daemon.status())["call"]["state"])

        assert (await daemon.cli("hangup"))[0] == 0
        bye = await next_request(phone, "BYE")
        phone.send(genuine(bye, 200, phone_contact), door)
        final = await daemon.until(
            lambda s: s["last_call"]["outcome"] is not None, STEP, "the call's end"
        )
        await asyncio.sleep(0.3)
        stop.set()
        for task in tasks:
            await asyncio.wait_for(task, 5)
        stranger_rtp.drain()
        assert await daemon.terminate() == 0
        stranger_sip = []
        while not stranger.received.empty():
            stranger_sip.append(stranger.received.get_nowait())
    finally:
        stop.set()
        for task in tasks:
            task.cancel()
        await daemon.kill()
        phone.close()
        stranger.close()
        phone_rtp.sock.close()
        stranger_rtp.sock.close()
    return Outcome(ringing_state, connected_state, final, daemon.log(), phone_rtp, stranger_rtp,
                   stranger_sip)  # fmt: skip


@pytest.mark.parametrize(
    "settings",
    [{}, {"INTERCOM_TRUSTED_HOSTS": f"{STRANGER_HOST}/32"}],
    ids=["stranger untrusted", "stranger on a trusted host"],
)
def test_forged_responses_with_the_call_id_neither_take_the_call_nor_its_audio(
    tmp_path: Path, settings: dict[str, str]
) -> None:
    outcome = asyncio.run(asyncio.wait_for(_attack(tmp_path, settings), 80))
    assert outcome.stranger_rtp.received == 0, "the door's audio reached the stranger"
    assert outcome.stranger_sip == [], "the door sent the stranger something (ACK, BYE)"
    assert outcome.ringing_state == "ringing", outcome.ringing_state  # not "connected"
    assert outcome.connected_state == "connected", outcome.connected_state
    last = outcome.final["last_call"]
    assert isinstance(last, dict)
    assert last["outcome"] == "answered", last
    frames = TALK / FRAME
    assert outcome.phone_rtp.received >= 0.5 * frames, outcome.phone_rtp.received
    assert len(outcome.phone_rtp.sources) == 1, outcome.phone_rtp.sources  # one port of the door
    assert isinstance(last["packets_received"], int) and last["packets_received"] >= 0.5 * frames
    log = outcome.log
    assert "Traceback" not in log, log
    assert f"x stray response from {STRANGER_HOST} dropped" in log, log
    assert log.count(STRANGER_HOST) <= 2, log  # named once, then counted: never per message
