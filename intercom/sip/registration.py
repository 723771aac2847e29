"""Registration of one account (address of record) at one registrar: a sans-IO transaction user.

Theory of operation (RFC 3261 §10.2)
------------------------------------
Every REGISTER of the binding shares one Call-ID and one From tag, and its CSeq grows by one per
request, challenges and 423 retries included (§10.2.4, so that the registrar orders them, §10.3
step 7). Our lifetime is asked for with an ``Expires`` header (§10.2.1.1); the lifetime granted is
the ``expires`` parameter of *our* Contact in the 200 OK, else its Expires header, else what we
asked (§10.2.4). A registrar that fixes NATed contacts rewrites our Contact's host and port, so
ours is also the one with our RFC 5626 ``+sip.instance`` (sent with ``reg-id=1``; we claim no
``Supported: outbound``: no flows, no STUN), else the only Contact listed. The ``received`` and
``rport`` of the 200's top Via (RFC 3581 §4) tell where the registrar saw us: when that is not
our Contact (a NAT), we REGISTER that public address at once, the private binding removed,
and our other requests carry it too (:meth:`Registration.nat_contact`); once per new address.
The Via and the destination are the endpoint's business (core.py).

==============  ==========================  ==================================================
state           event                       action / next state
==============  ==========================  ==================================================
DISABLED        start()                     REGISTER -> REGISTERING
REGISTERING     2xx                         refresh timer, keepalives -> REGISTERED
REGISTERING     401/407                     answer (§22.2), REGISTER again (same state)
REGISTERING     423 with larger Min-Expires REGISTER at once with Expires = Min-Expires (§10.2.8)
REGISTERING     other final, timeout,       RegistrationFailed, retry timer -> FAILED
                transport error, bad auth
REGISTERED      refresh timer, refresh_now, REGISTER (state stays REGISTERED: still bound)
                flow_failed, moved, 2xx from a new NAT
REGISTERED      refresh fails               as in REGISTERING -> FAILED (stale binding)
FAILED          retry timer, refresh_now    REGISTER -> REGISTERING
any active      stop()                      REGISTER Expires 0 -> UNREGISTERING (§10.2.2), or
                                            straight to UNREGISTERED when nothing may be bound
UNREGISTERING   final (401/407 answered     Unregistered -> UNREGISTERED
                once), timeout, transport
==============  ==========================  ==================================================

Timing rules:

* refresh ``refresh_delay(granted)`` after the 200: half the lifetime for short ones, one minute
  before expiry for long ones (``max(g/2, g-60)``), never later than 5 s before expiry and never
  sooner than 1 s: 600 -> 540, 300 -> 240, 120 -> 60, 60 -> 30.
* retry after a failure: a nominal delay doubling from 5 s per consecutive failure up to 300 s,
  the actual one uniform in [d/2, d] (the shape of RFC 5626 §4.5). Authentication failures (a
  wrong password) climb the same ladder from 60 s. A positive Retry-After wins (capped at 1 h).
  Any success resets the ladder.
* keepalives (RFC 5626 §4.4.1): while REGISTERED, every 80-100 % of ``keepalive_interval`` the
  registration raises a flag that :meth:`Registration.take_keepalive` hands to the runtime once;
  the runtime sends CRLFCRLF to the registrar (keeping the NAT binding open), over TCP too, where
  the pings also keep the connection, the flow incoming calls come back on, open.
* flow failure (RFC 5626 §4.4.1, §4.5): when the runtime reports that the flow to the registrar
  failed, :meth:`Registration.flow_failed` REGISTERs at once (over a new connection): the
  binding may have gone with the flow, as it does when a registrar without a persistent location
  table restarts. Over TCP the registrar's exit closes the connection, or a ping goes without
  its pong; over UDP nothing answers a ping, so the runtime reports the ICMP port unreachable
  that a ping to a stopped registrar draws. While it is down, the REGISTERs fail and the retry
  ladder finds it once it is back. A restart quicker than one keepalive round leaves no trace
  on UDP; the next refresh recovers it, so the lifetime asked for bounds that case (§10.3: a
  registrar may shorten it, never lengthen it).

Credentials: every REGISTER carries the DigestClient's preemptive credentials, computed afresh
for it (nc+1, RFC 7616 §3.4), besides the answer to the challenge that prompted it. A
401/407 counts as "wrong credentials" only if the request carried credentials computed from a
challenge *of this chain*; preemptive ones may simply hold a nonce the registrar forgot (restart).
If the Contact changed since the last success (new address), the refresh also removes the old
binding with ``;expires=0`` so that calls are not forked to a dead address.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from enum import Enum

from intercom import __version__
from intercom.sip.auth import AuthFailed, AuthHeader, DigestClient
from intercom.sip.core import Ids, Sender
from intercom.sip.errors import RemoteProtocolError
from intercom.sip.events import RegistrationFailed, RegistrationSucceeded, Unregistered
from intercom.sip.message import Headers, Request, Response
from intercom.sip.uri import NameAddr, SipUri, Uri, parse_uint

logger = logging.getLogger(__name__)

ALLOW = "INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, UPDATE"
BACKOFF_BASE = 5.0  # nominal delay after the first failure; doubles per consecutive failure
AUTH_BACKOFF_BASE = 60.0  # the same after an authentication failure (a wrong password)
BACKOFF_CAP = 300.0
RETRY_AFTER_CAP = 3600.0
REFRESH_MARGIN = 60.0
MAX_CHALLENGES = 3  # 401/407 answered in one chain (stale nonces) before giving up on it


class RegistrationState(Enum):
    DISABLED = "disabled"
    REGISTERING = "registering"
    REGISTERED = "registered"
    FAILED = "failed"
    UNREGISTERING = "unregistering"
    UNREGISTERED = "unregistered"


@dataclass(frozen=True, slots=True)
class RegistrationConfig:
    registrar: str  # display name for logs/events, e.g. "pbx.example" or "pbx.example:5070"
    registrar_uri: SipUri  # Request-URI: sip:pbx.example (no user part)
    aor: SipUri  # To/From: sip:door@pbx.example
    expires: int = 600
    keepalive_interval: float | None = 25.0  # RFC 5626 CRLF keepalive period (None = off)
    display_name: str | None = None
    instance_id: str | None = None  # RFC 5626 +sip.instance URN ("urn:uuid:..."), sent with reg-id


def refresh_delay(granted: int) -> float:
    """Seconds from a 200 OK granting ``granted`` seconds to its refresh (module docstring)."""
    return max(1.0, min(max(granted / 2, granted - REFRESH_MARGIN), granted - 5.0))


class Registration:
    """One binding of ``config.aor`` at ``config.registrar``; see the module docstring."""

    def __init__(
        self, config: RegistrationConfig, *, sender: Sender, auth: DigestClient, ids: Ids,
        contact: Callable[[], NameAddr],
    ) -> None:  # fmt: skip
        self.config = config
        self._sender, self._auth, self._ids, self._contact = sender, auth, ids, contact
        self._call_id, self._tag, self._cseq = ids.call_id(), ids.tag(), 0
        self._expires = config.expires  # what we ask for; raised by a 423
        self.state = RegistrationState.DISABLED
        self.last_status: int | None = None  # None before any final and after a timeout
        self.granted_expires: int | None = None
        self._pending: Request | None = None  # the only request whose answer counts
        self._sent_contact: NameAddr | None = None
        self._answered: set[str] = set()  # header names answered from a challenge of this chain
        self._challenges = self._failures = 0
        self._last_failure: str | None = None
        self._bound: NameAddr | None = None  # Contact of the last successful REGISTER
        self._bound_until: float | None = None
        self._next_register: float | None = None  # refresh or retry
        self._next_keepalive: float | None = None
        self._keepalive_due = False
        self.public_address: tuple[str, int] | None = None  # where the registrar sees us (NAT)

    # -- commands ----------------------------------------------------------------------------

    def start(self, now: float) -> None:
        """Send a REGISTER now (no-op when already registering or registered)."""
        if self.state in (RegistrationState.REGISTERING, RegistrationState.REGISTERED):
            return
        self._failures = 0
        self._next_register = None
        self.state = RegistrationState.REGISTERING
        self._begin()

    def stop(self, now: float) -> None:
        """Remove the binding (Expires 0); Unregistered is emitted once that is over."""
        if self.state in (RegistrationState.UNREGISTERING, RegistrationState.UNREGISTERED):
            return
        maybe_bound = self.state in (
            RegistrationState.REGISTERED, RegistrationState.REGISTERING
        ) or (self._bound_until is not None and now < self._bound_until)  # fmt: skip
        self._next_register = None
        self._stop_keepalives()
        if not maybe_bound:
            self._pending = None
            self._finish_unregister()
            return
        self.state = RegistrationState.UNREGISTERING
        self._begin()

    def refresh_now(self, now: float) -> None:
        """Re-REGISTER at once (network back, registrar restart suspected); supersedes any
        REGISTER in flight. No-op unless registering, registered or failed."""
        if self.state not in (
            RegistrationState.REGISTERING, RegistrationState.REGISTERED, RegistrationState.FAILED
        ):  # fmt: skip
            return
        self._next_register = None
        if self.state is RegistrationState.FAILED:
            self.state = RegistrationState.REGISTERING
        self._begin()

    def flow_failed(self, now: float) -> None:
        """The flow to the registrar failed (module docstring): REGISTER again at once. Only
        while registered: a failed REGISTER already waits on the retry ladder."""
        if self.state is RegistrationState.REGISTERED:
            logger.info("flow to %s failed, registering again", self.config.registrar)
            self.refresh_now(now)

    def moved(self, now: float) -> None:
        """Our local address changed: forget the public one, re-REGISTER the new Contact now."""
        self.public_address = None
        self.refresh_now(now)

    def nat_contact(self, contact: NameAddr) -> NameAddr:
        """``contact`` with the public address the registrar saw us at, once learned."""
        if self.public_address is None or not isinstance(contact.uri, SipUri):
            return contact
        host, port = self.public_address
        return replace(contact, uri=replace(contact.uri, host=host, port=port))

    def take_keepalive(self) -> bool:
        """True once per due keepalive: the runtime then sends CRLFCRLF to the registrar."""
        due, self._keepalive_due = self._keepalive_due, False
        return due

    # -- timers ------------------------------------------------------------------------------

    def get_timer(self) -> float | None:
        deadlines = [t for t in (self._next_register, self._next_keepalive) if t is not None]
        return min(deadlines) if deadlines else None

    def handle_timer(self, now: float) -> None:
        if self._next_register is not None and now >= self._next_register:
            self._next_register = None
            if self.state is RegistrationState.FAILED:
                self.state = RegistrationState.REGISTERING
            if self.state in (RegistrationState.REGISTERING, RegistrationState.REGISTERED):
                self._begin()
        if self._next_keepalive is not None and now >= self._next_keepalive:
            self._keepalive_due = True
            self._schedule_keepalive(now)

    # -- TransactionUser ---------------------------------------------------------------------

    def on_response(self, request: Request, response: Response, now: float) -> None:
        if request is not self._pending or response.status < 200:
            return
        self._pending = None
        status = self.last_status = response.status
        if status in (401, 407):
            self._on_challenge(response, now)
        elif self.state is RegistrationState.UNREGISTERING:
            self._finish_unregister()
        elif 200 <= status < 300:
            self._on_success(request, response, now)
        elif status == 423:
            self._on_interval_too_brief(response, now)
        else:
            retry_after = _leading_int(response.headers.get("Retry-After"))
            self._fail(now, status, f"{status} {response.reason}", retry_after=retry_after)

    def on_transaction_failed(self, request: Request, reason: str, now: float) -> None:
        if request is not self._pending:
            return
        self._pending = None
        self.last_status = None
        if self.state is RegistrationState.UNREGISTERING:
            self._finish_unregister()
        else:
            self._fail(now, None, reason)

    # -- internals ---------------------------------------------------------------------------

    def _begin(self) -> None:
        """Start a new chain of REGISTERs (new attempt): preemptive credentials, counters."""
        self._answered = set()
        self._challenges = 0
        self._send()

    def _send(self, answer: AuthHeader | None = None) -> None:
        """REGISTER with ``answer`` to the last challenge and fresh preemptive credentials for
        every other cached one (never a replay: each request counts the nonce on)."""
        unregister = self.state is RegistrationState.UNREGISTERING
        contact = self._bound if unregister and self._bound is not None else self._contact()
        contact = contact if unregister else self.nat_contact(contact)
        contacts = [contact.with_params(expires="0") if unregister else contact]
        if self.config.instance_id is not None:  # RFC 5626 §4.2, the same on every REGISTER
            contacts[0] = contacts[0].with_params(
                **{"+sip.instance": f'"<{self.config.instance_id}>"', "reg-id": "1"}
            )
        old = None if unregister else self._bound
        if old is not None and not _same_uri(contact.uri, old.uri):
            contacts.append(old.with_params(expires="0"))  # drop the binding of a dead address
        self._cseq += 1
        aor = NameAddr(self.config.aor, self.config.display_name)
        headers = Headers([
            ("Max-Forwards", "70"),
            ("From", str(aor.with_params(tag=self._tag))),
            ("To", str(aor)),
            ("Call-ID", self._call_id),
            ("CSeq", f"{self._cseq} REGISTER"),
            ("Contact", ", ".join(str(c) for c in contacts)),
            ("Expires", "0" if unregister else str(self._expires)),
            ("Allow", ALLOW),
            ("User-Agent", f"intercom/{__version__}"),
        ])  # fmt: skip
        uri = self.config.registrar_uri
        answered = [answer] if answer is not None else []
        skip = {h.name for h in answered}
        for header in self._auth.preemptive(method="REGISTER", uri=str(uri), skip=skip) + answered:
            headers.add(header.name, header.value)
        request = Request(headers=headers, method="REGISTER", uri=uri)
        self._sent_contact = contact
        self._pending = self._sender.send_request(request, self)

    def _on_challenge(self, response: Response, now: float) -> None:
        status = response.status
        kind = "WWW-Authenticate" if status == 401 else "Proxy-Authenticate"
        name = "Authorization" if status == 401 else "Proxy-Authorization"
        self._challenges += 1
        if self._challenges > MAX_CHALLENGES:
            result: AuthHeader | AuthFailed = AuthFailed(status, "", "challenged too often")
        else:
            result = self._auth.answer_challenge(
                status, response.headers.get_all(kind), method="REGISTER",
                uri=str(self.config.registrar_uri), previous_attempt=name in self._answered,
            )  # fmt: skip
        if isinstance(result, AuthHeader):
            self._answered.add(result.name)
            self._send(result)
        elif self.state is RegistrationState.UNREGISTERING:
            self._finish_unregister()
        else:
            realm = f" for realm {result.realm}" if result.realm else ""
            reason = f"{status} {response.reason}: {result.reason}{realm}"
            self._fail(now, status, reason, auth=True)

    def _on_success(self, request: Request, response: Response, now: float) -> None:
        contact = self._sent_contact
        assert contact is not None
        requested = _leading_int(request.headers.get("Expires")) or self._expires
        granted = _granted(response, contact.uri, requested, self.config.instance_id)
        if granted <= 0:
            self._fail(now, response.status, f"{response.status} {response.reason}: "
                                             "the registrar kept no binding")  # fmt: skip
            return
        self._failures, self._last_failure = 0, None
        self.granted_expires = granted
        self._bound, self._bound_until = contact, now + granted
        self._next_register = now + refresh_delay(granted)
        if self.state is not RegistrationState.REGISTERED:
            logger.info("registered at %s (expires %d)", self.config.registrar, granted)
            self.state = RegistrationState.REGISTERED
            self._schedule_keepalive(now)
        else:
            logger.debug("refreshed at %s (expires %d)", self.config.registrar, granted)
        self._sender.emit(RegistrationSucceeded(self.config.registrar, granted))
        public = _seen_at(response, self._contact().uri)
        if public != self.public_address:  # behind a NAT (or no longer): bind what it saw
            seen = "our own address" if public is None else f"{public[0]}:{public[1]}"
            logger.info("%s sees us at %s: registering that Contact", self.config.registrar, seen)
            self.public_address = public
            self._begin()

    def _on_interval_too_brief(self, response: Response, now: float) -> None:
        minimum = _leading_int(response.headers.get("Min-Expires"))
        if minimum is None or minimum <= self._expires:
            self._fail(now, 423, f"423 {response.reason}: no usable Min-Expires")
            return
        logger.info("%s wants expires >= %d, asking for that", self.config.registrar, minimum)
        self._expires = minimum
        self._begin()  # new chain: fresh nonce counts for the credentials

    def _fail(
        self, now: float, status: int | None, reason: str, *,
        retry_after: int | None = None, auth: bool = False,
    ) -> None:  # fmt: skip
        self._failures += 1
        if retry_after:
            delay = min(float(retry_after), RETRY_AFTER_CAP)
        else:
            base = AUTH_BACKOFF_BASE if auth else BACKOFF_BASE
            nominal = min(BACKOFF_CAP, base * 2 ** min(self._failures - 1, 16))
            delay = nominal / 2 + nominal / 2 * self._ids.random()
        self.state = RegistrationState.FAILED
        self._stop_keepalives()
        self._next_register = now + delay
        level = logging.WARNING if reason != self._last_failure else logging.DEBUG
        logger.log(level, "registration at %s failed: %s; retrying in %.0f s",
                   self.config.registrar, reason, delay)  # fmt: skip
        self._last_failure = reason
        self._sender.emit(RegistrationFailed(self.config.registrar, status, reason, delay))

    def _finish_unregister(self) -> None:
        self.state = RegistrationState.UNREGISTERED
        self.granted_expires = None
        self._bound = self._bound_until = self._next_register = None
        self._stop_keepalives()
        logger.info("unregistered from %s", self.config.registrar)
        self._sender.emit(Unregistered(self.config.registrar))

    def _schedule_keepalive(self, now: float) -> None:
        interval = self.config.keepalive_interval
        if interval is not None and interval > 0:
            self._next_keepalive = now + interval * (0.8 + 0.2 * self._ids.random())

    def _stop_keepalives(self) -> None:
        self._next_keepalive = None
        self._keepalive_due = False


def _leading_int(value: str | None) -> int | None:
    """``"120 (maintenance);duration=60"`` -> 120; None when absent or not a number."""
    match = re.match(r"\s*(\d+)", value or "")
    return int(match.group(1)) if match else None


def _same_uri(a: Uri, b: Uri) -> bool:
    """Same binding address: user, host (case-insensitive) and port (defaults filled in)."""
    if not isinstance(a, SipUri) or not isinstance(b, SipUri):
        return a == b
    port_a, port_b = (u.port or (5061 if u.scheme == "sips" or u.transport == "tls" else 5060)
                      for u in (a, b))  # fmt: skip
    return a.user == b.user and a.host.lower() == b.host.lower() and port_a == port_b


def _granted(response: Response, ours: Uri, requested: int, instance: str | None) -> int:
    """Lifetime granted to ``ours``: the expires param of our Contact (by its URI, else by our
    +sip.instance and reg-id: a NAT-fixing registrar rewrites host and port), the Expires
    header, the only Contact's expires param (rewritten, no instance), or what we asked for."""
    try:
        contacts = response.contacts
    except RemoteProtocolError:  # e.g. "Contact: *" on a broken registrar
        contacts = ()
    for contact in contacts:
        value = _leading_int(contact.params.get("expires"))
        if value is not None and (_same_uri(contact.uri, ours) or _ours(contact, instance)):
            return value
    header = _leading_int(response.headers.get("Expires"))
    only = _leading_int(contacts[0].params.get("expires")) if len(contacts) == 1 else None
    return next((v for v in (header, only) if v is not None), requested)


def _ours(contact: NameAddr, instance: str | None) -> bool:
    """Whether ``contact`` carries our RFC 5626 instance (and reg-id, when it has one)."""
    value = (contact.params.get("+sip.instance") or "").strip('"<>').lower()
    return instance is not None and value == instance.lower() and (
        contact.params.get("reg-id") in (None, "1")
    )  # fmt: skip


def _seen_at(response: Response, ours: Uri) -> tuple[str, int] | None:
    """Where the registrar saw our REGISTER come from (``received``/``rport`` of the top Via,
    RFC 3581 §4) when that is not our Contact's address, else None. Over TCP/TLS only another
    host counts: the source port of a connection is not where we listen."""
    try:
        via = response.top_via
    except RemoteProtocolError:
        return None
    if not isinstance(ours, SipUri) or ours.scheme != "sip":
        return None
    received, rport = via.params.get("received"), parse_uint(via.params.get("rport") or "", 65535)
    port = ours.port or 5060
    if ours.transport not in (None, "udp") and (received is None or received == ours.host):
        return None
    seen = (received or ours.host, rport or port)
    return None if (seen[0].lower(), seen[1]) == (ours.host.lower(), port) else seen
