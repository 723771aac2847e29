"""A loopback PBX for the demo: a digest registrar and a stateless, record-routing proxy (sans-IO).

Theory of operation
-------------------
Just enough of a SIP server for the door and a phone to find each other as they would at home,
with every message passing through it so that the ladder shows the whole exchange:

* Registrar (RFC 3261 §10.3): a REGISTER for a known account without valid credentials gets a
  401 with a Digest challenge (RFC 3261 §22.4, qop=auth); with them, its Contact is bound to the
  account's user (``expires=0`` or ``*`` removes it) and the 200 lists the bindings. Bindings do
  not age: the demo lasts seconds.
* Proxy (RFC 3261 §16, stateless as §16.11 allows): a request for a user at the PBX is sent to
  that user's bound Contact; an initial INVITE is first challenged with 407 and is record-routed
  (§16.6 step 4, ``;lr``), so in-dialog requests come back through the PBX (loose routing,
  §16.4/§16.12: our own Route entry is popped, the request goes to the next Route or the
  Request-URI). Forwarded requests get Max-Forwards decremented (483 at zero), our Via on top
  with a branch derived from the received one (so a CANCEL, and the ACK of a non-2xx, take the
  INVITE's branch, §16.11), and ``received``/``rport`` on the sender's Via (§18.2.1, RFC
  3581 §4), as the endpoint stamps them.
  Responses lose our Via and go to the next one's ``received``:``rport`` (§18.2.2).
* Every request the PBX answers itself remembers its branch, so the hop-by-hop ACK of that
  answer is absorbed rather than relayed.

:meth:`DemoPbx.receive` takes a datagram and its source and returns the messages to send, with
their destinations; the caller owns the socket. UDP only.
"""

from __future__ import annotations

import hashlib
import logging
import random
from collections import deque
from collections.abc import Callable, Mapping

from intercom.sip.auth import digest_response, parse_challenges
from intercom.sip.build import make_response, stamp_via
from intercom.sip.core import Address
from intercom.sip.errors import RemoteProtocolError
from intercom.sip.message import Message, Request, Response, parse_message
from intercom.sip.uri import NameAddr, SipUri, Via

logger = logging.getLogger(__name__)

REALM = "intercom-demo"
BINDING_SECONDS = 3600
_REMEMBERED = 64  # nonces issued and branches answered locally, most recent kept

Outgoing = list[tuple[Message, Address]]
Trace = Callable[[Address, Address, Message], None]  # source, destination, message


class DemoPbx:
    """Registrar and proxy for the users in ``accounts`` (user -> password)."""

    def __init__(
        self,
        address: Address,
        accounts: Mapping[str, str],
        rng: random.Random,
        trace: Trace | None = None,
    ) -> None:
        self.address = address
        self._trace = trace
        self._accounts = dict(accounts)
        self._rng = rng
        self._nonces: deque[str] = deque(maxlen=_REMEMBERED)
        self._answered: deque[str] = deque(maxlen=_REMEMBERED)
        self.bindings: dict[str, SipUri] = {}

    # -- entry ----------------------------------------------------------------------------

    def receive(self, data: bytes, source: Address) -> Outgoing:
        """What to send after ``data`` arrived from ``source``."""
        if not data.strip():
            return []  # an RFC 5626 CRLF keepalive
        try:
            message = parse_message(data)
            if self._trace is not None:
                self._trace(source, self.address, message)
            if isinstance(message, Request):
                outgoing = self._request(message, source)
            else:
                outgoing = self._response(message)
        except (RemoteProtocolError, ValueError) as exc:
            logger.warning("x dropped a message from %s: %s", source, exc)
            return []
        if self._trace is not None:
            for sent, destination in outgoing:
                self._trace(self.address, destination, sent)
        return outgoing

    # -- requests -------------------------------------------------------------------------

    def _request(self, request: Request, source: Address) -> Outgoing:
        stamp_via(request, source.host, source.port)
        routes = list(request.route)
        if routes and self._is_me(routes[0]):
            routes.pop(0)  # our own record-route entry (§16.4)
            request.headers.set_list("Route", [str(route) for route in routes])
        if routes:
            return self._forward(request, source, _destination(routes[0].uri))
        uri = request.uri
        if not isinstance(uri, SipUri) or not self._is_me(NameAddr(uri)):
            return self._forward(request, source, _destination(uri))  # not SIP: ValueError, dropped
        if request.method == "ACK":
            if request.top_via.branch not in self._answered:
                logger.info("x ACK for nothing we answered")
            return []
        if request.method == "REGISTER":
            return self._register(request, source)
        if request.method == "INVITE" and request.to.tag is None:
            if self._authenticated(request, "Proxy-Authorization") is None:
                return self._challenge(request, source, 407, "Proxy-Authenticate")
            request.headers.remove("Proxy-Authorization")  # meant for us, not the callee
            request.headers.prepend("Record-Route", f"<{self._uri()};lr>")
        contact = self.bindings.get(uri.user or "")
        if contact is None:
            return self._answer(request, source, 480 if uri.user in self._accounts else 404)
        request.uri = contact
        return self._forward(request, source, _destination(contact))

    def _register(self, request: Request, source: Address) -> Outgoing:
        user = request.to.uri.user if isinstance(request.to.uri, SipUri) else None
        if user not in self._accounts:
            return self._answer(request, source, 403)
        assert user is not None
        if self._authenticated(request, "Authorization") != user:  # only for its own account
            return self._challenge(request, source, 401, "WWW-Authenticate")
        expires_header = (request.headers.get("Expires") or "").strip()
        if [v.strip() for v in request.headers.get_all("Contact")] == ["*"]:
            self.bindings.pop(user, None)  # §10.2.2: remove all bindings
        else:
            for contact in request.contacts:
                expires = contact.params.get("expires") or expires_header or str(BINDING_SECONDS)
                if expires.strip() == "0":
                    self.bindings.pop(user, None)
                elif isinstance(contact.uri, SipUri):
                    self.bindings[user] = contact.uri
        response = make_response(request, 200, to_tag=self._token())
        if user in self.bindings:
            response.headers.add("Contact", f"<{self.bindings[user]}>;expires={BINDING_SECONDS}")
        logger.info("- %s %s", user, "registered" if user in self.bindings else "unregistered")
        return [(response, _reply_address(request, source))]

    def _authenticated(self, request: Request, header: str) -> str | None:
        """The account whose valid Digest credentials ``header`` carries, if any."""
        value = request.headers.get(header)
        credentials = parse_challenges([value]) if value else []
        if not credentials:
            return None
        given = credentials[0]
        params = given.params
        password = self._accounts.get(params.get("username", ""))
        if password is None or given.realm != REALM or given.nonce not in self._nonces:
            return None
        try:
            expected = digest_response(
                given,
                method=request.method,
                uri=params.get("uri", ""),
                username=params["username"],
                password=password,
                cnonce=params.get("cnonce", ""),
                nc=int(params.get("nc", "0"), 16),
                qop=params.get("qop"),
            )
        except ValueError:
            return None
        return params["username"] if expected == params.get("response") else None

    def _challenge(self, request: Request, source: Address, status: int, header: str) -> Outgoing:
        nonce = self._token()
        self._nonces.append(nonce)
        value = f'Digest realm="{REALM}", nonce="{nonce}", algorithm=MD5, qop="auth"'
        response = make_response(request, status, to_tag=self._token())
        response.headers.add(header, value)
        self._remember(request)
        return [(response, _reply_address(request, source))]

    def _answer(self, request: Request, source: Address, status: int) -> Outgoing:
        self._remember(request)
        response = make_response(request, status, to_tag=self._token())
        return [(response, _reply_address(request, source))]

    def _forward(self, request: Request, source: Address, destination: Address) -> Outgoing:
        hops = int(request.headers.get("Max-Forwards") or "70")
        if hops <= 0:
            return self._answer(request, source, 483)
        request.headers.set("Max-Forwards", str(hops - 1))
        received = request.top_via.branch or ""
        branch = "z9hG4bK" + hashlib.sha1(received.encode()).hexdigest()[:16]
        request.headers.prepend(
            "Via", f"SIP/2.0/UDP {self.address.host}:{self.address.port};branch={branch}"
        )
        return [(request, destination)]

    # -- responses ------------------------------------------------------------------------

    def _response(self, response: Response) -> Outgoing:
        vias = response.headers.get_list("Via")
        if len(vias) < 2 or "sip:" + Via.parse(vias[0]).sent_by != self._uri():
            logger.info("x response not for us: %s", response)
            return []
        response.headers.set_list("Via", vias[1:])
        return [(response, _via_address(Via.parse(vias[1])))]

    # -- helpers --------------------------------------------------------------------------

    def _remember(self, request: Request) -> None:
        branch = request.top_via.branch
        if branch:
            self._answered.append(branch)

    def _is_me(self, name_addr: NameAddr) -> bool:
        uri = name_addr.uri
        return (
            isinstance(uri, SipUri)
            and uri.host == self.address.host
            and (uri.port or 5060) == self.address.port
        )

    def _uri(self) -> str:
        return f"sip:{self.address.host}:{self.address.port}"

    def _token(self) -> str:
        return f"{self._rng.getrandbits(64):016x}"


def _destination(uri: object) -> Address:
    if not isinstance(uri, SipUri):
        raise ValueError(f"cannot route to {uri}")
    return Address("udp", uri.host, uri.port or 5060)


def _via_address(via: Via) -> Address:
    rport = via.params.get("rport")
    port = int(rport) if rport else via.port or 5060
    return Address("udp", via.params.get("received") or via.host, port)


def _reply_address(request: Request, source: Address) -> Address:
    """Where a response we generate goes: the (stamped) top Via, which names ``source``."""
    try:
        return _via_address(request.top_via)
    except RemoteProtocolError:
        return source
