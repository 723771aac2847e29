"""An incoming INVITE, from its arrival until it is answered, refused or cancelled.

Theory of operation (RFC 3261 §13.3, §12.2.2, RFC 6026):

    RECEIVED --accept()--> ANSWERED --ACK--> CONFIRMED   (a Session takes over the dialog)
        |                     |
        |                     +-- no ACK within 64*T1 --> BYE, ENDED ("no ACK")
        |                     +-- hangup(): held until the ACK or 64*T1, then BYE (§15)
        +--reject(status)--> ENDED
        +--CANCEL----------> ENDED (487 to the INVITE; the endpoint answers the CANCEL 200)
        +--no decision within UNDECIDED_LIMIT (3 min)--> ENDED (480, IncomingCallCancelled)

* The endpoint owns the INVITE server transaction; this object hands it the 180 and the final
  response through ``respond`` (a callable to the server transaction). That transaction sends
  100 Trying only if nothing went out within 200 ms (RFC 3261 §17.2.1), so a call refused or
  rung at once gets its 403 or 180 alone.
* A 2xx is retransmitted by this TU (:class:`~intercom.sip.session.Unacked2xx`, §13.3.1.4,
  RFC 6026) until the ACK arrives; after 64*T1 without ACK the dialog is ended with a BYE.
  A hang-up before the ACK waits for it (or for that give-up): the callee must not send BYE
  before (§15).
* The To-tag is chosen on arrival so that a 180 and the 2xx carry the same one.
* The application decides (accept, reject, or rings and decides later); if it never does, the
  core refuses the INVITE with 480 after :data:`UNDECIDED_LIMIT` (the 3 minutes a proxy's
  Timer C gives an INVITE, §16.6) and reports IncomingCallCancelled("not answered"): no INVITE
  server transaction is held forever.
* Requests inside the dialog reach this object only when Call-ID, our To-tag and the caller's
  From-tag all match (§12.2.2, :meth:`IncomingCall.matches`); anything else gets 481 (an ACK
  is dropped) and changes nothing.
* Session-Expires was checked by the endpoint before the INVITE reached us (malformed: 400,
  too small: 422 with Min-SE, RFC 4028 §9), so :meth:`accept` only computes the answer's timer.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from enum import Enum

from intercom.sip.build import add_capabilities, make_response, with_headers
from intercom.sip.core import Ids, Sender
from intercom.sip.dialog import Dialog, DialogState
from intercom.sip.errors import RemoteProtocolError
from intercom.sip.events import IncomingCallCancelled, MediaUpdated
from intercom.sip.message import Request, Response
from intercom.sip.session import AnswerOffer, Session, Unacked2xx, uas_session_timer
from intercom.sip.uri import NameAddr, parse_params

logger = logging.getLogger(__name__)

UNDECIDED_LIMIT = 180.0
"""Seconds an incoming INVITE waits for the application's decision before the core refuses it
with 480 (a proxy gives up after 3 minutes too, RFC 3261 §16.6 Timer C)."""


def answered_elsewhere(cancel: Request) -> bool:
    """RFC 3326: ``Reason: SIP;cause=200`` on a CANCEL means another branch took the call."""
    for value in cancel.headers.get_list("Reason"):
        protocol, _, params = value.partition(";")
        if protocol.strip().upper() != "SIP":
            continue
        try:
            if parse_params(params, "Reason").get("cause") == "200":
                return True
        except RemoteProtocolError:
            continue
    return False


class IncomingState(Enum):
    RECEIVED = "received"  #: INVITE arrived, the application has not decided yet
    ANSWERED = "answered"  #: 2xx sent, waiting for the ACK
    CONFIRMED = "confirmed"  #: ACK received; ``session`` runs the dialog
    ENDED = "ended"  #: refused, cancelled, or no ACK


class IncomingCall:
    """One incoming INVITE. Driven by the endpoint; decisions come from the application."""

    def __init__(
        self,
        invite: Request,
        *,
        sender: Sender,
        respond: Callable[[Response], None],
        local_tag: str,
        contact: Callable[[], NameAddr],
        answer_offer: AnswerOffer,
        now: float,
        ids: Ids | None = None,
    ) -> None:
        self.invite = invite
        self.call_id = invite.call_id
        self.state = IncomingState.RECEIVED
        self.session: Session | None = None
        self._sender = sender
        self._respond = respond
        self._local_tag = local_tag
        self._contact = contact
        self._answer_offer = answer_offer
        self._ids = ids
        self.dialog = Dialog.from_uas_request(invite, local_tag)
        self._caller = str(self.dialog.remote.uri)
        self._unacked: Unacked2xx | None = None
        self._decide_by: float | None = now + UNDECIDED_LIMIT
        self._hangup: str | None = None  # the reason of a hang-up waiting for the ACK

    def ring(self) -> None:
        """Send 180 Ringing (only before a decision)."""
        if self.state is IncomingState.RECEIVED:
            ringing = make_response(self.invite, 180, to_tag=self._local_tag)
            self._respond(with_headers(ringing, ("Contact", str(self._contact()))))

    def accept(self, sdp: bytes | None, now: float) -> None:
        """Answer with 200 OK carrying ``sdp`` and start retransmitting it until the ACK."""
        if self.state is not IncomingState.RECEIVED:
            return
        self._decide_by = None
        timer, timer_headers = uas_session_timer(self.invite)
        contact = ("Contact", str(self._contact()))
        ok = with_headers(make_response(self.invite, 200, to_tag=self._local_tag), contact)
        with_headers(add_capabilities(ok), *timer_headers)
        if sdp:
            ok.headers.add("Content-Type", "application/sdp")
            ok.body = sdp
        self._respond(ok)
        logger.info("incoming call from %s answered", self._caller)
        self.state = IncomingState.ANSWERED
        self.dialog.state = DialogState.CONFIRMED
        self._unacked = Unacked2xx(ok, now, offer=None if self.invite.body else sdp)
        self.session = Session(
            self.dialog,
            sender=self._sender,
            answer_offer=self._answer_offer,
            contact=self._contact,
            now=now,
            local_sdp=sdp,
            timer=timer,
            peer=self.invite,
            ids=self._ids,
        )

    def reject(self, status: int, reason: str | None = None) -> None:
        if self.state is IncomingState.RECEIVED:
            response = make_response(self.invite, status, reason, to_tag=self._local_tag)
            logger.info(
                "incoming call from %s refused: %d %s", self._caller, status, response.reason
            )
            self._respond(response)
            self.state = IncomingState.ENDED
            self._decide_by = None

    def drop(self) -> bool:
        """End the call without a response of ours (the endpoint answers the INVITE itself,
        after an error). True if it was still waiting for the application's decision."""
        undecided = self.state is IncomingState.RECEIVED
        self.state = IncomingState.ENDED
        self._unacked = self._decide_by = None
        return undecided

    def cancelled(self, cancel: Request) -> bool:
        """A CANCEL matched the INVITE: 487 if still undecided. True if it had an effect."""
        if self.state is not IncomingState.RECEIVED:
            return False
        self._respond(make_response(self.invite, 487, to_tag=self._local_tag))
        self.state = IncomingState.ENDED
        self._decide_by = None
        reason = "answered elsewhere" if answered_elsewhere(cancel) else "cancelled"
        logger.info("incoming call from %s %s", self._caller, reason)
        self._sender.emit(IncomingCallCancelled(self.call_id, reason))
        return True

    def matches(self, request: Request) -> bool:
        """§12.2.2: Call-ID, our To-tag and the caller's From-tag are this call's dialog."""
        return self.dialog.matches(request)

    def on_request(self, request: Request, now: float) -> Response | None:
        """A request inside this call's dialog (ACK for our 2xx, BYE, re-INVITE...); one
        that does not match the dialog whole gets 481 (an ACK: nothing) and changes nothing."""
        if not self.matches(request):
            return None if request.method == "ACK" else make_response(request, 481)
        if request.method == "ACK" and self.state is IncomingState.ANSWERED:
            if request.cseq.seq == self.invite.cseq.seq:
                self.state = IncomingState.CONFIRMED
                offer, self._unacked = self._unacked.offer if self._unacked else None, None
                if offer and request.body:  # §13.2.1: our offer in the 2xx, the answer in ACK
                    self._sender.emit(MediaUpdated(self.call_id, offer, request.body))
                if self._hangup is not None and self.session is not None:
                    self.session.hangup(now, self._hangup)
            return None
        if self.session is not None:
            if self.state is IncomingState.ANSWERED and request.method == "BYE":
                self.state = IncomingState.CONFIRMED  # §15.1.2: BYE may precede the ACK
                self._unacked = None
            return self.session.on_request(request, now)
        if request.method == "ACK":
            return None
        return make_response(request, 481)

    def hangup(self, now: float, reason: str = "hung up") -> None:
        if self.state is IncomingState.RECEIVED:
            self.reject(480, "Temporarily Unavailable")
        elif self.state is IncomingState.ANSWERED:
            self._hangup = reason  # §15: no BYE before the ACK (or its 64*T1 give-up)
        elif self.session is not None and not self.session.ended:
            self.session.hangup(now, reason)

    @property
    def ended(self) -> bool:
        if self.state is IncomingState.ENDED:
            return True
        return self.session is not None and self.session.ended

    def get_timer(self) -> float | None:
        timers = [self._unacked.get_timer() if self._unacked else None]
        if self.state is IncomingState.RECEIVED:
            timers.append(self._decide_by)
        if self.session is not None:
            timers.append(self.session.get_timer())
        return min((t for t in timers if t is not None), default=None)

    def handle_timer(self, now: float) -> None:
        if (
            self.state is IncomingState.RECEIVED
            and self._decide_by is not None
            and now >= self._decide_by
        ):
            logger.warning(
                "x incoming call from %s: no decision within %gs, refused 480",
                self._caller, UNDECIDED_LIMIT,
            )  # fmt: skip
            self.reject(480)
            self._sender.emit(IncomingCallCancelled(self.call_id, "not answered"))
            return
        if self._unacked and not self._unacked.handle_timer(now, self._sender.send_response):
            self._unacked = None
            logger.warning("x call %s: no ACK for our 200 OK, hanging up", self.call_id)
            assert self.session is not None
            self.state = IncomingState.CONFIRMED
            self.session.hangup(now, reason="no ACK")
        if self.session is not None:
            self.session.handle_timer(now)
