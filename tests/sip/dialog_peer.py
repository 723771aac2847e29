"""A scripted peer for Endpoint tests: real dialogs set up on the wire, requests inside them.

Shared by test_endpoint_state.py and test_endpoint_fuzz.py. Everything is bytes in, bytes out,
with explicit ``now``; nothing here opens a socket.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from intercom.sip.core import Address
from intercom.sip.endpoint import Endpoint, EndpointConfig
from intercom.sip.events import Event
from intercom.sip.message import Request, Response, parse_message
from intercom.sip.uri import SipUri

DOOR = Address("udp", "192.0.2.10", 5060)
PHONE = Address("udp", "198.51.100.9", 5060)
OFFER = b"v=0\r\no=phone 1 1 IN IP4 198.51.100.9\r\ns=-\r\nc=IN IP4 198.51.100.9\r\nt=0 0\r\n"
ANSWER = b"v=0\r\no=door 7 7 IN IP4 192.0.2.10\r\ns=-\r\nc=IN IP4 192.0.2.10\r\nt=0 0\r\n"


class Media:
    """The answer_offer callable: records every offer it was asked about."""

    def __init__(self) -> None:
        self.offers: list[tuple[str, bytes]] = []

    def __call__(self, call_id: str, offer: bytes) -> bytes | None:
        self.offers.append((call_id, offer))
        return ANSWER


def door(
    media: Media | None = None,
    seed: int = 5,
    outbound_proxy: Address | None = None,
    is_trusted_source: Callable[[str], bool] | None = None,
) -> Endpoint:
    return Endpoint(
        EndpointConfig(
            local_host=DOOR.host, local_port=DOOR.port, user="door", outbound_proxy=outbound_proxy
        ),
        rng=random.Random(seed),
        answer_offer=media if media is not None else Media(),
        is_trusted_source=is_trusted_source,
    )


def sent(endpoint: Endpoint) -> list[Request | Response]:
    return [parse_message(data) for data, _ in endpoint.datagrams_to_send()]


def responses(endpoint: Endpoint) -> list[Response]:
    return [m for m in sent(endpoint) if isinstance(m, Response)]


def events(endpoint: Endpoint) -> list[Event]:
    out = []
    while (event := endpoint.next_event()) is not None:
        out.append(event)
    return out


def run_out(endpoint: Endpoint, now: float, horizon: float = 600.0) -> float:
    """Fire every deadline, at its time, until none is left within ``horizon`` seconds;
    returns the time reached. Output and events are left for the caller to drain."""
    end = now + horizon
    for _ in range(100_000):
        deadline = endpoint.get_timer()
        if deadline is None or deadline > end:
            return now
        now = max(now, deadline)
        endpoint.handle_timer(now)
    raise AssertionError("timers never settle")


def in_dialog(
    method: str, *, call_id: str, from_tag: str | None, to_tag: str | None, cseq: int,
    branch: str, body: bytes = b"", extra: str = "", via_host: str = PHONE.host,
    content_type: str = "application/sdp",
) -> bytes:  # fmt: skip
    """A request from the phone to the door; tags None are left out."""
    from_ = "<sip:family@198.51.100.9>" + (f";tag={from_tag}" if from_tag is not None else "")
    to = "<sip:door@192.0.2.10>" + (f";tag={to_tag}" if to_tag is not None else "")
    head = (
        f"{method} sip:door@192.0.2.10:5060 SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP {via_host}:5060;branch={branch};rport\r\n"
        f"Max-Forwards: 70\r\nFrom: {from_}\r\nTo: {to}\r\nCall-ID: {call_id}\r\n"
        f"CSeq: {cseq} {'INVITE' if method == 'ACK' and cseq == 1 else method}\r\n"
        f"Contact: <sip:family@198.51.100.9:5060>\r\n{extra}"
    )
    if method == "ACK":
        head = head.replace(f"CSeq: {cseq} INVITE", f"CSeq: {cseq} ACK")
    if body:
        head += f"Content-Type: {content_type}\r\n"
    return (head + f"Content-Length: {len(body)}\r\n\r\n").encode() + body


def reply(
    request: Request, status: int, *, to_tag: str, body: bytes = b"", extra: str = ""
) -> bytes:
    """The phone's response to a request of the door's."""
    head = [f"SIP/2.0 {status} Whatever", *(f"Via: {v}" for v in request.headers.get_all("Via"))]
    to = request.headers.get("To") or ""
    if ";tag=" not in to:
        to += f";tag={to_tag}"
    head += [
        f"From: {request.headers.get('From')}", f"To: {to}", f"Call-ID: {request.call_id}",
        f"CSeq: {request.headers.get('CSeq')}", "Contact: <sip:family@198.51.100.9:5060>",
    ]  # fmt: skip
    if body:
        head.append("Content-Type: application/sdp")
    text = "\r\n".join(head) + "\r\n" + extra + f"Content-Length: {len(body)}\r\n\r\n"
    return text.encode() + body


@dataclass(frozen=True, slots=True)
class Dialog:
    """A confirmed dialog as the phone sees it: ``theirs`` is the phone's tag, ``ours`` the
    door's; ``seq`` the phone's last CSeq number."""

    call_id: str
    theirs: str
    ours: str
    seq: int

    def request(
        self, method: str, branch: str, *, body: bytes = b"", seq: int | None = None,
        from_tag: str | None = "", to_tag: str | None = "", extra: str = "",
        content_type: str = "application/sdp",
    ) -> bytes:  # fmt: skip
        """A request inside the dialog; ``from_tag``/``to_tag`` override the tags (None: no
        tag at all), by default the dialog's own."""
        return in_dialog(
            method, call_id=self.call_id, cseq=self.seq + 1 if seq is None else seq,
            from_tag=self.theirs if from_tag == "" else from_tag,
            to_tag=self.ours if to_tag == "" else to_tag, branch=branch, body=body, extra=extra,
            content_type=content_type,
        )  # fmt: skip


def incoming_call(
    endpoint: Endpoint, now: float = 0.0, call_id: str = "in-1", source: Address = PHONE
) -> Dialog:
    """The phone calls the door (through ``source``: the phone itself, or a server), the door
    answers, the phone ACKs: a confirmed dialog."""
    invite = in_dialog(
        "INVITE", call_id=call_id, from_tag="phone1", to_tag=None, cseq=1,
        branch=f"z9hG4bK{call_id}", body=OFFER,
    )  # fmt: skip
    endpoint.receive(invite, source, now)
    events(endpoint)
    endpoint.accept(call_id, ANSWER, now)
    [ok] = [r for r in responses(endpoint) if r.status == 200]
    ours = ok.to.tag
    assert ours
    ack = in_dialog(
        "ACK", call_id=call_id, from_tag="phone1", to_tag=ours, cseq=1,
        branch=f"z9hG4bK{call_id}ack",
    )  # fmt: skip
    endpoint.receive(ack, source, now)
    assert endpoint.held().calls[call_id] == "confirmed"
    return Dialog(call_id, "phone1", ours, 1)


def outgoing_call(endpoint: Endpoint, now: float = 0.0) -> tuple[Dialog, Request]:
    """The door calls the phone; two legs ring, "kitchen" answers. Returns the dialog as the
    phone sees it (its requests carry the door's From-tag as To-tag) and the INVITE."""
    endpoint.call(SipUri(PHONE.host, "family"), ANSWER, now)
    [invite] = [m for m in sent(endpoint) if isinstance(m, Request)]
    endpoint.receive(reply(invite, 180, to_tag="attic"), PHONE, now)
    endpoint.receive(reply(invite, 180, to_tag="kitchen"), PHONE, now)
    endpoint.receive(reply(invite, 200, to_tag="kitchen", body=OFFER), PHONE, now)
    sent(endpoint)  # the ACK
    events(endpoint)
    assert endpoint.held().calls[invite.call_id] == "connected"
    ours = invite.from_.tag
    assert ours
    return Dialog(invite.call_id, "kitchen", ours, 0), invite
