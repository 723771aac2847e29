"""The four SIP transaction state machines: RFC 3261 §17 as corrected by RFC 6026.

Theory of operation
===================

A transaction is one request and its responses (plus, for an INVITE answered with 300-699, the
ACK). :mod:`intercom.sip.transactions` keeps them keyed by :func:`client_key` /
:func:`server_key` (§17.1.3, §17.2.3), feeds them what arrives and what the TU wants to send, drains
``take_outbox()`` to the transport and asks ``get_timer()`` when to call ``handle_timer(now)``.
Nothing here touches a socket or a clock: ``now`` is monotonic seconds handed in by the caller.

The four machines (INVITE and non-INVITE, client and server) are their ``_TABLE`` class
attributes below, h11 style: ``{state: {input: next state}}``, the inputs being status classes
received or sent, requests received again and timer names. An input missing from the current
state's row is absorbed when it comes from the network and is a :class:`LocalProtocolError`
when it comes from the TU. Side effects (what to send, which timers to arm) live in ``_enter``
and the input methods. A transport error
(``transport_failed``) terminates a transaction that still owes its TU a final response, with
``failed_reason = "transport"`` (§17.1.1.2, §17.1.2.2, §17.2.1, §17.2.2).

Timers (T1 = 0.5 s, T2 = 4 s, T4 = 5 s; "UDP" means ``reliable=False``)::

    A  INVITE retransmit, UDP only: T1, doubling without bound     CALLING
    B  INVITE timeout: 64*T1                                        CALLING
    D  wait for final retransmissions: 32 s UDP, 0 reliable         COMPLETED (client)
    E  non-INVITE retransmit, UDP only: T1 doubling capped at T2,   TRYING
       T2 once PROCEEDING                                            PROCEEDING
    F  non-INVITE timeout: 64*T1                                    TRYING, PROCEEDING
    K  wait for response retransmissions: T4 UDP, 0 reliable        COMPLETED (client)
    Trying  100 unless the TU responded first: 0.2 s (§17.2.1)      PROCEEDING (INVITE server)
    G  final response retransmit, UDP only: T1 doubling capped T2   COMPLETED (INVITE server)
    H  wait for ACK: 64*T1, then timed out                          COMPLETED (INVITE server)
    I  absorb ACK retransmissions: T4 UDP, 0 reliable               CONFIRMED
    J  absorb request retransmissions: 64*T1 UDP, 0 reliable        COMPLETED (non-INVITE srv)
    L  absorb INVITE retransmissions after a 2xx: 64*T1             ACCEPTED (server, RFC 6026)
    M  collect 2xx from other forks: 64*T1                          ACCEPTED (client, RFC 6026)
    Cancel  give up on a cancelled INVITE: 64*T1 after the CANCEL  CALLING, PROCEEDING (§9.1)

A timer of zero is not armed: the transaction goes straight to TERMINATED. ``handle_timer(now)``
fires every due timer, earliest first, and re-arms retransmission timers relative to ``now``, so
a late call retransmits once rather than in a burst. Client transactions leave Timer B running
only in CALLING: once a provisional arrived an INVITE may ring for as long as the TU likes
(§17.1.1.2); the TU ends it with CANCEL or its own timer. Once the TU sent a CANCEL
(:meth:`InviteClientTransaction.cancel_sent`) the transaction gives up 64*T1 later if no final
response came (§9.1), so an INVITE whose CANCEL goes unanswered is not held forever.

Decisions where the RFCs leave room:

* The INVITE server transaction sends 100 (Trying) itself, but only if the TU has sent nothing
  within TRYING_DELAY of the INVITE (the 200 ms rule of §17.2.1): a TU that rings, answers or
  refuses at once sends that response alone (a 403 to an untrusted caller is the only message).
  A retransmitted INVITE before any response gets the 100 at once: the peer needs to hear
  from us, and from then on the 100 is the "last provisional" its retransmissions get again.
* 2xx retransmissions are the TU's (§13.3.1.4); in ACCEPTED the TU's 2xx go out through
  ``send_response``. The ACK for a 2xx is its own transaction and normally never matches; one
  that does (a peer reusing the INVITE's branch) is absorbed in ACCEPTED, so the endpoint should
  hand ACKs to the dialog layer when the matched transaction is ACCEPTED.
* A 2xx arriving in COMPLETED (another fork answered after one refused) goes to the TU, which
  must ACK and BYE it; the transaction stays COMPLETED.
* A response the TU sends to a TERMINATED transaction is dropped (a race with a timer or a
  transport error, not a bug), as are final responses in the non-INVITE COMPLETED state (§17.2.2).
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import Enum
from typing import ClassVar

from intercom.sip.build import make_response
from intercom.sip.core import T1, T2, T4
from intercom.sip.errors import LocalProtocolError
from intercom.sip.message import Headers, Message, Request, Response

__all__ = [
    "TRYING_DELAY", "ClientTransaction", "InviteClientTransaction", "InviteServerTransaction",
    "NonInviteClientTransaction", "NonInviteServerTransaction", "ServerTransaction",
    "TransactionState", "build_ack", "build_cancel", "client_key", "server_key",
]  # fmt: skip

MAGIC_COOKIE = "z9hG4bK"
"""Branch prefix of RFC 3261-compliant clients (§8.1.1.7)."""
TIMER_D = 32.0
"""Timer D on unreliable transports: "at least 32 seconds" (§17.1.1.2)."""
TRYING_DELAY = 0.2
"""RFC 3261 §17.2.1: the INVITE server transaction MUST send 100 (Trying) unless it knows the TU
will send a provisional or final response within 200 ms. It waits that long for the TU, so a
TU answering at once (180, 200, 403...) is not preceded by a needless 100."""


class TransactionState(Enum):
    CALLING = "calling"  #: INVITE client: request sent, nothing heard back yet
    TRYING = "trying"  #: non-INVITE client: request sent; non-INVITE server: nothing sent yet
    PROCEEDING = "proceeding"  #: a provisional response was received (client) or sent (server)
    COMPLETED = "completed"  #: a final response (300-699 for INVITE) was received or sent
    CONFIRMED = "confirmed"  #: INVITE server: the ACK for the 300-699 arrived
    ACCEPTED = "accepted"  #: INVITE, RFC 6026: a 2xx was received or sent, more may follow
    TERMINATED = "terminated"  #: over; the endpoint drops the transaction


S = TransactionState
_Table = Mapping[TransactionState, Mapping[str, TransactionState]]


def _status_input(status: int) -> str:
    if status < 200:
        return "1xx"
    return "2xx" if status < 300 else "300-699"


def client_key(message: Message) -> tuple[str, str]:
    """§17.1.3: a response matches the client transaction whose request has the same top Via
    branch and the same CSeq method (so a CANCEL and its INVITE are distinct)."""
    return message.top_via.branch or "", message.cseq.method


def server_key(request: Request) -> tuple[str, str, str]:
    """§17.2.3: ``(branch, sent-by, method)`` of the top Via, an ACK keyed as its INVITE.

    A CANCEL has its own key; the INVITE it cancels has the same key with method ``INVITE``.
    Without the magic cookie (an RFC 2543 client) the first element is built from the Call-ID,
    From tag, CSeq number and the whole top Via instead; it cannot collide with a real branch
    because it contains ``|``, which no token does.
    """
    via = request.top_via
    method = "INVITE" if request.method == "ACK" else request.method
    branch = via.branch or ""
    if not branch.lower().startswith(MAGIC_COOKIE.lower()):
        from_tag = request.from_.tag or ""
        branch = f"|{request.call_id}|{from_tag}|{request.cseq.seq}|{via}"
    return branch, via.sent_by.lower(), method


class _Machine:
    """Timers, the transition table and the failure bookkeeping shared by all four machines."""

    _TABLE: ClassVar[_Table]

    def __init__(self, state: TransactionState, reliable: bool) -> None:
        self.state = state
        self.reliable = reliable
        self.failed_reason: str | None = None  #: None, "timeout" or "transport"
        self._deadlines: dict[str, float] = {}
        self._interval = T1  # current interval of the retransmission timer (A, E or G)

    @property
    def terminated(self) -> bool:
        return self.state is S.TERMINATED

    @property
    def timed_out(self) -> bool:
        """Timer B, F, H or Cancel fired; stays True."""
        return self.failed_reason == "timeout"

    def get_timer(self) -> float | None:
        """The earliest deadline, or None when nothing is armed."""
        return min(self._deadlines.values(), default=None)

    def handle_timer(self, now: float) -> None:
        """Fire every timer whose deadline is at or before ``now``, earliest first."""
        while not self.terminated:
            due = [(when, name) for name, when in self._deadlines.items() if when <= now]
            if not due:
                return
            _, name = min(due)
            del self._deadlines[name]
            self._fire(name, now)

    def transport_failed(self, now: float) -> None:
        """The transport could not send for us. Where the §17 diagrams say "Transport Err.:
        inform TU" (a client before its final response, a server before the ACK or Timer L)
        this terminates with ``failed_reason = "transport"``; elsewhere it is ignored."""
        if self._step("transport", now) is not None:
            self.failed_reason = "transport"

    def _step(self, event: str, now: float) -> TransactionState | None:
        """Apply ``event`` from the table; return the state before it, None if not accepted."""
        old = self.state
        new = self._TABLE.get(old, {}).get(event)
        if new is None:
            return None
        if new is not old:
            self.state = new
            if new is S.TERMINATED:
                self._deadlines.clear()
            else:
                self._enter(new, now)
        return old

    def _enter(self, state: TransactionState, now: float) -> None:
        """Arm and cancel timers on entering ``state`` (never TERMINATED)."""

    def _fire(self, name: str, now: float) -> None:
        if name in ("B", "F", "H", "Cancel"):
            self.failed_reason = "timeout"
        self._step(name, now)

    def _arm(self, name: str, now: float, delay: float) -> None:
        self._deadlines[name] = now + delay

    def _cancel(self, *names: str) -> None:
        for name in names:
            self._deadlines.pop(name, None)

    def _linger(self, name: str, now: float, unreliable_delay: float) -> None:
        """Arm a wait-then-terminate timer (D, I, J, K): zero on a reliable transport."""
        self._cancel(*self._deadlines)
        if self.reliable:
            self._step(name, now)
        else:
            self._arm(name, now, unreliable_delay)


# -- client transactions (§17.1) --------------------------------------------------------------


class ClientTransaction(_Machine):
    """Base of the two client machines. The request already carries its Via with our branch;
    the constructor puts it in the outbox."""

    _INITIAL: ClassVar[TransactionState]

    def __init__(self, request: Request, *, reliable: bool, now: float) -> None:
        super().__init__(self._INITIAL, reliable)
        self.request = request
        self._outbox: list[Request] = [request]

    @property
    def key(self) -> tuple[str, str]:
        return client_key(self.request)

    def take_outbox(self) -> list[Request]:
        """Requests to (re)transmit, in order; clears the outbox."""
        out, self._outbox = self._outbox, []
        return out

    def receive_response(self, response: Response, now: float) -> bool:
        """A response with this transaction's :func:`client_key` arrived. True if the TU must
        see it, False if absorbed (a retransmitted final response, a late provisional)."""
        raise NotImplementedError

    def _retransmit(self, name: str, now: float, interval: float) -> None:
        if self._step(name, now) is None:
            return
        self._outbox.append(self.request)
        self._interval = interval
        self._arm(name, now, interval)


class InviteClientTransaction(ClientTransaction):
    """§17.1.1 with RFC 6026's ACCEPTED state."""

    _INITIAL = S.CALLING
    _TABLE: ClassVar[_Table] = {
        S.CALLING: {
            "A": S.CALLING, "B": S.TERMINATED, "Cancel": S.TERMINATED, "transport": S.TERMINATED,
            "1xx": S.PROCEEDING, "2xx": S.ACCEPTED, "300-699": S.COMPLETED,
        },
        S.PROCEEDING: {
            "Cancel": S.TERMINATED, "transport": S.TERMINATED,
            "1xx": S.PROCEEDING, "2xx": S.ACCEPTED, "300-699": S.COMPLETED,
        },
        S.COMPLETED: {"300-699": S.COMPLETED, "2xx": S.COMPLETED, "D": S.TERMINATED},
        S.ACCEPTED: {"2xx": S.ACCEPTED, "M": S.TERMINATED},
    }  # fmt: skip

    def __init__(self, request: Request, *, reliable: bool, now: float) -> None:
        if request.method != "INVITE":
            raise LocalProtocolError(f"InviteClientTransaction for a {request.method}")
        super().__init__(request, reliable=reliable, now=now)
        self._ack: Request | None = None
        if not reliable:
            self._arm("A", now, T1)
        self._arm("B", now, 64 * T1)

    def receive_response(self, response: Response, now: float) -> bool:
        event = _status_input(response.status)
        old = self._step(event, now)
        if old is None:
            return False
        if event == "300-699":
            if old is S.COMPLETED and self._ack is not None:
                self._outbox.append(self._ack)  # §17.1.1.2: ACK every retransmission
                return False
            self._ack = build_ack(self.request, response)
            self._outbox.append(self._ack)
        return True

    def cancel_sent(self, now: float) -> None:
        """The TU sent a CANCEL for this INVITE: without a final response within 64*T1 the
        transaction terminates, timed out (§9.1). Later calls keep the first deadline."""
        if self.state in (S.CALLING, S.PROCEEDING) and "Cancel" not in self._deadlines:
            self._arm("Cancel", now, 64 * T1)

    def _fire(self, name: str, now: float) -> None:
        if name == "A":
            self._retransmit("A", now, 2 * self._interval)
        else:
            super()._fire(name, now)

    def _enter(self, state: TransactionState, now: float) -> None:
        if state is S.PROCEEDING:
            self._cancel("A", "B")
        elif state is S.COMPLETED:
            self._linger("D", now, TIMER_D)
        elif state is S.ACCEPTED:
            self._cancel("A", "B", "Cancel")
            self._arm("M", now, 64 * T1)


def build_ack(invite: Request, response: Response) -> Request:
    """The ACK for a 300-699 answer to ``invite`` (§17.1.1.3): the To of the response (with its
    tag), the rest as :func:`build_cancel` copies it."""
    return _beside(invite, "ACK", response.headers.get("To") or "")


def build_cancel(invite: Request) -> Request:
    """The CANCEL of ``invite`` (§9.1)."""
    return _beside(invite, "CANCEL", invite.headers.get("To") or "")


def _beside(invite: Request, method: str, to: str) -> Request:
    """A request that goes with ``invite`` in its transaction: the same Request-URI, Call-ID,
    From, CSeq number, top Via only (hence its branch) and Route set; ``to`` as given."""
    headers = Headers([
        ("Via", invite.headers.get_list("Via")[0]), ("Max-Forwards", "70"),
        *(("Route", route) for route in invite.headers.get_all("Route")),
        ("From", invite.headers.get("From") or ""), ("To", to), ("Call-ID", invite.call_id),
        ("CSeq", f"{invite.cseq.seq} {method}"),
    ])  # fmt: skip
    return Request(
        headers=headers, method=method, uri=invite.uri, strict_routed=invite.strict_routed
    )


class NonInviteClientTransaction(ClientTransaction):
    """§17.1.2 (RFC 4320's 408 suppression is the TU's business)."""

    _INITIAL = S.TRYING
    _TABLE: ClassVar[_Table] = {
        S.TRYING: {
            "E": S.TRYING, "F": S.TERMINATED, "transport": S.TERMINATED,
            "1xx": S.PROCEEDING, "2xx": S.COMPLETED, "300-699": S.COMPLETED,
        },
        S.PROCEEDING: {
            "E": S.PROCEEDING, "F": S.TERMINATED, "transport": S.TERMINATED,
            "1xx": S.PROCEEDING, "2xx": S.COMPLETED, "300-699": S.COMPLETED,
        },
        S.COMPLETED: {"K": S.TERMINATED},
    }  # fmt: skip

    def __init__(self, request: Request, *, reliable: bool, now: float) -> None:
        if request.method in ("INVITE", "ACK"):
            raise LocalProtocolError(f"NonInviteClientTransaction for a {request.method}")
        super().__init__(request, reliable=reliable, now=now)
        if not reliable:
            self._arm("E", now, T1)
        self._arm("F", now, 64 * T1)

    def receive_response(self, response: Response, now: float) -> bool:
        return self._step(_status_input(response.status), now) is not None

    def _fire(self, name: str, now: float) -> None:
        if name == "E":
            capped = T2 if self.state is S.PROCEEDING else min(2 * self._interval, T2)
            self._retransmit("E", now, capped)
        else:
            super()._fire(name, now)

    def _enter(self, state: TransactionState, now: float) -> None:
        if state is S.COMPLETED:
            self._linger("K", now, T4)


# -- server transactions (§17.2) --------------------------------------------------------------


class ServerTransaction(_Machine):
    """Base of the two server machines. The constructor sends nothing: the endpoint passes the
    request to the TU; an INVITE server sends 100 (Trying) itself if the TU is slow."""

    _INITIAL: ClassVar[TransactionState]

    def __init__(self, request: Request, *, reliable: bool, now: float) -> None:
        super().__init__(self._INITIAL, reliable)
        self.request = request
        self._outbox: list[Response] = []
        self._last_response: Response | None = None

    @property
    def key(self) -> tuple[str, str, str]:
        return server_key(self.request)

    @property
    def answered(self) -> bool:
        """A final response went out (or the transaction is over): the peer has its answer."""
        last = self._last_response
        return self.terminated or (last is not None and last.status >= 200)

    def take_outbox(self) -> list[Response]:
        """Responses to (re)transmit, in order; clears the outbox."""
        out, self._outbox = self._outbox, []
        return out

    def receive_request(self, request: Request, now: float) -> None:
        """A request with this transaction's :func:`server_key` arrived again: a retransmission
        (or, for INVITE, the ACK of a 300-699). Resends the last response where the state calls
        for it."""
        expected = ("INVITE", "ACK") if self.request.method == "INVITE" else (self.request.method,)
        if request.method not in expected:
            raise LocalProtocolError(f"{request.method} given to a {self.request.method} server")
        if request.method != self.request.method:
            self._step(request.method, now)  # the ACK of a 300-699
        elif self._step("request", now) in (S.PROCEEDING, S.COMPLETED) and self._last_response:
            self._outbox.append(self._last_response)

    def send_response(self, response: Response, now: float) -> None:
        """The TU's response: transmit it and move on. Raises LocalProtocolError when the state
        does not allow it (a 1xx after a final, a 300-699 after a 2xx)."""
        if self.terminated:
            return
        if self._step(_status_input(response.status), now) is None:
            raise LocalProtocolError(f"cannot send {response.status} in {self.state.name}")
        self._last_response = response
        self._outbox.append(response)

    def _fire(self, name: str, now: float) -> None:
        if name == "G" and self._last_response is not None:
            self._step(name, now)
            self._outbox.append(self._last_response)
            self._interval = min(2 * self._interval, T2)
            self._arm("G", now, self._interval)
        else:
            super()._fire(name, now)


class InviteServerTransaction(ServerTransaction):
    """§17.2.1 with RFC 6026's ACCEPTED state."""

    _INITIAL = S.PROCEEDING
    _TABLE: ClassVar[_Table] = {
        S.PROCEEDING: {
            "request": S.PROCEEDING, "transport": S.TERMINATED,
            "1xx": S.PROCEEDING, "2xx": S.ACCEPTED, "300-699": S.COMPLETED,
        },
        S.COMPLETED: {
            "request": S.COMPLETED, "ACK": S.CONFIRMED,
            "G": S.COMPLETED, "H": S.TERMINATED, "transport": S.TERMINATED,
        },
        S.CONFIRMED: {"request": S.CONFIRMED, "ACK": S.CONFIRMED, "I": S.TERMINATED},
        S.ACCEPTED: {
            "request": S.ACCEPTED, "ACK": S.ACCEPTED, "2xx": S.ACCEPTED,
            "L": S.TERMINATED, "transport": S.TERMINATED,
        },
    }  # fmt: skip

    def __init__(self, request: Request, *, reliable: bool, now: float) -> None:
        if request.method != "INVITE":
            raise LocalProtocolError(f"InviteServerTransaction for a {request.method}")
        super().__init__(request, reliable=reliable, now=now)
        self._arm("Trying", now, TRYING_DELAY)  # §17.2.1: 100 unless the TU is quicker

    def receive_request(self, request: Request, now: float) -> None:
        """As :meth:`ServerTransaction.receive_request`; a retransmitted INVITE that arrives
        before any response gets the pending 100 (Trying) at once (§17.2.1)."""
        if request.method == "INVITE" and "Trying" in self._deadlines:
            self._send_trying(now)
            return
        super().receive_request(request, now)

    def send_response(self, response: Response, now: float) -> None:
        self._cancel("Trying")  # any response, provisional or final, makes the 100 needless
        super().send_response(response, now)

    def _fire(self, name: str, now: float) -> None:
        if name == "Trying":
            self._send_trying(now)
        else:
            super()._fire(name, now)

    def _send_trying(self, now: float) -> None:
        if self.state is S.PROCEEDING and self._last_response is None:
            self.send_response(make_response(self.request, 100), now)
        self._cancel("Trying")

    def _enter(self, state: TransactionState, now: float) -> None:
        if state is S.COMPLETED:
            if not self.reliable:
                self._interval = T1
                self._arm("G", now, T1)
            self._arm("H", now, 64 * T1)
        elif state is S.CONFIRMED:
            self._linger("I", now, T4)
        elif state is S.ACCEPTED:
            self._arm("L", now, 64 * T1)


class NonInviteServerTransaction(ServerTransaction):
    """§17.2.2."""

    _INITIAL = S.TRYING
    _TABLE: ClassVar[_Table] = {
        S.TRYING: {
            "request": S.TRYING, "transport": S.TERMINATED,
            "1xx": S.PROCEEDING, "2xx": S.COMPLETED, "300-699": S.COMPLETED,
        },
        S.PROCEEDING: {
            "request": S.PROCEEDING, "transport": S.TERMINATED,
            "1xx": S.PROCEEDING, "2xx": S.COMPLETED, "300-699": S.COMPLETED,
        },
        S.COMPLETED: {"request": S.COMPLETED, "J": S.TERMINATED, "transport": S.TERMINATED},
    }  # fmt: skip

    def __init__(self, request: Request, *, reliable: bool, now: float) -> None:
        if request.method in ("INVITE", "ACK"):
            raise LocalProtocolError(f"NonInviteServerTransaction for a {request.method}")
        super().__init__(request, reliable=reliable, now=now)

    def send_response(self, response: Response, now: float) -> None:
        if self.state is S.COMPLETED and response.status >= 200:
            return  # §17.2.2: further final responses from the TU are discarded
        super().send_response(response, now)

    def _enter(self, state: TransactionState, now: float) -> None:
        if state is S.COMPLETED:
            self._linger("J", now, 64 * T1)
