"""The asyncio user agent: the sans-IO :class:`Endpoint` on real sockets and a real clock.

One loop, as aioquic's protocol does it: every input (a received message, the timer, a command)
is handed to the endpoint with ``now = loop.time()``; then :meth:`UserAgent._transmit` sends what
the endpoint queued, delivers its events, and re-arms the single ``loop.call_at`` timer on the
endpoint's next deadline. There is no polling: with nothing to do, nothing runs.

Host names are resolved here (RFC 3263) and handed to the endpoint (``learn_address``); the
endpoint itself never does DNS.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import random
import socket
from collections.abc import Callable
from dataclasses import dataclass

from intercom.sip.core import Address
from intercom.sip.endpoint import Endpoint, EndpointConfig
from intercom.sip.events import (
    Event,
    RegistrationFailed,
    Unregistered,
)
from intercom.sip.locate import is_ip_literal, parse_hostport
from intercom.sip.registration import RegistrationConfig
from intercom.sip.session import AnswerOffer
from intercom.sip.uri import SipUri, parse_uri

from .resolver import DnsBackend, ResolveError, SystemDnsBackend, resolve
from .transport import SipTransport

logger = logging.getLogger(__name__)

EVENTS_KEPT = 256
"""Events kept in :attr:`UserAgent.events` for a reader; an application that takes them through
``on_event`` never reads the queue, so the oldest are dropped beyond this."""


@dataclass(slots=True)
class UaConfig:
    """What the user agent needs from the settings."""

    bind: str = "0.0.0.0:5060"
    server: str = ""  # registrar/proxy host[:port]; empty: no registration
    transport: str = "udp"
    user: str = "intercom"
    password: str | None = None
    auth_user: str | None = None
    expires: int = 600
    outbound_proxy: str = ""
    keepalive_interval: float | None = 25.0
    advertised_host: str | None = None  # IP to write in Via/Contact; default: found by routing
    is_trusted_source: Callable[[str], bool] | None = None
    """Whether a request from this IP may start a dialog and skip the stranger's rate limit
    (the application's policy: the server's addresses, trusted hosts). None: everyone may."""

    def __repr__(self) -> str:
        return f"UaConfig(bind={self.bind!r}, server={self.server!r}, user={self.user!r})"


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
        self.events: asyncio.Queue[Event] = asyncio.Queue(EVENTS_KEPT)
        self._answer_offer = answer_offer
        self._rng = rng or random.SystemRandom()  # the OS CSPRNG: identifiers nobody can predict
        self._dns = dns or SystemDnsBackend()
        self._on_event = on_event
        self._on_server_addresses = on_server_addresses
        self._transport = SipTransport(self._on_message, on_error=self._on_transport_error)
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._endpoint: Endpoint | None = None
        self._server_host: str | None = None
        self._tasks: set[asyncio.Task[None]] = set()  # referenced so they are not collected
        self._server_port: int | None = None
        self._server_addresses: list[str] = []  # every address the server resolved to
        self._outbound: Address | None = None

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
        bind_host, bind_port = parse_bind(self.config.bind)
        await self._transport.start(bind_host, bind_port)
        host_addresses: dict[str, Address] = {}
        outbound: Address | None = None
        if self.config.server:
            self._server_host, self._server_port = parse_hostport(self.config.server)
            address = await self._resolve_server()
            if address is not None:
                host_addresses[self._server_host] = address
        if self.config.outbound_proxy:
            host, port = parse_hostport(self.config.outbound_proxy)
            outbound = self._outbound = await self._resolve(host, port)
            self._report_server_addresses()
        peer = outbound or next(iter(host_addresses.values()), None)
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
            registrar=self.config.server,
            registrar_uri=registrar,
            aor=SipUri(self._server_host, self.config.user, self._server_port),
            expires=self.config.expires,
            keepalive_interval=self.config.keepalive_interval
            if self.config.transport == "udp"
            else None,
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
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        for task in list(self._tasks):
            task.cancel()
        await self._transport.close()

    # -- commands -------------------------------------------------------------------------

    async def call(self, target: str, offer: bytes | None) -> str:
        """Place a call; returns its Call-ID. ``target`` is a SIP URI or a user at the server."""
        uri = self.target_uri(target)
        host = uri.params.get("maddr") or uri.host
        endpoint = self.endpoint
        if not is_ip_literal(host) and not endpoint.knows_host(host):
            address = await self._resolve(host, uri.port)
            if address is not None:
                endpoint.learn_address(host, address)
        call = endpoint.call(uri, offer, self._now(), display=target)
        self._transmit()
        return call.call_id

    def target_uri(self, target: str) -> SipUri:
        """``sip:user@host``, ``user@host`` or a bare user name at the configured server."""
        text = target.strip()
        if not text.startswith(("sip:", "sips:")):
            if "@" not in text:
                if not self._server_host:
                    raise ValueError(f"{target!r} is not a SIP URI and no server is configured")
                text = f"{text}@{self.config.server}"
            text = "sip:" + text
        uri = parse_uri(text)
        if not isinstance(uri, SipUri):
            raise ValueError(f"{target!r} is not a SIP URI")
        return uri

    def hangup(self, call_id: str, reason: str = "hung up") -> bool:
        """End a call (BYE, CANCEL or 480); ``reason`` names why in CallEnded ("media timeout")."""
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
        logger.warning("x %s: %s", destination, reason)
        if self._endpoint is not None:
            self._endpoint.transport_failed(destination, self._now())
            self._transmit()

    def _on_timer(self) -> None:
        self._timer = None
        self._timer_at = None
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
                assert self._loop is not None
                task = self._loop.create_task(self._refresh_server_address())
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
            if self.events.full():  # nobody reads it: keep the newest, memory stays flat
                self.events.get_nowait()
            self.events.put_nowait(event)
            if self._on_event is not None:
                self._on_event(event)
        deadline = endpoint.get_timer()
        if deadline != self._timer_at:
            if self._timer is not None:
                self._timer.cancel()
            self._timer = None
            self._timer_at = deadline
            if deadline is not None:
                assert self._loop is not None
                self._timer = self._loop.call_at(deadline, self._on_timer)

    async def _resolve(self, host: str, port: int | None) -> Address | None:
        try:
            targets = await resolve(host, port, self.config.transport, backend=self._dns)
        except ResolveError as exc:
            logger.warning("x %s", exc)
            return None
        first = targets[0]
        return Address(first.transport, first.host, first.port)

    async def _resolve_server(self) -> Address | None:
        """The server's first address; all of them go to ``on_server_addresses``."""
        assert self._server_host is not None
        try:
            targets = await resolve(
                self._server_host, self._server_port, self.config.transport, backend=self._dns
            )
        except ResolveError as exc:
            logger.warning("x %s", exc)
            return None
        self._server_addresses = list(dict.fromkeys(t.host for t in targets))
        self._report_server_addresses()
        first = targets[0]
        return Address(first.transport, first.host, first.port)

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


def parse_bind(text: str) -> tuple[str, int]:
    """``host[:port]`` where port 0 (any free port) is allowed, unlike for a server."""
    if text.endswith(":0"):
        host, _ = parse_hostport(text[:-2])
        return host, 0
    host, port = parse_hostport(text, 5060)
    return host, port or 5060


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
