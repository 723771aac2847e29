"""SIP URIs, name-addr values and Via values.

RFC 3261 §19.1 (SIP URIs), §20.10 and §25.1 (name-addr / addr-spec), §20.42 (Via), RFC 5118
(IPv6 references) and RFC 3581 (rport). Values are parsed once, at the edge, into frozen
dataclasses; ``str()`` gives them back in canonical wire form. Anything malformed raises
:class:`RemoteProtocolError` with status hint 400.

Escapes (``%41``) are kept as received: comparison rules are the dialog layer's business, and
RFC 4475 §3.1.1.4 asks that ``%00`` stays escaped.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType

from intercom.sip.errors import RemoteProtocolError
from intercom.sip.grammar import TOKEN, is_quoted_string, mask_quoted, unquote

# Re-exported: message parsing reads these through this module.
from intercom.sip.grammar import is_token as is_token
from intercom.sip.grammar import quote as quote
from intercom.sip.grammar import split_outside_quotes as split_outside_quotes

Params = Mapping[str, str | None]

_EMPTY: Params = MappingProxyType({})
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+\-.]*")
_HOSTNAME = re.compile(r"[A-Za-z0-9\-.]+")
_IPV6_BODY = re.compile(r"[0-9A-Fa-f:.]+")
_WS = re.compile(r"[ \t\r\n]")
_DIGITS = re.compile(r"[0-9]+")


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
        lt = mask_quoted(text)[0].find("<")
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
            if not is_quoted_string(display):
                raise RemoteProtocolError(f"bad quoted display name in {text!r}")
            display_name = unquote(display)
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


def parse_name_addr_list(value: str) -> list[NameAddr]:
    """Comma-separated name-addr values (Contact, Route, Record-Route)."""
    return [NameAddr.parse(part) for part in split_outside_quotes(value, ",") if part.strip()]


_VIA_PROTOCOL = re.compile(rf"SIP\s*/\s*2\.0\s*/\s*({TOKEN})\s+(.+)", re.I | re.S)


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
