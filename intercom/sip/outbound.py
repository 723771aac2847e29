"""Requests on their way out: where each goes, our Via on it, and those that wait for an address.

Theory of operation. A TU's request (or an ACK, which has no transaction) comes here from the
endpoint. :class:`~intercom.sip.routing.Router` picks its destination (§8.1.2). The request as
sent is a copy of the TU's with our Via (a fresh branch from the CSPRNG, ``rport`` of RFC 3581,
``alias`` of RFC 5923 over TLS, §8.1.1.7), Max-Forwards and User-Agent (§8.1.1.6); the TU's own
object is never edited, and the copy is what its transaction and the TU hold from then on.

This core does no DNS. A request to a host name without a learned address (a Contact or a
Record-Route of the peer, the server's name when it did not resolve at start) is held, as sent,
under that name, and :class:`~intercom.sip.events.AddressNeeded` reported once per name; the
runtime answers with :meth:`Outbound.learn` (the held requests go out: a request starts its
client transaction, an ACK is sent) or :meth:`Outbound.unresolvable`; after ``HOLD_LIMIT``
without either they fail too. A request that cannot go anywhere (a transport we lack, TLS asked
of a proxy reached in clear, a name that failed in this step) is kept with its reason until the
endpoint collects :meth:`Outbound.failures` at the end of its step and tells the TU (§8.1.3.1),
never from inside the TU's own call.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace

from intercom import __version__
from intercom.sip.core import T1, Address, Ids, TransactionUser
from intercom.sip.events import AddressNeeded, Event
from intercom.sip.message import Message, Request
from intercom.sip.routing import Router, uri_transport
from intercom.sip.uri import SipUri, Via

HOLD_LIMIT = 64 * T1
"""Seconds a request waits for the address of its host name before it fails."""
BRANCHES_KEPT = 256
"""Our latest branches, to know a request of ours that came back (§8.2.2.2 loop check)."""

Failure = tuple[TransactionUser | None, Request, str]
"""A request that found no route: its TU (None for an ACK), the request and the reason."""


@dataclass(frozen=True, slots=True)
class EndpointConfig:
    """Where we are and who we are."""

    local_host: str  # IP literal written in Via and Contact
    local_port: int
    user: str = "intercom"  # Contact user part
    transport: str = "udp"  # transport of requests we originate: udp, tcp or tls
    outbound_proxy: Address | None = None
    host_addresses: Mapping[str, Address] = field(default_factory=dict)
    """Names resolved at start: ``{"pbx.example": Address("udp", "192.0.2.5", 5060)}``; later
    ones come through :meth:`Endpoint.learn_address`."""


@dataclass(slots=True)
class _Hold:
    until: float
    requests: list[tuple[TransactionUser | None, Request]]


class Outbound:
    def __init__(
        self,
        config: EndpointConfig,
        ids: Ids,
        start_client: Callable[[Request, TransactionUser, Address, float], None],
        send: Callable[[Message, Address], None],
        emit: Callable[[Event], None],
    ) -> None:
        """``start_client(request, tu, destination, now)`` runs the client transaction of a
        request as sent (the endpoint's, which also remembers its INVITEs)."""
        self.router = Router(config.transport, config.outbound_proxy, config.host_addresses)
        self.local_host, self.local_port = config.local_host, config.local_port
        self.our_branches: deque[str] = deque(maxlen=BRANCHES_KEPT)
        self._transport = config.transport
        self._ids = ids
        self._start_client = start_client
        self._send = send
        self._emit = emit
        self._held: dict[str, _Hold] = {}
        self._failed: deque[Failure] = deque()
        self._unresolved: set[str] = set()  # names that failed during this step

    def request(
        self, request: Request, tu: TransactionUser, destination: Address | None, now: float
    ) -> Request:
        """Send ``request`` in a client transaction of ``tu``: the request as sent (or as it
        will be sent, when it waits for an address)."""
        destination = destination or self.router.route(request)
        sent = self._as_sent(request, destination)
        if destination is None:
            self._not_routed(sent, tu, now)
        else:
            self._start_client(sent, tu, destination, now)
        return sent

    def ack(self, ack: Request, destination: Address | None, now: float) -> None:
        destination = destination or self.router.route(ack)
        sent = self._as_sent(ack, destination)
        if destination is None:
            self._not_routed(sent, None, now)
        else:
            self._send(sent, destination)

    def learn(self, host: str, address: Address, now: float) -> None:
        """``host`` resolves to ``address`` (RFC 3263): route there, the held requests first."""
        self.router.learn(host, address)
        hold = self._held.pop(host, None)
        for tu, request in hold.requests if hold is not None else ():
            destination = self.router.route(request)
            if destination is None:
                self._not_routed(request, tu, now)
            elif tu is None:
                self._send(request, destination)
            else:
                self._start_client(request, tu, destination, now)

    def unresolvable(self, host: str) -> None:
        """``host`` does not resolve: the requests held for it fail."""
        hold = self._held.pop(host, None)
        self._unresolved.add(host)
        for tu, request in hold.requests if hold is not None else ():
            self._failed.append((tu, request, f"cannot resolve {host}"))

    def get_timer(self) -> float | None:
        return min((hold.until for hold in self._held.values()), default=None)

    def handle_timer(self, now: float) -> None:
        for host in [h for h, hold in self._held.items() if hold.until <= now]:
            self.unresolvable(host)

    def failures(self) -> Iterator[Failure]:
        """The requests that found no route in this step, each once; the step is over."""
        while self._failed:
            yield self._failed.popleft()
        self._unresolved.clear()

    def flow(self, registrar: SipUri) -> Address | None:
        """Where the registration's requests and keepalives go: the outbound proxy or the
        registrar's address (RFC 5626 calls this the flow)."""
        return self.router.outbound_proxy or self.router.address_for(registrar)

    def _not_routed(self, request: Request, tu: TransactionUser | None, now: float) -> None:
        """Hold ``request`` for its host's address, or fail it once the TU's step is over."""
        host = self.router.missing_host(request)
        if host is not None and host not in self._unresolved:
            if host not in self._held:
                self._held[host] = _Hold(now + HOLD_LIMIT, [])
                self._emit(self._address_needed(host, request))
            self._held[host].requests.append((tu, request))
            return
        uri = self.router.next_hop(request)
        refusal = self.router.refusal(uri) if uri is not None else None
        reason = refusal or (f"cannot resolve {host}" if host else f"no route to {request.uri}")
        self._failed.append((tu, request, reason))

    def _address_needed(self, host: str, request: Request) -> AddressNeeded:
        """The question for the runtime: ``host`` with the port and transport the next hop's
        URI names (a port given means no SRV lookup, RFC 3263 §4.2)."""
        uri = self.router.next_hop(request)
        if uri is None:
            return AddressNeeded(host)
        transport = uri_transport(uri, self._transport)
        return AddressNeeded(host, uri.port, None if transport == self._transport else transport)

    def _as_sent(self, request: Request, destination: Address | None) -> Request:
        """``request`` with a Via of ours (fresh branch, ``rport``), Max-Forwards and
        User-Agent when missing; the TU's object stays as it was. Without a destination yet,
        the Via names the transport the next hop asks for (the address learnt later is
        reached over that same transport: :meth:`Router.address_for`)."""
        headers = request.headers.copy()
        if request.method != "ACK":
            headers.set("Max-Forwards", headers.get("Max-Forwards") or "70")
            headers.set("User-Agent", headers.get("User-Agent") or f"intercom/{__version__}")
        if not headers.get_all("Via"):
            transport = destination.transport if destination else self._next_transport(request)
            branch = self._ids.branch()
            self.our_branches.append(branch)
            via = Via(
                transport.upper(), self.local_host, self.local_port,
                {"branch": branch, "rport": None},
            )  # fmt: skip
            if transport == "tls":  # RFC 5923 §5: reuse this connection towards us
                via = via.with_params(alias=None)
            headers.prepend("Via", str(via))
        return replace(request, headers=headers)

    def _next_transport(self, request: Request) -> str:
        uri = self.router.next_hop(request)
        return uri_transport(uri, self._transport) if uri is not None else self._transport
