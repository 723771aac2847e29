"""The contract between the endpoint and the transaction users (TUs) it hosts.

The :class:`~intercom.sip.endpoint.Endpoint` hosts the TUs. Each (a registration, an outgoing
call, an incoming call, an established dialog) is a small state machine that:

* builds requests *without* a Via and hands them to :meth:`Sender.send_request`, which returns
  the request as sent (our Via with a fresh branch and ``rport``, Max-Forwards, User-Agent),
  runs its client transaction and calls the TU back with every response
  (:meth:`TransactionUser.on_response`) or the failure
  (:meth:`TransactionUser.on_transaction_failed`: Timer B/F or a transport error, RFC 3261
  §8.1.3.1, both to be treated as 408);
* sends an ACK for a 2xx or a CANCEL (which reuse the INVITE's branch, §9.1) through
  :meth:`Sender.send_ack` / :meth:`Sender.send_cancel`;
* exposes ``get_timer()`` / ``handle_timer(now)`` for its own deadlines (refresh, ring timeout of
  the core, 2xx retransmission);
* reports what happened through :meth:`Sender.emit` (events from :mod:`intercom.sip.events`).

A TU keeps the request as sent to build a CANCEL or ACK and to know its responses (they come
with that very object). A request that cannot be routed fails with "transport" once the TU's
step is over, never inside ``send_request``.

Randomness comes from :class:`Ids`, seeded by the runtime and by tests.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Protocol

from intercom.sip.events import Event
from intercom.sip.message import Request, Response
from intercom.sip.uri import format_hostport

T1 = 0.5
"""RTT estimate (RFC 3261 §17.1.1.1)."""
T2 = 4.0
"""Maximum retransmit interval for non-INVITE requests and INVITE responses."""
T4 = 5.0
"""Maximum duration a message remains in the network."""


@dataclass(frozen=True, slots=True)
class Address:
    """A transport address: where a message came from or goes to. ``host`` is an IP literal."""

    transport: str  # "udp" | "tcp"
    host: str
    port: int

    @property
    def reliable(self) -> bool:
        return self.transport != "udp"

    def __str__(self) -> str:
        return f"{self.transport}:{format_hostport(self.host, self.port)}"


class TransactionUser(Protocol):
    """What a TU must offer the endpoint for the requests it sends."""

    def on_response(self, request: Request, response: Response, now: float) -> None:
        """A response (provisional or final, 2xx retransmissions included for INVITE) arrived
        for ``request``."""

    def on_transaction_failed(self, request: Request, reason: str, now: float) -> None:
        """No final response: ``reason`` is "timeout" (Timer B/F) or "transport"."""


class Sender(Protocol):
    """What the endpoint offers to TUs."""

    def send_request(
        self, request: Request, tu: TransactionUser, destination: Address | None = None
    ) -> Request:
        """Start a client transaction; returns the request as sent. Without ``destination``
        the endpoint routes it (outbound proxy, first Route, or the Request-URI host)."""

    def send_ack(self, ack: Request, destination: Address | None = None) -> None:
        """Send an ACK for a 2xx (no transaction, new branch, §13.2.2.4)."""

    def send_cancel(self, invite: Request, tu: TransactionUser) -> None:
        """CANCEL a pending INVITE that was sent through send_request (§9.1)."""

    def send_response(self, response: Response) -> None:
        """Send a response outside any transaction: the TU's own 2xx retransmissions
        (§13.3.1.4, RFC 6026). Routed by its top Via (§18.2.2)."""

    def emit(self, event: Event) -> None:
        """Report an event to the application."""


def due(deadline: float | None, now: float) -> bool:
    """Whether a ``get_timer()`` deadline has come at ``now``."""
    return deadline is not None and deadline <= now


class Ids:
    """Every random token the SIP layer needs, from one injected generator."""

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng

    def token(self, nbytes: int = 8) -> str:
        return self._rng.getrandbits(nbytes * 8).to_bytes(nbytes, "big").hex()

    def branch(self) -> str:
        return "z9hG4bK" + self.token(8)

    def tag(self) -> str:
        return self.token(6)

    def call_id(self) -> str:
        return self.token(12)

    def cnonce(self) -> str:
        return self.token(8)

    def random(self) -> float:
        return self._rng.random()
