"""SDP session descriptions (RFC 4566, as revised by RFC 8866): parsing and encoding.

Theory of operation
===================

A description is lines of ``<type>=<value>`` (§5). The session part comes first, then one section
per ``m=`` line; every line after an ``m=`` belongs to that media section until the next ``m=``.
:func:`parse_sdp` builds a :class:`SessionDescription` and :meth:`SessionDescription.encode` turns
one back into bytes, so what we answer is a model we build, never text we patch.

Strict where offer/answer needs the value, tolerant everywhere else (§5: "be liberal in what you
accept"), because phones in the field bend the grammar:

* strict: the first line is ``v=0``; exactly one ``o=`` with its six fields; an ``m=`` line has a
  media type, a numeric port (0-65535, optionally ``/count``) and a transport; ``c=`` has its
  three fields. Breaking these raises :class:`SdpError` naming the line, as does any line that is
  not ``<letter>=<value>``.
* tolerant: LF-only line ends (RFC 4566 §5 demands CRLF; §5 also asks parsers to take LF),
  trailing white space, blank lines, a missing ``s=`` or ``t=``, attributes and line types we do
  not know. Unknown lines are kept in order and encoded again, so a parse/encode round trip of a
  well-formed description changes nothing but the line ends.

Encoding writes CRLF after every line and the fields in the order of §5: ``v o s [i] [u e p] [c]
[b] t [r] [z k] [a]`` then each media section ``m [i] [c] [b] [k] [a]``. It is deterministic: the
same model always gives the same bytes.

Text is decoded as UTF-8 with ``surrogateescape`` (the default charset of §6; any octet survives a
round trip), as the SIP layer does for its messages.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

__all__ = [
    "Attribute",
    "Connection",
    "MediaDescription",
    "Origin",
    "RtpMap",
    "SdpError",
    "SessionDescription",
    "parse_sdp",
]

logger = logging.getLogger(__name__)

MAX_SDP_BYTES = 64 * 1024
"""The largest description we parse: the SIP layer's body limit, far above any real offer."""

_BEFORE_CONNECTION = "uep"
"""Session-level line types placed between ``i=`` and ``c=`` (§5)."""
_AFTER_TIME = "rzk"
"""Session-level line types placed after the ``t=`` lines (§5)."""


class SdpError(ValueError):
    """A session description we cannot use: the message says which line and why."""


@dataclass(slots=True)
class Origin:
    """The ``o=`` line (§5.2). Session id and version stay text: some peers exceed 64 bits."""

    username: str
    session_id: str
    version: str
    network_type: str
    address_type: str
    address: str

    def encode(self) -> str:
        return (
            f"{self.username} {self.session_id} {self.version} "
            f"{self.network_type} {self.address_type} {self.address}"
        )


@dataclass(slots=True)
class Connection:
    """A ``c=`` line (§5.7): where media goes. ``address`` may carry ``/ttl`` for multicast."""

    address_type: str
    address: str
    network_type: str = "IN"

    def encode(self) -> str:
        return f"{self.network_type} {self.address_type} {self.address}"


@dataclass(slots=True)
class Attribute:
    """An ``a=`` line (§5.13): ``a=name:value``, or a flag ``a=name`` when ``value`` is None."""

    name: str
    value: str | None = None

    def encode(self) -> str:
        return self.name if self.value is None else f"{self.name}:{self.value}"


@dataclass(frozen=True, slots=True)
class RtpMap:
    """One ``a=rtpmap`` (§6.6): payload type -> encoding name, clock rate, channels."""

    payload_type: int
    encoding: str
    clock_rate: int
    channels: int | None = None


def _find(attributes: list[Attribute], name: str) -> str | None:
    for attribute in attributes:
        if attribute.name == name:
            return attribute.value if attribute.value is not None else ""
    return None


@dataclass(slots=True)
class MediaDescription:
    """One media section: the ``m=`` line (§5.14) and the lines that follow it."""

    media: str
    port: int
    proto: str
    formats: list[str]
    port_count: int | None = None
    title: str | None = None
    connection: Connection | None = None
    bandwidths: list[str] = field(default_factory=list)
    attributes: list[Attribute] = field(default_factory=list)
    other: list[tuple[str, str]] = field(default_factory=list)
    """Lines of other types (``k=``, unknown letters), in order, re-encoded after ``b=``."""

    def attribute(self, name: str) -> str | None:
        """The value of the first ``a=name`` ("" for a flag), None when absent."""
        return _find(self.attributes, name)

    def attribute_values(self, name: str) -> list[str]:
        """The values of every ``a=name`` line, in order ("" for flags)."""
        return [a.value or "" for a in self.attributes if a.name == name]

    def rtpmaps(self) -> dict[int, RtpMap]:
        """``a=rtpmap`` lines by payload type; malformed ones are skipped (logged at debug)."""
        maps: dict[int, RtpMap] = {}
        for value in self.attribute_values("rtpmap"):
            rtpmap = _parse_rtpmap(value)
            if rtpmap is None:
                logger.debug("x SDP: ignoring malformed a=rtpmap:%s", value)
            elif rtpmap.payload_type not in maps:
                maps[rtpmap.payload_type] = rtpmap
        return maps

    def fmtp(self, payload_type: int) -> str | None:
        """The parameters of ``a=fmtp:<payload_type>``, None when absent."""
        for value in self.attribute_values("fmtp"):
            number, _, params = value.partition(" ")
            if number.strip() == str(payload_type):
                return params.strip()
        return None

    def encode_lines(self) -> list[str]:
        port = self.port if self.port_count is None else f"{self.port}/{self.port_count}"
        lines = [f"m={' '.join([self.media, str(port), self.proto, *self.formats])}"]
        if self.title is not None:
            lines.append(f"i={self.title}")
        if self.connection is not None:
            lines.append(f"c={self.connection.encode()}")
        lines.extend(f"b={b}" for b in self.bandwidths)
        lines.extend(f"{kind}={value}" for kind, value in self.other)
        lines.extend(f"a={a.encode()}" for a in self.attributes)
        return lines


@dataclass(slots=True)
class SessionDescription:
    """A whole session description: the session-level lines and the media sections."""

    origin: Origin
    name: str = "-"
    information: str | None = None
    connection: Connection | None = None
    bandwidths: list[str] = field(default_factory=list)
    times: list[str] = field(default_factory=lambda: ["0 0"])
    attributes: list[Attribute] = field(default_factory=list)
    media: list[MediaDescription] = field(default_factory=list)
    other: list[tuple[str, str]] = field(default_factory=list)
    """Session lines of other types (``u= e= p= r= z= k=``, unknown letters), in order."""

    def attribute(self, name: str) -> str | None:
        """The value of the first session-level ``a=name`` ("" for a flag), None when absent."""
        return _find(self.attributes, name)

    def encode(self) -> bytes:
        """The description as CRLF-terminated lines in the order of RFC 4566 §5."""
        lines = ["v=0", f"o={self.origin.encode()}", f"s={self.name}"]
        if self.information is not None:
            lines.append(f"i={self.information}")
        lines.extend(f"{k}={v}" for k, v in self.other if k in _BEFORE_CONNECTION)
        if self.connection is not None:
            lines.append(f"c={self.connection.encode()}")
        lines.extend(f"b={b}" for b in self.bandwidths)
        lines.extend(f"t={t}" for t in self.times)
        lines.extend(f"{k}={v}" for k, v in self.other if k not in _BEFORE_CONNECTION)
        lines.extend(f"a={a.encode()}" for a in self.attributes)
        for media in self.media:
            lines.extend(media.encode_lines())
        return ("\r\n".join(lines) + "\r\n").encode("utf-8", "surrogateescape")


def _parse_rtpmap(value: str) -> RtpMap | None:
    number, _, rest = value.strip().partition(" ")
    parts = rest.strip().split("/")
    if not number.isdigit() or len(parts) not in (2, 3) or not parts[0]:
        return None
    if not all(p.strip().isdigit() for p in parts[1:]):
        return None
    channels = int(parts[2]) if len(parts) == 3 else None
    return RtpMap(int(number), parts[0].strip(), int(parts[1]), channels)


def _parse_origin(value: str, where: str) -> Origin:
    fields = value.split()
    if len(fields) != 6:
        raise SdpError(f"{where}: o= needs 6 fields, got {len(fields)}: {value!r}")
    return Origin(*fields)


def _parse_connection(value: str, where: str) -> Connection:
    fields = value.split()
    if len(fields) != 3:
        raise SdpError(f"{where}: c= needs 3 fields (IN IP4 address), got {value!r}")
    return Connection(fields[1], fields[2], fields[0])


def _parse_port(text: str, where: str) -> tuple[int, int | None]:
    port, slash, count = text.partition("/")
    if not port.isdigit() or int(port) > 65535:
        raise SdpError(f"{where}: m= port must be a number 0-65535, got {text!r}")
    if slash and (not count.isdigit() or int(count) < 1):
        raise SdpError(f"{where}: m= port count must be a positive number, got {text!r}")
    return int(port), int(count) if slash else None


def _parse_media(value: str, where: str) -> MediaDescription:
    fields = value.split()
    if len(fields) < 3:
        raise SdpError(f"{where}: m= needs media, port and transport, got {value!r}")
    port, count = _parse_port(fields[1], where)
    return MediaDescription(fields[0], port, fields[2], fields[3:], port_count=count)


def _parse_attribute(value: str, where: str) -> Attribute:
    name, colon, rest = value.partition(":")
    if not name:
        raise SdpError(f"{where}: a= without a name: {value!r}")
    return Attribute(name, rest if colon else None)


def _lines(data: bytes) -> list[tuple[int, str, str]]:
    """(line number, type letter, value) of every non-blank line."""
    text = data.decode("utf-8", "surrogateescape")
    lines: list[tuple[int, str, str]] = []
    for number, raw in enumerate(text.split("\n"), start=1):
        line = raw.rstrip(" \t\r")
        if not line:
            continue
        if len(line) < 2 or line[1] != "=" or not line[0].isalpha():
            raise SdpError(f"line {number}: expected '<type>=<value>', got {line[:40]!r}")
        lines.append((number, line[0], line[2:]))
    return lines


def parse_sdp(data: bytes) -> SessionDescription:
    """Parse one session description; :class:`SdpError` if it is not one we can use."""
    if len(data) > MAX_SDP_BYTES:
        raise SdpError(f"SDP of {len(data)} bytes exceeds {MAX_SDP_BYTES}")
    lines = _lines(data)
    if not lines or lines[0][1] != "v":
        raise SdpError("SDP must begin with a v= line")
    if lines[0][2].strip() != "0":
        raise SdpError(f"line {lines[0][0]}: unsupported SDP version v={lines[0][2]!r}")
    origin: Origin | None = None
    name: str | None = None
    information: str | None = None
    connection: Connection | None = None
    bandwidths: list[str] = []
    times: list[str] = []
    attributes: list[Attribute] = []
    other: list[tuple[str, str]] = []
    media: list[MediaDescription] = []
    for number, kind, value in lines[1:]:
        where = f"line {number}"
        current = media[-1] if media else None
        if kind == "m":
            media.append(_parse_media(value, where))
        elif kind == "v":
            raise SdpError(f"{where}: a second v= line")
        elif kind == "a":
            target = current.attributes if current else attributes
            target.append(_parse_attribute(value, where))
        elif kind == "c":
            parsed = _parse_connection(value, where)
            if current is not None:
                current.connection = parsed
            else:
                connection = parsed
        elif kind == "b":
            (current.bandwidths if current else bandwidths).append(value)
        elif current is not None:
            if kind == "i":
                current.title = value
            else:
                current.other.append((kind, value))
        elif kind == "o":
            if origin is not None:
                raise SdpError(f"{where}: a second o= line")
            origin = _parse_origin(value, where)
        elif kind == "s":
            name = value
        elif kind == "i":
            information = value
        elif kind == "t":
            times.append(value)
        else:
            other.append((kind, value))
    if origin is None:
        raise SdpError("SDP has no o= line")
    return SessionDescription(
        origin=origin,
        name=name if name is not None else "-",
        information=information,
        connection=connection,
        bandwidths=bandwidths,
        times=times or ["0 0"],
        attributes=attributes,
        media=media,
        other=other,
    )
