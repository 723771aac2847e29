"""OutgoingCall: the visitor's INVITE to the one-number target, from dial to answer or failure.

Theory of operation
-------------------
::

    CALLING --1xx > 100--> RINGING --first 2xx: ACK--> CONNECTED --BYE (either side)--> ENDED
       |                      |                          (a Session runs the dialog)
       +----cancel()----------+--> CANCELLING --any final, Timer B, or 64*T1--> ENDED
                                   (64*T1 after the CANCEL, or after cancel() while no
                                    provisional allowed one: nothing holds the call forever)
       +--401/407 (at most 3) or the first 3xx: a new INVITE, same Call-ID and From tag, CSeq+1
       +--any other final, Timer B, transport error--> ENDED (CallFailed)

* 100 Trying changes nothing but allows a CANCEL. A 1xx with a To-tag creates or updates one
  early dialog per tag (§12.1.2, §13.2.2.1): the server forks to every phone of the house, so
  ``legs`` counts the phones ringing. Each distinct (tag, status, SDP) gives one
  CallProgressed and one INFO line ("call to family: 180 Ringing from 2 phones").
* The first 2xx wins (§13.2.2.4): its Dialog (route set = reversed Record-Route, target = its
  Contact) sends the ACK through ``Sender.send_ack`` (same CSeq number, the INVITE's
  credentials, §13.2.2.4 and §22.1), a Session takes over, CallAnswered. Every 2xx with
  another To-tag is ACKed and at once hung up with a BYE: no ghost legs. A retransmitted 2xx
  gets the ACK stored for its tag again. The ACK for a non-2xx is the transaction's job
  (§17.1.1.3), never ours.
* cancel() (§9.1): the CANCEL goes out only once a provisional response arrived; before that
  the wish is kept and acted on at the first one. If a final response comes first, it decides.
  Once cancelled, the outcome is always CallFailed(final status or None, "cancelled"): 487 is
  the normal end; a 2xx that crossed the CANCEL is ACKed and BYEd and reported as
  CallFailed(200, "cancelled") so the application never believes the call connected; with
  no final at all the call ends 64*T1 after the CANCEL (§9.1) with status None.
* 401/407 (§22.2): ``DigestClient.answer_challenge`` and a new INVITE with its header.
  ``previous_attempt`` is True once we answered that kind of challenge (401 or 407): a second
  non-stale one means wrong credentials. At most 3 answers in all (stale nonces can loop). No
  credentials are sent pre-emptively (see :meth:`OutgoingCall.start`). AuthFailed ->
  CallFailed(status, "407 Proxy Authentication Required: wrong credentials for realm X"),
  with one WARNING line.
* Requests from the peer count only when they match one of the call's dialogs whole: Call-ID,
  our From-tag as their To-tag, and the From-tag of a leg we know (§12.2.2,
  :meth:`OutgoingCall.matches`); anything else gets 481 (an ACK is dropped).
* 3xx: the first one is followed once to its first SIP Contact (§8.1.3.4: same To, From,
  Call-ID; new Request-URI and CSeq); a second 3xx fails the call.
* CallFailed.reason, the outcome: 486/600 "busy", 603 "declined", 404/410/480/604
  "unavailable", 408 and Timer B "timeout", transport error "unreachable", after cancel()
  "cancelled"; any other status "<status> <reason phrase>".
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from enum import Enum

from intercom import __version__
from intercom.sip.auth import AuthFailed, DigestClient
from intercom.sip.build import ALLOWED_METHODS, SUPPORTED, make_response, reason_phrase
from intercom.sip.core import T1, Address, Ids, Sender
from intercom.sip.dialog import Dialog, DialogState
from intercom.sip.errors import LocalProtocolError
from intercom.sip.events import CallAnswered, CallFailed, CallProgressed
from intercom.sip.message import Headers, Request, Response
from intercom.sip.session import AnswerOffer, Session, uac_session_timer
from intercom.sip.uri import NameAddr, SipUri

__all__ = ["MAX_AUTH_ATTEMPTS", "OUTCOMES", "CallState", "OutgoingCall"]

logger = logging.getLogger(__name__)

USER_AGENT = f"intercom/{__version__}"
MAX_AUTH_ATTEMPTS = 3
"""Challenges answered per call; more means a stale-nonce loop or a confused server."""
TIMER_CANCEL = 64 * T1
"""After a CANCEL, how long we wait for the INVITE's final response (§9.1)."""
OUTCOMES = {
    486: "busy", 600: "busy", 603: "declined", 404: "unavailable", 410: "unavailable",
    480: "unavailable", 604: "unavailable", 408: "timeout",
}  # fmt: skip
"""CallFailed.reason for the usual final statuses."""


class CallState(Enum):
    CALLING = "calling"  #: INVITE sent, nothing or only 100 Trying back
    RINGING = "ringing"  #: a provisional response above 100 arrived
    CONNECTED = "connected"  #: a 2xx was ACKed; ``session`` runs the dialog
    CANCELLING = "cancelling"  #: cancel() asked; waiting for the INVITE's final response
    ENDED = "ended"  #: failed, cancelled, or the session is over


class _LegReaper:
    """The TU of the BYE that hangs up a surplus answer: it only logs."""

    def __init__(self, label: str) -> None:
        self._label = label

    def on_response(self, request: Request, response: Response, now: float) -> None:
        if response.status >= 200:
            logger.debug("%s: BYE to a surplus leg: %d", self._label, response.status)

    def on_transaction_failed(self, request: Request, reason: str, now: float) -> None:
        logger.info("%s: BYE to a surplus leg got no answer (%s)", self._label, reason)


def _sdp(message: Request | Response) -> bytes | None:
    return message.body if message.body and message.content_type == "application/sdp" else None


class OutgoingCall:
    """One INVITE (with its auth and redirect retries) and, once answered, its Session."""

    def __init__(
        self,
        *,
        sender: Sender,
        ids: Ids,
        auth: DigestClient,
        local: NameAddr,
        target: SipUri,
        contact: Callable[[], NameAddr],
        offer: bytes | None,
        answer_offer: AnswerOffer,
        destination: Address | None = None,
        call_id: str | None = None,
    ) -> None:
        """
        Args:
            local: our identity, the From without tag.
            target: the one-number: Request-URI and To of the INVITE.
            offer: our SDP offer; None sends an offerless INVITE (the answer goes in the ACK).
            destination: where the INVITE goes; None lets the endpoint route it.
            call_id: chosen beforehand (so the caller knows the call before any DNS wait);
                a fresh one by default.
        """
        self.call_id = call_id or ids.call_id()
        self._ids = ids
        self.session: Session | None = None
        self._sender = sender
        self._auth = auth
        self._contact = contact
        self._offer = offer
        self._answer_offer = answer_offer
        self._destination = destination
        self._label = f"call to {target}"
        self._from = local.with_params(tag=ids.tag())
        self._to = NameAddr(target)
        self._uri = target  # the Request-URI: changes once on a 3xx
        self._cseq = 0
        self._invite: Request | None = None
        self._credentials: dict[str, str] = {}  # Authorization / Proxy-Authorization
        self._answered: set[int] = set()  # challenge kinds (401, 407) we answered
        self._auth_attempts = 0
        self._redirected = False
        self._provisional = False  # for the current INVITE: a CANCEL may go out (§9.1)
        self._state = CallState.CALLING
        self._cancel_at: float | None = None  # give up waiting for the final (§9.1)
        self._cancel_sent = False
        self._early: dict[str, Dialog] = {}
        self._progress: set[tuple[str, int, bytes | None]] = set()
        self._acks: dict[str, Request] = {}  # To-tag -> the ACK of its 2xx

    @property
    def state(self) -> CallState:
        if self._state is CallState.CONNECTED and self.session is not None and self.session.ended:
            return CallState.ENDED
        return self._state

    @property
    def ended(self) -> bool:
        return self.state is CallState.ENDED

    @property
    def legs(self) -> int:
        """Early dialogs so far: distinct To-tags in provisional responses."""
        return len(self._early)

    @property
    def invite(self) -> Request:
        """The INVITE most recently sent (with its Via once sent)."""
        if self._invite is None:
            raise LocalProtocolError("the call has not started")
        return self._invite

    # -- commands ---------------------------------------------------------------------------

    def start(self, now: float) -> None:
        """Send the first INVITE.

        It carries no pre-emptive credentials: the target may be a host other than our server
        (a direct call), which must not see a digest of our password. A challenge costs one
        round trip.
        """
        if self._invite is not None:
            raise LocalProtocolError("the call has already started")
        logger.debug("%s: INVITE", self._label)  # the doorbell logs the press at INFO
        self._send_invite()

    def cancel(self, now: float) -> None:
        """Give up ringing (local hang-up or ring timeout); §9.1 decides when CANCEL goes."""
        if self._state not in (CallState.CALLING, CallState.RINGING):
            return
        self._state = CallState.CANCELLING
        logger.info("%s: cancelling", self._label)
        if self._invite is None:
            self._fail(None, "cancelled")
        elif self._provisional:
            self._send_cancel(now)
        else:  # no provisional response yet: the first one sends the CANCEL, Timer B ends the
            self._cancel_at = now + TIMER_CANCEL  # INVITE first; this bound is a backstop

    def hangup(self, now: float, reason: str = "hung up") -> None:
        """BYE when connected (``reason`` goes in CallEnded), CANCEL while ringing, nothing
        once ended."""
        if self.state is CallState.CONNECTED and self.session is not None:
            self.session.hangup(now, reason)
        else:
            self.cancel(now)

    @property
    def _body(self) -> bytes:
        return self._offer if self._offer is not None else b""

    def _send_invite(self) -> None:
        self._cseq += 1
        headers = Headers()
        headers.add("Max-Forwards", "70")
        headers.add("From", str(self._from))
        headers.add("To", str(self._to))
        headers.add("Call-ID", self.call_id)
        headers.add("CSeq", f"{self._cseq} INVITE")
        headers.add("Contact", str(self._contact()))
        for name, value in self._credentials.items():
            headers.add(name, value)
        headers.add("Allow", ALLOWED_METHODS)
        headers.add("Supported", SUPPORTED)  # RFC 4028 §7.1: we can refresh, see session.py
        headers.add("User-Agent", USER_AGENT)
        if self._offer is not None:
            headers.add("Content-Type", "application/sdp")
        invite = Request(headers=headers, body=self._body, method="INVITE", uri=self._uri)
        self._provisional = False
        destination = None if self._redirected else self._destination
        self._invite = self._sender.send_request(invite, self, destination)

    def _send_cancel(self, now: float) -> None:
        assert self._invite is not None
        self._sender.send_cancel(self._invite, self)
        self._cancel_sent = True
        self._cancel_at = now + TIMER_CANCEL

    def _fail(
        self, status: int | None, reason: str, *, detail: str | None = None,
        level: int = logging.INFO,
    ) -> None:  # fmt: skip
        self._state = CallState.ENDED
        self._cancel_at = None
        if reason == "cancelled":
            logger.log(level, "%s cancelled (%s)", self._label, status or "no final response")
        else:
            logger.log(level, "%s failed: %s", self._label, detail or reason)
        self._sender.emit(CallFailed(self.call_id, status, reason))

    # -- responses (TransactionUser) --------------------------------------------------------

    def on_response(self, request: Request, response: Response, now: float) -> None:
        if request.method == "CANCEL":
            logger.debug("%s: CANCEL answered %d", self._label, response.status)
            return
        if request.method != "INVITE":
            return
        if 200 <= response.status < 300:
            self._on_2xx(request, response, now)
        elif request is not self._invite or self._state in (CallState.CONNECTED, CallState.ENDED):
            logger.debug("%s: late %d ignored", self._label, response.status)
        elif response.status < 200:
            self._on_provisional(request, response, now)
        else:
            self._on_final(request, response, now)

    def _on_provisional(self, request: Request, response: Response, now: float) -> None:
        self._provisional = True
        if self._state is CallState.CANCELLING and not self._cancel_sent:
            self._send_cancel(now)  # the CANCEL that waited for this (§9.1)
        status = response.status
        if status == 100:
            return
        tag = response.to.tag
        if tag:
            dialog = self._early.get(tag)
            if dialog is None:
                self._early[tag] = Dialog.from_uac_response(request, response)
            else:
                dialog.update_from_response(response)
        if self._state is CallState.CANCELLING:
            return
        self._state = CallState.RINGING
        sdp = _sdp(response)
        key = (tag or "", status, sdp)
        if key in self._progress:
            return
        self._progress.add(key)
        legs = len(self._early)
        phones = f" from {legs} phone{'s' if legs != 1 else ''}" if legs else ""
        media = " (early media)" if sdp else ""
        logger.info("%s: %d %s%s%s", self._label, status, response.reason, phones, media)
        self._sender.emit(CallProgressed(self.call_id, status, response.reason, legs, sdp))

    def _on_final(self, request: Request, response: Response, now: float) -> None:
        status = response.status
        if self._state is CallState.CANCELLING:
            self._fail(status, "cancelled")
        elif status in (401, 407):
            self._authenticate(request, response)
        elif 300 <= status < 400 and self._redirect(response):
            return
        else:
            detail = f"{status} {response.reason}"
            self._fail(status, OUTCOMES.get(status, detail), detail=detail)

    def _authenticate(self, request: Request, response: Response) -> None:
        status = response.status
        phrase = response.reason or reason_phrase(status)
        if self._auth_attempts >= MAX_AUTH_ATTEMPTS:
            self._fail(status, f"{status} {phrase}: too many challenges", level=logging.WARNING)
            return
        header = "WWW-Authenticate" if status == 401 else "Proxy-Authenticate"
        result = self._auth.answer_challenge(
            status, response.headers.get_all(header), method="INVITE", uri=str(request.uri),
            body=request.body, previous_attempt=status in self._answered,
        )  # fmt: skip
        if isinstance(result, AuthFailed):
            text = f"{status} {phrase}: {result.reason} for realm {result.realm}"
            self._fail(status, text, level=logging.WARNING)
            return
        self._auth_attempts += 1
        self._answered.add(status)
        self._credentials[result.name] = result.value
        logger.info("%s: answering %d", self._label, status)
        self._send_invite()

    def _redirect(self, response: Response) -> bool:
        contacts = response.contacts
        if self._redirected or not contacts or not isinstance(contacts[0].uri, SipUri):
            return False
        self._redirected = True
        self._uri = replace(contacts[0].uri, headers=())  # §19.1.5: no headers from a 3xx
        self._credentials.clear()  # never send credentials to wherever a 3xx points
        self._answered.clear()
        logger.info("%s: %d, following to %s", self._label, response.status, self._uri)
        self._send_invite()
        return True

    def _on_2xx(self, request: Request, response: Response, now: float) -> None:
        tag = response.to.tag
        if not tag:
            logger.warning("x %s: 2xx without To-tag ignored", self._label)
            return
        ack = self._acks.get(tag)
        if ack is not None:  # a retransmission: the same ACK again (§13.2.2.4)
            self._sender.send_ack(ack)
            return
        dialog = Dialog.from_uac_response(request, response)
        sdp = _sdp(response)
        answer: bytes | None = None
        if not request.body and sdp is not None:  # offerless INVITE: our answer goes in the ACK
            answer = self._answer_offer(self.call_id, sdp)
        ack = dialog.create_request("ACK", seq=response.cseq.seq)
        for name in ("Authorization", "Proxy-Authorization"):  # §13.2.2.4: same credentials
            for value in request.headers.get_all(name):
                ack.headers.add(name, value)
        if answer:
            ack.headers.add("Content-Type", "application/sdp")
            ack.body = answer
        self._acks[tag] = ack
        self._sender.send_ack(ack)
        if self._state is CallState.CANCELLING:
            self._reap(dialog, "answered as we cancelled")
            self._fail(response.status, "cancelled")
        elif self._state in (CallState.CONNECTED, CallState.ENDED):
            self._reap(dialog, "a surplus answer")
        elif not request.body and answer is None:
            self._reap(dialog, "an offer we cannot answer")
            self._fail(response.status, "no acceptable media")
        else:
            self._connect(dialog, response, sdp, answer, now)

    def _connect(
        self, dialog: Dialog, response: Response, sdp: bytes | None, answer: bytes | None,
        now: float,
    ) -> None:  # fmt: skip
        self._state = CallState.CONNECTED
        self.session = Session(
            dialog, sender=self._sender, answer_offer=self._answer_offer, contact=self._contact,
            now=now, local_sdp=self._offer if self._offer is not None else answer,
            timer=uac_session_timer(response), label=self._label, auth=self._auth, peer=response,
            ids=self._ids, owns_call_id=True,
        )  # fmt: skip
        logger.info("%s answered by %s", self._label, response.to.uri)
        self._sender.emit(CallAnswered(self.call_id, sdp, response.headers.get("To") or ""))

    def _reap(self, dialog: Dialog, why: str) -> None:
        """ACKed already; hang the leg up at once (§13.2.2.4: a UAC may BYE extra answers)."""
        logger.info("%s: hanging up %s (tag %s)", self._label, why, dialog.remote_tag)
        dialog.state = DialogState.TERMINATED
        self._sender.send_request(dialog.create_request("BYE"), _LegReaper(self._label))

    def on_transaction_failed(self, request: Request, reason: str, now: float) -> None:
        """Timer B or a transport error for the INVITE (§8.1.3.1); a CANCEL's is only logged."""
        if request.method == "CANCEL":
            logger.info("%s: CANCEL got no answer (%s)", self._label, reason)
            return
        if request is not self._invite or self._state in (CallState.CONNECTED, CallState.ENDED):
            return
        if self._state is CallState.CANCELLING:
            self._fail(None, "cancelled")
        else:
            outcome = "timeout" if reason == "timeout" else "unreachable"
            self._fail(None, outcome, detail=f"{outcome} ({reason})")

    # -- requests from the peer -----------------------------------------------------------

    def matches(self, request: Request) -> bool:
        """§12.2.2: the request's Call-ID and To-tag are ours and its From-tag is one of the
        legs this call knows (an early dialog, an answered leg, the session's peer)."""
        if request.call_id != self.call_id or request.to.tag != self._from.tag:
            return False
        remote_tag = request.from_.tag or ""
        session = self.session
        return (
            remote_tag in self._early
            or remote_tag in self._acks
            or (session is not None and remote_tag == session.dialog.remote_tag)
        )

    def on_request(self, request: Request, now: float) -> Response | None:
        """A request inside one of our dialogs; one that does not match a dialog of this call
        whole gets 481 (an ACK: nothing) and changes nothing."""
        if not self.matches(request):
            return None if request.method == "ACK" else make_response(request, 481)
        remote_tag = request.from_.tag or ""
        session = self.session
        if session is not None and remote_tag == session.dialog.remote_tag:
            return session.on_request(request, now)
        if request.method == "ACK":
            return None
        if request.method == "BYE" and (remote_tag in self._early or remote_tag in self._acks):
            logger.info("%s: BYE from leg %s", self._label, remote_tag)
            dialog = self._early.get(remote_tag)
            if dialog is not None:
                dialog.state = DialogState.TERMINATED
            return make_response(request, 200)
        return make_response(request, 481)

    # -- timers ---------------------------------------------------------------------------

    def get_timer(self) -> float | None:
        deadlines = [self._cancel_at]
        if self.session is not None:
            deadlines.append(self.session.get_timer())
        return min((t for t in deadlines if t is not None), default=None)

    def handle_timer(self, now: float) -> None:
        if self._cancel_at is not None and now >= self._cancel_at:
            logger.warning(
                "x %s: no final response %gs after cancelling", self._label, TIMER_CANCEL
            )
            self._fail(None, "cancelled")
        if self.session is not None:
            self.session.handle_timer(now)
