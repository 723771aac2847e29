"""Tests for intercom.runtime.transport (RFC 3261 §18 over UDP/TCP, RFC 5626 keepalives)."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import re
import socket
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from intercom.runtime import inbound_limits
from intercom.runtime import transport as transport_module
from intercom.runtime.tls import client_context
from intercom.runtime.transport import KEEPALIVE, SipTransport
from intercom.sip.core import Address

TIMEOUT = 5.0
LOGGER = "intercom.runtime.transport"
LIMITS_LOGGER = "intercom.runtime.inbound_limits"


def msg(n: int, body: bytes = b"") -> bytes:
    return (
        f"OPTIONS sip:door@127.0.0.1 SIP/2.0\r\nCSeq: {n} OPTIONS\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body


class Peer:
    """A SipTransport plus queues of what it received and reported."""

    def __init__(self, **options: Any) -> None:
        """``options``: SipTransport's keyword arguments (timeouts, trusted sources, TLS)."""
        self.inbox: asyncio.Queue[tuple[bytes, Address]] = asyncio.Queue()
        self.errors: asyncio.Queue[tuple[Address, str]] = asyncio.Queue()
        self.transport = SipTransport(
            lambda data, source: self.inbox.put_nowait((data, source)),
            on_error=lambda dest, reason: self.errors.put_nowait((dest, reason)),
            **options,
        )

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> Peer:
        await self.transport.start(host, port)
        return self

    def addr(self, transport: str) -> Address:
        return Address(transport, self.transport.local_host, self.transport.local_port)

    async def receive(self) -> tuple[bytes, Address]:
        return await asyncio.wait_for(self.inbox.get(), TIMEOUT)

    async def error(self) -> tuple[Address, str]:
        return await asyncio.wait_for(self.errors.get(), TIMEOUT)


async def udp_barrier(peer: Peer) -> None:
    """Let the loop run until a datagram to ourselves has come back."""
    peer.transport.send(msg(999), peer.addr("udp"))
    assert (await peer.receive())[0] == msg(999)


async def raw_client(
    port: int, host: str = "127.0.0.1", source: str | None = None
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, Address]:
    """A TCP connection to ``host``:``port``, from the loopback address ``source`` if given
    (Linux answers all of 127/8: each is another host)."""
    local = None if source is None else (source, 0)
    reader, writer = await asyncio.wait_for(
        asyncio.open_connection(host, port, local_addr=local), TIMEOUT
    )
    name = writer.get_extra_info("sockname")
    return reader, writer, Address("tcp", name[0], name[1])


async def closed_writer(writer: asyncio.StreamWriter) -> None:
    writer.close()
    await asyncio.wait_for(writer.wait_closed(), TIMEOUT)


async def abandoned(writer: asyncio.StreamWriter) -> None:
    """Close a client the door may have refused (a write to it may have drawn a reset)."""
    writer.close()
    with contextlib.suppress(ConnectionError):
        await asyncio.wait_for(writer.wait_closed(), TIMEOUT)


def run(test: Callable[[], Awaitable[None]]) -> None:
    async def wrapper() -> None:
        await asyncio.wait_for(test(), 4 * TIMEOUT)

    asyncio.run(wrapper())


def ipv6_loopback_available() -> bool:
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as s:
            s.bind(("::1", 0))
    except OSError:
        return False
    return True


def test_udp_round_trip_reports_source() -> None:
    async def body() -> None:
        a, b = await Peer().start(), await Peer().start()
        a.transport.send_keepalive(b.addr("udp"))  # dropped silently by b
        a.transport.send(msg(1), b.addr("udp"))
        data, source = await b.receive()
        assert data == msg(1)
        assert source == Address("udp", "127.0.0.1", a.transport.local_port)
        b.transport.send(msg(2), source)
        assert await a.receive() == (msg(2), Address("udp", "127.0.0.1", b.transport.local_port))
        assert b.inbox.empty()
        assert a.transport.connection_count == b.transport.connection_count == 0
        await a.transport.close()
        await b.transport.close()

    run(body)


def test_tcp_reply_goes_back_over_the_inbound_connection() -> None:
    async def body() -> None:
        a, b = await Peer().start(), await Peer().start()
        b_tcp = b.addr("tcp")
        a.transport.send(msg(1), b_tcp)
        a.transport.send(msg(2), b_tcp)  # queued while connecting, same connection
        data, source = await b.receive()
        assert data == msg(1)
        assert source.transport == "tcp" and source.host == "127.0.0.1"
        assert source.port != a.transport.local_port  # the connection's ephemeral port
        assert await b.receive() == (msg(2), source)
        assert (a.transport.connection_count, b.transport.connection_count) == (1, 1)

        b.transport.send(msg(3), source)
        assert await a.receive() == (msg(3), b_tcp)
        assert (a.transport.connection_count, b.transport.connection_count) == (1, 1)
        a.transport.send(msg(4), b_tcp)
        assert await b.receive() == (msg(4), source)
        assert (a.transport.connection_count, b.transport.connection_count) == (1, 1)
        assert a.errors.empty() and b.errors.empty()
        await a.transport.close()
        await b.transport.close()

    run(body)


def test_tcp_framing_of_coalesced_and_split_writes() -> None:
    async def body() -> None:
        b = await Peer().start()
        _, writer, me = await raw_client(b.transport.local_port)
        writer.write(msg(1, b"one") + msg(2, b"two!"))
        assert await b.receive() == (msg(1, b"one"), me)
        assert await b.receive() == (msg(2, b"two!"), me)
        split = msg(3, b"v=0\r\n")
        for i in range(len(split)):
            writer.write(split[i : i + 1])
            await asyncio.wait_for(writer.drain(), TIMEOUT)
        assert await b.receive() == (split, me)
        assert b.inbox.empty()
        assert b.transport.connection_count == 1
        await closed_writer(writer)
        await b.transport.close()

    run(body)


def test_tcp_ping_gets_pong_and_lone_crlf_is_ignored() -> None:
    async def body() -> None:
        b = await Peer().start()
        reader, writer, me = await raw_client(b.transport.local_port)
        writer.write(b"\r\n\r\n")
        assert await asyncio.wait_for(reader.readexactly(2), TIMEOUT) == b"\r\n"
        writer.write(b"\r\n" + msg(1))  # a pong in front of a message
        assert await b.receive() == (msg(1), me)
        writer.write(b"\r\n\r")
        writer.write(b"\n")  # a ping split across writes
        assert await asyncio.wait_for(reader.readexactly(2), TIMEOUT) == b"\r\n"
        assert b.inbox.empty()
        await closed_writer(writer)
        await b.transport.close()

    run(body)


def test_outbound_connection_keepalive_and_incoming_data() -> None:
    async def body() -> None:
        accepted: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = asyncio.Queue()

        async def handle(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            accepted.put_nowait((r, w))

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        dest = Address("tcp", "127.0.0.1", server.sockets[0].getsockname()[1])
        a = await Peer().start()
        a.transport.send_keepalive(dest)  # no connection: no flow to keep alive
        assert await a.error() == (dest, "flow failed: no connection for a keepalive")
        a.transport.send(msg(1), dest)
        reader, writer = await asyncio.wait_for(accepted.get(), TIMEOUT)
        assert await asyncio.wait_for(reader.readexactly(len(msg(1))), TIMEOUT) == msg(1)
        a.transport.send_keepalive(dest)
        assert await asyncio.wait_for(reader.readexactly(4), TIMEOUT) == b"\r\n\r\n"
        writer.write(b"\r\n" + msg(2))  # pong, then a response
        assert await a.receive() == (msg(2), dest)
        assert a.inbox.empty() and a.errors.empty()
        assert a.transport.connection_count == 1
        await a.transport.close()
        assert await asyncio.wait_for(reader.read(), TIMEOUT) == b""
        await closed_writer(writer)
        server.close()
        await server.wait_closed()

    run(body)


def test_framing_error_closes_only_that_connection(caplog: pytest.LogCaptureFixture) -> None:
    async def body() -> None:
        b = await Peer().start()
        bad_reader, bad_writer, _ = await raw_client(b.transport.local_port)
        good_reader, good_writer, good = await raw_client(b.transport.local_port)
        good_writer.write(msg(1))
        assert await b.receive() == (msg(1), good)
        assert b.transport.connection_count == 2
        bad_writer.write(b"OPTIONS sip:x@127.0.0.1 SIP/2.0\r\nContent-Length: -1\r\n\r\n")
        assert await asyncio.wait_for(bad_reader.read(), TIMEOUT) == b""
        assert b.transport.connection_count == 1
        good_writer.write(msg(2))
        assert await b.receive() == (msg(2), good)
        b.transport.send(msg(3), good)
        assert await asyncio.wait_for(good_reader.readexactly(len(msg(3))), TIMEOUT) == msg(3)
        assert b.inbox.empty()
        await closed_writer(bad_writer)
        await closed_writer(good_writer)
        await b.transport.close()

    with caplog.at_level(logging.DEBUG):
        run(body)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and warnings[0].name == LIMITS_LOGGER
    text = warnings[0].getMessage()
    assert text.startswith("x tcp connection from 127.0.0.1 closed: not a SIP stream (")
    assert "Content-Length" in text


def test_send_to_closed_tcp_port_reports_error_once() -> None:
    async def body() -> None:
        with socket.socket() as s:  # a port nobody listens on
            s.bind(("127.0.0.1", 0))
            dest = Address("tcp", "127.0.0.1", s.getsockname()[1])
            a = await Peer().start()
            a.transport.send(msg(1), dest)
            a.transport.send(msg(2), dest)  # queued behind the same connect
            assert await a.error() == (dest, "connection refused")
            await udp_barrier(a)
            assert a.errors.empty()
            assert a.transport.connection_count == 0
            a.transport.send(msg(3), dest)  # a new attempt, a new report
            assert await a.error() == (dest, "connection refused")
            await a.transport.close()

    run(body)


def test_start_on_port_in_use_names_address_and_protocol() -> None:
    async def body() -> None:
        a = await Peer().start()
        port = a.transport.local_port
        with pytest.raises(OSError, match=rf"^cannot listen on 127\.0\.0\.1:{port}/udp: ") as info:
            await Peer().start("127.0.0.1", port)
        assert info.value.errno == errno.EADDRINUSE
        await a.transport.close()

        with socket.socket() as listener:  # TCP taken, UDP free
            listener.bind(("127.0.0.1", 0))
            listener.listen()
            port = listener.getsockname()[1]
            with pytest.raises(OSError, match=rf"^cannot listen on 127\.0\.0\.1:{port}/tcp: "):
                await Peer().start("127.0.0.1", port)
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                udp.bind(("127.0.0.1", port))  # the failed start released its UDP socket

    run(body)


def test_close_is_idempotent_and_leaves_nothing_behind() -> None:
    async def body() -> None:
        before = asyncio.all_tasks()  # this test and the run() wrapper
        a, b = await Peer().start(), await Peer().start()
        a.transport.send(msg(1), b.addr("tcp"))
        _, source = await b.receive()
        reader, writer, _ = await raw_client(b.transport.local_port)
        a.transport.send(msg(2), Address("tcp", "192.0.2.1", 5060))  # connect still pending
        assert len(asyncio.all_tasks() - before) == 1
        port = b.transport.local_port
        await b.transport.close()
        await b.transport.close()
        await a.transport.close()
        await a.transport.close()
        assert asyncio.all_tasks() == before
        assert a.transport.connection_count == b.transport.connection_count == 0
        assert a.errors.empty() and b.errors.empty()
        assert await asyncio.wait_for(reader.read(), TIMEOUT) == b""
        await closed_writer(writer)
        b.transport.send(msg(3), source)
        assert await b.error() == (source, "transport closed")
        again = await Peer().start("127.0.0.1", port)  # UDP and TCP sockets were released
        assert again.transport.local_port == port
        await again.transport.close()
        assert asyncio.all_tasks() == before

    run(body)


def test_idle_connection_is_closed() -> None:
    async def body() -> None:
        a, b = await Peer(idle_timeout=0.2).start(), await Peer(idle_timeout=0.2).start()
        a.transport.send(msg(1), b.addr("tcp"))
        await b.receive()
        reader, writer, _ = await raw_client(b.transport.local_port)
        assert await asyncio.wait_for(reader.read(), TIMEOUT) == b""
        await closed_writer(writer)
        await udp_barrier(a)
        assert a.transport.connection_count == 0
        assert b.transport.connection_count == 0
        await a.transport.close()
        await b.transport.close()

    run(body)


async def is_closed(reader: asyncio.StreamReader) -> bool:
    """Whether the door closed this connection (EOF or reset) within ``TIMEOUT``."""
    try:
        return await asyncio.wait_for(reader.read(), TIMEOUT) == b""
    except ConnectionResetError:
        return True


async def still_open(peer: Peer, writer: asyncio.StreamWriter, me: Address, n: int) -> None:
    """The connection carries a message to ``peer``: it was taken and is still open."""
    writer.write(msg(n))
    assert await peer.receive() == (msg(n), me)


def limit_lines(caplog: pytest.LogCaptureFixture, host: str) -> list[str]:
    """The connection log's lines naming ``host`` (127.0.0.6 is not 127.0.0.66)."""
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == LIMITS_LOGGER and f" {host} " in r.getMessage() + " "
    ]


def test_a_stranger_holds_at_most_four_connections(caplog: pytest.LogCaptureFixture) -> None:
    async def body() -> None:
        b = await Peer().start()
        port = b.transport.local_port
        held = [await raw_client(port, source="127.0.0.66") for _ in range(4)]
        for n, (_, writer, me) in enumerate(held):
            await still_open(b, writer, me, n)
        extra = [await raw_client(port, source="127.0.0.66") for _ in range(20)]
        for reader, _, _ in extra:  # over the cap: closed at once, before any message
            assert await is_closed(reader)
        other_reader, other_writer, other = await raw_client(port, source="127.0.0.67")
        await still_open(b, other_writer, other, 5)  # another address has its own share
        for n, (_, writer, me) in enumerate(held):
            await still_open(b, writer, me, 10 + n)
        assert b.transport.inbound_count == 5 and b.inbox.empty()
        await closed_writer(held[0][1])
        for _ in range(500):  # the closed one's place is free again once the door saw it go
            if b.transport.inbound_count == 4:
                break
            await asyncio.sleep(0.01)
        assert b.transport.inbound_count == 4
        _, again_writer, again = await raw_client(port, source="127.0.0.66")
        await still_open(b, again_writer, again, 20)
        for _, writer, _ in [*held[1:], *extra, (other_reader, other_writer, other)]:
            await abandoned(writer)
        await closed_writer(again_writer)
        await b.transport.close()

    with caplog.at_level(logging.DEBUG, logger=LIMITS_LOGGER):
        run(body)
    # Twenty refusals: one line at once, one with the count of the others at close.
    lines = limit_lines(caplog, "127.0.0.66")
    assert len(lines) == 2, lines
    assert lines[0] == (
        "x tcp connection from 127.0.0.66 refused: 4 open from it; more are counted and logged"
        " once a minute"
    )
    assert re.fullmatch(
        r"x 19 tcp connections from 127\.0\.0\.66 in the last \d+ s refused: 4 open from it",
        lines[1],
    ), lines[1]
    assert limit_lines(caplog, "127.0.0.67") == []


def test_strangers_together_are_capped_and_the_trusted_have_their_own_pool(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(inbound_limits, "MAX_STRANGERS", 6)

    async def body() -> None:
        b = await Peer(is_trusted_source=lambda host: host == "127.0.0.1").start()
        port = b.transport.local_port
        strangers = [
            await raw_client(port, source=f"127.0.0.{70 + n % 3}") for n in range(6)
        ]  # two from each of three addresses: within the per-source cap, the pool is full
        for n, (_, writer, me) in enumerate(strangers):
            await still_open(b, writer, me, n)
        late_reader, late_writer, _ = await raw_client(port, source="127.0.0.73")
        assert await is_closed(late_reader)
        trusted = [await raw_client(port, source="127.0.0.1") for _ in range(8)]
        for n, (_, writer, me) in enumerate(trusted):  # the server: more than 4, all taken
            await still_open(b, writer, me, 10 + n)
        assert b.transport.inbound_count == 14
        for _, writer, _ in [*strangers, *trusted]:
            await closed_writer(writer)
        await abandoned(late_writer)
        await b.transport.close()

    with caplog.at_level(logging.DEBUG, logger=LIMITS_LOGGER):
        run(body)
    assert limit_lines(caplog, "127.0.0.73") == [
        "x tcp connection from 127.0.0.73 refused: 6 open from untrusted sources; more are"
        " counted and logged once a minute"
    ]
    assert limit_lines(caplog, "127.0.0.1") == []


def test_the_door_opens_its_own_connections_whatever_strangers_hold(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(transport_module, "MAX_OUTBOUND_CONNECTIONS", 2)

    async def body() -> None:
        a, server = await Peer().start(), await Peer().start()
        port = a.transport.local_port
        flood = [  # 8 addresses x 6: the strangers' pool (32) full, and 16 more refused
            await raw_client(port, source=f"127.0.1.{1 + n // 6}") for n in range(48)
        ]
        for _, writer, _ in flood:
            writer.write(msg(0))
        for _ in range(32):
            await a.receive()
        assert a.transport.inbound_count == 32
        a.transport.send(msg(1), server.addr("tcp"))  # the registrar: a new connection
        data, _ = await server.receive()
        assert data == msg(1)
        third = await Peer().start()
        a.transport.send(msg(2), third.addr("tcp"))  # a call target: the second of ours
        assert (await third.receive())[0] == msg(2)
        assert a.transport.connection_count == 34 and a.errors.empty()
        fourth = Address("tcp", "127.0.0.1", 9)  # our own cap still holds, for ours alone
        a.transport.send(msg(3), fourth)
        assert await a.error() == (fourth, "too many connections")
        for _, writer, _ in flood:
            await abandoned(writer)
        for peer in (a, server, third):
            await peer.transport.close()

    with caplog.at_level(logging.WARNING, logger=LOGGER):
        run(body)
    warnings = [r.getMessage() for r in caplog.records if r.name == LOGGER]
    assert warnings == ["x tcp:127.0.0.1:9: 2 connections of ours open, not opening another"]


def test_a_connection_without_a_message_in_time_is_closed(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def body() -> None:
        a = await Peer(first_message_timeout=0.3).start()
        b = await Peer(first_message_timeout=0.3).start()
        a.transport.send(msg(1), b.addr("tcp"))  # a's own connection: no deadline on a's side
        assert (await b.receive())[0] == msg(1)
        port = b.transport.local_port
        slow_reader, slow_writer, _ = await raw_client(port, source="127.0.0.80")
        slow_writer.write(b"\r\n\r\n")  # a ping is answered, but is no message
        assert await asyncio.wait_for(slow_reader.readexactly(2), TIMEOUT) == b"\r\n"
        slow_writer.write(msg(2)[:20])  # a message that never ends (a slowloris)
        good_reader, good_writer, good = await raw_client(port, source="127.0.0.81")
        await still_open(b, good_writer, good, 3)
        loop = asyncio.get_running_loop()
        started = loop.time()
        assert await is_closed(slow_reader)
        assert loop.time() - started < 0.3 + 1.0
        await asyncio.sleep(0.4)  # past the deadline for the others too: they are kept
        await still_open(b, good_writer, good, 4)
        b.transport.send(msg(5), good)
        assert await asyncio.wait_for(good_reader.readexactly(len(msg(5))), TIMEOUT) == msg(5)
        b.transport.send(msg(6), a.addr("tcp"))  # b's outbound reply path still works
        assert (await a.receive())[0] == msg(6)
        assert a.transport.connection_count == 2  # its own, and the one b opened back
        assert b.inbox.empty()
        await closed_writer(slow_writer)
        await closed_writer(good_writer)
        await a.transport.close()
        await b.transport.close()

    with caplog.at_level(logging.DEBUG, logger=LIMITS_LOGGER):
        run(body)
    assert limit_lines(caplog, "127.0.0.80") == [
        "x tcp connection from 127.0.0.80 closed: no SIP message within 0.3 s; more are"
        " counted and logged once a minute"
    ]
    assert limit_lines(caplog, "127.0.0.81") == []


def test_a_peer_that_leaves_answers_unread_is_cut_off(caplog: pytest.LogCaptureFixture) -> None:
    answer = b"x" * (40 << 20)  # more than the kernel takes at once (tcp_wmem's max: 4 MiB)

    async def body() -> None:
        b: SipTransport | None = None

        def answer_hugely(data: bytes, source: Address) -> None:
            assert b is not None
            b.send(answer, source)  # one write: the kernel takes a part, the rest waits

        b = SipTransport(answer_hugely)
        await b.start("127.0.0.1", 0)
        reader, writer, _ = await raw_client(b.local_port, source="127.0.0.82")
        writer.write(msg(1) + 100 * KEEPALIVE)  # pings behind it, in the same segment
        received = 0
        with contextlib.suppress(ConnectionResetError):
            while chunk := await asyncio.wait_for(reader.read(1 << 20), TIMEOUT):
                received += len(chunk)
        assert received < len(answer)  # cut off, not served
        assert b.inbound_count == 0
        await abandoned(writer)
        await b.close()

    with caplog.at_level(logging.DEBUG):
        run(body)
    assert limit_lines(caplog, "127.0.0.82") == [
        "x tcp connection from 127.0.0.82 closed: answers left unread; more are counted and"
        " logged once a minute"
    ]
    # The pings after the message were not answered on the dead connection (asyncio would
    # log a line for each write to it).
    complaints = [r for r in caplog.records if r.name == "asyncio" and r.levelno > logging.DEBUG]
    assert [r.getMessage() for r in complaints] == []


def test_a_tls_handshake_that_never_ends_fails_within_the_connect_timeout(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(transport_module, "CONNECT_TIMEOUT", 0.3)

    async def body() -> None:
        silent, dest, accepted = await fake_server()  # takes the connection, says nothing
        tls = Address("tls", dest.host, dest.port)
        a = await Peer(tls_context=client_context(verify=False)).start()
        loop = asyncio.get_running_loop()
        started = loop.time()
        a.transport.send(msg(1), tls)
        _, writer = await asyncio.wait_for(accepted.get(), TIMEOUT)
        failed, reason = await a.error()
        assert failed == tls and reason.startswith("TLS with 127.0.0.1 failed: "), reason
        assert loop.time() - started < 0.3 + 1.0
        assert a.transport.connection_count == 0
        writer.close()
        await a.transport.close()
        silent.close()
        await silent.wait_closed()

    run(body)


@pytest.mark.skipif(not ipv6_loopback_available(), reason="IPv6 loopback ::1 cannot be bound")
def test_ipv6_loopback_udp_and_tcp() -> None:
    async def body() -> None:
        a, b = await Peer().start("[::1]"), await Peer().start("::1")
        assert a.transport.local_host == "::1"
        a.transport.send(msg(1), b.addr("udp"))
        assert await b.receive() == (msg(1), Address("udp", "::1", a.transport.local_port))
        a.transport.send(msg(2), b.addr("tcp"))
        data, source = await b.receive()
        assert data == msg(2) and source.host == "::1" and source.transport == "tcp"
        b.transport.send(msg(3), source)
        assert await a.receive() == (msg(3), b.addr("tcp"))
        assert str(b.addr("tcp")) == f"tcp:[::1]:{b.transport.local_port}"
        await a.transport.close()
        await b.transport.close()

    run(body)


async def fake_server() -> tuple[asyncio.Server, Address, asyncio.Queue[asyncio.StreamWriter]]:
    """A loopback TCP server that hands over each accepted connection's writer."""
    accepted: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = asyncio.Queue()

    async def handle(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        accepted.put_nowait((r, w))

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, Address("tcp", "127.0.0.1", server.sockets[0].getsockname()[1]), accepted


def test_flow_outlives_idle_timeout_and_its_close_is_reported() -> None:
    async def body() -> None:
        server, dest, accepted = await fake_server()
        a = await Peer(idle_timeout=0.2).start()
        a.transport.send(msg(1), dest)
        reader, writer = await asyncio.wait_for(accepted.get(), TIMEOUT)
        a.transport.send(KEEPALIVE, dest)  # the registration's ping: the connection is a flow
        assert await asyncio.wait_for(reader.readexactly(len(msg(1)) + 4), TIMEOUT) == (
            msg(1) + KEEPALIVE
        )
        other = await Peer().start()  # a connection without keepalives still idles out
        other.transport.send(msg(2), a.addr("tcp"))
        await a.receive()
        await asyncio.sleep(0.5)
        assert a.transport.connection_count == 1 and a.errors.empty()
        await closed_writer(writer)  # the registrar restarts
        assert await a.error() == (dest, "flow failed: connection closed")
        await other.transport.close()
        await a.transport.close()
        server.close()
        await server.wait_closed()

    run(body)


def test_missing_pong_fails_a_flow_that_ponged_before() -> None:
    async def body() -> None:
        server, dest, accepted = await fake_server()
        a = await Peer(pong_timeout=0.2).start()
        a.transport.send(msg(1), dest)
        reader, writer = await asyncio.wait_for(accepted.get(), TIMEOUT)
        a.transport.send_keepalive(dest)
        await asyncio.sleep(0.4)  # no pong from a peer that never ponged: no verdict
        assert a.transport.connection_count == 1 and a.errors.empty()
        a.transport.send_keepalive(dest)
        writer.write(b"\r\n")  # pong
        await asyncio.sleep(0.3)
        assert a.transport.connection_count == 1 and a.errors.empty()
        a.transport.send_keepalive(dest)  # now unanswered: the flow failed
        expected = msg(1) + 3 * KEEPALIVE
        assert await asyncio.wait_for(reader.readexactly(len(expected)), TIMEOUT) == expected
        assert await a.error() == (dest, "flow failed: connection closed")
        assert a.transport.connection_count == 0
        writer.close()
        await a.transport.close()
        server.close()
        await server.wait_closed()

    run(body)


def test_udp_keepalive_to_a_closed_port_fails_the_flow() -> None:
    async def body() -> None:
        a = await Peer().start()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.bind(("127.0.0.1", 0))
            closed = Address("udp", "127.0.0.1", probe.getsockname()[1])
        a.transport.send(msg(1), closed)  # not a flow: its ICMP error is nobody's business
        await udp_barrier(a)
        a.transport.send(KEEPALIVE, closed)  # the registrar's port: nobody listens there
        dest, reason = await a.error()
        assert dest == closed and reason.startswith("flow failed: ")
        await udp_barrier(a)
        assert a.errors.empty()
        await a.transport.close()

    run(body)


def test_an_unsupported_transport_is_reported_not_raised() -> None:
    async def body() -> None:
        a = await Peer().start()
        sctp = Address("sctp", "127.0.0.1", 5061)
        a.transport.send(msg(1), sctp)  # inside a send batch: must not raise
        assert await a.error() == (sctp, "transport sctp is not supported")
        tls = Address("tls", "127.0.0.1", 5061)
        a.transport.send(msg(1), tls)  # no TLS context: refused, never sent in clear
        assert await a.error() == (tls, "transport tls is not configured")
        await a.transport.close()

    run(body)
