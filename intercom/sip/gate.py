"""The door's first few bytes of judgement: strangers are refused before the parser sees them.

Theory of operation
===================
design.md: "a flood of strangers is refused cheaply and never delays the doorbell or the
server's traffic". :meth:`Gate.screen` looks at every message before the endpoint parses it
and returns one of three answers: go on (``None``: parse it fully), drop it (``b""``), or
these bytes, a stateless answer for the packet's source. In order:

1. **Responses** (``SIP/`` first, in any case, after any CRLFs: as the parser tells them) matter
   only to our own client transactions, which must never starve: from a trusted source they go
   on at once. From anyone else a response goes on only when its top Via's branch (read by
   :func:`top_via_branch`, no full parse) is one a request of ours carried *to that source's
   address* (the ``is_our_branch`` predicate the endpoint hands over: a live client
   transaction's, or an INVITE of a live call's, so that the callee of a direct call is heard
   even once its request budget is spent, and its late 2xx retransmissions too; without a
   trusted-source predicate every source is checked so). Anything else is a stray response: it
   uses up its source's rate-limit budget as a request would, and is dropped and counted, never
   parsed. (A peer that answers from another of its addresses than the one the request went to
   must be a trusted host.)
2. **Trusted sources** (the predicate the runtime hands over: the SIP server's addresses and
   ``INTERCOM_TRUSTED_HOSTS``) always go on, never rate-limited. Without a predicate nobody is
   trusted for the rate limit and every request goes on (two plain user agents talking).
3. **Everyone else** is rate-limited per source address (:class:`~intercom.sip.uas.RateLimiter`,
   a bounded token bucket): beyond the rate the request is dropped, malformed ones included.
4. A **light scan** of the request (:func:`scan_request`: the first line and Via, From, To,
   Call-ID and CSeq, nothing else, with folded lines, bare LF line ends and any case of
   ``SIP/2.0`` read as the parser reads them) decides the rest. When it cannot read them the
   request goes on to the full parser: a malformed one gets the parser's verdict (400 to the
   packet's source, or silence); one that parses is judged by :meth:`Gate.screen_parsed`
   exactly as below, from the parsed headers, before the endpoint starts a server
   transaction for it.

   * ``ACK`` for no call of ours is dropped (it acknowledges one of our stateless answers);
   * a request inside a dialog (a To tag, or CANCEL, BYE, INFO, UPDATE) whose Call-ID is no
     call of ours gets a stateless 481 (RFC 3261 §12.2.2, §9.2). One for a call of ours goes
     on to the parser (the callee of a direct call is a stranger too), and then only if it
     matches that call's dialog whole, Call-ID and both tags (a CANCEL: a live INVITE
     server transaction of a request from the same host, §9.2); else it gets the same
     stateless 481, counted, and no transaction;
   * a dialog-creating request (INVITE, SUBSCRIBE, REFER) gets a stateless 403 (§8.2.7 a
     stateless UAS; §21.4.4): no server transaction, no incoming call, no event, nothing held;
   * OPTIONS gets a stateless 200 with Allow, Accept and Supported, the same whatever the
     Request-URI user (§11.2: nobody can enumerate accounts); REGISTER and the other methods
     we know but do not serve a 405, unknown ones a 501, both with Allow (§8.2.1). A stranger
     thus holds no server transaction at all: each would live 32 s (Timer J), and a flood of
     OPTIONS would pile them up as one of INVITEs did.

   Stateless answers go to the packet's source, never to a host named in Via (RFC 3581 §4:
   ``received``/``rport`` are the address the packet came from), so the door reflects nothing
   at a third party. Their To tag is a hash of the request, the same for a retransmission.

Refusals, drops, malformed messages and stray responses are counted per source in
:class:`FloodLog`: the first of each kind from a source is logged at once (a few per minute at
most, whatever the number of sources), the rest once a minute with a count ("x refused 1190
INVITEs from 127.0.1.7 in the last 60 s: untrusted source"), never once per message. Its
deadline is part of the endpoint's :meth:`get_timer`; :meth:`FloodLog.flush` reports what is
pending at shutdown. Per-source tables are bounded and evict the least recently seen source, so
a flood of spoofed addresses cannot grow memory nor reset anyone else's limit.

Pure: no sockets, no clocks (``now`` is passed in).
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass

from intercom.sip.build import ACCEPTED_BODIES, ALLOWED_METHODS, SUPPORTED, stamped_via
from intercom.sip.core import Address
from intercom.sip.message import Request
from intercom.sip.uas import KNOWN_UNSUPPORTED, LOOSE_VIA, RATE_PER_SECOND, RateLimiter
from intercom.tally import CountedLog, Report, SourceTally, Tally

__all__ = [
    "DIALOG_CREATING",
    "REPORT_INTERVAL",
    "FloodLog",
    "Gate",
    "Scan",
    "is_response",
    "scan_request",
    "stateless_response",
    "top_via_branch",
]

logger = logging.getLogger(__name__)

DIALOG_CREATING = frozenset({"INVITE", "SUBSCRIBE", "REFER"})
"""Requests that start a dialog (RFC 3261 §12, RFC 6665, RFC 3515): strangers get 403."""
IN_DIALOG_ONLY = frozenset({"CANCEL", "BYE", "INFO", "UPDATE"})
"""Requests that mean something only for a call we have: strangers get 481 otherwise."""
REPORT_INTERVAL = 60.0
"""Seconds between the summary lines of one source."""
MAX_SOURCES = 4096
"""Sources whose counts are kept; the least recently seen is forgotten beyond it."""
ANNOUNCED_PER_INTERVAL = 20
"""Immediate first-sight lines per interval, whatever the number of (spoofed) sources."""
REPORTED_SOURCES = 20
"""Sources named in one summary; the rest are summed up in a single line."""
REASON_CHARS = 120
"""Of the parser's reason for a malformed message (which may quote it) kept and logged."""

_NAMED = DIALOG_CREATING | IN_DIALOG_ONLY | {"ACK", "OPTIONS", "MESSAGE", "NOTIFY", "PRACK"}
"""Methods a log line names; any other is "request" (a stranger's text is not logged)."""
_ALLOW = (f"Allow: {ALLOWED_METHODS}",)
_CAPABILITIES = (*_ALLOW, f"Accept: {ACCEPTED_BODIES}", f"Supported: {SUPPORTED}")
_REFUSED, _DROPPED, _MALFORMED, _STRAY = "refused", "dropped", "malformed", "stray"
_KINDS = {_REFUSED: "refused (untrusted source)",
          _DROPPED: f"dropped (over {RATE_PER_SECOND:.0f}/s)",
          _MALFORMED: "malformed", _STRAY: "stray responses"}  # fmt: skip
_SCANNED = {"via": "via", "v": "via", "from": "from", "f": "from", "to": "to", "t": "to",
            "call-id": "call-id", "i": "call-id", "cseq": "cseq"}  # fmt: skip


@dataclass(slots=True)
class Scan:
    """What :func:`scan_request` read: enough for a stateless answer, nothing more."""

    method: str
    vias: list[str]  # Via header values as received, in order (a line may hold several)
    from_: str
    to: str
    call_id: str
    cseq: str
    to_tag: bool


def scan_request(data: bytes) -> Scan | None:
    """The start line and the Via, From, To, Call-ID and CSeq headers of a request; None when
    it is a response or these cannot be read (the full parser then decides). Never raises.

    It reads what :func:`~intercom.sip.message.parse_message` accepts: CRLFs before the start
    line (§7.5), lines ended by CRLF or a bare LF, the header section ended by the first empty
    line either way, folded lines (§7.3.1: a line starting with a space or tab continues the
    one before), any case of ``SIP/2.0``. What it does not read, or what the parser would
    refuse (a folded start line, a doubled From, To, Call-ID or CSeq, a Call-ID with blanks or
    commas), goes to the parser.
    """
    start = len(data) - len(data.lstrip(b"\r\n")) if data[:1] in b"\r\n" else 0
    end = data.find(b"\r\n\r\n", start)
    head = data[start : None if end < 0 else end]
    text = head.decode("utf-8", "surrogateescape")
    lines = text.split("\r\n")
    if text.count("\n") >= len(lines):  # a bare LF: lines end at LF, with or without CR
        lf_end = head.find(b"\n\n")  # before the CRLF CRLF: the parser ends the head there
        if lf_end >= 0:
            text = head[:lf_end].decode("utf-8", "surrogateescape")
        lines = text.replace("\r\n", "\n").split("\n")  # as the parser's re.split(r"\r?\n")
    if len(lines) > 1 and lines[-1] in ("", "\r"):
        del lines[-1]  # the line break of the last header of a datagram without an empty line
    parts = lines[0].split(" ")
    if len(parts) != 3:
        return None
    method, uri, version = parts
    if not (method.isascii() and method.isalpha()) or not uri or version.upper() != "SIP/2.0":
        return None
    vias: list[str] = []
    single: dict[str, str] = {}  # From, To, Call-ID, CSeq: one each
    key: str | None = ""  # what the line before was: "" the start line, None another header
    for line in lines[1:]:
        name, colon, value = line.partition(":")
        if not colon or not name or name[0] in " \t":
            if not line.startswith((" ", "\t")):
                return None  # broken: the parser's job
            if key == "":  # a continuation of the start line: the parser refuses it
                return None
            if key == "via":  # a continuation of the line before (§7.3.1)
                vias[-1] = _unfolded(vias[-1], line)
            elif key is not None:
                single[key] = _unfolded(single[key], line)
            continue
        key = _SCANNED.get(name.rstrip(" \t").lower())
        if key == "via":
            vias.append(value.strip(" \t"))
        elif key is not None:
            if key in single:
                return None
            single[key] = value.strip(" \t")
    from_, to, call_id, cseq = (single.get(k) for k in ("from", "to", "call-id", "cseq"))
    if not vias or from_ is None or to is None or not call_id or not cseq:
        return None
    if not LOOSE_VIA.match(vias[0]) or " " in call_id or "\t" in call_id or "," in call_id:
        return None
    return Scan(method.upper(), vias, from_, to, call_id, cseq, _has_tag(to))


def _unfolded(value: str, continuation: str) -> str:
    """A header value with its continuation line, joined by one space as the parser does."""
    return (value.rstrip() + " " + continuation.strip()).strip(" \t")


_HEAD_END = re.compile(rb"\n\r?\n")
"""The empty line that ends the header section, after CRLF or a bare LF line end."""
_VIA_HEADER = re.compile(rb"\n(?:via|v)[ \t]*:((?:[^\n]|\n[ \t])*)", re.IGNORECASE)
"""The first Via header line of a message (folded continuation lines included)."""
_BRANCH = re.compile(rb";\s*branch\s*=\s*([^;,\s]+)", re.IGNORECASE)


def is_response(data: bytes) -> bool:
    """Whether the parser takes ``data`` for a response: its start line, after any CRLFs
    (§7.5), begins with ``SIP/`` in any case."""
    if data[:1] in (b"\r", b"\n"):
        data = data.lstrip(b"\r\n")
    return data[:4].upper() == b"SIP/"


def top_via_branch(data: bytes) -> str | None:
    """The branch parameter of a message's top Via (the first value of the first Via header),
    read without parsing the message, with lines ended by CRLF or a bare LF and folded as the
    parser reads them; None when there is none. Never raises."""
    if data[:1] in (b"\r", b"\n"):
        data = data.lstrip(b"\r\n")  # §7.5
    end = _HEAD_END.search(data)
    match = _VIA_HEADER.search(data if end is None else data[: end.start()])
    if match is None:
        return None
    branch = _BRANCH.search(match.group(1).split(b",", 1)[0])
    return None if branch is None else branch.group(1).decode("ascii", "replace")


def _has_tag(name_addr: str) -> bool:
    """Whether a To value carries a tag parameter (after the ``>`` of a name-addr)."""
    params = name_addr[name_addr.rfind(">") + 1 :]
    return ";tag=" in params.replace(" ", "").lower()


def stateless_response(
    scan: Scan, status: int, reason: str, source: Address, extra: tuple[str, ...] = ()
) -> bytes:
    """A response built from ``scan`` alone (RFC 3261 §8.2.6, §8.2.7): the Vias with
    ``received``/``rport`` of ``source`` on the top one, From, To (with a tag derived from the
    request when it had none), Call-ID, CSeq, then the ``extra`` header lines. The request's
    values are echoed byte for byte (decoded and encoded with ``surrogateescape``, as the
    parser does), so that its sender can match the answer whatever octets they hold."""
    top, comma, others = scan.vias[0].partition(",")
    vias = [stamped_via(top.strip(), source.host, source.port)]
    if comma:
        vias.append(others.strip())
    vias.extend(scan.vias[1:])
    to = scan.to
    if not scan.to_tag:
        digest = hashlib.blake2s(
            f"{scan.call_id}\n{scan.from_}\n{top}".encode("utf-8", "surrogateescape"), digest_size=6
        )
        to = f"{to};tag={digest.hexdigest()}"
    lines = [f"SIP/2.0 {status} {reason}"]
    lines.extend(f"Via: {via}" for via in vias)
    lines += [
        f"From: {scan.from_}",
        f"To: {to}",
        f"Call-ID: {scan.call_id}",
        f"CSeq: {scan.cseq}",
        *extra,
        "Content-Length: 0",
        "",
        "",
    ]
    return "\r\n".join(lines).encode("utf-8", "surrogateescape")


class FloodLog(CountedLog):
    """Counts what the gate refused, dropped or found malformed, and the stray responses, per
    source (:class:`~intercom.tally.SourceTally`); logs it with counts."""

    def __init__(self) -> None:
        super().__init__(SourceTally(
            max_sources=MAX_SOURCES, interval=REPORT_INTERVAL,
            announced=ANNOUNCED_PER_INTERVAL, reported=REPORTED_SOURCES,
        ))  # fmt: skip
        self.stray_responses = 0
        """Stray responses dropped since the start."""

    def refused(self, host: str, method: str, status: int, why: str, now: float) -> None:
        tally, announce = self._tally.count(host, _REFUSED, now)
        method = method if method in _NAMED else "request"  # no stranger's text is kept
        if tally.notes.get("method", method) != method:
            method = "request"
        tally.notes["method"] = method
        if announce:
            logger.warning(
                "x %s from %s refused with %d: %s; more from it are counted and logged once"
                " a minute", method, host, status, why,
            )  # fmt: skip

    def dropped(self, host: str, now: float) -> None:
        if self._tally.count(host, _DROPPED, now)[1]:
            logger.warning(
                "x dropping requests from %s: over %d/s; drops are counted and logged once"
                " a minute", host, RATE_PER_SECOND,
            )  # fmt: skip

    def malformed(self, source: Address, reason: str, now: float) -> None:
        tally, announce = self._tally.count(source.host, _MALFORMED, now)
        reason = reason if len(reason) <= REASON_CHARS else reason[:REASON_CHARS] + "..."
        tally.notes["reason"] = reason
        if announce:
            logger.info("x malformed message from %s: %s", source, reason)

    def stray_response(self, host: str, now: float) -> None:
        """A response that matches no request of ours (a forgery, or a late one) was dropped."""
        self.stray_responses += 1
        if self._tally.count(host, _STRAY, now)[1]:
            logger.info(
                "x stray response from %s dropped: not for a request of ours; more are counted"
                " and logged once a minute", host,
            )  # fmt: skip

    def _tell(self, report: Report) -> None:
        for host, tally in report.sources:
            _report(host, tally, report.span)
        if report.rest:
            parts = [f"{report.rest[kind]} {what}" for kind, what in _KINDS.items()
                     if report.rest.get(kind)]  # fmt: skip
            logger.warning("x from %d other sources %s: %s", report.others, report.span,
                           ", ".join(parts))  # fmt: skip


def _report(host: str, tally: Tally, span: str) -> None:
    counts, notes = tally.counts, tally.notes
    if refused := counts.get(_REFUSED):
        noun = f"{notes.get('method') or 'request'}s"
        logger.warning("x refused %d %s from %s %s: untrusted source", refused, noun, host, span)
    if dropped := counts.get(_DROPPED):
        logger.warning(
            "x dropped %d requests from %s %s: over %d/s", dropped, host, span, RATE_PER_SECOND
        )
    if malformed := counts.get(_MALFORMED):
        logger.info(
            "x %d malformed messages from %s %s (last: %s)", malformed, host, span,
            notes.get("reason", ""),
        )  # fmt: skip
    if stray := counts.get(_STRAY):
        logger.info(
            "x dropped %d stray responses from %s %s: not for a request of ours", stray, host, span
        )


class Gate:
    """The checks of the module docstring, in front of :meth:`Endpoint.receive`."""

    def __init__(
        self,
        is_trusted_source: Callable[[str], bool] | None,
        known_call: Callable[[str], bool],
        known_dialog: Callable[[Request, Address], bool],
        is_our_branch: Callable[[str, str], bool] | None = None,
    ) -> None:
        """``known_call(call_id)``: whether a call of ours has that Call-ID (the light scan
        reads no tags); ``known_dialog(request, source)``: whether ``request`` from ``source``
        belongs to one of our dialogs (or a live transaction) whole; ``is_our_branch(branch,
        host)``: whether a request of ours with that top-Via branch went to ``host`` (its
        response may come from there), None letting every response on."""
        self.is_trusted_source = is_trusted_source
        self._known_call = known_call
        self._known_dialog = known_dialog
        self._is_our_branch = is_our_branch
        self.limiter = RateLimiter()
        self.log = FloodLog()

    def screen(self, data: bytes, source: Address, now: float) -> bytes | None:
        """None: parse ``data`` fully. ``b""``: it was dropped. Else: send these bytes, the
        stateless answer, to ``source`` (and nothing else)."""
        if is_response(data):
            return self._screen_response(data, source.host, now)
        host = source.host
        trusted = self.is_trusted_source
        if trusted is not None and trusted(host):
            return None
        if not self.limiter.allow(host, now):
            self.log.dropped(host, now)
            return b""
        if trusted is None:
            return None
        scan = scan_request(data)
        if scan is None:
            return None
        return self._judge(scan, source, now, lambda: self._known_call(scan.call_id))

    def screen_parsed(self, request: Request, source: Address, now: float) -> bytes | None:
        """The same judgement of a request the full parser read, before the endpoint starts a
        server transaction for it (:meth:`screen` let it through: it could not read it, or it
        names a call of ours). A stranger's request goes on only when it belongs to one of
        our dialogs whole (``known_dialog``, §12.2.2); else the answer of :meth:`screen`,
        counted alike. None for a trusted source (and everyone, without a predicate). Its
        rate limit was already taken by :meth:`screen`."""
        trusted = self.is_trusted_source
        if trusted is None or trusted(source.host):
            return None
        headers = request.headers
        scan = Scan(
            request.method.upper(),
            headers.get_all("Via"),
            headers.get("From") or "",
            headers.get("To") or "",
            request.call_id,
            headers.get("CSeq") or "",
            request.to.tag is not None,
        )
        return self._judge(scan, source, now, lambda: self._known_dialog(request, source))

    def _judge(
        self, scan: Scan, source: Address, now: float, known: Callable[[], bool]
    ) -> bytes | None:
        """Step 4 of the module docstring for a stranger's request; ``known()`` says whether
        it is for a call (or dialog) of ours, asked only when it matters."""
        host = source.host
        method = scan.method
        if method == "ACK":
            return None if known() else b""
        if scan.to_tag or method in IN_DIALOG_ONLY:
            if known():
                return None
            self.log.refused(host, method, 481, f"untrusted source {host}, no such dialog", now)
            return stateless_response(scan, 481, "Call/Transaction Does Not Exist", source)
        if method in DIALOG_CREATING:
            self.log.refused(host, method, 403, f"untrusted source {host}", now)
            return stateless_response(scan, 403, "Forbidden", source)
        if method == "OPTIONS":
            return stateless_response(scan, 200, "OK", source, _CAPABILITIES)
        if method in KNOWN_UNSUPPORTED:
            return stateless_response(scan, 405, "Method Not Allowed", source, _ALLOW)
        return stateless_response(scan, 501, "Not Implemented", source, _ALLOW)

    def _screen_response(self, data: bytes, host: str, now: float) -> bytes | None:
        """None for a trusted source's response or one to a request of ours sent to ``host``;
        else ``b""``: a stray response, counted against the source's rate limit and dropped."""
        trusted, ours = self.is_trusted_source, self._is_our_branch
        if ours is None or (trusted is not None and trusted(host)):
            return None
        branch = top_via_branch(data)
        if branch is not None and ours(branch, host):
            return None
        self.limiter.allow(host, now)  # it spends the source's budget as a request would
        self.log.stray_response(host, now)
        return b""
