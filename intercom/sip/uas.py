"""The checks a UAS makes before acting on a request, and where its responses go.

RFC 3261 §8.2.1 to §8.2.3 (method, URI scheme, loops, Require, body), §11 (OPTIONS with
Max-Forwards 0 is answered), the headers the dialog layer reads later validated here, once
(``Contact: *`` outside REGISTER, §20.10: 400 "Bad Contact"; a Session-Expires that is not
delta-seconds: 400 "Bad Session-Expires"; a new INVITE asking less than Min-SE: 422, RFC 4028
§9), §18.2.2 with RFC 3581 (response routing), and what the runtime
does with input it cannot parse: answer when a Via and a CSeq can be read, else drop. The
rate limiter keeps one source from flooding the door. Pure functions and one small class:
no sockets, no clocks (``now`` is passed in).
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Callable, Container

from intercom.sip.build import (
    ACCEPTED_BODIES,
    ALLOWED_METHODS,
    SUPPORTED,
    make_response,
    with_headers,
)
from intercom.sip.core import Address
from intercom.sip.errors import RemoteProtocolError
from intercom.sip.locate import is_ip_literal
from intercom.sip.message import Request, Response
from intercom.sip.session import MIN_SE, interval_too_small, parse_session_expires
from intercom.sip.uri import SipUri

KNOWN_UNSUPPORTED = frozenset(
    {"REGISTER", "PRACK", "SUBSCRIBE", "NOTIFY", "PUBLISH", "MESSAGE", "REFER"}
)
HANDLED_METHODS = frozenset(ALLOWED_METHODS.replace(" ", "").split(","))
SUPPORTED_OPTIONS = frozenset(SUPPORTED.replace(" ", "").split(","))
BODY_TYPES = frozenset(t.strip() for t in ACCEPTED_BODIES.split(","))
RATE_PER_SECOND = 20.0
RATE_BURST = 60.0


class RateLimiter:
    """A token bucket per source address: ``RATE_PER_SECOND`` with bursts of ``RATE_BURST``.

    At most ``max_sources`` buckets are kept; the least recently seen source is forgotten first
    (a forgotten source starts again with a full bucket), so a flood of spoofed addresses costs
    bounded memory and never resets the buckets of the sources that are still sending. It
    decides only; the caller logs (with counts, :class:`~intercom.sip.gate.FloodLog`).
    """

    def __init__(self, max_sources: int = 4096) -> None:
        self.max_sources = max_sources
        self._buckets: OrderedDict[str, list[float]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._buckets)

    def allow(self, source: str, now: float) -> bool:
        buckets = self._buckets
        bucket = buckets.get(source)
        if bucket is None:
            if len(buckets) >= self.max_sources:
                buckets.popitem(last=False)
            bucket = buckets[source] = [RATE_BURST, now]
        else:
            buckets.move_to_end(source)
            bucket[0] = min(RATE_BURST, bucket[0] + (now - bucket[1]) * RATE_PER_SECOND)
            bucket[1] = now
        if bucket[0] < 1.0:
            return False
        bucket[0] -= 1.0
        return True


def check_request(
    request: Request, *, our_branches: Container[str], is_merged: Callable[[Request], bool]
) -> Response | None:
    """The UAS checks of §8.2.1 to §8.2.3, in the RFC's order; None when all pass."""
    method = request.method
    if method == "CANCEL":
        return None
    if method not in HANDLED_METHODS and request.to.tag is None:
        status = 405 if method in KNOWN_UNSUPPORTED else 501
        return with_headers(make_response(request, status), ("Allow", ALLOWED_METHODS))
    bad = _bad_header(request)
    if bad is not None:
        return make_response(request, 400, f"Bad {bad}")
    if not isinstance(request.uri, SipUri):
        return make_response(request, 416)
    if any(v.branch in our_branches for v in request.vias[1:] if v.branch):
        return make_response(request, 482)
    if request.to.tag is None and is_merged(request):
        return make_response(request, 482)
    if request.headers.get("Max-Forwards") == "0" and method != "OPTIONS":
        return make_response(request, 483)
    unsupported = [
        option
        for option in request.headers.get_list("Require")
        if option.lower() not in SUPPORTED_OPTIONS
    ]
    if unsupported and method != "ACK":
        return with_headers(make_response(request, 420), ("Unsupported", ", ".join(unsupported)))
    if request.body and request.content_type not in BODY_TYPES and method != "ACK":
        return with_headers(make_response(request, 415), ("Accept", ACCEPTED_BODIES))
    accept = [a.split(";")[0].strip().lower() for a in request.headers.get_list("Accept")]
    if method == "INVITE" and accept and not {"application/sdp", "*/*"} & set(accept):
        return with_headers(make_response(request, 406), ("Accept", ACCEPTED_BODIES))
    if method == "INVITE" and request.to.tag is None and interval_too_small(request):
        # RFC 4028 §9, before the application sees it
        return with_headers(make_response(request, 422), ("Min-SE", str(MIN_SE)))
    return None


def _bad_header(request: Request) -> str | None:
    """The name of a header the stack relies on that is malformed in ``request``, if any.

    The parser has checked the syntax every message shares; these are the request headers whose
    meaning the dialog layer depends on later (§8.2, RFC 4028 §4).
    """
    if any(value.strip(" \t") == "*" for value in request.headers.get_all("Contact")):
        return "Contact"  # §10.2.2, §20.10: only a REGISTER may say "*"
    values = request.headers.get_all("Session-Expires")
    if len(values) > 1:
        return "Session-Expires"
    if values:
        try:
            parse_session_expires(values[0])
        except RemoteProtocolError:
            return "Session-Expires"
    return None


def response_destination(response: Response, source: Address | None = None) -> Address | None:
    """§18.2.2 with RFC 3581: the connection for TCP; else, over UDP, the host the request came
    from (``source``, never a host named in Via: that would make the door a reflector) at the
    ``rport`` the stamp filled in, or the Via's port. Without ``source`` (a TU's own 2xx
    retransmission) the stamped Via's ``received``, else its host."""
    if source is not None and source.reliable:
        return source
    try:
        via = response.top_via
    except RemoteProtocolError:
        return source
    rport = via.params.get("rport")
    port = int(rport) if rport and rport.isdigit() else (via.port or 5060)
    if source is not None:
        return Address("udp", source.host, port)
    host = via.params.get("received") or via.host
    if not is_ip_literal(host):
        return None
    transport = via.transport.lower()
    return Address(transport if transport in ("tcp", "tls") else "udp", host, port)


LOOSE_VIA = re.compile(r"\s*SIP\s*/\s*[0-9.]+\s*/\s*[A-Za-z]+\s+[\w.:\[\]-]+")
"""Enough of a Via to answer a malformed request: the response goes back to its source."""


def salvage_request(data: bytes) -> Request | None:
    """The Via, From, To, Call-ID and CSeq of an unparseable request, if they are readable."""
    head = data.split(b"\r\n\r\n", 1)[0].decode("utf-8", "replace")
    lines = head.split("\r\n")
    if not lines or lines[0].upper().startswith("SIP/"):
        return None
    request = Request(method=lines[0].split(" ", 1)[0], uri=SipUri("invalid"))
    wanted = {"via", "v", "from", "f", "to", "t", "call-id", "i", "cseq"}
    for line in lines[1:]:
        name, colon, value = line.partition(":")
        if colon and name.strip().lower() in wanted:
            request.headers.add(name.strip(), value.strip())
    via = request.headers.get("Via")
    if via is None or not LOOSE_VIA.match(via) or not request.headers.get("CSeq"):
        return None
    return request
