"""The user agent's façade: bytes in, bytes and events out; the dispatcher between the wire
and the transaction users (registration, calls).

Theory of operation. The runtime drives one :class:`Endpoint` as aioquic's protocol drives a
connection: :meth:`~Endpoint.receive` with each framed message and its source,
:meth:`~Endpoint.handle_timer` when :meth:`~Endpoint.get_timer` is due, and the application's
commands (:meth:`~Endpoint.call`, :meth:`~Endpoint.hangup`, :meth:`~Endpoint.accept`, ...);
after each it sends :meth:`~Endpoint.datagrams_to_send` and drains :meth:`~Endpoint.next_event`.

A message goes: :class:`~intercom.sip.gate.Gate` (strangers rate-limited and refused
statelessly, holding nothing; their responses dropped unparsed unless they carry the branch of
a request we sent to their address) -> :func:`~intercom.sip.message.parse_message` (malformed
requests whose Via, Call-ID and CSeq can be read get the parser's status hint, to the packet's
source; anything else is dropped) -> a stranger's request that is no retransmission judged
again by the gate from its parsed headers (:meth:`~intercom.sip.gate.Gate.screen_parsed`: what
the light scan could not read, or one naming a call of ours without matching its dialog
whole, refused statelessly) -> a request's top Via stamped with ``received`` and
``rport`` (§18.2.1, RFC 3581) -> :class:`~intercom.sip.transactions.Transactions` (§17:
retransmissions and ACKs of non-2xx absorbed; responses matching no transaction, or not
repeating its request's Call-ID, CSeq and From, dropped and counted, RFC 6026 §8.9, but for a
2xx that answers an INVITE of a live call whole: :mod:`~intercom.sip.sent_invites`, to be ACKed
again) -> for a new request, the UAS
checks of §8.2 (:func:`~intercom.sip.uas.check_request`) -> the TU: CANCEL to its INVITE (§9.2);
requests with a To-tag to the call whose dialog they match whole, Call-ID and both tags (481
otherwise, an ACK dropped, §12.2.2); OPTIONS answered alike whatever the Request-URI user
(§11.2, nobody can enumerate users); a new INVITE to the application as
:class:`IncomingCallReceived`; BYE, INFO, UPDATE outside a dialog 481.

Requests from TUs go out through :class:`~intercom.sip.outbound.Outbound`: routing (§8.1.2),
our Via, and the requests held while the runtime resolves a host name (this core does no DNS:
:class:`AddressNeeded`, then :meth:`~Endpoint.learn_address` or
:meth:`~Endpoint.address_failed`). A request that found no route fails its transaction with the
reason ("cannot resolve pbx.example", "transport sctp is not supported") once the step is over;
an ACK that cannot go out hangs its call up with that reason.

Over TLS (RFC 3261 §26, RFC 5630) our Via says ``SIP/2.0/TLS`` with RFC 5923's ``alias``, and
our Contact is ``sip:user@host:port;transport=tls``, the form TLS clients of kamailio and
Asterisk's PJSIP use: a ``sips:`` Contact (RFC 5630's preference) would ask every hop of the
dialog's requests for TLS, which a phone on UDP behind the server cannot give. The door opens
no TLS listener: requests towards it come back over the registration's own connection, which
it keeps open with RFC 5626 keepalives; the ``alias`` tells a registrar that honours RFC 5923
to do so, the others reach it by the address and port they saw the connection come from
(kamailio's ``fix_nated_register``, Asterisk's ``rewrite_contact``).

Nothing the peer sends escapes ``receive``: an exception while handling a request is logged in
one line and answered 500 if its transaction is unanswered; one a TU raises on a response is
logged and the response dropped. Nothing is held forever: transactions end by their timers, an
undecided incoming INVITE is refused after ``UNDECIDED_LIMIT`` (incoming.py), a request no TU
answered gets 500; only calls in a live session stay (:meth:`~Endpoint.held`).
"""

from __future__ import annotations

import logging
import random
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, replace

from intercom.sip.auth import DigestClient
from intercom.sip.build import add_capabilities, make_response, stamp_via
from intercom.sip.call import OutgoingCall
from intercom.sip.core import Address, Ids, TransactionUser, due
from intercom.sip.errors import RemoteProtocolError
from intercom.sip.events import Event, IncomingCallCancelled, IncomingCallReceived
from intercom.sip.gate import Gate
from intercom.sip.incoming import IncomingCall
from intercom.sip.message import Message, Request, Response, parse_message
from intercom.sip.outbound import HOLD_LIMIT, EndpointConfig, Outbound
from intercom.sip.registration import Registration, RegistrationConfig
from intercom.sip.sent_invites import SentInvites, answers, same_host
from intercom.sip.session import AnswerOffer
from intercom.sip.transaction import TransactionState
from intercom.sip.transactions import Transactions
from intercom.sip.uas import check_request, response_destination, salvage_request
from intercom.sip.uri import NameAddr, SipUri
from intercom.sip.wirelog import log_message

__all__ = ["HOLD_LIMIT", "Endpoint", "EndpointConfig", "Held"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Held:
    """What an endpoint holds at one moment: every entry must end by its timers, except calls
    in a live confirmed session (``calls`` maps Call-ID to the call's state name)."""

    server_transactions: int
    client_transactions: int
    calls: dict[str, str]


class Endpoint:
    """One SIP user agent: transactions, registration, calls. Sans-IO."""

    def __init__(
        self,
        config: EndpointConfig,
        *,
        rng: random.Random,
        answer_offer: AnswerOffer,
        credentials: tuple[str, str] | None = None,
        is_trusted_source: Callable[[str], bool] | None = None,
    ) -> None:
        """``is_trusted_source(host)``: whether requests from that IP may start dialogs and
        bypass the rate limit (the server, trusted hosts); None admits everyone."""
        self.config = config
        self.ids = Ids(rng)
        user, password = credentials or (None, None)
        self.auth = DigestClient(user, password, cnonce_factory=self.ids.cnonce)
        self._answer_offer = answer_offer
        self._tx = Transactions(self._send)
        self._invites = SentInvites()  # of live calls, past their transactions
        self._outbound = Outbound(config, self.ids, self._start_client, self._send, self.emit)
        self._calls: dict[str, OutgoingCall | IncomingCall] = {}
        self._out: list[tuple[bytes, Address]] = []
        self._events: deque[Event] = deque()
        self.gate = Gate(
            is_trusted_source,
            known_call=self._calls.__contains__,
            known_dialog=self._is_ours,
            is_our_branch=self._sent_to,
        )
        self._now = 0.0
        self.registration: Registration | None = None

    # -- the Sender protocol of intercom.sip.core ------------------------------------------

    def contact(self) -> NameAddr:
        """Our Contact: the local address, or the public one the registrar saw (RFC 3581)."""
        local = self._local_contact()
        return local if self.registration is None else self.registration.nat_contact(local)

    def _contact_towards(self, host: str) -> Callable[[], NameAddr]:
        """The Contact of a dialog with ``host``: the public one for the server's side, the
        local one for a peer reached directly (a LAN phone must not be sent to the NAT)."""
        reg, proxy = self.registration, self.config.outbound_proxy
        if reg is None or proxy is not None:
            return self.contact
        server = self._outbound.router.address_for(reg.config.registrar_uri)
        ours = {reg.config.registrar_uri.host, server.host if server else ""}
        return self.contact if host in ours else self._local_contact

    def _local_contact(self) -> NameAddr:
        uri = SipUri(self.config.local_host, self.config.user, self.config.local_port)
        if self.config.transport != "udp":
            uri = uri.with_params(transport=self.config.transport)
        return NameAddr(uri)

    def send_request(
        self, request: Request, tu: TransactionUser, destination: Address | None = None
    ) -> Request:
        return self._outbound.request(request, tu, destination, self._now)

    def send_ack(self, ack: Request, destination: Address | None = None) -> None:
        self._outbound.ack(ack, destination, self._now)

    def send_cancel(self, invite: Request, tu: TransactionUser) -> None:
        self._tx.cancel(invite, tu, self._now)

    def send_response(self, response: Response) -> None:
        destination = response_destination(response)
        if destination is not None:
            self._send(response, destination)

    def emit(self, event: Event) -> None:
        self._events.append(event)

    # -- what the runtime calls -----------------------------------------------------------

    def datagrams_to_send(self) -> list[tuple[bytes, Address]]:
        out, self._out = self._out, []
        return out

    def next_event(self) -> Event | None:
        return self._events.popleft() if self._events else None

    def get_timer(self) -> float | None:
        timers = list(self._tx.timers())
        timers.extend(call.get_timer() for call in self._calls.values())
        if self.registration is not None:
            timers.append(self.registration.get_timer())
        timers.append(self.gate.log.get_timer())
        timers.append(self._outbound.get_timer())
        return min((t for t in timers if t is not None), default=None)

    def handle_timer(self, now: float) -> None:
        self._now = now
        self._tx.handle_timer(now)
        self._outbound.handle_timer(now)
        for call in list(self._calls.values()):
            if due(call.get_timer(), now):
                call.handle_timer(now)
        if self.registration is not None:
            if due(self.registration.get_timer(), now):
                self.registration.handle_timer(now)
            self._send_keepalive()
        self.gate.log.handle_timer(now)
        self._reap()

    def receive(self, data: bytes, source: Address, now: float) -> None:
        """One datagram or framed stream message from ``source``."""
        self._now = now
        answer = self.gate.screen(data, source, now)
        if answer is not None:  # refused (stateless, nothing held) or dropped
            if answer:
                self._out.append((answer, source))
            return
        try:
            message = parse_message(data, stream=source.reliable)
        except RemoteProtocolError as exc:
            self._answer_malformed(data, source, exc)
            return
        log_message("<", message, source)
        if isinstance(message, Request):
            try:
                self._receive_request(message, source)
            except Exception as exc:  # peer input must never stop the endpoint: one log line,
                self._request_failed(message, source, exc)  # 500 if still unanswered
        else:
            self._receive_response(message, source)
        self._reap()

    # -- application commands ---------------------------------------------------------------

    def register(self, config: RegistrationConfig, now: float) -> Registration:
        self._now = now
        self.registration = Registration(
            config, sender=self, auth=self.auth, ids=self.ids, contact=self._local_contact
        )
        self.registration.start(now)
        self._reap()
        return self.registration

    def unregister(self, now: float) -> None:
        self._now = now
        if self.registration is not None:
            self.registration.stop(now)
            self._reap()

    def call(
        self, target: SipUri, offer: bytes | None, now: float, *, call_id: str | None = None
    ) -> OutgoingCall:
        self._now = now
        local = NameAddr(SipUri(self.config.local_host, self.config.user))
        if self.registration is not None:
            local = NameAddr(self.registration.config.aor)
        call = OutgoingCall(
            sender=self,
            ids=self.ids,
            auth=self.auth,
            local=local,
            target=target,
            contact=self._contact_towards(target.host),
            offer=offer,
            answer_offer=self._answer_offer,
            call_id=call_id,
        )
        self._calls[call.call_id] = call
        call.start(now)
        self._reap()
        return call

    def hangup(self, call_id: str, now: float, reason: str = "hung up") -> bool:
        """End a call: BYE (CallEnded with ``reason``), CANCEL, or 480 while it rings."""
        self._now = now
        owner = self._calls.get(call_id)
        if owner is None:
            return False
        owner.hangup(now, reason)
        self._reap()
        return True

    def accept(self, call_id: str, sdp: bytes | None, now: float) -> None:
        self._now = now
        incoming = self._incoming(call_id)
        if incoming is not None:
            incoming.accept(sdp, now)
            self._reap()

    def reject(self, call_id: str, status: int, now: float) -> None:
        self._now = now
        incoming = self._incoming(call_id)
        if incoming is not None:
            incoming.reject(status)
            self._reap()

    def ring(self, call_id: str) -> None:
        incoming = self._incoming(call_id)
        if incoming is not None:
            incoming.ring()

    def active_call_ids(self) -> list[str]:
        return list(self._calls)

    def held(self) -> Held:
        """Transactions and calls held now (status, tests: nothing may be held forever)."""
        calls = {cid: call.state.value for cid, call in self._calls.items()}
        return Held(len(self._tx.servers), len(self._tx.clients), calls)

    def transport_failed(self, destination: Address, now: float, reason: str | None = None) -> None:
        """The transport could not reach ``destination``: fail its client transactions
        (§8.1.3.1: treated like a 503 / timeout by their TUs), telling them ``reason`` when
        given (a failed registration shows it in status: "certificate has expired")."""
        self._now = now
        self._tx.transport_failed(destination, now, reason)
        registration = self.registration
        if registration is not None and destination == self._outbound.flow(
            registration.config.registrar_uri
        ):
            registration.flow_failed(now)  # RFC 5626 §4.4.1: our flow to it is gone
        self._reap()

    def call_peer_host(self, call_id: str) -> str | None:
        """The host our INVITE of ``call_id`` is being sent to (server, outbound proxy or
        target): the call's media may come from there. None without an INVITE transaction."""
        destination = self._tx.invite_destination(call_id)
        return destination.host if destination is not None else None

    def set_local_host(self, host: str, now: float) -> None:
        """Our local address changed (DHCP, roaming): Contact and Via use ``host`` from now on,
        and the registration moves its binding there at once (the old one removed)."""
        if host == self.config.local_host:
            return
        self._now = now
        self.config = replace(self.config, local_host=host)
        self._outbound.local_host = host
        if self.registration is not None:
            self.registration.moved(now)
            self._reap()

    def learn_address(self, host: str, address: Address) -> None:
        """The runtime resolved ``host`` to ``address`` (RFC 3263): route requests there, the
        held ones first."""
        self._outbound.learn(host, address, self._now)
        self._reap()

    def address_failed(self, host: str, now: float) -> None:
        """``host`` does not resolve: the requests held for it fail."""
        self._now = now
        self._outbound.unresolvable(host)
        self._reap()

    def knows_host(self, host: str) -> bool:
        """Whether ``host`` (a name) has a learned address."""
        return self._outbound.router.knows(host)

    # -- receiving ------------------------------------------------------------------------

    def _receive_request(self, request: Request, source: Address) -> None:
        existing = self._tx.server(request)
        if existing is None and self._refused_statelessly(request, source):
            return
        stamp_via(request, source.host, source.port)
        if existing is not None:
            self._tx.retransmitted(existing, request, self._now)
            if request.method == "ACK" and existing.tx.state is TransactionState.ACCEPTED:
                self._dispatch_in_dialog(request)  # a 2xx ACK that reused the INVITE's branch
            return
        if request.method == "ACK":
            self._dispatch_in_dialog(request)  # ACK for a 2xx: no transaction (§17.1.1.3)
            return
        self._tx.start_server(request, source, self._now)
        response = check_request(
            request, our_branches=self._outbound.our_branches, is_merged=self._tx.is_merged
        )
        if response is not None and response.status == 400:
            logger.info("x %s from %s: 400 %s", request.method, source, response.reason)
        if response is None:
            response = self._dispatch(request, source)
        if response is None and not self._awaits_decision(request):
            logger.warning("x %s from %s got no answer from its TU: 500", request.method, source)
            response = make_response(request, 500)
        if response is not None:
            self._tx.respond(request, response, self._now)

    def _refused_statelessly(self, request: Request, source: Address) -> bool:
        """A stranger's request that belongs to no dialog of ours is answered (or dropped) by
        the gate as the light scan's would be, before any transaction, call or event."""
        answer = self.gate.screen_parsed(request, source, self._now)
        if answer is None:
            return False
        if answer:
            self._out.append((answer, source))
        return True

    def _is_ours(self, request: Request, source: Address) -> bool:
        """Whether ``request`` belongs to us whole: a CANCEL to a live INVITE server
        transaction whose request came from the same host (§9.2: a CANCEL goes where its
        INVITE went, so it comes from where that came from), anything else to the dialog of
        one of our calls (Call-ID and both tags, §12.2.2)."""
        if request.method == "CANCEL":
            invite = self._tx.cancelled_invite(request)
            return invite is not None and invite.source.host == source.host
        owner = self._calls.get(request.call_id)
        return owner is not None and owner.matches(request)

    def _awaits_decision(self, request: Request) -> bool:
        """True for an INVITE an IncomingCall holds: the application answers it (in time)."""
        incoming = self._incoming(request.call_id)
        return incoming is not None and incoming.invite is request

    def _request_failed(self, request: Request, source: Address, exc: Exception) -> None:
        """One line for the log, 500 if the request's transaction is still unanswered, and
        no half-made incoming call left behind (§8.2: every request gets a final response)."""
        _log_failure(exc, "x %s from %s (Call-ID %s) failed: %s: %s; answering 500",
                     request.method, source, request.call_id)  # fmt: skip
        try:
            incoming = self._incoming(request.call_id)
            if incoming is not None and incoming.invite is request:
                del self._calls[request.call_id]
                if incoming.drop():  # the application may have heard of it: it is over
                    self.emit(IncomingCallCancelled(request.call_id, "failed"))
            if request.method == "ACK":
                return
            record = self._tx.server(request)
            if record is not None and not record.tx.answered:
                self._tx.respond(request, make_response(request, 500), self._now)
        except Exception as again:  # never let the recovery itself escape
            logger.error("x %s from %s: cannot answer 500: %s", request.method, source, again)

    def _dispatch(self, request: Request, source: Address) -> Response | None:
        method = request.method
        if method == "CANCEL":
            return self._receive_cancel(request)
        if request.to.tag is not None:
            return self._dispatch_in_dialog(request)
        if method == "OPTIONS":
            return add_capabilities(make_response(request, 200, to_tag=self.ids.tag()))
        if method == "INVITE":
            return self._receive_invite(request, source)
        return make_response(request, 481)  # BYE, INFO, UPDATE outside any dialog

    def _receive_invite(self, request: Request, source: Address) -> Response | None:
        if request.call_id in self._calls:
            return make_response(request, 482)
        # No 100 here: the server transaction sends it after TRYING_DELAY unless the
        # application rings, answers or refuses first (§17.2.1).
        incoming = IncomingCall(
            request,
            sender=self,
            respond=lambda response: self._tx.respond(request, response, self._now),
            local_tag=self.ids.tag(),
            contact=self._contact_towards(source.host),
            answer_offer=self._answer_offer,
            now=self._now,
            ids=self.ids,
        )
        self._calls[request.call_id] = incoming
        logger.info("incoming call from %s (sent by %s)", incoming.dialog.remote.uri, source)
        self.emit(
            IncomingCallReceived(
                call_id=request.call_id,
                caller=request.headers.get("From") or "",
                asserted_identity=request.headers.get("P-Asserted-Identity"),
                source_host=source.host,
                source_port=source.port,
                sdp=request.body or None,
            )
        )
        return None

    def _receive_cancel(self, request: Request) -> Response:
        """§9.2: the CANCEL matches the INVITE server transaction with the same branch."""
        invite = self._tx.cancelled_invite(request)
        if invite is None:
            return make_response(request, 481)
        incoming = self._incoming(request.call_id)
        if incoming is not None and incoming.invite is invite.tx.request:
            incoming.cancelled(request)
        return make_response(request, 200)

    def _dispatch_in_dialog(self, request: Request) -> Response | None:
        """§12.2.2: Call-ID, To-tag (ours) and From-tag (theirs) must all match a dialog."""
        call_id = request.call_id
        owner = self._calls.get(call_id)
        if owner is not None and owner.matches(request):
            return owner.on_request(request, self._now)
        if request.method == "ACK":
            logger.debug("x ACK for no dialog (Call-ID %s)", call_id)
            return None
        if owner is not None:
            logger.info("x %s with Call-ID %s but not its tags: 481", request.method, call_id)
        return make_response(request, 481)

    def _receive_response(self, response: Response, source: Address) -> None:
        branch = response.top_via.branch
        if branch is None:  # parse_message checked the Via already
            return
        record = self._tx.client_for(response)
        if record is None or not answers(response, record.tx.request):
            self._receive_stray(response, branch, source)
        elif self._tx.receive_response(record, response, self._now):
            self._deliver(record.tu, record.tx.request, response)

    def _receive_stray(self, response: Response, branch: str, source: Address) -> None:
        """A response that answers no live client transaction: RFC 6026 §8.9 discards it. One
        exception: a 2xx that answers an INVITE of a live call whole still goes to its TU once
        Timer M ended the transaction, a retransmission to be ACKed again or a late fork's
        answer to ACK and BYE (:mod:`~intercom.sip.sent_invites`). Every 1xx and everything
        else is dropped and counted: knowing a call's Call-ID gives no say over it."""
        sent = self._invites.get(branch)
        if sent is not None and sent.answered_by(response):
            self._deliver(sent.tu, sent.request, response)
            return
        self.gate.log.stray_response(source.host, self._now)

    def _sent_to(self, branch: str, host: str) -> bool:
        """Whether a request of ours with top-Via ``branch`` went to ``host``: an untrusted
        source's response passes the gate only then (the callee of a direct call)."""
        sent = self._invites.get(branch)
        if sent is not None:
            return same_host(sent.destination.host, host)
        for (ours, _), record in self._tx.clients.items():  # a handful at any time
            if ours == branch:
                return same_host(record.destination.host, host)
        return False

    def _deliver(self, tu: TransactionUser, request: Request, response: Response) -> None:
        """Hand ``response`` to its TU; what it raises is logged in one line, never escapes."""
        try:
            tu.on_response(request, response, self._now)
        except Exception as exc:  # peer input must never stop the endpoint
            _log_failure(exc, "x %d to %s (Call-ID %s) dropped: %s: %s", response.status,
                         request.method, response.call_id)  # fmt: skip

    def _answer_malformed(self, data: bytes, source: Address, exc: RemoteProtocolError) -> None:
        """Answer a malformed request when its Via, Call-ID and CSeq can be read (§8.2), to the
        packet's source: its Via is unverified, and naming another host there must not make
        the door send anything to it (RFC 3581 §4). Logged with counts, never per message."""
        self.gate.log.malformed(source, str(exc), self._now)
        partial = salvage_request(data)
        if partial is None or partial.method == "ACK":
            return
        response = make_response(partial, exc.status_hint, reason=None)
        self._send(response, source)

    # -- sending --------------------------------------------------------------------------

    def _send(self, message: Message, destination: Address) -> None:
        log_message(">", message, destination)
        self._out.append((message.encode(), destination))

    def _start_client(
        self, request: Request, tu: TransactionUser, destination: Address, now: float
    ) -> None:
        """Run the client transaction of ``request`` (as sent); an INVITE is remembered for
        its late 2xx."""
        self._invites.remember(request, tu, destination)
        self._tx.start_client(request, tu, destination, now)

    def _send_keepalive(self) -> None:
        registration = self.registration
        if registration is None or not registration.take_keepalive():
            return
        destination = self._outbound.flow(registration.config.registrar_uri)
        if destination is not None:
            self._out.append((b"\r\n\r\n", destination))

    def _incoming(self, call_id: str) -> IncomingCall | None:
        call = self._calls.get(call_id)
        return call if isinstance(call, IncomingCall) else None

    def _reap(self) -> None:
        """Fail the requests that found no route, then drop the calls that ended."""
        for tu, request, reason in self._outbound.failures():
            owner = self._calls.get(request.call_id)
            try:
                if tu is not None:
                    tu.on_transaction_failed(request, reason, self._now)
                elif owner is not None:  # an ACK: the call cannot go on without it
                    owner.hangup(self._now, f"ACK not sent: {reason}")
            except Exception as exc:  # as for a response: logged, never escapes
                _log_failure(exc, "x telling the TU its %s found no route: %s: %s", request.method)
        ended = [c for c, call in self._calls.items() if call.ended]
        for call_id in ended:
            del self._calls[call_id]
        self._invites.forget_calls(ended)


def _log_failure(exc: Exception, fmt: str, *args: object) -> None:
    """One line for what raised: INFO for the peer's bad input, else ERROR (traceback at
    DEBUG); ``fmt`` takes ``args`` then the exception's type name and text."""
    peer_input = isinstance(exc, RemoteProtocolError)
    logger.log(
        logging.INFO if peer_input else logging.ERROR, fmt, *args, type(exc).__name__, exc,
        exc_info=not peer_input and logger.isEnabledFor(logging.DEBUG),
    )  # fmt: skip
