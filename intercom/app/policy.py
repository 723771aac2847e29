"""Who may call the door in: the incoming-call policy (design.md, "Security").

Theory of operation
===================

An incoming INVITE is two claims: *where it came from* (the source address of the packet, which
the network layer saw) and *who sent it* (the From header, which anyone can write). Only the
first is evidence. :class:`CallPolicy` therefore decides in two steps, and both must pass:

1. **Trusted source.** The INVITE arrived from one of the SIP server's resolved addresses
   (:meth:`CallPolicy.set_server_addresses`, refreshed by the runtime whenever it resolves the
   server) or from a network of ``INTERCOM_TRUSTED_HOSTS``. Anything else gets 403 and nothing
   more: no 180, no SDP, nothing of the microphone. An IPv4-mapped IPv6 source
   (``::ffff:192.0.2.1``, from a dual-stack socket) counts as its IPv4 address.
2. **Allowed caller.** Among trusted requests the caller is matched against
   ``INTERCOM_ALLOWED_CALLERS``. The identity is the P-Asserted-Identity when the INVITE came
   from the SIP server or the outbound proxy themselves (RFC 3325 §9.1: what the proxy of our own
   trust domain vouches for), else the From header: a P-Asserted-Identity from anywhere else,
   a host of ``INTERCOM_TRUSTED_HOSTS`` included, is ignored (RFC 3325 §5: only a member of the
   trust domain may assert). A P-Asserted-Identity from the server that is present but
   unreadable refuses the call; it never falls back to From. An empty list refuses every
   incoming call.

An allowed-caller entry is one of::

    alice                     the user "alice" at the home domain (below)
    alice@pbx.example         user and host; "sip:" / "sips:" may be written in front
    sip:alice@pbx.example:5070  with a port, the port must match too
    tel:+4930123456           a tel URI's number (RFC 3966), also matched by "+4930123456"

A bare user name (or number) is strict: it matches a SIP URI only when the URI's host is the
home domain, that is the host of ``INTERCOM_SIP_SERVER`` or ``INTERCOM_SIP_OUTBOUND_PROXY`` as
written there, or one of the server's resolved addresses. ``alice@evil.example`` is not
``alice``. Without a server a bare name matches no SIP URI (settings reject it), and a bare
number still matches a tel URI.

Comparison follows RFC 3261 §19.1.4 where it matters for identity: the user part is compared
case-sensitively after undoing %-escapes, the host case-insensitively; URI parameters, display
names and the sip/sips scheme difference are ignored (the trust comes from step 1, not from the
URI). Text from the network only reaches the log through ``%r``.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from urllib.parse import unquote

from intercom.ip import IpAddress, parse_ip
from intercom.sip.errors import RemoteProtocolError
from intercom.sip.events import IncomingCallReceived
from intercom.sip.uri import NameAddr, OtherUri, SipUri, Uri, parse_name_addr_list, parse_uri

__all__ = [
    "FORBIDDEN",
    "AllowedCaller",
    "CallPolicy",
    "Network",
    "Verdict",
    "parse_networks",
]

logger = logging.getLogger(__name__)

FORBIDDEN = 403
"""The answer to an untrusted source or a caller not allowed (RFC 3261 §21.4.4)."""

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(hosts: Iterable[str]) -> tuple[Network, ...]:
    """``INTERCOM_TRUSTED_HOSTS`` entries (addresses or CIDR networks) as networks.

    Raises ``ValueError`` naming the first entry that is neither ("'pbx.lan' is not an IP
    address or network"); host bits in a network are tolerated (``10.0.0.7/8`` = ``10.0.0.0/8``).
    """
    networks: list[Network] = []
    for host in hosts:
        text = host.strip()
        if text.startswith("[") and "]" in text:  # "[2001:db8::1]" or "[2001:db8::]/32"
            text = text[1:].replace("]", "", 1)
        try:
            networks.append(ipaddress.ip_network(text, strict=False))
        except ValueError:
            raise ValueError(f"{host!r} is not an IP address or network") from None
    return tuple(networks)


@dataclass(frozen=True, slots=True)
class AllowedCaller:
    """One ``INTERCOM_ALLOWED_CALLERS`` entry. ``host`` None: any host; ``port`` None: any."""

    user: str
    host: str | None = None
    port: int | None = None
    tel: bool = False  # written as a tel: URI: matches tel numbers only

    @classmethod
    def parse(cls, text: str) -> AllowedCaller:
        """Parse an entry (forms in the module docstring); ``ValueError`` when it is none."""
        entry = text.strip()
        if not entry:
            raise ValueError("an allowed caller entry is empty")
        lowered = entry.lower()
        if lowered.startswith("tel:"):
            number = entry[4:].split(";", 1)[0]
            if not number:
                raise ValueError(f"allowed caller {text!r} has no number")
            return cls(unquote(number), tel=True)
        if "@" not in entry and not lowered.startswith(("sip:", "sips:")):
            if any(ch in entry for ch in ':;<>" \t'):
                raise ValueError(f"allowed caller {text!r} is not a user name or SIP URI")
            return cls(unquote(entry))
        if not lowered.startswith(("sip:", "sips:")):
            entry = "sip:" + entry
        try:
            uri = parse_uri(entry)
        except RemoteProtocolError:
            raise ValueError(f"allowed caller {text!r} is not a user name or SIP URI") from None
        if not isinstance(uri, SipUri) or uri.user is None:
            raise ValueError(f"allowed caller {text!r} names no user (write user@host)")
        return cls(unquote(uri.user), uri.host.lower(), uri.port)

    def matches(self, uri: Uri, is_home: Callable[[str], bool] = lambda host: False) -> bool:
        """True when ``uri`` (a caller's identity) is this entry. ``is_home(host)`` says whether
        a host is the home domain, where a bare user name (``host`` None) is matched."""
        if isinstance(uri, OtherUri):
            if uri.scheme != "tel" or self.host is not None:
                return False
            return unquote(uri.rest.split(";", 1)[0]) == self.user
        if self.tel or uri.user is None or unquote(uri.user) != self.user:
            return False
        if self.host is None:
            if not is_home(uri.host):
                return False
        elif uri.host.lower() != self.host:
            return False
        return self.port is None or uri.port == self.port

    def __str__(self) -> str:
        if self.tel:
            return f"tel:{self.user}"
        if self.host is None:
            return self.user
        port = f":{self.port}" if self.port is not None else ""
        return f"{self.user}@{self.host}{port}"


@dataclass(frozen=True, slots=True)
class Verdict:
    """What to do with an incoming call: ``allowed``, else answer ``status`` (403)."""

    allowed: bool
    status: int  # 200 when allowed, 403 otherwise
    reason: str  # for the log: "untrusted source 203.0.113.9", "caller not allowed"
    identity: str  # the identity that was matched (PAI or From), as received


class CallPolicy:
    """Trusted sources and allowed callers (the two checks of the module docstring)."""

    def __init__(
        self,
        allowed_callers: Iterable[AllowedCaller],
        trusted_networks: Iterable[Network],
        home_domains: Iterable[str] = (),
    ) -> None:
        self.allowed = tuple(allowed_callers)
        self.trusted_networks = tuple(trusted_networks)
        self.home_domains = frozenset(host.lower() for host in home_domains)
        self._server: frozenset[IpAddress] = frozenset()

    def set_server_addresses(self, addresses: Iterable[str]) -> None:
        """The SIP server's current addresses (the runtime resolves; entries that are not IP
        addresses are ignored, so a host name can never be trusted by accident)."""
        parsed = {parse_ip(text) for text in addresses}
        self._server = frozenset(address for address in parsed if address is not None)
        logger.debug("trusted server addresses: %s", ", ".join(map(str, sorted(
            self._server, key=lambda a: (a.version, int(a))))) or "none")  # fmt: skip

    def is_trusted_source(self, host: str) -> bool:
        """True when ``host`` (the IP the request came from) is the server or trusted."""
        address = parse_ip(host)
        if address is None:
            return False
        if address in self._server:
            return True
        return any(address in network for network in self.trusted_networks)

    def is_server(self, host: str) -> bool:
        """True when ``host`` is one of the SIP server's (or outbound proxy's) addresses."""
        address = parse_ip(host)
        return address is not None and address in self._server

    def is_home(self, host: str) -> bool:
        """True when a URI's ``host`` is the home domain (see the module docstring)."""
        return host.lower() in self.home_domains or self.is_server(host)

    def is_allowed_caller(self, caller: str, asserted_identity: str | None) -> bool:
        """True when the identity (P-Asserted-Identity if given, else From) is allowed. The
        caller of this method decides whether an asserted identity is believed at all."""
        try:
            if asserted_identity is None:  # From is one value: a list in it is malformed
                uris = [NameAddr.parse(caller).uri]
            else:  # RFC 3325 §9.1: up to two values, a sip/sips URI and a tel URI
                uris = [value.uri for value in parse_name_addr_list(asserted_identity)]
        except RemoteProtocolError:
            return False
        return any(entry.matches(uri, self.is_home) for uri in uris for entry in self.allowed)

    def decide(self, event: IncomingCallReceived) -> Verdict:
        """The verdict on one incoming INVITE: trusted source first, then allowed caller."""
        asserted = event.asserted_identity if self.is_server(event.source_host) else None
        identity = event.caller if asserted is None else asserted
        if not self.is_trusted_source(event.source_host):
            return Verdict(False, FORBIDDEN, f"untrusted source {event.source_host}", identity)
        if not self.is_allowed_caller(event.caller, asserted):
            which = "asserted identity" if asserted is not None else "caller"
            return Verdict(False, FORBIDDEN, f"{which} not allowed", identity)
        return Verdict(True, 200, "allowed", identity)
