"""Strangers' TCP connections against `intercom run` over TCP: the door still registers and
calls.

Every TCP connection that others open to the door once counted against the door's own: 64
connections from one stranger, and the door could open none to its registrar or to a call
target. Here the door runs with ``INTERCOM_SIP_TRANSPORT=tcp``, its registrar (a sipp over
TCP on 127.0.0.1, the trusted server) not yet up, so its first REGISTER fails. Then strangers
open connections to the door's SIP port and hold them, each with an OPTIONS answered (a
valid message, so no deadline closes them): 64 from 127.0.0.66, 6 from each of 127.0.2.1 to
127.0.2.8. Only 4 from one address and 32 in all are kept; the rest are closed at once. Then
the registrar starts: the door's retry opens a new connection and registers; a press opens
another, to a callee (sipp over TCP), and connects. The strangers' connections are still
held meanwhile, and the log names each of them at most twice (once at once, once with a count).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from pathlib import Path

import pytest

from .daemon_process import sipp_door
from .sipp_harness import Sipp, free_port, require_sipp

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

HOST = "127.0.0.1"
STEP_TIMEOUT = 5.0
GREEDY = "127.0.0.66"
GREEDY_CONNECTIONS = 64
OTHERS = [f"127.0.2.{n}" for n in range(1, 9)]
OTHER_CONNECTIONS = 6
PER_SOURCE = 4  # intercom.runtime.inbound_limits
MAX_STRANGERS = 32


@pytest.fixture(autouse=True, scope="module")
def _sipp_installed() -> None:
    require_sipp()


def options(source: str, port: int, n: int) -> bytes:
    return (
        f"OPTIONS sip:door@{HOST} SIP/2.0\r\n"
        f"Via: SIP/2.0/TCP {source}:{port};branch=z9hG4bKtcp{n}x{port}\r\n"
        f"From: <sip:x@{source}>;tag=t{n}\r\nTo: <sip:door@{HOST}>\r\n"
        f"Call-ID: tcp-{n}-{port}@{source}\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\n"
        f"Content-Length: 0\r\n\r\n"
    ).encode()


class Stranger:
    """One TCP connection a stranger opened to the door."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.source, self.port = writer.get_extra_info("sockname")[:2]

    @classmethod
    async def connect(cls, source: str, door: tuple[str, int]) -> Stranger:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(*door, local_addr=(source, 0)), STEP_TIMEOUT
        )
        return cls(reader, writer)

    async def answered(self, n: int) -> bool:
        """Send an OPTIONS: True when the door answers it, False when it closed the
        connection instead (EOF or reset) or left it unanswered."""
        try:
            self.writer.write(options(self.source, self.port, n))
            head = await asyncio.wait_for(self.reader.readuntil(b"\r\n\r\n"), STEP_TIMEOUT)
        except (asyncio.IncompleteReadError, ConnectionError, TimeoutError):
            return False
        assert head.startswith(b"SIP/2.0 200 "), head
        return True

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(ConnectionError, TimeoutError):
            await asyncio.wait_for(self.writer.wait_closed(), STEP_TIMEOUT)


def lines_about(log: str, host: str) -> list[str]:
    """Log lines naming ``host`` (127.0.2.1 is not 127.0.2.10)."""
    pattern = re.compile(re.escape(host) + r"(?![0-9])")
    return [line for line in log.splitlines() if pattern.search(line)]


async def _register_and_call_while_strangers_hold_connections(tmp_path: Path) -> None:
    registrar = Sipp("registrar_digest.xml", transport="tcp", timeout=90, recv_timeout=80)
    callee = Sipp("callee_answer_bye_from_ua.xml", transport="tcp", timeout=90, recv_timeout=80)
    door_port = free_port()
    daemon = sipp_door(
        tmp_path, registrar.port, callee.port, door_port, INTERCOM_SIP_TRANSPORT="tcp"
    )
    door = (HOST, door_port)
    strangers: list[Stranger] = []
    async with callee:
        try:
            await daemon.start()
            status = await daemon.until(
                lambda s: s["registration"]["state"] != "registering", 10, "first REGISTER"
            )
            assert status["registration"]["state"] == "failed", status  # nobody listens yet

            # The flood: every connection tries one OPTIONS; the kept ones are answered.
            sources = [GREEDY] * GREEDY_CONNECTIONS + [
                host for host in OTHERS for _ in range(OTHER_CONNECTIONS)
            ]
            kept: list[Stranger] = []
            for n, source in enumerate(sources):
                stranger = await Stranger.connect(source, door)
                strangers.append(stranger)
                if await stranger.answered(n):
                    kept.append(stranger)

            # The registrar comes up: the door's retry opens a connection of its own.
            await registrar.start()
            status = await daemon.until(
                lambda s: s["registration"]["state"] == "registered", 15, "registration"
            )
            # A press: a new connection, to the callee.
            pressed = time.monotonic()
            assert (await daemon.cli("press"))[0] == 0
            await daemon.until(lambda s: s["call"]["state"] == "connected", 10, "connected")
            took = time.monotonic() - pressed
            assert (await daemon.cli("hangup"))[0] == 0
            status = await daemon.until(
                lambda s: s["last_call"]["outcome"] is not None, 10, "the call's end"
            )
            assert status["last_call"]["outcome"] == "answered", status
            # Only a few per address were kept, held all along, and still are.
            by_source = {host: sum(s.source == host for s in kept) for host in [GREEDY, *OTHERS]}
            assert by_source[GREEDY] == PER_SOURCE, by_source
            assert len(kept) == MAX_STRANGERS, by_source
            assert all(count <= PER_SOURCE for count in by_source.values()), by_source
            for n, stranger in enumerate(kept):
                assert await stranger.answered(1000 + n), (stranger.source, stranger.port)
            assert await daemon.terminate() == 0  # un-REGISTERs over its flow
            registered = await registrar.wait(timeout=15)
            called = await callee.wait(timeout=15)
        finally:
            for stranger in strangers:
                await stranger.close()
            await daemon.kill()
            if registrar.running:
                await registrar.stop()
    assert registered.ok, registered.explain()
    assert called.ok, called.explain()
    print(f"press connected after {took:.2f} s while strangers held {len(kept)} connections")

    log = daemon.log()
    assert "Traceback" not in log, log
    assert "too many connections" not in log, log
    greedy = lines_about(log, GREEDY)
    assert len(greedy) == 2, "\n".join(greedy)  # once at once, once with a count (at stop)
    assert "x tcp connection from 127.0.0.66 refused: 4 open from it" in greedy[0], greedy
    refused = GREEDY_CONNECTIONS - PER_SOURCE - 1  # the first refusal was announced
    assert re.search(
        rf"x {refused} tcp connections from 127\.0\.0\.66 in the last \d+ s refused: 4 open",
        greedy[1],
    ), greedy
    for host in OTHERS:
        about = lines_about(log, host)
        assert len(about) <= 2, "\n".join(about)


def test_the_door_registers_and_calls_over_tcp_while_strangers_hold_connections(
    tmp_path: Path,
) -> None:
    asyncio.run(_register_and_call_while_strangers_hold_connections(tmp_path))
