"""Building responses (RFC 3261 §8.2.6) and the standard reason phrases (§21)."""

from __future__ import annotations

from intercom.sip.grammar import split_outside_quotes
from intercom.sip.message import Headers, Request, Response

REASONS = {
    100: "Trying", 180: "Ringing", 181: "Call Is Being Forwarded", 182: "Queued",
    183: "Session Progress", 200: "OK", 202: "Accepted", 300: "Multiple Choices",
    301: "Moved Permanently", 302: "Moved Temporarily", 305: "Use Proxy",
    380: "Alternative Service",
    400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
    405: "Method Not Allowed", 406: "Not Acceptable", 407: "Proxy Authentication Required",
    408: "Request Timeout", 410: "Gone", 413: "Request Entity Too Large",
    415: "Unsupported Media Type", 416: "Unsupported URI Scheme", 420: "Bad Extension",
    421: "Extension Required", 422: "Session Interval Too Small", 423: "Interval Too Brief",
    480: "Temporarily Unavailable", 481: "Call/Transaction Does Not Exist",
    482: "Loop Detected", 483: "Too Many Hops", 484: "Address Incomplete", 486: "Busy Here",
    487: "Request Terminated", 488: "Not Acceptable Here", 491: "Request Pending",
    500: "Server Internal Error", 501: "Not Implemented", 502: "Bad Gateway",
    503: "Service Unavailable", 504: "Server Time-out", 505: "Version Not Supported",
    513: "Message Too Large", 600: "Busy Everywhere", 603: "Decline",
    604: "Does Not Exist Anywhere", 606: "Not Acceptable",
}  # fmt: skip

ALLOWED_METHODS = "INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, UPDATE"
"""What we answer (the Allow header, §20.5)."""
SUPPORTED = "timer"
"""Extensions we support (RFC 4028 session timers)."""
ACCEPTED_BODIES = "application/sdp, application/dtmf-relay, application/dtmf"


def stamp_via(request: Request, host: str, port: int) -> None:
    """Note on the top Via where ``request`` really came from (:func:`stamped_via`), so
    responses find the way back."""
    values = request.headers.get_list("Via")
    top = stamped_via(values[0], host, port)
    if top != values[0]:
        values[0] = top
        request.headers.set_list("Via", values)


def stamped_via(via: str, host: str, port: int) -> str:
    """§18.2.1 and RFC 3581 §4 on one Via value from ``host``:``port``: ``received`` when the
    sent-by host differs or ``rport`` was asked for, ``rport`` filled with the port. A ``;`` in a
    quoted value separates nothing; an unclosed quote (the gate's unparsed input) is no error."""
    parts = list(split_outside_quotes(via, ";", strict=False))
    sent_by = parts[0].split()[-1]
    sent_host = sent_by.rsplit("]", 1)[0].lstrip("[") if sent_by.startswith("[") else sent_by
    sent_host = sent_host.split(":", 1)[0] if sent_host.count(":") == 1 else sent_host
    params = []
    rport = False
    for part in parts[1:]:
        name = part.split("=", 1)[0].strip().lower()
        if name == "rport":
            rport = True
            params.append(f"rport={port}")
        elif name != "received":  # the sender's own "received" is not evidence
            params.append(part.strip())
    if rport or sent_host != host:
        params.append(f"received={host}")
    return ";".join([parts[0].rstrip(), *params])


def add_capabilities(response: Response) -> Response:
    """Allow, Accept and Supported: what an OPTIONS answer (§11.2) and a dialog-creating 2xx
    tell the peer about us."""
    response.headers.add("Allow", ALLOWED_METHODS)
    response.headers.add("Accept", ACCEPTED_BODIES)
    response.headers.add("Supported", SUPPORTED)
    return response


def with_headers(response: Response, *headers: tuple[str, str]) -> Response:
    """``response`` with ``headers`` added, for one-expression answers."""
    for name, value in headers:
        response.headers.add(name, value)
    return response


def reason_phrase(status: int) -> str:
    return REASONS.get(status, "")


def make_response(
    request: Request, status: int, reason: str | None = None, *, to_tag: str | None = None
) -> Response:
    """A response to ``request`` per §8.2.6.1: Via (all, in order), From, Call-ID and CSeq copied,
    To copied with ``to_tag`` added when it has none (never for 100 Trying, §8.2.6.2), and
    Record-Route copied for dialog-creating responses (§12.1.1)."""
    headers = Headers()
    for via in request.headers.get_all("Via"):
        headers.add("Via", via)
    to: str | None = request.headers.get("To")
    if to is not None and to_tag and status != 100 and request.to.tag is None:
        to = str(request.to.with_params(tag=to_tag))
    # A salvaged malformed request may lack some of these: copy what exists.
    for name, value in (
        ("From", request.headers.get("From")),
        ("To", to),
        ("Call-ID", request.headers.get("Call-ID")),
        ("CSeq", request.headers.get("CSeq")),
    ):
        if value is not None:
            headers.add(name, value)
    if request.method == "INVITE" and 100 < status < 300:
        for route in request.headers.get_all("Record-Route"):
            headers.add("Record-Route", route)
    timestamp = request.headers.get("Timestamp")
    if status == 100 and timestamp:
        headers.add("Timestamp", timestamp)  # §8.2.6.1
    phrase = reason if reason is not None else reason_phrase(status)
    return Response(headers=headers, status=status, reason=phrase)
