"""The exception hierarchy of the whole package.

Expected protocol outcomes (a 486, a timeout, a challenge) are events, never exceptions.
Exceptions are for input that cannot be understood (`RemoteProtocolError`), for misuse of a core
by our own code (`LocalProtocolError`), and for configuration or hardware problems a user must fix.
"""

from __future__ import annotations


class IntercomError(Exception):
    """Root of every error raised on purpose by intercom."""


class SipError(IntercomError):
    """Something went wrong in the SIP layer."""


class LocalProtocolError(SipError):
    """Our own code asked a SIP core for something illegal in its current state (a bug)."""


class RemoteProtocolError(SipError):
    """The peer sent something we cannot accept.

    ``status_hint`` is the response to send when enough of the request was understood to answer
    it (RFC 3261 §8.2: 400 for malformed, 505 for an unknown version, 513 for too large).
    """

    def __init__(self, message: str, status_hint: int = 400) -> None:
        super().__init__(message)
        self.status_hint = status_hint
