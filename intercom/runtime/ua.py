"""The asyncio user agent: the sans-IO :class:`Endpoint` on real sockets and a real clock.

One loop, as aioquic's protocol does it: every input (a received message, the timer, a command)
is handed to the endpoint with ``now = loop.time()``; then :meth:`UserAgent._transmit` sends what
the endpoint queued, delivers its events, and re-arms the single ``loop.call_at`` timer on the
endpoint's next deadline. There is no polling: with nothing to do, nothing runs.

Host names are resolved here (RFC 3263) and handed to the endpoint (``learn_address``); the
endpoint itself never does DNS. Our own address is the one the kernel routes towards the server;
it is looked up again after every registration outcome (no polling) and a new one handed to the
endpoint (``set_local_host``), which moves the binding there at once.

Over TLS the user agent makes the transport's client context (``runtime/tls.py``) and tells the
transport which name each resolved address must prove: the outbound proxy's host name, else the
server's, as configured (RFC 5922 §4.1), never an address or an SRV target.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import random
import socket
from collections.abc import Callable, Coroutine
from dataclasses import dataclass

from intercom.app.settings import Settings
from intercom.sip.core import Address
from intercom.sip.endpoint import Endpoint, EndpointConfig
from intercom.sip.events import (
    AddressNeeded,
    Event,
    RegistrationFailed,
    RegistrationSucceeded,
    Unregistered,
)
from intercom.sip.locate import HostPort, is_ip_literal
from intercom.sip.registration import RegistrationConfig
from intercom.sip.routing import uri_transport
from intercom.sip.session import AnswerOffer
from intercom.sip.uri import SipUri

from .rearm import Rearm
from .resolver import DnsBackend, ResolveError, SystemDnsBackend, resolve
from .tls import client_context
from .transport import IDLE_TIMEOUT, SipTransport

logger = logging.getLogger(__name__)

OnSent = Callable[[str], None]
"""Told the Call-ID once its INVITE is out (``UserAgent.call``)."""
EVENTS_KEPT = 256
"""Events kept in :attr:`UserAgent.events` for a reader; the oldest are dropped beyond this."""
EVENTS_KEPT_WITH_CALLBACK = 32
"""The same with ``on_event``: the application has every event already and never reads the
queue (only :meth:`UserAgent.wait_for` does, e.g. for ``Unregistered`` when stopping), so it
keeps a few calls' worth instead of holding 256 old events (SDP bodies and all) for good."""


@dataclass(slots=True)
class UaConfig:
    """What the user agent needs from the settings (:meth:`from_settings`); tests may write
    one directly."""

    bind: HostPort  # port 0: any free port
    server: HostPort | None = None  # registrar/proxy; None: no registration
    transport: str = "udp"  # udp, tcp or tls
    user: str = "intercom"
    password: str | None = None
    auth_user: str | None = None
    expires: int = 600
    outbound_proxy: HostPort | None = None
    keepalive_interval: float | None = 25.0
    idle_timeout: float = IDLE_TIMEOUT  # TCP connections other than the registration's flow
    advertised_host: str | None = None  # IP to write in Via/Contact; default: found by routing
    is_trusted_source: Callable[[str], bool] | None = None
    """Whether a request from this IP may start a dialog and skip the stranger's rate limit,
    and its TCP connections to us count in the trusted pool, not the strangers' (the
    application's policy: the server's addresses, trusted hosts). None: everyone may start
    dialogs, and everyone gets a stranger's rate limit and share of connections."""

    instance_id: str | None = None
    """RFC 5626 ``+sip.instance`` URN of this installation; None: one made for this process."""

    tls_ca_file: str | None = None
    """PEM file of the CAs a TLS server's certificate must chain to; None: the system store."""
    tls_verify: bool = True
    """False only for tests: a TLS server's certificate is not checked at all."""

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        is_trusted_source: Callable[[str], bool] | None = None,
        instance_id: str | None = None,
    ) -> UaConfig:
        """The user agent's part of the validated settings (taken here and nowhere else)."""
        s = settings
        return cls(
            bind=s.sip_bind, server=s.sip_server, transport=s.sip_transport,
            user=s.sip_user or "intercom", password=s.sip_password, auth_user=s.sip_auth_user,
            expires=s.sip_expires, outbound_proxy=s.sip_outbound_proxy,
            tls_ca_file=s.tls_ca_file or None, tls_verify=s.tls_verify,
            is_trusted_source=is_trusted_source, instance_id=instance_id,
        )  # fmt: skip

    def __repr__(self) -> str:
        return f"UaConfig(bind='{self.bind}', server='{self.server or ''}', user={self.user!r})"


def _no_media(call_id: str, offer: bytes) -> bytes | None:
    return None


class UserAgent:
    """A running SIP user agent. Create, ``await start()``, use, ``await stop()``."""

    def __init__(
        self,
        config: UaConfig,
        *,
        answer_offer: AnswerOffer = _no_media,
        rng: random.Random | None = None,
        dns: DnsBackend | None = None,
        on_event: Callable[[Event], None] | None = None,
        on_server_addresses: Callable[[list[str]], None] | None = None,
    ) -> None:
        """``on_server_addresses``: called with every address the server's name resolved to,
        and the outbound proxy's, each time they are resolved (the policy trusts them, and
        believes only them when they assert a caller's identity)."""
        self.config = config
        kept = EVENTS_KEPT if on_event is None else EVENTS_KEPT_WITH_CALLBACK
        self.events: asyncio.Queue[Event] = asyncio.Queue(kept)
        self._answer_offer = answer_offer
        self._rng = rng or random.SystemRandom()  # the OS CSPRNG: identifiers nobody can predict
        self._dns = dns or SystemDnsBackend()
        self._on_event = on_event
        self._on_server_addresses = on_server_addresses
        tls = config.transport == "tls"
        self._transport = SipTransport(
            self._on_message,
            on_error=self._on_transport_error,
            idle_timeout=config.idle_timeout,
            is_trusted_source=config.is_trusted_source,
            tls_context=client_context(config.tls_ca_file, verify=config.tls_verify)
            if tls
            else None,
        )
        self._timer = Rearm(self._on_timer)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._endpoint: Endpoint | None = None
        self._server_host: str | None = None
        self._tasks: set[asyncio.Task[None]] = set()  # referenced so they are not collected
        self._server_port: int | None = None
        self._server_addresses: list[str] = []  # every address the server resolved to
        self._outbound: Address | None = None
        self._peer: Address | None = None  # where requests go first: our address is towards it
        self._hangups: dict[str, str | None] = {}  # calls resolving their target: hung up?

    @property
    def endpoint(self) -> Endpoint:
        if self._endpoint is None:
            raise RuntimeError("the user agent is not started")
        return self._endpoint

    @property
    def local_port(self) -> int:
        return self._transport.local_port

    async def start(self) -> None:
        """Listen, resolve the server, and send the first REGISTER (when a server is set)."""
        self._loop = asyncio.get_running_loop()
        bind_host = self.config.bind.host
        await self._transport.start(bind_host, self.config.bind.port or 0)
        host_addresses: dict[str, Address] = {}
        outbound: Address | None = None
        server, proxy = self.config.server, self.config.outbound_proxy
        if server is not None:
            self._server_host, self._server_port = server.host, server.port
            address = await self._resolve_server()
            if address is not None:
                host_addresses[self._server_host] = address
        if proxy is not None:  # named last: its name is what the connection to it proves
            outbound = self._outbound = _first(await self._resolve(proxy.host, proxy.port))
            self._report_server_addresses()
        peer = self._peer = outbound or next(iter(host_addresses.values()), None)
        local_host = self.config.advertised_host or _local_address_towards(bind_host, peer)
        self._endpoint = Endpoint(
            EndpointConfig(
                local_host=local_host,
                local_port=self._transport.local_port,
                user=self.config.user,
                transport=self.config.transport,
                outbound_proxy=outbound,
                host_addresses=host_addresses,
            ),
            rng=self._rng,
            answer_offer=self._answer_offer,
            credentials=(self.config.auth_user or self.config.user, self.config.password)
            if self.config.password is not None
            else None,
            is_trusted_source=self.config.is_trusted_source,
        )
        logger.info(
            "- listening on %s:%d (udp and tcp), contact %s",
            bind_host,
            self._transport.local_port,
            self._endpoint.contact(),
        )
        if self._server_host:
            self._register()

    def _register(self) -> None:
        assert self._server_host is not None
        registrar = SipUri(self._server_host, port=self._server_port)
        if self.config.transport != "udp":
            registrar = registrar.with_params(transport=self.config.transport)
        config = RegistrationConfig(
            registrar=str(self.config.server),
            registrar_uri=registrar,
            aor=SipUri(self._server_host, self.config.user, self._server_port),
            instance_id=self.config.instance_id or _new_instance_id(),
            expires=self.config.expires,
            keepalive_interval=self.config.keepalive_interval,  # TCP too: keeps its flow open
        )
        self.endpoint.register(config, self._now())
        self._transmit()

    async def stop(self, timeout: float = 4.0) -> None:
        """End calls, unregister (waiting up to ``timeout`` for the registrar), close sockets."""
        if self._endpoint is None:
            await self._transport.close()
            return
        endpoint = self._endpoint
        for call_id in endpoint.active_call_ids():
            endpoint.hangup(call_id, self._now())
        if endpoint.registration is not None:
            endpoint.unregister(self._now())
            self._transmit()
            with contextlib.suppress(TimeoutError):
                await self.wait_for(Unregistered, timeout)
        else:
            self._transmit()
        endpoint.gate.log.flush(self._now())  # what strangers did since the last summary
        self._timer.cancel()
        for task in list(self._tasks):
            task.cancel()
        await self._transport.close()

    # -- commands -------------------------------------------------------------------------

    def call(
        self,
        target: SipUri,
        offer: bytes | None,
        *,
        call_id: str | None = None,
        on_sent: OnSent | None = None,
    ) -> str:
        """Place a call to ``target``; returns its Call-ID (``call_id``, or a new one) at once.

        The INVITE leaves from a task once the target's host is resolved (RFC 3263), and
        ``on_sent(call_id)`` runs just after; a hang-up before then cancels it once it is out.
        """
        call_id = call_id or self.endpoint.ids.call_id()
        self._hangups[call_id] = None
        assert self._loop is not None
        task = self._loop.create_task(self._invite(target, offer, call_id, on_sent))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return call_id

    async def _invite(
        self, target: SipUri, offer: bytes | None, call_id: str, on_sent: OnSent | None
    ) -> None:
        host = target.params.get("maddr") or target.host
        endpoint = self.endpoint
        unresolved = False
        if not is_ip_literal(host) and not endpoint.knows_host(host):
            transport = uri_transport(target, self.config.transport)
            address = _first(await self._resolve(host, target.port, transport))
            unresolved = address is None
            if address is not None:
                endpoint.learn_address(host, address)
        endpoint.call(target, offer, self._now(), call_id=call_id)
        if unresolved:  # the INVITE waits for that name: fail it now, not after a second lookup
            endpoint.address_failed(host, self._now())
        if on_sent is not None:
            on_sent(call_id)
        reason = self._hangups.pop(call_id)
        if reason is not None:  # hung up while the target was being resolved: CANCEL
            endpoint.hangup(call_id, self._now(), reason)
        self._transmit()

    def hangup(self, call_id: str, reason: str = "hung up") -> bool:
        """End a call (BYE, CANCEL or 480); ``reason`` names why in CallEnded ("media timeout")."""
        if call_id in self._hangups:  # its INVITE waits for DNS: cancelled once it is out
            self._hangups[call_id] = reason
            return True
        done = self.endpoint.hangup(call_id, self._now(), reason)
        self._transmit()
        return done

    def accept(self, call_id: str, sdp: bytes | None) -> None:
        self.endpoint.accept(call_id, sdp, self._now())
        self._transmit()

    def reject(self, call_id: str, status: int) -> None:
        self.endpoint.reject(call_id, status, self._now())
        self._transmit()

    def ring(self, call_id: str) -> None:
        self.endpoint.ring(call_id)
        self._transmit()

    async def wait_for(self, kind: type[Event] | tuple[type[Event], ...], timeout: float) -> Event:
        """Next event of ``kind`` from the queue, skipping others; TimeoutError after
        ``timeout``. For tests and scripts: an application reads ``events`` itself."""

        async def wait() -> Event:
            while True:
                event = await self.events.get()
                if isinstance(event, kind):
                    return event

        return await asyncio.wait_for(wait(), timeout)

    # -- the loop -------------------------------------------------------------------------

    def _now(self) -> float:
        assert self._loop is not None
        return self._loop.time()

    def _on_message(self, data: bytes, source: Address) -> None:
        if self._endpoint is None:
            return
        self._endpoint.receive(data, source, self._now())
        self._transmit()

    def _on_transport_error(self, destination: Address, reason: str) -> None:
        # DEBUG: the request it failed says it in its own line (a registration's warning, a
        # call's end), with this reason: a refused certificate is one line, not two.
        logger.debug("x %s: %s", destination, reason)
        if self._endpoint is not None:
            self._endpoint.transport_failed(destination, self._now(), f"{destination}: {reason}")
            self._transmit()

    def _on_timer(self) -> None:
        if self._endpoint is not None:
            self._endpoint.handle_timer(self._now())
            self._transmit()

    def _transmit(self) -> None:
        endpoint = self.endpoint
        for data, destination in endpoint.datagrams_to_send():
            self._transport.send(data, destination)
        while (event := endpoint.next_event()) is not None:
            logger.debug("- event %s", event)
            if isinstance(event, RegistrationFailed) and self._server_host:
                self._spawn(self._refresh_server_address())
            if isinstance(event, AddressNeeded):
                self._spawn(self._learn(event))
                continue  # the endpoint's question to us, not the application's business
            if isinstance(event, RegistrationSucceeded) and self._loop is not None:
                self._loop.call_soon(self._check_local_address)
            if self.events.full():  # nobody reads it: keep the newest, memory stays flat
                self.events.get_nowait()
            self.events.put_nowait(event)
            if self._on_event is not None:
                self._on_event(event)
        self._timer.at(endpoint.get_timer(), self._loop)

    def _spawn(self, job: Coroutine[None, None, None]) -> None:
        assert self._loop is not None
        task = self._loop.create_task(job)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _learn(self, needed: AddressNeeded) -> None:
        """Resolve a name the endpoint holds requests for (a Contact, a Record-Route, the
        server's when it did not resolve before: then its addresses are reported too), with
        the port and transport its URI names."""
        host = needed.host
        if host == self._server_host:
            address = await self._resolve_server()
        else:
            address = _first(await self._resolve(host, needed.port, needed.transport))
        if address is None:
            self.endpoint.address_failed(host, self._now())
        else:
            self.endpoint.learn_address(host, address)
        self._transmit()

    async def _resolve(
        self, host: str, port: int | None, transport: str | None = None
    ) -> list[Address]:
        """Every target of ``host`` (RFC 3263) in order, over ``transport`` (default: the
        configured one), [] when none (one warning); a TLS connection to any must prove ``host``."""
        transport = transport or self.config.transport
        try:
            targets = await resolve(host, port, transport, backend=self._dns)
        except ResolveError as exc:
            logger.warning("x %s", exc)
            return []
        for target in targets:
            self._transport.expect_name(target.host, host)
        return [Address(target.transport, target.host, target.port) for target in targets]

    async def _resolve_server(self) -> Address | None:
        """The server's first address; all of them go to ``on_server_addresses``."""
        assert self._server_host is not None
        targets = await self._resolve(self._server_host, self._server_port)
        if not targets:
            return None
        self._server_addresses = list(dict.fromkeys(target.host for target in targets))
        if self._outbound is not None and self.config.outbound_proxy is not None:
            self._transport.expect_name(self._outbound.host, self.config.outbound_proxy.host)
        self._report_server_addresses()
        return targets[0]

    def _report_server_addresses(self) -> None:
        if self._on_server_addresses is not None:
            proxy = [self._outbound.host] if self._outbound is not None else []
            self._on_server_addresses(list(dict.fromkeys([*self._server_addresses, *proxy])))

    async def _refresh_server_address(self) -> None:
        """After a failed registration, look the server up again (its address may have moved)."""
        if self._server_host is None or self._endpoint is None:
            return
        address = await self._resolve_server()
        if address is not None:
            self._endpoint.learn_address(self._server_host, address)
            self._peer = self._outbound or address
        self._check_local_address()

    def _check_local_address(self) -> None:
        """After each registration's outcome, whether our address moved (DHCP, Wi-Fi roaming):
        one routing look-up, no packet, no polling; the endpoint re-registers when it did."""
        if self._endpoint is None or self.config.advertised_host:
            return
        host = _local_address_towards(self.config.bind.host, self._peer)
        if host != self._endpoint.config.local_host:
            logger.info("- our address is now %s", host)
            self._endpoint.set_local_host(host, self._now())
            self._transmit()


def _first(addresses: list[Address]) -> Address | None:
    return addresses[0] if addresses else None


def _new_instance_id() -> str:
    """An RFC 5626 ``+sip.instance`` URN for a door without a state directory."""
    import uuid  # only here: a door with a state directory reads its kept one

    return f"urn:uuid:{uuid.uuid4()}"


def _local_address_towards(bind_host: str, peer: Address | None) -> str:
    """The address to advertise: the bound one, else the one the kernel routes to ``peer``."""
    if bind_host and not ipaddress.ip_address(bind_host).is_unspecified:
        return bind_host
    target = peer.host if peer is not None else "192.0.2.1"  # TEST-NET: routing lookup only
    family = socket.AF_INET6 if ":" in target else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_DGRAM) as probe:
            probe.connect((target, peer.port if peer else 9))  # sends nothing
            return str(probe.getsockname()[0])
    except OSError:
        return "127.0.0.1"
