"""Where a request goes: RFC 3261 §8.1.2 with the addresses the runtime learned (RFC 3263).

The outbound proxy when there is one, else the first Route when it is a loose router
(``;lr``), else the Request-URI. A request built for a strict router (§12.2.1.1) carries that
router in its Request-URI and goes there, whatever its remaining Route headers say. A host
name goes to the address the runtime resolved for it and handed over with :meth:`Router.learn`
(this core does no DNS): :meth:`Router.missing_host` names it.

A ``sips:`` URI or ``;transport=tls`` goes over TLS (RFC 3261 §26.2.2, §19.1.4), to port 5061
when it names none; through an outbound proxy it goes only when that proxy is reached over TLS
too: a request that asks for TLS is refused (:meth:`Router.refusal`), never sent in clear.
"""

from __future__ import annotations

from collections.abc import Mapping

from intercom.sip.core import Address
from intercom.sip.locate import DEFAULT_PORTS, TRANSPORTS, is_ip_literal
from intercom.sip.message import Request
from intercom.sip.uri import SipUri


def uri_transport(uri: SipUri, default: str) -> str:
    """The transport ``uri`` asks for: TLS for ``sips:`` or ``;transport=tls``, else its
    ``transport`` parameter, else ``default`` (the configured one)."""
    if uri.scheme == "sips":
        return "tls"
    return uri.transport or default


class Router:
    def __init__(
        self, transport: str, outbound_proxy: Address | None, known: Mapping[str, Address]
    ) -> None:
        self._transport = transport  # of requests whose URI names none
        self.outbound_proxy = outbound_proxy
        self._known = dict(known)

    def learn(self, host: str, address: Address) -> None:
        """``host`` resolves to ``address`` (the runtime's lookup, RFC 3263)."""
        self._known[host] = address

    def knows(self, host: str) -> bool:
        return host in self._known

    def route(self, request: Request) -> Address | None:
        """§8.1.2: outbound proxy, else the first loose Route, else the Request-URI."""
        uri = self.next_hop(request)
        if uri is not None and self.refusal(uri) is not None:
            return None
        if self.outbound_proxy is not None:
            return self.outbound_proxy
        return self.address_for(uri) if uri is not None else None

    def next_hop(self, request: Request) -> SipUri | None:
        """The URI §8.1.2 sends ``request`` to, outbound proxy aside; None for a non-SIP one."""
        routes = () if request.strict_routed else request.route
        first = routes[0].uri if routes else None
        loose = isinstance(first, SipUri) and "lr" in first.params
        uri = first if loose else request.uri
        return uri if isinstance(uri, SipUri) else None

    def refusal(self, uri: SipUri) -> str | None:
        """Why ``uri`` cannot be reached over the transports we have, or None."""
        if uri.transport not in (None, *TRANSPORTS):
            return f"transport {uri.transport} is not supported"
        proxy = self.outbound_proxy
        if uri_transport(uri, self._transport) == "tls" and proxy and proxy.transport != "tls":
            return f"{uri} asks for TLS, but the outbound proxy is reached over {proxy.transport}"
        return None

    def missing_host(self, request: Request) -> str | None:
        """The host name ``request`` waits for (an address to learn), or None."""
        uri = None if self.outbound_proxy is not None else self.next_hop(request)
        if uri is None or self.refusal(uri) is not None:
            return None
        host = uri.params.get("maddr") or uri.host
        return None if is_ip_literal(host) or host in self._known else host

    def address_for(self, uri: SipUri) -> Address | None:
        transport = uri_transport(uri, self._transport)
        host = uri.params.get("maddr") or uri.host
        if is_ip_literal(host):
            return Address(transport, host, uri.port or DEFAULT_PORTS[transport])
        known = self._known.get(host)
        if known is None:
            return None
        # The port found for the name serves udp and tcp alike; TLS has its own (5061).
        same_port = (known.transport == "tls") == (transport == "tls")
        port = uri.port or (known.port if same_port else DEFAULT_PORTS[transport])
        return Address(transport, known.host, port)
