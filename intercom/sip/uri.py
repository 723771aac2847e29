"""SIP URIs, name-addr values, Via values and the small grammar they share.

RFC 3261 §19.1 (SIP URIs), §20.10 and §25.1 (name-addr / addr-spec), §20.42 (Via), RFC 5118
(IPv6 references) and RFC 3581 (rport). Values are parsed once, at the edge, into frozen
dataclasses; ``str()`` gives them back in canonical wire form. Anything malformed raises
:class:`RemoteProtocolError` with status hint 400.

Escapes (``%41``) are kept as received: comparison rules are the dialog layer's business, and
RFC 4475 §3.1.1.4 asks that ``%00`` stays escaped.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType

from intercom.sip.errors import RemoteProtocolError

Params = Mapping[str, str | None]

_EMPTY: Params = MappingProxyType({})
_TOKEN = re.compile(r"[A-Za-z0-9\-.!%*_+`'~]+")
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+\-.]*")
_HOSTNAME = re.compile(r"[A-Za-z0-9\-.]+")
_IPV6_BODY = re.compile(r"[0-9A-Fa-f:.]+")
_WS = re.compile(r"[ \t\r\n]")
_DIGITS = re.compile(r"[0-9]+")


def is_token(text: str) -> bool:
    return _TOKEN.fullmatch(text) is not None


def parse_uint(text: str, limit: int) -> int | None:
    """``text`` as a decimal number of at most ``limit``; None when it is not one.

    ASCII digits only (``str.isdigit`` accepts ``²``, which ``int`` refuses), and the length is
    checked before ``int()`` so that 5000 digits cannot trip Python's int/str conversion limit.
    Leading zeros are allowed (RFC 4475 §3.1.1.1: ``Max-Forwards: 0068``).
    """
    if not _DIGITS.fullmatch(text):
        return None
    text = text.lstrip("0") or "0"
    if len(text) > len(str(limit)):
        return None
    value = int(text)
    return value if value <= limit else None


def split_outside_quotes(text: str, sep: str) -> Iterator[str]:
    """Split on ``sep`` where it is not inside a quoted string or ``<...>``."""
    depth = 0
    quoted = False
    escaped = False
    start = 0
    for i, ch in enumerate(text):
        if quoted:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                quoted = False
        elif ch == '"':
            quoted = True
        elif ch == "<":
            depth += 1
        elif ch == ">":
            depth = max(0, depth - 1)
        elif ch == sep and depth == 0:
            yield text[start:i]
            start = i + 1
    if quoted:
        raise RemoteProtocolError(f"unterminated quoted string in {text!r}")
    yield text[start:]


def parse_params(text: str, what: str) -> dict[str, str | None]:
    """``;a=1;b;c="x"`` (the leading ``;`` already removed) to an ordered dict, lower-case names."""
    params: dict[str, str | None] = {}
    if not text.strip():
        return params
    for raw in split_outside_quotes(text, ";"):
        name, eq, value = raw.partition("=")
        name = name.strip()
        if not name or not is_token(name):
            raise RemoteProtocolError(f"bad parameter {raw.strip()!r} in {what}")
        params[name.lower()] = value.strip() if eq else None
    return params


def format_params(params: Params) -> str:
    return "".join(f";{k}" if v is None else f";{k}={v}" for k, v in params.items())


def format_host(host: str) -> str:
    """Bracket an IPv6 literal (RFC 5118 §4.3)."""
    return f"[{host}]" if ":" in host else host


def format_hostport(host: str, port: int | None) -> str:
    return format_host(host) if port is None else f"{format_host(host)}:{port}"


def merge_params(params: Params, updates: Mapping[str, str | None]) -> Params:
    """A read-only copy of ``params`` with ``updates`` applied (new names go last)."""
    merged = dict(params)
    merged.update(updates)
    return MappingProxyType(merged)


def parse_host_port(text: str, what: str) -> tuple[str, int | None]:
    """``host``, ``host:port``, ``[v6]`` or ``[v6]:port``; the host comes back without brackets."""
    if text.startswith("["):
        end = text.find("]")
        if end < 0 or not _IPV6_BODY.fullmatch(text[1:end]):
            raise RemoteProtocolError(f"bad IPv6 reference in {what}: {text!r}")
        host, rest = text[1:end], text[end + 1 :]
    else:
        host, colon, port_text = text.partition(":")
        rest = colon + port_text
        if not _HOSTNAME.fullmatch(host):
            raise RemoteProtocolError(f"bad host in {what}: {text!r}")
    if not rest:
        return host, None
    port = parse_uint(rest[1:], 65535) if rest.startswith(":") else None
    if not port:
        raise RemoteProtocolError(f"bad port in {what}: {text!r}")
    return host, port


@dataclass(frozen=True, slots=True)
class SipUri:
    """A ``sip:`` or ``sips:`` URI (RFC 3261 §19.1.1). ``host`` has no IPv6 brackets."""

    host: str
    user: str | None = None
    port: int | None = None
    scheme: str = "sip"
    password: str | None = None
    params: Params = field(default_factory=lambda: _EMPTY)
    headers: tuple[tuple[str, str], ...] = ()

    @classmethod
    def parse(cls, text: str) -> SipUri:
        uri = parse_uri(text)
        if not isinstance(uri, SipUri):
            raise RemoteProtocolError(f"not a SIP URI: {text!r}")
        return uri

    @property
    def transport(self) -> str | None:
        value = self.params.get("transport")
        return value.lower() if value else None

    @property
    def hostport(self) -> str:
        return format_hostport(self.host, self.port)

    def with_params(self, **params: str | None) -> SipUri:
        return replace(self, params=merge_params(self.params, params))

    def without_params(self, *names: str) -> SipUri:
        kept = {k: v for k, v in self.params.items() if k not in names}
        return replace(self, params=MappingProxyType(kept))

    def __str__(self) -> str:
        userinfo = ""
        if self.user is not None:
            userinfo = self.user
            if self.password is not None:
                userinfo += ":" + self.password
            userinfo += "@"
        text = f"{self.scheme}:{userinfo}{self.hostport}{format_params(self.params)}"
        if self.headers:
            text += "?" + "&".join(f"{k}={v}" for k, v in self.headers)
        return text


@dataclass(frozen=True, slots=True)
class OtherUri:
    """An absolute URI of a scheme we do not route to (``tel:``, ``mailto:``, ``urn:`` ...)."""

    scheme: str
    rest: str

    def __str__(self) -> str:
        return f"{self.scheme}:{self.rest}"


Uri = SipUri | OtherUri


def parse_uri(text: str) -> Uri:
    """Parse an absolute URI; ``sip``/``sips`` in full, any other scheme kept opaque."""
    if not text or _WS.search(text):
        raise RemoteProtocolError(f"bad URI {text!r}")
    scheme, colon, rest = text.partition(":")
    if not colon or not _SCHEME.fullmatch(scheme) or not rest:
        raise RemoteProtocolError(f"bad URI {text!r}")
    scheme = scheme.lower()
    if scheme not in ("sip", "sips"):
        return OtherUri(scheme, rest)
    user = password = None
    if "@" in rest:
        userinfo, _, rest = rest.partition("@")
        user, _, pw = userinfo.partition(":")
        password = pw if ":" in userinfo else None
        if not user:
            raise RemoteProtocolError(f"empty user part in {text!r}")
    rest, question, header_text = rest.partition("?")
    hostport, _, param_text = rest.partition(";")
    host, port = parse_host_port(hostport, "URI")
    headers: tuple[tuple[str, str], ...] = ()
    if question:
        pairs = [h.partition("=") for h in header_text.split("&")]
        headers = tuple((name, value) for name, _, value in pairs)
    params = MappingProxyType(parse_params(param_text, "URI"))
    return SipUri(host, user, port, scheme, password, params, headers)


def _unquote(text: str) -> str:
    body = text[1:-1]
    return re.sub(r"\\(.)", r"\1", body)


def quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


@dataclass(frozen=True, slots=True)
class NameAddr:
    """A From/To/Contact/Route value: optional display name, a URI, header parameters."""

    uri: Uri
    display_name: str | None = None
    params: Params = field(default_factory=lambda: _EMPTY)

    @classmethod
    def parse(cls, text: str) -> NameAddr:
        """Both forms of RFC 3261 §20.10: ``"Name" <uri>;p=1`` and ``uri;p=1`` (params bind to the
        header, not the URI, in the second form)."""
        text = text.strip()
        lt = _find_unquoted(text, "<")
        if lt < 0:
            if '"' in text:
                raise RemoteProtocolError(f"quoted display name without <URI> in {text!r}")
            uri_text, _, param_text = text.partition(";")
            if "?" in uri_text or "," in uri_text:
                raise RemoteProtocolError(f"addr-spec with reserved characters: {text!r}")
            uri = parse_uri(uri_text.strip())
            return cls(uri, None, MappingProxyType(parse_params(param_text, "header")))
        gt = text.find(">", lt)
        if gt < 0:
            raise RemoteProtocolError(f"missing '>' in {text!r}")
        display = text[:lt].strip()
        display_name: str | None = None
        if display.startswith('"'):
            if _quoted_end(display) != len(display):
                raise RemoteProtocolError(f"bad quoted display name in {text!r}")
            display_name = _unquote(display)
        elif display:
            if not all(is_token(word) for word in display.split()):
                raise RemoteProtocolError(f"display name needs quotes: {display!r}")
            display_name = " ".join(display.split())
        uri = parse_uri(text[lt + 1 : gt])
        rest = text[gt + 1 :].strip()
        if rest and not rest.startswith(";"):
            raise RemoteProtocolError(f"junk after '>' in {text!r}")
        return cls(uri, display_name, MappingProxyType(parse_params(rest[1:], "header")))

    @property
    def tag(self) -> str | None:
        return self.params.get("tag")

    def with_params(self, **params: str | None) -> NameAddr:
        return replace(self, params=merge_params(self.params, params))

    def __str__(self) -> str:
        name = f"{quote(self.display_name)} " if self.display_name else ""
        return f"{name}<{self.uri}>{format_params(self.params)}"


def _find_unquoted(text: str, ch: str) -> int:
    """Index of ``ch`` outside quoted strings; -1 if absent. A quote pair is skipped whole."""
    quoted = escaped = False
    for i, c in enumerate(text):
        if quoted:
            if escaped:
                escaped = False
            elif c == "\\":
                escaped = True
            elif c == '"':
                quoted = False
        elif c == ch:
            return i
        elif c == '"':
            quoted = True
    return -1


def _quoted_end(text: str) -> int:
    """Index just past the quoted string that ``text`` starts with; -1 if it never closes."""
    escaped = False
    for i in range(1, len(text)):
        if escaped:
            escaped = False
        elif text[i] == "\\":
            escaped = True
        elif text[i] == '"':
            return i + 1
    return -1


def parse_name_addr_list(value: str) -> list[NameAddr]:
    """Comma-separated name-addr values (Contact, Route, Record-Route)."""
    return [NameAddr.parse(part) for part in split_outside_quotes(value, ",") if part.strip()]


_VIA_PROTOCOL = re.compile(r"SIP\s*/\s*2\.0\s*/\s*([A-Za-z0-9\-.!%*_+`'~]+)\s+(.+)", re.I | re.S)


@dataclass(frozen=True, slots=True)
class Via:
    """One Via value (RFC 3261 §20.42, RFC 3581 ``rport``)."""

    transport: str
    host: str
    port: int | None = None
    params: Params = field(default_factory=lambda: _EMPTY)

    @classmethod
    def parse(cls, text: str) -> Via:
        match = _VIA_PROTOCOL.fullmatch(text.strip())
        if not match:
            raise RemoteProtocolError(f"bad Via {text!r}")
        sent_by, _, param_text = match.group(2).partition(";")
        host, port = parse_host_port(sent_by.strip(), "Via")
        params = parse_params(param_text, "Via")
        received = params.get("received")
        if received and received.startswith("[") and received.endswith("]"):
            params["received"] = received[1:-1]  # RFC 5118 §4.5: tolerate the brackets
        rport = params.get("rport")
        if rport is not None and not parse_uint(rport, 65535):
            raise RemoteProtocolError(f"bad rport in Via {text!r}")
        return cls(match.group(1).upper(), host, port, MappingProxyType(params))

    @property
    def branch(self) -> str | None:
        return self.params.get("branch")

    @property
    def sent_by(self) -> str:
        return format_hostport(self.host, self.port)

    def with_params(self, **params: str | None) -> Via:
        return replace(self, params=merge_params(self.params, params))

    def __str__(self) -> str:
        return f"SIP/2.0/{self.transport} {self.sent_by}{format_params(self.params)}"
