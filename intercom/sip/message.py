"""SIP requests and responses: parsing from bytes, serialising to bytes.

RFC 3261 §7 (message format), §7.3.3 (compact forms), §18.3 (framing, Content-Length), §20
(header fields), §8.1.1 / §8.2 (the six mandatory request headers), §25 (ABNF).

``parse_message`` accepts one datagram or one framed stream message and either returns a
:class:`Request` / :class:`Response` or raises :class:`RemoteProtocolError` whose
``status_hint`` is the answer a UAS should give (400, 505, 513). It never raises anything else:
tests/sip/test_message_fuzz.py holds it to that.

Text is decoded as UTF-8 with ``surrogateescape`` so that any octet survives a round trip.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from intercom.sip.errors import RemoteProtocolError
from intercom.sip.uri import (
    NameAddr,
    SipUri,
    Uri,
    Via,
    is_token,
    parse_name_addr_list,
    parse_uint,
    parse_uri,
    split_outside_quotes,
)

SIP_VERSION = "SIP/2.0"
MAX_HEADER_BYTES = 16 * 1024
"""The header section we accept; beyond it 513 Message Too Large (RFC 3261 §21.5.14)."""
MAX_BODY_BYTES = 64 * 1024
MAX_CSEQ = 2**31 - 1

_COMPACT = {
    "a": "Accept-Contact", "b": "Referred-By", "c": "Content-Type", "d": "Request-Disposition",
    "e": "Content-Encoding", "f": "From", "i": "Call-ID", "j": "Reject-Contact",
    "k": "Supported", "l": "Content-Length", "m": "Contact", "n": "Identity-Info",
    "o": "Event", "r": "Refer-To", "s": "Subject", "t": "To", "u": "Allow-Events",
    "v": "Via", "x": "Session-Expires", "y": "Identity",
}  # fmt: skip
_CANONICAL = {
    name.lower(): name
    for name in (
        "Accept", "Accept-Encoding", "Accept-Language", "Alert-Info", "Allow", "Allow-Events",
        "Authentication-Info", "Authorization", "Call-ID", "Call-Info", "Contact",
        "Content-Disposition", "Content-Encoding", "Content-Language", "Content-Length",
        "Content-Type", "CSeq", "Date", "Error-Info", "Event", "Expires", "From", "In-Reply-To",
        "Max-Forwards", "Min-Expires", "Min-SE", "MIME-Version", "Organization",
        "P-Asserted-Identity", "P-Preferred-Identity", "Priority", "Proxy-Authenticate",
        "Proxy-Authorization", "Proxy-Require", "Reason", "Record-Route", "Refer-To",
        "Referred-By", "Reply-To", "Require", "Retry-After", "Route", "RSeq", "RAck", "Server",
        "Session-Expires", "Subject", "Supported", "Timestamp", "To", "Unsupported",
        "User-Agent", "Via", "Warning", "WWW-Authenticate",
    )
}  # fmt: skip
_T = TypeVar("_T")
_SINGLE = ("Call-ID", "CSeq", "From", "To", "Max-Forwards", "Content-Length", "Content-Type")
_LEADING_CRLF = re.compile(rb"[\r\n]*")
_LWS = re.compile(r"[ \t]+")
_START_REQUEST = re.compile(r"([!%*+\-.`'~_A-Za-z0-9]+) (\S+) ([A-Za-z]+/[0-9]+\.[0-9]+)")
_START_RESPONSE = re.compile(r"([A-Za-z]+/[0-9]+\.[0-9]+) ([0-9]{3})(?: (.*))?")


def canonical_name(name: str) -> str:
    """``v`` -> ``Via``, ``call-id`` -> ``Call-ID``; unknown names keep their spelling."""
    lower = name.lower()
    if len(lower) == 1 and lower in _COMPACT:
        return _COMPACT[lower]
    return _CANONICAL.get(lower, name)


class Headers:
    """An ordered, case-insensitive multimap of header fields, names in canonical form, with
    the values parsed from them (``_memo``, see :class:`_Parsed`): a change to a field forgets
    only the values parsed from fields of that name."""

    __slots__ = ("_items", "_memo")

    def __init__(self, items: Iterable[tuple[str, str]] = ()) -> None:
        self._items: list[tuple[str, str]] = [(canonical_name(n), v) for n, v in items]
        self._memo: dict[tuple[str, str], Any] = {}  # (lower-case name, view) -> parsed value

    def _changed(self, name: str) -> str:
        """``name`` in canonical form, once the values parsed from its fields are forgotten."""
        name = canonical_name(name)
        if self._memo:
            self._memo = {k: v for k, v in self._memo.items() if k[0] != name.lower()}
        return name

    def get(self, name: str, default: str | None = None) -> str | None:
        key = canonical_name(name).lower()
        for n, v in self._items:
            if n.lower() == key:
                return v
        return default

    def get_all(self, name: str) -> list[str]:
        """Every field of that name, one entry per header line, in order."""
        key = canonical_name(name).lower()
        return [v for n, v in self._items if n.lower() == key]

    def get_list(self, name: str) -> list[str]:
        """Comma-separated values across every line of that name (§7.3.1), stripped."""
        values: list[str] = []
        for line in self.get_all(name):
            values.extend(p.strip() for p in split_outside_quotes(line, ",") if p.strip())
        return values

    def add(self, name: str, value: str) -> None:
        self._items.append((self._changed(name), value))

    def prepend(self, name: str, value: str) -> None:
        self._items.insert(0, (self._changed(name), value))

    def set(self, name: str, value: str) -> None:
        """Replace every field of that name with one, at the place of the first."""
        self.set_list(name, (value,))

    def set_list(self, name: str, values: Iterable[str]) -> None:
        """Replace every field of that name with one field per value, at the place of the
        first (appended when there was none; removed when ``values`` is empty)."""
        name = self._changed(name)
        key = name.lower()
        at = next((i for i, (n, _) in enumerate(self._items) if n.lower() == key), None)
        kept = [(n, v) for n, v in self._items if n.lower() != key]
        at = len(kept) if at is None else at
        kept[at:at] = [(name, value) for value in values]
        self._items = kept

    def remove(self, name: str) -> None:
        key = self._changed(name).lower()
        self._items = [(n, v) for n, v in self._items if n.lower() != key]

    def copy(self) -> Headers:
        clone = Headers()
        clone._items = list(self._items)
        clone._memo = dict(self._memo)
        return clone

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.get(name) is not None

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Headers) and self._items == other._items

    def __repr__(self) -> str:
        return f"Headers({self._items!r})"


@dataclass(frozen=True, slots=True)
class CSeq:
    seq: int
    method: str

    @classmethod
    def parse(cls, text: str) -> CSeq:
        parts = _LWS.split(text.strip(" \t"))  # §20.16: 1*DIGIT LWS Method
        if len(parts) != 2 or not parts[0].isascii() or not is_token(parts[1]):
            raise RemoteProtocolError(f"bad CSeq {text!r}")
        number, method = parts
        seq = parse_uint(number, MAX_CSEQ)
        if seq is None:
            if number.isdigit():
                raise RemoteProtocolError(f"CSeq number too large: {number[:40]}")
            raise RemoteProtocolError(f"bad CSeq {text!r}")
        return cls(seq, method)

    def __str__(self) -> str:
        return f"{self.seq} {self.method}"


class _Parsed(Generic[_T]):
    """A typed view of the ``header`` fields of a message: parsed on first use, kept until a
    field of that name changes."""

    def __init__(self, header: str, parse: Callable[[Headers], _T]) -> None:
        self._parse = parse
        self._key = (header.lower(), "")

    def __set_name__(self, owner: type, name: str) -> None:
        self._key = (self._key[0], name)

    def __get__(self, message: _Message, owner: type | None = None) -> _T:
        memo = message.headers._memo
        try:
            return memo[self._key]  # type: ignore[no-any-return]
        except KeyError:
            value = memo[self._key] = self._parse(message.headers)
            return value


def _top_via(headers: Headers) -> Via:
    values = headers.get_list("Via")
    if not values:
        raise RemoteProtocolError("no Via")
    return Via.parse(values[0])


def _name_addrs(headers: Headers, name: str) -> tuple[NameAddr, ...]:
    return tuple(c for v in headers.get_all(name) for c in parse_name_addr_list(v))


def _content_type(headers: Headers) -> str | None:
    value = headers.get("Content-Type")
    return value.split(";", 1)[0].strip().lower() if value else None


@dataclass(slots=True)
class _Message:
    headers: Headers = field(default_factory=Headers)
    body: bytes = b""

    # Typed views of the headers the stack reads, parsed once (until their header changes).
    # parse_message() has validated them already; on a message built by our own code a
    # missing one is a bug and raises RemoteProtocolError from the parsers below.
    call_id = _Parsed("Call-ID", lambda h: h.get("Call-ID") or "")
    cseq = _Parsed("CSeq", lambda h: CSeq.parse(h.get("CSeq") or ""))
    vias = _Parsed("Via", lambda h: tuple(Via.parse(v) for v in h.get_list("Via")))
    top_via = _Parsed("Via", _top_via)
    from_ = _Parsed("From", lambda h: NameAddr.parse(h.get("From") or ""))
    to = _Parsed("To", lambda h: NameAddr.parse(h.get("To") or ""))
    contacts = _Parsed("Contact", lambda h: _name_addrs(h, "Contact"))
    record_route = _Parsed("Record-Route", lambda h: _name_addrs(h, "Record-Route"))
    route = _Parsed("Route", lambda h: _name_addrs(h, "Route"))
    content_type = _Parsed("Content-Type", _content_type)

    def start_line(self) -> str:
        raise NotImplementedError

    def encode(self) -> bytes:
        """Wire form, with Content-Length set from the body (§18.3: always sent)."""
        lines = [self.start_line()]
        lines.extend(f"{n}: {v}" for n, v in self.headers if n != "Content-Length")
        lines.append(f"Content-Length: {len(self.body)}")
        head = "\r\n".join(lines) + "\r\n\r\n"
        return head.encode("utf-8", "surrogateescape") + self.body

    def __bytes__(self) -> bytes:
        return self.encode()


@dataclass(slots=True)
class Request(_Message):
    method: str = ""
    uri: Uri = field(kw_only=True)
    """The Request-URI, parsed once (by parse_message or the builder); rendered canonical."""
    strict_routed: bool = False
    """Built for a strict router (RFC 3261 §12.2.1.1): its Request-URI is that router, so it
    goes there whatever its Route headers say (§8.1.2). Not on the wire."""

    def start_line(self) -> str:
        return f"{self.method} {self.uri} {SIP_VERSION}"

    def __repr__(self) -> str:
        return f"Request({self.method} {self.uri}, Call-ID={self.call_id})"


@dataclass(slots=True)
class Response(_Message):
    status: int = 0
    reason: str = ""

    def start_line(self) -> str:
        return f"{SIP_VERSION} {self.status} {self.reason}"

    def __repr__(self) -> str:
        return f"Response({self.status} {self.reason}, Call-ID={self.call_id})"


Message = Request | Response


def parse_message(data: bytes, *, stream: bool = False) -> Message:
    """Parse one message.

    Args:
        data: one datagram, or one message already framed by :class:`StreamFramer`.
        stream: True for TCP, where a missing Content-Length is an error (§18.3).

    Raises:
        RemoteProtocolError: malformed, with the status a UAS should answer.
    """
    leading = _LEADING_CRLF.match(data)  # §7.5: CRLFs before the start line are ignored
    offset = leading.end() if leading else 0
    head_end, body_start = _find_blank_line(data, offset)
    if head_end - offset > MAX_HEADER_BYTES:  # checked before anything is copied or decoded
        raise RemoteProtocolError("header section too large", 513)
    rest = data[body_start:]
    text = data[offset:head_end].decode("utf-8", "surrogateescape")
    lines = _unfold(text)
    if not lines:
        raise RemoteProtocolError("empty message")
    headers = Headers(_split_header(line) for line in lines[1:])
    start = lines[0]
    message: Message
    if start.upper().startswith("SIP/"):
        message = _parse_status_line(start, headers)
    else:
        message = _parse_request_line(start, headers)
    message.body = _take_body(headers, rest, stream)
    _validate(message)
    return message


def _find_blank_line(data: bytes, start: int) -> tuple[int, int]:
    """Where the header section ends and the body starts: at the first empty line, ended by
    CRLF or by a bare LF, whichever comes first.

    The search stops after ``MAX_HEADER_BYTES``: a longer header section is refused anyway. With
    no empty line the datagram's end ends the headers (RFC 4475 §3.1.2.15), and the line break
    after the last header field is its terminator, not an empty header line.
    """
    limit = start + MAX_HEADER_BYTES + 4
    crlf = data.find(b"\r\n\r\n", start, limit)
    lf = data.find(b"\n\n", start, limit)
    if crlf >= 0 and (lf < 0 or crlf <= lf):
        return crlf, crlf + 4
    if lf >= 0:
        return lf, lf + 2
    end = len(data)
    if data.endswith(b"\n", start):
        end -= 1
    if data.endswith(b"\r", start, end):
        end -= 1
    return max(start, end), len(data)


def _unfold(text: str) -> list[str]:
    """Split lines and join continuation lines (§7.3.1: LWS folding)."""
    lines: list[str] = []
    for line in re.split(r"\r?\n", text):
        if line[:1] in (" ", "\t") and lines:
            lines[-1] = lines[-1].rstrip() + " " + line.strip()
        else:
            lines.append(line)
    return lines


def _split_header(line: str) -> tuple[str, str]:
    name, colon, value = line.partition(":")
    name = name.rstrip(" \t")
    if not colon or not is_token(name):
        raise RemoteProtocolError(f"bad header line {line[:80]!r}")
    return name, value.strip(" \t")


def _check_version(version: str) -> None:
    if version.upper() != SIP_VERSION:
        raise RemoteProtocolError(f"unsupported version {version}", 505)


def _parse_request_line(line: str, headers: Headers) -> Request:
    match = _START_REQUEST.fullmatch(line)
    if not match:
        raise RemoteProtocolError(f"bad request line {line[:80]!r}")
    method, uri, version = match.groups()
    _check_version(version)
    if uri.startswith("<"):
        raise RemoteProtocolError("Request-URI must not be enclosed in <>")
    parsed = parse_uri(uri)
    if isinstance(parsed, SipUri) and parsed.headers:
        raise RemoteProtocolError("headers are not allowed in a Request-URI (§19.1.5)")
    return Request(headers=headers, method=method, uri=parsed)


def _parse_status_line(line: str, headers: Headers) -> Response:
    match = _START_RESPONSE.fullmatch(line.rstrip("\r"))
    if not match:
        raise RemoteProtocolError(f"bad status line {line[:80]!r}")
    version, code, reason = match.groups()
    _check_version(version)
    status = int(code)
    if not 100 <= status <= 699:
        raise RemoteProtocolError(f"bad status code {code}")
    return Response(headers=headers, status=status, reason=reason or "")


def _take_body(headers: Headers, rest: bytes, stream: bool) -> bytes:
    values = headers.get_all("Content-Length")
    if not values:
        if stream:
            raise RemoteProtocolError("Content-Length is required on a stream transport")
        return rest[:MAX_BODY_BYTES] if len(rest) <= MAX_BODY_BYTES else _too_large()
    if len(values) > 1 or "," in values[0]:
        raise RemoteProtocolError("more than one Content-Length")
    length = parse_content_length(values[0])  # an empty value is malformed, not absent
    if length > len(rest):
        raise RemoteProtocolError("Content-Length larger than the message")
    return rest[:length]  # §18.3: octets past Content-Length are discarded


def parse_content_length(value: str) -> int:
    """A Content-Length value (§20.14: 1*DIGIT); 413 above :data:`MAX_BODY_BYTES`."""
    length = parse_uint(value, MAX_BODY_BYTES)
    if length is None:
        if value.isascii() and value.isdigit():
            _too_large()
        raise RemoteProtocolError(f"bad Content-Length {value[:40]!r}")
    return length


def _too_large() -> bytes:
    raise RemoteProtocolError("body too large", 413)


def _validate(message: Message) -> None:
    """The checks of §8.2 that any stack must make before acting on a message."""
    headers = message.headers
    for name in ("Via", "From", "To", "Call-ID", "CSeq"):
        if name not in headers:
            raise RemoteProtocolError(f"missing {name}")
    for name in _SINGLE:
        if len(headers.get_all(name)) > 1:
            raise RemoteProtocolError(f"more than one {name}")
    if not message.call_id or any(c in message.call_id for c in " \t,"):
        raise RemoteProtocolError(f"bad Call-ID {message.call_id!r}")
    vias = message.vias
    if not vias:
        raise RemoteProtocolError("empty Via")
    if isinstance(message, Request):
        branch = vias[0].branch
        if branch is not None and branch.lower() == "z9hg4bk":
            raise RemoteProtocolError("Via branch is the bare magic cookie")
    for name in ("From", "To"):
        count = len(headers.get_list(name))
        if count != 1:
            raise RemoteProtocolError(
                f"more than one value in {name}" if count else f"empty {name}"
            )
    message.from_  # noqa: B018 - parse to validate
    message.to  # noqa: B018
    cseq = message.cseq
    if isinstance(message, Request) and cseq.method != message.method:
        raise RemoteProtocolError(f"CSeq method {cseq.method} does not match {message.method}")
    max_forwards = headers.get("Max-Forwards")
    if max_forwards is not None and parse_uint(max_forwards, 255) is None:
        raise RemoteProtocolError(f"bad Max-Forwards {max_forwards!r}")
    contacts = headers.get_all("Contact")
    if all(value.strip() != "*" for value in contacts):
        message.contacts  # noqa: B018 - parsed to validate, kept for the dialog layer
    elif isinstance(message, Response):  # §20.10: "*" only in a REGISTER request
        raise RemoteProtocolError("Contact: * in a response")
    else:  # the UAS checks answer "*" (§10.3); the other values must still parse
        for value in contacts:
            if value.strip() != "*":
                parse_name_addr_list(value)
    message.record_route  # noqa: B018 - parsed to validate, kept for the dialog layer
    message.route  # noqa: B018 - parsed to validate, kept for routing
    expires = headers.get("Expires")
    if expires is not None and not (expires.isascii() and expires.isdigit()):
        raise RemoteProtocolError(f"bad Expires {expires!r}")
