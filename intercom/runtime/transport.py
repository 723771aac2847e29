"""SIP over UDP and TCP on one address and port (RFC 3261 §18), with RFC 5626 CRLF keepalives;
SIP over TLS (RFC 3261 §26) on connections we open.

:class:`SipTransport` listens on UDP and TCP at the same bind address and port, sends raw
messages to an :class:`~intercom.sip.core.Address` and hands every received message upward as
bytes with its source address. It frames TCP streams (RFC 3261 §18.3) and nothing more: no
parsing, no protocol decisions.

* A TCP message to an address we already have a connection with goes over that connection, an
  inbound one included, so responses travel back the way the request came (§18.2.2). Otherwise
  a connection is opened (bounded by ``CONNECT_TIMEOUT``) and data is queued until it is up.
* RFC 5626 §4.4.1: a double CRLF ping on TCP is answered with a CRLF pong; CRLF-only datagrams
  are dropped (STUN keepalives over UDP are out of scope). A UDP destination we send keepalives
  to (the registrar) is a flow too: with ``IP_RECVERR`` the kernel hands us the ICMP error a
  datagram to it drew (port unreachable: the registrar is not running), which fails the flow.
* A TCP connection we send keepalives on is a flow (the registration's): the idle timeout never
  closes it, and it has failed when it closes, when no connection is left for the next ping, or
  when a peer that answered pings before leaves one without an answer for ``pong_timeout`` (the
  10 s of §4.4.1). A failed flow is reported through ``on_error`` so that the registration
  re-registers over a new connection (§4.4.1, §4.5).
* TLS (``tls_context`` given) is client-only: a ``tls`` destination gets a connection opened
  with that context, its server name (SNI and the certificate's check) the one the user agent
  named for that address with :meth:`SipTransport.expect_name` (the configured host name, never
  an address it resolved to), else the address itself (an IP literal the user wrote). Nobody
  can open one towards us: requests come back over ours (RFC 5923), which then works as a TCP
  connection does: framing, keepalives, flow failure. A handshake that fails, or a certificate
  that names the server only by wildcard (RFC 5922 §7.2, :mod:`intercom.runtime.tls`), is
  reported through ``on_error`` with one line: the name and the check that failed.
* Other connections idle for ``idle_timeout`` seconds are closed.
* Connections we open are at most ``MAX_OUTBOUND_CONNECTIONS``; those others open to us are
  counted apart (:mod:`intercom.runtime.inbound_limits`: a few per source, a total, the server
  and trusted hosts in a pool of their own), so that no number of strangers' connections keeps
  the door from opening its own to the server or a call target. A connection over a cap is
  closed at once. One of theirs that brings no complete SIP message (a start line, headers and
  the body its Content-Length announces, RFC 3261 §18.3) within ``first_message_timeout``
  seconds is closed (a slowloris holds sockets open with a trickle of bytes); the framer holds
  at most a header section and a body of the parser's limits, and a peer that leaves more than
  ``INBOUND_WRITE_BUFFER`` bytes of our answers unread is cut off. Each such refusal or close
  is counted per source and logged once a minute with a count, never once per connection.
* The UDP socket asks for a ``UDP_RECEIVE_BUFFER`` receive buffer (the kernel caps it at
  ``net.core.rmem_max``), so a burst of strangers' datagrams while the loop sets up a call waits
  in the kernel instead of crowding out the server's.

Message contents are never logged here; connection events are logged at DEBUG with a ``-``
marker, dropped connections at WARNING with an ``x`` marker.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import socket
from collections.abc import Callable
from socket import SO_ERROR, SOL_SOCKET
from typing import TYPE_CHECKING, Any, cast

from intercom.sip.core import Address
from intercom.sip.errors import RemoteProtocolError
from intercom.sip.framing import PING, PONG, StreamFramer
from intercom.sip.uri import format_host

from .inbound_limits import ConnectionLog, InboundLimits
from .tls import describe_failure, identity_problem

if TYPE_CHECKING:
    import ssl

__all__ = [
    "CONNECT_TIMEOUT",
    "FIRST_MESSAGE_TIMEOUT",
    "IDLE_TIMEOUT",
    "INBOUND_WRITE_BUFFER",
    "KEEPALIVE",
    "MAX_OUTBOUND_CONNECTIONS",
    "PONG_TIMEOUT",
    "UDP_RECEIVE_BUFFER",
    "ErrorHandler",
    "MessageHandler",
    "SipTransport",
]

logger = logging.getLogger(__name__)

MessageHandler = Callable[[bytes, Address], None]
"""Called with one complete SIP message (a datagram or a framed stream message) and its source."""
ErrorHandler = Callable[[Address, str], None]
"""Called when data for a destination could not be delivered."""

KEEPALIVE = PING
"""The RFC 5626 keepalive ping, a double CRLF."""
IDLE_TIMEOUT = 300.0
PONG_TIMEOUT = 10.0
"""RFC 5626 §4.4.1: a ping left without a pong this long means the flow failed."""
CONNECT_TIMEOUT = 5.0
"""Seconds for a connection we open to be up, its TLS handshake included."""
MAX_OUTBOUND_CONNECTIONS = 64
"""Connections we open (or are opening) at once; others' connections never count here."""
FIRST_MESSAGE_TIMEOUT = 32.0
"""Seconds a connection opened to us has to bring its first complete SIP message (64*T1)."""
INBOUND_WRITE_BUFFER = 64 * 1024
"""Bytes of our answers a connection opened to us may leave unread before it is cut off."""
UDP_RECEIVE_BUFFER = 1 << 20
"""Bytes of UDP receive buffer asked for: about a second of a 1000/s flood of INVITEs."""
_RECVERR = ((socket.IPPROTO_IP, 11), (socket.IPPROTO_IPV6, 25))  # IP_RECVERR, IPV6_RECVERR
_EPHEMERAL_ATTEMPTS = 8  # port 0: retries when TCP cannot get the port UDP got


class SipTransport:
    """UDP and TCP transport for the endpoint; see the module docstring."""

    def __init__(
        self,
        on_message: MessageHandler,
        *,
        on_error: ErrorHandler | None = None,
        idle_timeout: float = IDLE_TIMEOUT,
        pong_timeout: float = PONG_TIMEOUT,
        first_message_timeout: float = FIRST_MESSAGE_TIMEOUT,
        tls_context: ssl.SSLContext | None = None,
        is_trusted_source: Callable[[str], bool] | None = None,
    ) -> None:
        """``tls_context``: the client context of ``tls`` destinations (runtime/tls.py);
        None: they are refused. ``is_trusted_source(host)``: whether connections from that IP
        count in the trusted pool (the server's addresses, trusted hosts); None: nobody's do."""
        self._on_message = on_message
        self._tls = tls_context
        self._tls_names: dict[str, str] = {}  # address -> the name its certificate must bear
        self._on_error = on_error
        self.idle_timeout = idle_timeout
        self.pong_timeout = pong_timeout
        self.first_message_timeout = first_message_timeout
        self._limits = InboundLimits(is_trusted_source)
        self._refusals = ConnectionLog()
        self._report_handle: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._udp: asyncio.DatagramTransport | None = None
        self._udp_protocol: _UdpProtocol | None = None
        self._server: asyncio.Server | None = None
        self._host = ""
        self._port = 0
        self._v6 = False
        self._connections: set[_Connection] = set()
        self._outbound = 0  # connections in _connections that we opened
        self._by_address: dict[Address, _Connection] = {}
        self._pending: dict[Address, list[bytes]] = {}
        self._udp_flows: set[Address] = set()  # UDP destinations of keepalives
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False

    async def start(self, host: str, port: int) -> None:
        """Bind UDP and TCP on ``host`` (an IP literal) and ``port`` (0: the same ephemeral port
        for both). Raises OSError naming the address and protocol that could not be bound."""
        if self._loop is not None or self._closed:
            raise RuntimeError("SipTransport.start() may be called once")
        if host.startswith("[") and host.endswith("]"):
            host = host[1:-1]
        loop = asyncio.get_running_loop()
        attempts = _EPHEMERAL_ATTEMPTS if port == 0 else 1
        for attempt in range(1, attempts + 1):
            try:
                udp, protocol, server = await self._bind(loop, host, port)
                break
            except _PortTaken:
                if attempt == attempts:
                    raise
        self._loop, self._udp, self._udp_protocol, self._server = loop, udp, protocol, server
        sockname = udp.get_extra_info("sockname")
        self._host, self._port = sockname[0], sockname[1]
        self._v6 = udp.get_extra_info("socket").family == socket.AF_INET6
        logger.debug("- listening on %s:%d (udp, tcp)", format_host(self._host), self._port)

    async def _bind(
        self, loop: asyncio.AbstractEventLoop, host: str, port: int
    ) -> tuple[asyncio.DatagramTransport, _UdpProtocol, asyncio.Server]:
        try:
            udp, protocol = await loop.create_datagram_endpoint(
                lambda: _UdpProtocol(self, loop), local_addr=(host, port)
            )
        except OSError as exc:
            raise _listen_error(host, port, "udp", exc) from exc
        sock = udp.get_extra_info("socket")
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, UDP_RECEIVE_BUFFER)
        for level, option in _RECVERR:  # Linux; IPv6 sockets want both (IPv4-mapped peers)
            with contextlib.suppress(OSError):
                sock.setsockopt(level, option, 1)
        bound = udp.get_extra_info("sockname")[1]
        try:
            server = await loop.create_server(lambda: _Connection(self, loop, None), host, bound)
        except OSError as exc:
            udp.close()
            await protocol.closed
            retry = port == 0 and exc.errno == errno.EADDRINUSE
            raise _listen_error(host, bound, "tcp", exc, _PortTaken if retry else OSError) from exc
        return udp, protocol, server

    @property
    def local_port(self) -> int:
        """The bound port (UDP and TCP); 0 before start()."""
        return self._port

    @property
    def local_host(self) -> str:
        """The bound host as the socket reports it; "" before start()."""
        return self._host

    def expect_name(self, host: str, name: str) -> None:
        """TLS connections to the address ``host`` check the server's certificate for
        ``name`` (and send it as SNI): the configured host name that resolved to ``host``."""
        self._tls_names[host] = name

    def tls_name(self, destination: Address) -> str:
        """The name a TLS connection to ``destination`` checks (see :meth:`expect_name`)."""
        return self._tls_names.get(destination.host, destination.host)

    @property
    def connection_count(self) -> int:
        """Open TCP connections, inbound and outbound."""
        return len(self._connections)

    @property
    def inbound_count(self) -> int:
        """Open TCP connections that others opened to us."""
        return len(self._connections) - self._outbound

    def send(self, data: bytes, destination: Address) -> None:
        """Send one message without blocking; failures are reported through ``on_error``."""
        if destination.transport not in ("udp", "tcp", "tls"):
            self._report(destination, f"transport {destination.transport} is not supported")
        elif destination.transport == "tls" and self._tls is None:
            self._report(destination, "transport tls is not configured")
        elif data == KEEPALIVE:
            self.send_keepalive(destination)
        elif self._loop is None or self._closed:
            self._report(destination, "transport closed")
        elif destination.transport == "udp":
            self._sendto(data, destination)
        elif destination in self._pending:
            self._pending[destination].append(data)
        elif (conn := self._open_connection(destination)) is not None:
            conn.write(data)
        elif self._outbound + len(self._pending) >= MAX_OUTBOUND_CONNECTIONS:
            logger.warning(
                "x %s: %d connections of ours open, not opening another",
                destination,
                MAX_OUTBOUND_CONNECTIONS,
            )
            self._report(destination, "too many connections")
        else:
            self._pending[destination] = [data]
            task = self._loop.create_task(self._connect(destination))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def send_keepalive(self, destination: Address) -> None:
        """RFC 5626 double-CRLF ping: as a datagram, or over the TCP connection, which becomes a
        flow (module docstring); with no connection open the flow has failed."""
        if self._udp is None or self._closed:
            self._report(destination, "transport closed")
        elif destination.transport == "udp":
            self._udp_flows.add(destination)
            self._sendto(KEEPALIVE, destination)
        elif (conn := self._open_connection(destination)) is not None:
            conn.ping()
        elif destination not in self._pending:
            self._report(destination, "flow failed: no connection for a keepalive")

    async def close(self) -> None:
        """Close every socket and connection and cancel pending connects. Idempotent."""
        if self._closed:
            return
        self._closed = True
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        self._pending.clear()
        if self._report_handle is not None:
            self._report_handle.cancel()
            self._report_handle = None
        if self._loop is not None:
            self._refusals.flush(self._loop.time())
        if self._server is not None:
            self._server.close()
        waits: list[asyncio.Future[None]] = []
        if self._udp is not None and self._udp_protocol is not None:
            self._udp.close()
            waits.append(self._udp_protocol.closed)
        conns = list(self._connections)
        for conn in conns:
            conn.close()
            waits.append(conn.lost)
        await asyncio.gather(*tasks, return_exceptions=True)
        if waits:
            _, not_done = await asyncio.wait(waits, timeout=1.0)
            if not_done:  # unsent data to a peer that does not read: give up on it
                for conn in conns:
                    conn.abort()
                await asyncio.wait(not_done, timeout=1.0)
        if self._server is not None:
            await self._server.wait_closed()
        self._server = self._udp = self._udp_protocol = None
        logger.debug("- transport closed")

    def _open_connection(self, destination: Address) -> _Connection | None:
        conn = self._by_address.get(destination)
        return conn if conn is not None and not conn.closing else None

    def _sendto(self, data: bytes, destination: Address) -> None:
        assert self._udp is not None
        host = destination.host
        if ":" in host and not self._v6:
            self._report(destination, "address family not supported")
            return
        if self._v6 and ":" not in host:
            host = "::ffff:" + host  # IPv4 destination from a dual-stack IPv6 socket
        # A pending ICMP error would fail this sendto and lose the datagram: take it first.
        if error := self._udp.get_extra_info("socket").getsockopt(SOL_SOCKET, SO_ERROR):
            self._udp_error(OSError(error, os.strerror(error)))
        self._udp.sendto(data, (host, destination.port))

    async def _connect(self, destination: Address) -> None:
        assert self._loop is not None
        loop = self._loop
        tls = destination.transport == "tls"
        name = self.tls_name(destination) if tls else None
        host, port = destination.host, destination.port
        try:
            await asyncio.wait_for(
                loop.create_connection(
                    lambda: _Connection(self, loop, destination), host, port,
                    ssl=self._tls if tls else None, server_hostname=name,
                    ssl_handshake_timeout=CONNECT_TIMEOUT if tls else None,
                ),
                CONNECT_TIMEOUT,
            )  # fmt: skip
        except (OSError, TimeoutError) as exc:  # ssl.SSLError is an OSError
            self._pending.pop(destination, None)
            logger.debug("- connect to %s failed: %r", destination, exc)
            refused = isinstance(exc, ConnectionRefusedError) or not tls
            reason = "connection refused" if refused else describe_failure(exc, name or "")
            if not self._closed:
                self._report(destination, reason)

    def _refuse(self, conn: _Connection, reason: str) -> None:
        """An outbound connection is up but must not be used (the server's identity)."""
        self._pending.pop(conn.address, None)
        if not self._closed:
            self._report(conn.address, reason)

    def _attach(self, conn: _Connection) -> bool:
        """A connection is up: register it (outbound: flush its queue) or refuse it."""
        if self._closed:
            return False
        if conn.outbound:
            self._outbound += 1
        else:
            conn.trusted, refused = self._limits.admit(conn.address.host)
            if refused is not None:
                self._count_refusal(conn, refused)
                return False
        self._connections.add(conn)
        self._by_address[conn.address] = conn
        logger.debug("- %s %s", "connected to" if conn.outbound else "accepted", conn.address)
        for data in self._pending.pop(conn.address, []) if conn.outbound else []:
            conn.write(data)
        return True

    def _detach(self, conn: _Connection, exc: Exception | None) -> None:
        self._connections.discard(conn)
        if conn.outbound:
            self._outbound -= 1
        else:
            self._limits.release(conn.address.host, conn.trusted)
        if self._by_address.get(conn.address) is conn:
            del self._by_address[conn.address]
        logger.debug("- %s closed%s", conn.address, f": {exc}" if exc else "")
        if conn.flow and not self._closed:
            self._report(conn.address, f"flow failed: {exc or 'connection closed'}")
        elif exc is not None and conn.wrote and not self._closed:
            self._report(conn.address, "connection refused")

    def _count_refusal(self, conn: _Connection, reason: str, detail: str = "") -> None:
        """A connection opened to us is refused or closed for ``reason``: count it, and make
        sure the counts are reported when their minute is up."""
        assert self._loop is not None
        self._refusals.count(conn.address.host, reason, self._loop.time(), detail)
        self._arm_report()

    def _arm_report(self) -> None:
        due = self._refusals.get_timer()
        if due is None or self._report_handle is not None or self._loop is None or self._closed:
            return
        self._report_handle = self._loop.call_at(due, self._on_report)

    def _on_report(self) -> None:
        assert self._loop is not None
        self._report_handle = None
        self._refusals.handle_timer(self._loop.time())
        self._arm_report()

    def _received(self, data: bytes, source: Address) -> None:
        try:
            self._on_message(data, source)
        except Exception:
            logger.exception("x message handler failed for a message from %s", source)

    def _udp_error(self, exc: Exception) -> None:
        """An ICMP error reached the UDP socket: the error queue names each destination."""
        if self._udp is None:
            return
        with self._udp.get_extra_info("socket").dup() as errors:  # for recvmsg
            errors.setblocking(False)
            with contextlib.suppress(OSError):  # drained (EAGAIN), or not Linux
                while True:
                    name = errors.recvmsg(0, 512, socket.MSG_ERRQUEUE)[3]
                    host = str(name[0]).removeprefix("::ffff:")
                    destination = Address("udp", host, int(name[1]))
                    if destination in self._udp_flows:
                        self._report(destination, f"flow failed: {exc}")

    def _report(self, destination: Address, reason: str) -> None:
        logger.debug("- cannot send to %s: %s", destination, reason)
        try:
            if self._on_error is not None:
                self._on_error(destination, reason)
        except Exception:
            logger.exception("x error handler failed for %s", destination)


class _PortTaken(OSError):
    """TCP could not get the ephemeral port UDP got: try another one."""


def _listen_error(
    host: str, port: int, protocol: str, exc: OSError, kind: type[OSError] = OSError
) -> OSError:
    error = kind(f"cannot listen on {format_host(host)}:{port}/{protocol}: {exc.strerror or exc}")
    error.errno = exc.errno
    return error


class _UdpProtocol(asyncio.DatagramProtocol):
    def __init__(self, owner: SipTransport, loop: asyncio.AbstractEventLoop) -> None:
        self._owner = owner
        self.closed: asyncio.Future[None] = loop.create_future()

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        if not data.strip(b"\r\n"):
            return  # an RFC 5626 CRLF keepalive (or an empty datagram)
        self._owner._received(data, Address("udp", str(addr[0]), int(addr[1])))

    def error_received(self, exc: Exception) -> None:
        logger.debug("- udp error: %s", exc)
        self._owner._udp_error(exc)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed.done():
            self.closed.set_result(None)


class _Connection(asyncio.Protocol):
    """One TCP connection: framing, ping/pong, idle timer, and whether it is a flow; one
    opened to us also has its first message's deadline and a bound on unread answers."""

    def __init__(
        self, owner: SipTransport, loop: asyncio.AbstractEventLoop, destination: Address | None
    ) -> None:
        self._owner = owner
        self._loop = loop
        self.outbound = destination is not None
        self.address = destination or Address("tcp", "", 0)
        self.wrote = False
        self.flow = False  # keepalives are sent on it (module docstring)
        self.trusted = False  # opened to us from a trusted source (its pool in the limits)
        self._greeted = self.outbound  # a complete message came (opened to us) or not needed
        self._pong_due: float | None = None  # a ping waits for its pong until then
        self._ponged = False  # the peer answered a ping: a missing pong counts
        self.lost: asyncio.Future[None] = loop.create_future()
        self._framer = StreamFramer()
        self._transport: asyncio.Transport | None = None
        self._attached = False
        self._timer: asyncio.TimerHandle | None = None
        self._first_due: asyncio.TimerHandle | None = None
        self._last = loop.time()

    @property
    def closing(self) -> bool:
        return self._transport is None or self._transport.is_closing()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)
        peer = transport.get_extra_info("peername")
        if not self.outbound and peer:
            self.address = Address("tcp", str(peer[0]), int(peer[1]))
        if self.address.transport == "tls":  # the handshake is done: RFC 5922 before any SIP
            name = self._owner.tls_name(self.address)
            problem = identity_problem(transport.get_extra_info("peercert"), name)
            if problem is not None:
                self._owner._refuse(self, problem)
                self._transport.abort()
                return
        if not peer or not self._owner._attach(self):
            transport.close()
            return
        self._attached = True
        self._last = self._loop.time()
        self._timer = self._loop.call_at(self._last + self._owner.idle_timeout, self._on_idle)
        if not self.outbound:
            self._transport.set_write_buffer_limits(high=INBOUND_WRITE_BUFFER)
            self._first_due = self._loop.call_at(
                self._last + self._owner.first_message_timeout, self._on_no_message
            )

    def data_received(self, data: bytes) -> None:
        if not self._attached or self.closing:
            return
        self._last = self._loop.time()
        self._ponged |= self._pong_due is not None  # a pong, or any sign of life, answers
        self._pong_due = None
        try:
            frames = self._framer.feed(data)
        except RemoteProtocolError as exc:
            if self.outbound:
                logger.warning("x %s: %s; closing the connection", self.address, exc)
            else:  # anyone can open one: counted, not logged each time
                self._owner._count_refusal(self, "closed: not a SIP stream", str(exc))
            self.close()
            return
        for frame in frames:
            transport = self._transport
            if transport is None or transport.is_closing():
                return  # cut off while an earlier frame was handled: the rest is moot
            if frame != PING:
                if not self._greeted:
                    self._greeted = True
                    self._cancel_first_due()
                self._owner._received(frame, self.address)
            else:  # a pong is not ours to report failures for
                transport.write(PONG)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._cancel_first_due()
        if self._attached:
            self._attached = False
            self._owner._detach(self, exc)
        if not self.lost.done():
            self.lost.set_result(None)

    def write(self, data: bytes) -> None:
        assert self._transport is not None
        self._last = self._loop.time()
        self.wrote = True
        self._transport.write(data)

    def ping(self) -> None:
        self.flow = True
        self.write(KEEPALIVE)
        if self._pong_due is None:
            self._pong_due = self._last + self._owner.pong_timeout
            self._loop.call_at(self._pong_due, self._check_pong)

    def _check_pong(self) -> None:
        if self._pong_due is not None and self._loop.time() >= self._pong_due:
            self._pong_due = None
            if self._ponged:
                logger.warning("x %s: ping not answered, closing", self.address)
                self.abort()

    def close(self) -> None:
        if self._transport is not None and not self._transport.is_closing():
            self._transport.close()

    def abort(self) -> None:
        if self._transport is not None and not self.lost.done():
            self._transport.abort()

    def pause_writing(self) -> None:
        """More than the write buffer's high mark is unsent: the peer does not read. One that
        opened the connection to us is cut off; on ours the flow's pings decide."""
        if not self.outbound and self._attached and not self.closing:
            self._owner._count_refusal(self, "closed: answers left unread")
            self.abort()

    def _cancel_first_due(self) -> None:
        if self._first_due is not None:
            self._first_due.cancel()
            self._first_due = None

    def _on_no_message(self) -> None:
        self._first_due = None
        if self._greeted or self.closing:
            return
        timeout = self._owner.first_message_timeout
        self._owner._count_refusal(self, f"closed: no SIP message within {timeout:g} s")
        self.abort()

    def _on_idle(self) -> None:
        # Re-armed lazily: traffic only moves _last; the timer checks it when it fires.
        self._timer = None
        if self.flow:
            return  # a flow (the registration's) is never closed for idleness
        due = self._last + self._owner.idle_timeout
        if self._loop.time() < due:
            self._timer = self._loop.call_at(due, self._on_idle)
            return
        logger.debug("- %s idle for %.0f s, closing", self.address, self._owner.idle_timeout)
        self.close()
