"""Where a request goes: RFC 3261 §8.1.2 with the addresses the runtime learned (RFC 3263).

The outbound proxy when there is one, else the first Route, else the Request-URI; a host name
goes to the address the runtime resolved for it and handed over with :meth:`Router.learn`
(this core does no DNS): unknown names are not routable.
"""

from __future__ import annotations

from collections.abc import Mapping

from intercom.sip.core import Address
from intercom.sip.locate import is_ip_literal
from intercom.sip.message import Request
from intercom.sip.uri import NameAddr, SipUri, parse_uri


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
        """§8.1.2: outbound proxy, else the first Route, else the Request-URI."""
        if self.outbound_proxy is not None:
            return self.outbound_proxy
        routes = request.headers.get_list("Route")
        uri = NameAddr.parse(routes[0]).uri if routes else parse_uri(request.uri)
        return self.address_for(uri) if isinstance(uri, SipUri) else None

    def address_for(self, uri: SipUri) -> Address | None:
        transport = uri.transport or self._transport
        host = uri.params.get("maddr") or uri.host
        if is_ip_literal(host):
            return Address(transport, host, uri.port or 5060)
        known = self._known.get(host)
        if known is None:
            return None
        return Address(transport, known.host, uri.port or known.port)
