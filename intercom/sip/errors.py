"""SIP errors, re-exported from :mod:`intercom.errors` so the sans-IO layer imports locally."""

from intercom.errors import LocalProtocolError, RemoteProtocolError, SipError

__all__ = ["LocalProtocolError", "RemoteProtocolError", "SipError"]
