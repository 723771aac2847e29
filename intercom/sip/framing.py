"""Cutting a TCP byte stream into SIP messages.

RFC 3261 §18.3: on a stream transport every message carries Content-Length and the header
section ends at the first empty line. RFC 5626 §4.4.1: a double CRLF between messages is a
keepalive ping that wants a single CRLF (pong) back; a lone CRLF is a pong and is ignored.

The framer holds at most ``MAX_HEADER_BYTES`` of an unfinished header section and refuses a body
larger than ``MAX_BODY_BYTES``, so a peer cannot make it buffer without bound. After it raises,
the connection must be closed: there is no way to find the next message boundary.
"""

from __future__ import annotations

from intercom.sip.errors import RemoteProtocolError
from intercom.sip.message import MAX_HEADER_BYTES, canonical_name, parse_content_length

PING = b"\r\n\r\n"
"""Returned by :meth:`StreamFramer.feed` for a keepalive ping; answer it with :data:`PONG`."""
PONG = b"\r\n"


class StreamFramer:
    """Feed it bytes as they arrive; it returns complete messages (and pings)."""

    __slots__ = ("_body_length", "_buffer", "_head_end", "_scan")

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._head_end = -1  # index just past the empty line, once found
        self._body_length = 0
        self._scan = 0  # the empty line cannot start before this index (fed byte by byte: O(n))

    def feed(self, data: bytes) -> list[bytes]:
        """Add received bytes; return every message completed by them, in order.

        Raises:
            RemoteProtocolError: oversized header section or body, bad or missing
                Content-Length. The stream is unusable afterwards.
        """
        self._buffer += data
        frames: list[bytes] = []
        while True:
            if self._head_end < 0:
                self._skip_keepalives(frames)
                if not self._find_head():
                    break
            end = self._head_end + self._body_length
            if len(self._buffer) < end:
                break
            frames.append(bytes(self._buffer[:end]))
            del self._buffer[:end]
            self._head_end = -1
            self._scan = 0
        return frames

    @property
    def buffered(self) -> int:
        return len(self._buffer)

    def _skip_keepalives(self, frames: list[bytes]) -> None:
        """Consume CRLFs in front of a message, reporting double-CRLF pings."""
        while self._buffer.startswith(b"\r\n"):
            self._scan = 0
            if self._buffer.startswith(PING):
                frames.append(PING)
                del self._buffer[:4]
            elif len(self._buffer) >= 4 or (len(self._buffer) == 3 and self._buffer[2] != 13):
                del self._buffer[:2]  # a pong in front of something that is not a ping
            else:
                break  # ``\r\n`` or ``\r\n\r``: could still become a ping, wait for more

    def _find_head(self) -> bool:
        if self._buffer.startswith(b"\r\n"):
            return False
        end = self._buffer.find(b"\r\n\r\n", self._scan)
        if end < 0:
            if len(self._buffer) > MAX_HEADER_BYTES:
                raise RemoteProtocolError("header section too large", 513)
            self._scan = max(0, len(self._buffer) - 3)
            return False
        if end > MAX_HEADER_BYTES:
            raise RemoteProtocolError("header section too large", 513)
        self._body_length = _content_length(bytes(self._buffer[:end]))
        self._head_end = end + 4
        return True


def _content_length(head: bytes) -> int:
    values: list[str] = []
    for line in head.split(b"\r\n")[1:]:
        name, colon, value = line.partition(b":")
        if colon and canonical_name(name.strip().decode("latin-1")) == "Content-Length":
            values.append(value.strip().decode("latin-1"))
    if len(values) != 1:
        raise RemoteProtocolError("a stream message needs exactly one Content-Length")
    return parse_content_length(values[0])
