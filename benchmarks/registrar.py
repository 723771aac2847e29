"""The benchmark's registrar: digest-less, on loopback, and a stateless proxy to the callee.

The three callers register here and place their calls through it, so that each one's path is
the same: REGISTER and INVITE to this server, which forwards the INVITE to the sipp callee.
:class:`intercom.demo.pbx.DemoPbx` does not serve here: it challenges every INVITE with 407,
which pyVoIP 1.6.8 cannot answer (it only handles 401 to an INVITE), and it routes by host and
port, while pyVoIP puts no port in its Request-URIs (``sip:echo@127.0.0.1``).

* REGISTER (RFC 3261 §10.3, without authentication): the Contact is bound to the To user,
  ``Expires: 0`` removes it; the 200 lists the binding.
* Any other request (§16.11, stateless): a Request-URI whose user is a static route
  (``echo`` -> the callee) or a bound user goes there, whatever its host and port; any
  other URI goes to its own host and port. Our Via goes on top with a branch derived from the
  received one, Max-Forwards drops by one, and the sender's Via gets ``received``/``rport``.
  No Record-Route: in-dialog requests go straight to the callee (pyVoIP sends them here
  anyway, and they are relayed by their Request-URI).
* Responses lose our Via and go to the next one's ``received``:``rport`` (§18.2.2).

Nothing is timed here: the benchmark takes every time from the capture on ``lo``.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Mapping
from typing import Any

from intercom.sip.build import make_response, stamp_via
from intercom.sip.errors import RemoteProtocolError
from intercom.sip.message import Request, Response, parse_message
from intercom.sip.uri import SipUri, Via

logger = logging.getLogger(__name__)

HostPort = tuple[str, int]
Outgoing = list[tuple[bytes, HostPort]]


class Registrar:
    """A sans-IO registrar and proxy at ``address`` with ``routes``: user -> address."""

    def __init__(self, address: HostPort, routes: Mapping[str, HostPort]) -> None:
        self.address = address
        self.routes = dict(routes)
        self.bindings: dict[str, HostPort] = {}
        self._tags = 0

    def receive(self, data: bytes, source: HostPort) -> Outgoing:
        """What to send after ``data`` arrived from ``source``."""
        if not data.strip():
            return []  # a CRLF keepalive
        try:
            message = parse_message(data)
            if isinstance(message, Request):
                return self._request(message, source)
            return self._response(message)
        except (RemoteProtocolError, ValueError) as exc:
            logger.warning("x dropped a message from %s: %s", source, exc)
            return []

    def _request(self, request: Request, source: HostPort) -> Outgoing:
        stamp_via(request, source[0], source[1])
        if not isinstance(uri := request.uri, SipUri):
            raise RemoteProtocolError(f"not a SIP URI: {uri}")
        if request.method == "REGISTER":
            return self._register(request)
        user = uri.user or ""
        if user in self.routes:
            destination = self.routes[user]
        elif user in self.bindings and (uri.host, uri.port or 5060) == self.address:
            destination = self.bindings[user]
        elif (uri.host, uri.port or 5060) != self.address:
            destination = (uri.host, uri.port or 5060)
        elif request.method == "ACK":
            return []
        else:
            return self._answer(request, 404)
        hops = int(request.headers.get("Max-Forwards") or "70")
        if hops <= 0:
            return self._answer(request, 483)
        request.headers.set("Max-Forwards", str(hops - 1))
        branch = "z9hG4bK" + hashlib.sha1((request.top_via.branch or "").encode()).hexdigest()
        host, port = self.address
        request.headers.prepend("Via", f"SIP/2.0/UDP {host}:{port};branch={branch[:23]}")
        return [(request.encode(), destination)]

    def _register(self, request: Request) -> Outgoing:
        user = request.to.uri.user if isinstance(request.to.uri, SipUri) else None
        if not user:
            return self._answer(request, 400)
        expires = (request.headers.get("Expires") or "").strip()
        contact_text = ""
        for contact in request.contacts:
            if (contact.params.get("expires") or expires or "600").strip() == "0":
                self.bindings.pop(user, None)
            elif isinstance(contact.uri, SipUri):
                self.bindings[user] = (contact.uri.host, contact.uri.port or 5060)
                contact_text = f"<{contact.uri}>;expires={expires or '600'}"
        if not request.contacts:
            self.bindings.pop(user, None)
        response = make_response(request, 200, to_tag=self._tag())
        if contact_text:
            response.headers.add("Contact", contact_text)
        return [(response.encode(), _via_address(request.top_via))]

    def _answer(self, request: Request, status: int) -> Outgoing:
        response = make_response(request, status, to_tag=self._tag())
        return [(response.encode(), _via_address(request.top_via))]

    def _response(self, response: Response) -> Outgoing:
        vias = response.headers.get_list("Via")
        host, port = self.address
        if len(vias) < 2 or Via.parse(vias[0]).sent_by != f"{host}:{port}":
            logger.info("x response not for us: %s", response)
            return []
        response.headers.set_list("Via", vias[1:])
        return [(response.encode(), _via_address(Via.parse(vias[1])))]

    def _tag(self) -> str:
        self._tags += 1
        return f"bench{self._tags}"


def _via_address(via: Via) -> HostPort:
    rport = via.params.get("rport")
    port = int(rport) if rport else via.port or 5060
    return via.params.get("received") or via.host, port


class _RegistrarSocket(asyncio.DatagramProtocol):
    def __init__(self, routes: Mapping[str, HostPort]) -> None:
        self.routes = routes
        self.registrar: Registrar | None = None
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        host, port = transport.get_extra_info("sockname")[:2]
        self.registrar = Registrar((host, port), self.routes)

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        if self.registrar is None or self.transport is None:
            return
        for out, destination in self.registrar.receive(data, (str(addr[0]), int(addr[1]))):
            self.transport.sendto(out, destination)


async def open_registrar(
    routes: Mapping[str, HostPort], host: str = "127.0.0.1"
) -> tuple[Registrar, asyncio.DatagramTransport]:
    """A registrar on a free UDP port of ``host``; close the transport to stop it."""
    loop = asyncio.get_running_loop()
    transport, protocol = await loop.create_datagram_endpoint(
        lambda: _RegistrarSocket(routes), local_addr=(host, 0)
    )
    assert protocol.registrar is not None
    return protocol.registrar, transport
