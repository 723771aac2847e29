"""Session: what a confirmed dialog does until BYE, for outgoing and incoming calls alike.

Theory of operation
-------------------
One state change only: ACTIVE -> ENDED (``ended``), by a BYE from the peer, :meth:`hangup`, a
2xx to a re-INVITE that is never ACKed, or an expired session timer. The owner (OutgoingCall,
IncomingCall) hands over every request the endpoint matched to the dialog and the responses
to the requests this object sent; :meth:`on_request` returns the final response for the
server transaction (None for ACK).

Requests from the peer (RFC 3261 §12.2.2: one whose Call-ID, To-tag and From-tag are not the
dialog's gets 481 and changes nothing, an ACK is dropped; a CSeq not above the last one gets
500):

* BYE -> 200, CallEnded("BYE from peer") (§15.1.2). After the end: BYE 200, others 481.
* re-INVITE (§14.2) / UPDATE (RFC 3311) with SDP: ``answer_offer(call_id, offer)``; None ->
  488, else 200 with the answer, Contact, Allow, Supported, and MediaUpdated. A re-INVITE
  without SDP gets our current SDP as the offer; the answer comes in the ACK (MediaUpdated). While
  such an offer of ours, or our refresh re-INVITE, is unanswered, a new offer (re-INVITE,
  UPDATE with SDP) gets 491 (RFC 3261 §14.2, RFC 3311 §5.2).
* The 2xx to a re-INVITE is retransmitted here by :class:`Unacked2xx` (§13.3.1.4, RFC 6026)
  until the ACK with its CSeq arrives. After 64*T1 without ACK: BYE, "no ACK".
* INFO -> 200 and InfoReceived (RFC 6086). OPTIONS -> 200 with Allow, Accept, Supported.
  CANCEL (the endpoint's business) -> 481. Anything else -> 501 with Allow.

Session timers (RFC 4028), the rule we follow:

* A refresh (re-INVITE or UPDATE) carrying Session-Expires is answered per the table of §9:
  when the request's Supported lists ``timer`` and it does not ask ``refresher=uas``, the 2xx
  says ``Session-Expires: N;refresher=uac`` plus ``Require: timer``: the peer refreshes.
  Otherwise (the peer cannot refresh, or asked us to) the 2xx says ``refresher=uas`` and we
  refresh. N is the request's value (never raised, §9), at least Min-SE 90 (§4); a smaller
  value from a timer-aware peer gets 422 with ``Min-SE: 90``. No Session-Expires in the
  request: no timer (§7.2: the timer can come and go with each refresh). A malformed one
  (not delta-seconds up to :data:`MAX_SESSION_EXPIRES`, a bad refresher) never gets this
  far: the endpoint answers 400 "Bad Session-Expires" first (``check_request``); in a
  response it counts as absent, and an interval below Min-SE in a 2xx is taken as Min-SE.
* The 2xx to the INVITE sets the first timer: :func:`uas_session_timer` for the answering side,
  :func:`uac_session_timer` for the calling side (``refresher=uac`` or missing: we refresh).
* Peer refreshes: if no refresh 2xx arrives, BYE at interval - min(32, interval/3) after the
  last one (§10), CallEnded("session timer expired").
* We refresh at interval/2 (§10): with an UPDATE without SDP (RFC 3311 needs no offer) when
  the peer's Allow lists UPDATE (the INVITE or its 2xx, or the latest request or response in
  the dialog that carries Allow), else with a re-INVITE carrying our current SDP unchanged,
  same o= version: RFC 3264 §8 makes that "no change", so the peer answers as before and no
  media moves. (An offerless re-INVITE would make the peer offer anew and us answer in the
  ACK, which some phones take as a chance to renegotiate codecs.) The re-INVITE's 2xx is
  ACKed here. The 2xx sets the next timer; 422 retries with the larger Min-SE; 491 (glare,
  RFC 3261 §14.1) retries after a random 2.1-4 s when we placed the call (own the Call-ID),
  0-2 s otherwise; 408/481/timeout end the call (§12.2.1.2, "session refresh failed"); other
  refusals stop refreshing, and the call ends at expiry.

Authentication (RFC 3261 §8.1.3.5, §22.2), with the ``auth`` DigestClient (None: a 401/407 is
only logged, as any other refusal):

* A 401 or 407 to our BYE or refresh UPDATE is answered: the same request built again from the
  dialog (next CSeq, same Call-ID and tags) with ``Authorization`` / ``Proxy-Authorization``.
  Each request chain keeps the credentials it computed and resends all of them (a proxy's and
  the peer's). ``previous_attempt`` is True when the challenged request carried credentials of
  this chain for that kind of challenge: a second non-stale one means wrong credentials.
* At most :data:`MAX_AUTH_ANSWERS` answers per chain (stale nonces can loop). Refused
  credentials or the cap: one WARNING naming status and realm; a BYE is given up (the call
  ended locally already), a refresh counts as refused (the session expires). Credentials are
  never logged.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from intercom.sip.auth import AuthFailed, DigestClient, choose_challenge, parse_challenges
from intercom.sip.build import (
    ACCEPTED_BODIES,
    ALLOWED_METHODS,
    SUPPORTED,
    add_capabilities,
    make_response,
    reason_phrase,
    with_headers,
)
from intercom.sip.core import T1, T2, Ids, Sender
from intercom.sip.dialog import Dialog, DialogState
from intercom.sip.errors import RemoteProtocolError
from intercom.sip.events import CallEnded, InfoReceived, MediaUpdated
from intercom.sip.message import Request, Response
from intercom.sip.uri import NameAddr, parse_params, parse_uint

__all__ = [
    "MAX_AUTH_ANSWERS", "MAX_SESSION_EXPIRES", "MIN_SE", "AnswerOffer", "Session", "SessionTimer",
    "Unacked2xx", "glare_delay", "interval_too_small", "parse_session_expires", "uac_session_timer",
    "uas_session_timer",
]  # fmt: skip

logger = logging.getLogger(__name__)

AnswerOffer = Callable[[str, bytes], bytes | None]
"""The media layer: the call's Call-ID and an SDP offer in, the SDP answer out, None when it is
not acceptable (488)."""

MIN_SE = 90
"""Our minimum session interval: the absolute minimum of RFC 4028 §4, seconds."""
MAX_SESSION_EXPIRES = 2**31 - 1
"""The largest Session-Expires (delta-seconds) we take; more is malformed (400)."""
TIMER_ACK = 64 * T1
"""How long a 2xx to a re-INVITE is retransmitted without ACK before we give up (§13.3.1.4)."""
MAX_AUTH_ANSWERS = 2
"""Challenges answered per request chain (a BYE, a refresh); more is a stale-nonce loop."""


@dataclass(frozen=True, slots=True)
class SessionTimer:
    """A negotiated RFC 4028 session timer."""

    interval: int  #: session interval, seconds
    we_refresh: bool  #: True when we send the refreshes, False when the peer does


def parse_session_expires(value: str) -> tuple[int, str | None]:
    """(delta-seconds, refresher) of a Session-Expires value (RFC 4028 §4).

    Raises:
        RemoteProtocolError: not delta-seconds up to :data:`MAX_SESSION_EXPIRES`, malformed
            parameters, or a refresher other than ``uac`` / ``uas``.
    """
    number, _, rest = value.partition(";")
    seconds = parse_uint(number.strip(" \t"), MAX_SESSION_EXPIRES)
    if seconds is None:
        raise RemoteProtocolError(f"bad Session-Expires {value[:40]!r}")
    params = parse_params(rest, "Session-Expires")
    refresher = params.get("refresher")
    if "refresher" in params and (refresher or "").lower() not in ("uac", "uas"):
        raise RemoteProtocolError(f"bad Session-Expires refresher {(refresher or '')[:40]!r}")
    return seconds, refresher.lower() if refresher else None


def _session_expires(message: Request | Response) -> tuple[int, str | None] | None:
    """(delta-seconds, refresher) of a Session-Expires header; None if absent or malformed."""
    value = message.headers.get("Session-Expires")
    if value is None:
        return None
    try:
        return parse_session_expires(value)
    except RemoteProtocolError:
        return None


def _supports_timer(request: Request) -> bool:
    return any(tag.lower() == "timer" for tag in request.headers.get_list("Supported"))


def interval_too_small(request: Request) -> bool:
    """RFC 4028 §9: a timer-aware request asking less than Min-SE is refused with 422."""
    parsed = _session_expires(request)
    return parsed is not None and parsed[0] < MIN_SE and _supports_timer(request)


def uas_session_timer(request: Request) -> tuple[SessionTimer | None, list[tuple[str, str]]]:
    """RFC 4028 §9 for a request we answer 2xx: the timer and the headers for the 2xx."""
    parsed = _session_expires(request)
    if parsed is None:
        return None, []
    interval = max(parsed[0], MIN_SE)
    if _supports_timer(request) and parsed[1] != "uas":
        headers = [("Session-Expires", f"{interval};refresher=uac"), ("Require", "timer")]
        return SessionTimer(interval, we_refresh=False), headers
    return SessionTimer(interval, we_refresh=True), [
        ("Session-Expires", f"{interval};refresher=uas")
    ]


def uac_session_timer(response: Response) -> SessionTimer | None:
    """RFC 4028 §7.2: the timer a 2xx to our INVITE/UPDATE sets; refresher uac (or none) is us."""
    parsed = _session_expires(response)
    if parsed is None or parsed[0] == 0:
        return None
    return SessionTimer(max(parsed[0], MIN_SE), we_refresh=parsed[1] != "uas")


def glare_delay(ids: Ids | None, owns_call_id: bool) -> float:
    """RFC 3261 §14.1: seconds before retrying a request answered 491."""
    chance = ids.random() if ids is not None else 0.0
    return 2.1 + 1.9 * chance if owns_call_id else 2.0 * chance


def _allows_update(message: Request | Response, before: bool) -> bool:
    """Whether the peer takes UPDATE: its Allow, when ``message`` carries one (RFC 3311 §5)."""
    allow = message.headers.get_list("Allow")
    return any(m.upper() == "UPDATE" for m in allow) if allow else before


class Unacked2xx:
    """A 2xx to an INVITE, resent by its TU until the ACK (§13.3.1.4, RFC 6026), whatever the
    transport: T1 after sending, then at intervals doubling up to T2 (0.5, 1.5, 3.5, 7.5,
    11.5 ... s); given up :data:`TIMER_ACK` (64*T1) after it was first sent."""

    __slots__ = ("_interval", "give_up_at", "next_at", "offer", "response", "seq")

    def __init__(self, response: Response, now: float, offer: bytes | None = None) -> None:
        self.response = response
        self.seq = response.cseq.seq  # the INVITE's CSeq number, which the ACK repeats
        self.offer = offer  # our offer in that 2xx: the answer comes in the ACK
        self._interval = T1
        self.next_at = now + T1
        self.give_up_at = now + TIMER_ACK

    def get_timer(self) -> float:
        return min(self.next_at, self.give_up_at)

    def handle_timer(self, now: float, send: Callable[[Response], None]) -> bool:
        """Resend the 2xx when due; False once it is given up (no ACK within 64*T1)."""
        if now >= self.give_up_at:
            return False
        if now >= self.next_at:
            send(self.response)
            self._interval = min(self._interval * 2, T2)
            self.next_at = max(self.next_at + self._interval, now)
        return True


@dataclass(slots=True)
class _AuthChain:
    """One request and its resends with credentials (§22.2)."""

    answers: int = 0
    credentials: dict[str, str] = field(default_factory=dict)  # header name -> value


class Session:
    """What a confirmed dialog does until BYE (either side)."""

    def __init__(
        self,
        dialog: Dialog,
        *,
        sender: Sender,
        answer_offer: AnswerOffer,
        contact: Callable[[], NameAddr],
        now: float,
        local_sdp: bytes | None = None,
        timer: SessionTimer | None = None,
        label: str | None = None,
        auth: DigestClient | None = None,
        peer: Request | Response | None = None,
        ids: Ids | None = None,
        owns_call_id: bool = False,
    ) -> None:
        """
        Args:
            local_sdp: our current session description (the offer or answer of the INVITE),
                offered again to a re-INVITE without SDP.
            timer: the session timer the INVITE's 2xx negotiated, if any.
            label: how log lines name the call ("call to family"); the Call-ID by default.
            auth: answers 401/407 to our BYE and refresh UPDATE; None only logs them.
            peer: the INVITE or its 2xx: its Allow says whether the peer takes UPDATE.
            ids, owns_call_id: the randomness and the side (we placed the call) of the delay
                before a refresh answered 491 is retried.
        """
        self.dialog = dialog
        self.ended = False
        self._sender = sender
        self._answer_offer = answer_offer
        self._contact = contact
        self._local_sdp = local_sdp
        self._label = label or f"call {dialog.call_id}"
        self._unacked: Unacked2xx | None = None
        self._timer: SessionTimer | None = None
        self._refresh_at: float | None = None
        self._expires_at: float | None = None
        self._refresh: Request | None = None  # our UPDATE or re-INVITE in flight
        self._allows_update = peer is not None and _allows_update(peer, False)
        self._ids = ids
        self._owns_call_id = owns_call_id
        self._refresh_refused = False
        self._refresh_chain = _AuthChain()
        self._min_se = MIN_SE
        self._auth = auth
        self._bye: Request | None = None  # our BYE, the latest of its chain
        self._bye_chain = _AuthChain()
        self._set_timer(timer, now)

    @property
    def call_id(self) -> str:
        return self.dialog.call_id

    @property
    def timer(self) -> SessionTimer | None:
        return self._timer

    # -- requests from the peer ----------------------------------------------------------

    def on_request(self, request: Request, now: float) -> Response | None:
        """A request inside this dialog; returns the final response (None for ACK)."""
        method = request.method
        if not self.dialog.matches(request):  # §12.2.2: the owner should have refused it
            return None if method == "ACK" else make_response(request, 481)
        if method == "ACK":
            self._on_ack(request)
            return None
        if self.ended:
            return make_response(request, 200 if method == "BYE" else 481)
        if not self.dialog.accept_remote_request(request):
            logger.info("x %s: %s with CSeq %d out of order", self._label, method, request.cseq.seq)
            return make_response(request, 500)  # §12.2.2
        self._allows_update = _allows_update(request, self._allows_update)
        if method == "BYE":
            self._end("BYE from peer", by_peer=True, send_bye=False)
            return make_response(request, 200)
        if method in ("INVITE", "UPDATE"):
            return self._on_offer(request, now)
        if method == "INFO":
            self._sender.emit(InfoReceived(self.call_id, request.content_type, request.body))
            return make_response(request, 200)
        if method == "OPTIONS":
            return add_capabilities(make_response(request, 200))
        if method == "CANCEL":
            return make_response(request, 481)  # matched no pending INVITE (§9.2)
        return with_headers(make_response(request, 501), ("Allow", ALLOWED_METHODS))

    def _on_ack(self, request: Request) -> None:
        unacked = self._unacked
        if unacked is None or request.cseq.seq != unacked.seq:
            return
        self._unacked = None
        if unacked.offer is not None and request.body:
            self._sender.emit(MediaUpdated(self.call_id, unacked.offer, request.body))

    def _on_offer(self, request: Request, now: float) -> Response:
        """A re-INVITE or UPDATE: maybe an offer, maybe a session refresh, maybe both."""
        is_invite = request.method == "INVITE"
        offered = bool(request.body)
        pending = self._unacked is not None and self._unacked.offer is not None
        pending |= self._refresh is not None and self._refresh.method == "INVITE"  # our offer
        if pending and (is_invite or offered):
            return make_response(request, 491)  # our offer is still unanswered
        if offered and request.content_type not in (None, "application/sdp"):
            return with_headers(make_response(request, 415), ("Accept", ACCEPTED_BODIES))
        if interval_too_small(request):
            return with_headers(make_response(request, 422), ("Min-SE", str(MIN_SE)))
        body: bytes | None = None
        our_offer: bytes | None = None
        if offered:
            body = self._answer_offer(self.call_id, request.body)
            if body is None:
                logger.info("x %s: the peer's new offer is not acceptable", self._label)
                return make_response(request, 488)
            self._local_sdp = body
            self._sender.emit(MediaUpdated(self.call_id, request.body, body))
        elif is_invite:
            if self._local_sdp is None:
                return make_response(request, 488)
            body = our_offer = self._local_sdp
        timer, timer_headers = uas_session_timer(request)
        response = with_headers(
            make_response(request, 200),
            ("Contact", str(self._contact())), ("Allow", ALLOWED_METHODS),
            ("Supported", SUPPORTED), *timer_headers,
        )  # fmt: skip
        if body:
            response.headers.add("Content-Type", "application/sdp")
            response.body = body
        self._set_timer(timer, now)
        if is_invite:
            self._unacked = Unacked2xx(response, now, our_offer)
        logger.info("%s: %s answered 200", self._label, "re-INVITE" if is_invite else "UPDATE")
        return response

    # -- our own actions -----------------------------------------------------------------

    def hangup(self, now: float, reason: str = "hung up") -> None:
        """Send BYE and report CallEnded(reason, by_peer=False) at once (§15.1.1)."""
        if not self.ended:
            self._end(reason, by_peer=False, send_bye=True)

    def _end(self, reason: str, *, by_peer: bool, send_bye: bool) -> None:
        self.ended = True
        self._unacked = self._refresh = None
        self._timer = self._refresh_at = self._expires_at = None
        self.dialog.state = DialogState.TERMINATED
        if send_bye:
            self._bye = self._sender.send_request(self.dialog.create_request("BYE"), self)
        logger.info("%s ended: %s", self._label, reason)
        self._sender.emit(CallEnded(self.call_id, reason, by_peer))

    def _set_timer(self, timer: SessionTimer | None, now: float) -> None:
        self._timer = timer
        self._refresh_at = self._expires_at = None
        if timer is None:
            return
        if timer.we_refresh:
            self._refresh_at = None if self._refresh_refused else now + timer.interval / 2
            self._expires_at = now + timer.interval
        else:  # §10: BYE slightly before expiry when the peer's refresh is missing
            self._expires_at = now + timer.interval - min(32, timer.interval / 3)

    def _send_refresh(self) -> None:
        self._refresh_chain = _AuthChain()
        self._refresh = self._sender.send_request(self._refresh_request(), self)

    def _refresh_request(self) -> Request:
        assert self._timer is not None
        reinvite = not self._allows_update and self._local_sdp is not None
        update = self.dialog.create_request("INVITE" if reinvite else "UPDATE")
        update.headers.add("Contact", str(self._contact()))
        update.headers.add("Supported", SUPPORTED)
        update.headers.add("Session-Expires", f"{self._timer.interval};refresher=uac")
        if self._min_se > MIN_SE:
            update.headers.add("Min-SE", str(self._min_se))  # RFC 4028 §7.4 after a 422
        if reinvite and self._local_sdp is not None:  # the same SDP, same version (RFC 3264 §8)
            update.headers.add("Allow", ALLOWED_METHODS)
            update.headers.add("Content-Type", "application/sdp")
            update.body = self._local_sdp
        return update

    def _authenticated(
        self, request: Request, response: Response, chain: _AuthChain, what: str
    ) -> Request | None:
        """§22.2: ``request`` built again (next CSeq) with credentials; None: give up, logged."""
        assert self._auth is not None
        status = response.status
        phrase = response.reason or reason_phrase(status)
        name = "Authorization" if status == 401 else "Proxy-Authorization"
        values = response.headers.get_all(
            "WWW-Authenticate" if status == 401 else "Proxy-Authenticate"
        )
        if chain.answers >= MAX_AUTH_ANSWERS:
            challenges = parse_challenges(values)
            chosen = choose_challenge(challenges) or (challenges[0] if challenges else None)
            logger.warning(
                "x %s: %s got %d %s again for realm %s: too many challenges, giving up",
                self._label, what, status, phrase, chosen.realm if chosen else "",
            )  # fmt: skip
            return None
        sent = chain.credentials.get(name)
        if request.method == "BYE":
            again = self.dialog.create_request("BYE")
        else:
            again = self._refresh_request()
        result = self._auth.answer_challenge(
            status, values, method=again.method, uri=str(again.uri), body=again.body,
            previous_attempt=sent is not None and sent in request.headers.get_all(name),
        )  # fmt: skip
        if isinstance(result, AuthFailed):
            logger.warning(
                "x %s: %s got %d %s: %s for realm %s, giving up",
                self._label, what, status, phrase, result.reason, result.realm,
            )  # fmt: skip
            return None
        chain.answers += 1
        chain.credentials[result.name] = result.value
        for header, value in chain.credentials.items():
            again.headers.add(header, value)
        logger.info("%s: answering %d to the %s", self._label, status, what)
        return again

    # -- responses to what we sent (TransactionUser) ---------------------------------------

    def on_response(self, request: Request, response: Response, now: float) -> None:
        if response.status < 200:
            return
        challenged = response.status in (401, 407) and self._auth is not None
        if request.method == "BYE":
            if not challenged:
                logger.info("%s: BYE answered %d %s", self._label, response.status, response.reason)
            elif request is self._bye:
                self._bye = self._authenticated(request, response, self._bye_chain, "BYE")
                if self._bye is not None:
                    self._bye = self._sender.send_request(self._bye, self)
            return
        if request.method == "INVITE" and response.status < 300:  # our re-INVITE's 2xx, each
            ack = self.dialog.create_request("ACK", seq=request.cseq.seq)  # one (§13.2.2.4)
            for name in ("Authorization", "Proxy-Authorization"):  # the INVITE's credentials
                for value in request.headers.get_all(name):
                    ack.headers.add(name, value)
            self._sender.send_ack(ack)
        if request is not self._refresh or self.ended:
            return
        self._refresh = None
        status = response.status
        self._allows_update = _allows_update(response, self._allows_update)
        if status < 300:
            contacts = response.contacts  # §12.2.1.2: a target refresh, the route set stays
            if contacts:
                self.dialog.remote_target = contacts[0].uri
            self._set_timer(uac_session_timer(response), now)
        elif status == 422 and self._timer is not None:
            min_se = (response.headers.get("Min-SE") or "").split(";")[0].strip(" \t")
            wanted = parse_uint(min_se, MAX_SESSION_EXPIRES) or 0
            if wanted > self._timer.interval:
                self._min_se = wanted
                self._timer = SessionTimer(wanted, we_refresh=True)
                self._send_refresh()
        elif challenged:
            if self._timer is None:  # a refresh from the peer dropped the timer meanwhile
                return
            retry = self._authenticated(request, response, self._refresh_chain, "session refresh")
            if retry is None:
                self._refresh_refused = True  # the session will expire
            else:
                self._refresh = self._sender.send_request(retry, self)
        elif status == 491 and self._timer is not None:  # glare (§14.1): again, a bit later
            self._refresh_at = now + glare_delay(self._ids, self._owns_call_id)
        elif status in (408, 481):
            self._end("session refresh failed", by_peer=False, send_bye=True)
        else:
            logger.warning(
                "x %s: session refresh refused (%d %s); the session will expire",
                self._label, status, response.reason,
            )  # fmt: skip
            self._refresh_refused = True

    def on_transaction_failed(self, request: Request, reason: str, now: float) -> None:
        if request.method == "BYE":
            logger.info("%s: BYE got no answer (%s)", self._label, reason)
        elif request is self._refresh and not self.ended:
            self._end("session refresh failed", by_peer=False, send_bye=True)

    # -- timers ----------------------------------------------------------------------------

    def get_timer(self) -> float | None:
        if self.ended:
            return None
        deadlines = [self._refresh_at, self._expires_at]
        if self._unacked is not None:
            deadlines.append(self._unacked.get_timer())
        return min((t for t in deadlines if t is not None), default=None)

    def handle_timer(self, now: float) -> None:
        if self.ended:
            return
        if self._unacked and not self._unacked.handle_timer(now, self._sender.send_response):
            logger.warning("x %s: no ACK for our 200 to the re-INVITE", self._label)
            self._end("no ACK", by_peer=False, send_bye=True)
            return
        if self._expires_at is not None and now >= self._expires_at:
            logger.warning("x %s: session timer expired", self._label)
            self._end("session timer expired", by_peer=False, send_bye=True)
            return
        if self._refresh_at is not None and now >= self._refresh_at:
            self._refresh_at = None
            self._send_refresh()
