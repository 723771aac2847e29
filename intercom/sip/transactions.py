"""The transaction layer: every live transaction, its TU and its transport address.

Theory of operation (RFC 3261 §17). One record per transaction: the machine of
:mod:`intercom.sip.transaction`, the address it talks to (the destination of a client
transaction, the source of a server one) and, for a client, the TU to call back. Records are
keyed as §17.1.3 (branch, CSeq method) and §17.2.3 (branch, sent-by, method) match them.

After every input a record is flushed: what its machine queued goes to ``send`` (requests to the
destination, responses where §18.2.2 says), and a terminated record is dropped, its TU told of a
failure (timeout or transport, §8.1.3.1). The CANCEL of a pending INVITE goes to the INVITE's
address and starts the INVITE's "give up 64*T1 after the CANCEL" timer (§9.1).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from intercom.sip.core import Address, TransactionUser, due
from intercom.sip.errors import LocalProtocolError
from intercom.sip.message import Message, Request, Response
from intercom.sip.transaction import (
    ClientTransaction,
    InviteClientTransaction,
    InviteServerTransaction,
    NonInviteClientTransaction,
    NonInviteServerTransaction,
    ServerTransaction,
    build_cancel,
    client_key,
    server_key,
)
from intercom.sip.uas import response_destination

logger = logging.getLogger(__name__)


@dataclass(slots=True)
class ClientRecord:
    tx: ClientTransaction
    tu: TransactionUser
    destination: Address
    failure: str | None = None  # what the transport said when it failed (for the TU's reason)


@dataclass(slots=True)
class ServerRecord:
    tx: ServerTransaction
    source: Address


class Transactions:
    """The table of client and server transactions. Sans-IO: ``send(message, address)``."""

    def __init__(self, send: Callable[[Message, Address], None]) -> None:
        self._send = send
        self.clients: dict[tuple[str, str], ClientRecord] = {}
        self.servers: dict[tuple[str, str, str], ServerRecord] = {}

    # -- client side (§17.1) ----------------------------------------------------------------

    def start_client(
        self, request: Request, tu: TransactionUser, destination: Address, now: float
    ) -> None:
        """``request`` carries its Via with our branch already."""
        invite = request.method == "INVITE"
        tx_class = InviteClientTransaction if invite else NonInviteClientTransaction
        tx = tx_class(request, reliable=destination.reliable, now=now)
        self.clients[tx.key] = record = ClientRecord(tx, tu, destination)
        self._flush_client(record, now)

    def cancel(self, invite: Request, tu: TransactionUser, now: float) -> None:
        """§9.1: CANCEL ``invite`` (sent through :meth:`start_client`) at its destination."""
        record = self.clients.get(client_key(invite))
        if record is not None:
            self.start_client(build_cancel(invite), tu, record.destination, now)
            if isinstance(record.tx, InviteClientTransaction):
                record.tx.cancel_sent(now)  # §9.1: given up 64*T1 after the CANCEL

    def client_for(self, response: Response) -> ClientRecord | None:
        return self.clients.get(client_key(response))

    def receive_response(self, record: ClientRecord, response: Response, now: float) -> bool:
        """True if the TU must see ``response``; the transaction's ACK goes out first."""
        deliver = record.tx.receive_response(response, now)
        self._flush_client(record, now)
        return deliver

    def transport_failed(self, destination: Address, now: float, reason: str | None = None) -> None:
        """Fail the client transactions to ``destination``; their TUs are told ``reason`` (a
        certificate problem, "connection refused") instead of the bare "transport"."""
        for record in [r for r in self.clients.values() if r.destination == destination]:
            record.failure = reason
            record.tx.transport_failed(now)
            self._flush_client(record, now)

    def invite_destination(self, call_id: str) -> Address | None:
        for record in self.clients.values():
            if record.tx.request.method == "INVITE" and record.tx.request.call_id == call_id:
                return record.destination
        return None

    # -- server side (§17.2) ----------------------------------------------------------------

    def server(self, request: Request) -> ServerRecord | None:
        return self.servers.get(server_key(request))

    def cancelled_invite(self, cancel: Request) -> ServerRecord | None:
        """§9.2: the INVITE server transaction a CANCEL matches (same branch and sent-by)."""
        branch, sent_by, _ = server_key(cancel)
        return self.servers.get((branch, sent_by, "INVITE"))

    def start_server(self, request: Request, source: Address, now: float) -> None:
        invite = request.method == "INVITE"
        tx_class = InviteServerTransaction if invite else NonInviteServerTransaction
        tx = tx_class(request, reliable=source.reliable, now=now)
        self.servers[tx.key] = ServerRecord(tx, source)

    def retransmitted(self, record: ServerRecord, request: Request, now: float) -> None:
        record.tx.receive_request(request, now)  # a retransmission, or the ACK of a non-2xx
        self._flush_server(record)

    def respond(self, request: Request, response: Response, now: float) -> None:
        """The TU's response to ``request``, through its server transaction."""
        record = self.server(request)
        if record is None:
            return
        try:
            record.tx.send_response(response, now)
        except LocalProtocolError as exc:  # a TU racing its transaction: never worth a crash
            logger.error("x %d to %s not sent: %s", response.status, request.method, exc)
        self._flush_server(record)

    def is_merged(self, request: Request) -> bool:
        """§8.2.2.2: same From-tag, Call-ID and CSeq as a pending request, another branch."""
        own_key = server_key(request)
        return any(
            key != own_key
            and record.tx.request.call_id == request.call_id
            and record.tx.request.from_.tag == request.from_.tag
            and record.tx.request.cseq == request.cseq
            and not record.tx.terminated
            for key, record in self.servers.items()
        )

    # -- timers -----------------------------------------------------------------------------

    def timers(self) -> Iterator[float | None]:
        yield from (record.tx.get_timer() for record in self.clients.values())
        yield from (record.tx.get_timer() for record in self.servers.values())

    def handle_timer(self, now: float) -> None:
        for client in list(self.clients.values()):
            if due(client.tx.get_timer(), now):
                client.tx.handle_timer(now)
                self._flush_client(client, now)
        for server in list(self.servers.values()):
            if due(server.tx.get_timer(), now):
                server.tx.handle_timer(now)
                self._flush_server(server)

    # -- flushing ---------------------------------------------------------------------------

    def _flush_client(self, record: ClientRecord, now: float) -> None:
        for request in record.tx.take_outbox():
            self._send(request, record.destination)
        if record.tx.terminated and self.clients.get(record.tx.key) is record:
            del self.clients[record.tx.key]
            reason = record.tx.failed_reason
            if reason == "transport" and record.failure:
                reason = record.failure
            if reason is not None:
                record.tu.on_transaction_failed(record.tx.request, reason, now)

    def _flush_server(self, record: ServerRecord) -> None:
        for response in record.tx.take_outbox():
            destination = response_destination(response, record.source)
            if destination is not None:
                self._send(response, destination)
        if record.tx.terminated and self.servers.get(record.tx.key) is record:
            del self.servers[record.tx.key]
