"""Events the SIP layer reports to the application, named in the past tense.

Expected outcomes (a busy callee, a wrong password, a timeout) are events, never exceptions.
``call_id`` identifies a call across its events (the SIP Call-ID of its INVITE).
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Event:
    """Base of every SIP event."""


# -- registration (RFC 3261 §10) -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RegistrationSucceeded(Event):
    registrar: str  # "pbx.example" as configured
    expires: int  # the lifetime the registrar granted, seconds


@dataclass(frozen=True, slots=True)
class RegistrationFailed(Event):
    registrar: str
    status: int | None  # the SIP status, None for a timeout or transport error
    reason: str  # "401 Unauthorized: wrong credentials for realm asterisk", "timeout"
    retry_in: float  # seconds until the next attempt


@dataclass(frozen=True, slots=True)
class Unregistered(Event):
    registrar: str


# -- the runtime's part ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AddressNeeded(Event):
    """Requests wait for the address of ``host`` (a Contact or Record-Route name): the runtime
    resolves it (RFC 3263) and calls ``Endpoint.learn_address`` or ``address_failed``. ``port``
    is the one the URI names (then no SRV lookup, RFC 3263 §4.2), ``transport`` the one it
    asks for (None: the configured one)."""

    host: str
    port: int | None = None
    transport: str | None = None


# -- outgoing calls (RFC 3261 §13, §15) -------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CallProgressed(Event):
    """A provisional response: 180 Ringing, 183 Session Progress (maybe early media)."""

    call_id: str
    status: int
    reason: str
    legs: int  # early dialogs (distinct To-tags) so far: phones ringing behind a fork
    sdp: bytes | None = field(default=None, repr=False)  # early media answer, when present


@dataclass(frozen=True, slots=True)
class CallAnswered(Event):
    call_id: str
    sdp: bytes | None = field(repr=False)  # the answer (or the offer, for an offerless INVITE)
    remote: str  # the answering party, the To header of the 2xx as text


@dataclass(frozen=True, slots=True)
class CallFailed(Event):
    """The INVITE ended without an answer: busy, declined, not found, timeout, cancelled."""

    call_id: str
    status: int | None  # the final status, None for timeout/transport
    reason: str


@dataclass(frozen=True, slots=True)
class CallEnded(Event):
    """An answered call is over."""

    call_id: str
    reason: str  # "BYE from peer", "hung up", "no ACK", "session timer expired"
    by_peer: bool


# -- incoming calls ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class IncomingCallReceived(Event):
    """A new INVITE. The application answers with Endpoint.accept() or Endpoint.reject()."""

    call_id: str
    caller: str  # From header value
    asserted_identity: str | None  # P-Asserted-Identity when present
    source_host: str  # IP the INVITE came from (who actually sent it)
    source_port: int
    sdp: bytes | None = field(repr=False)


@dataclass(frozen=True, slots=True)
class IncomingCallCancelled(Event):
    """The caller gave up before we answered, or (RFC 3326 ``Reason: SIP;cause=200``) another
    phone behind a forking proxy answered: then ``reason`` is "answered elsewhere"."""

    call_id: str
    reason: str = "cancelled"


# -- in-dialog ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class InfoReceived(Event):
    """An INFO inside a call (DTMF relay, RFC 6086). Its body may hold a door-code key, so it
    is left out of the event's repr (events are logged at DEBUG)."""

    call_id: str
    content_type: str | None
    body: bytes = field(repr=False)


@dataclass(frozen=True, slots=True)
class MediaUpdated(Event):
    """The peer changed the session (re-INVITE or UPDATE with SDP): hold, new address."""

    call_id: str
    offer: bytes = field(repr=False)
    answer: bytes = field(repr=False)
