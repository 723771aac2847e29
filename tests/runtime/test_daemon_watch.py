"""``intercom watch`` and what the daemon tells others: watchers of the control socket, the
call history across a restart (state.json), systemd's STATUS= line, and the journal's
priorities. The daemon runs in-process (mock GPIO, null audio) as in test_daemon.py."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from intercom.runtime import control
from intercom.runtime.control import ControlError, send_command, watch
from intercom.runtime.systemd import SystemdNotifier

from .test_daemon import RELAY_PIN, running_door, status, wait_until

pytestmark = pytest.mark.timeout(30)

TARGET = "sip:phone@127.0.0.1:9"  # nobody answers there: the call stays "calling"


class BusyPhone(asyncio.DatagramProtocol):
    """A phone on loopback that answers every INVITE with 486 Busy Here (and takes the ACK)."""

    def connection_made(self, transport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr) -> None:
        head = data.decode(errors="replace").split("\r\n\r\n", 1)[0].split("\r\n")
        if not head[0].startswith("INVITE "):
            return
        keep = [
            line
            for line in head[1:]
            if line.split(":", 1)[0].strip().lower() in ("via", "from", "call-id", "cseq")
        ]
        to = next(line for line in head[1:] if line.lower().startswith("to:"))
        reply = ["SIP/2.0 486 Busy Here", *keep, f"{to};tag=busy1", "Content-Length: 0", "", ""]
        self.transport.sendto("\r\n".join(reply).encode(), addr)


async def busy_phone() -> tuple[asyncio.DatagramTransport, str]:
    transport, _ = await asyncio.get_running_loop().create_datagram_endpoint(
        BusyPhone, local_addr=("127.0.0.1", 0)
    )
    return transport, f"sip:phone@127.0.0.1:{transport.get_extra_info('sockname')[1]}"


async def next_event(events, what: str) -> dict:
    return await asyncio.wait_for(anext(events), 5)


def test_a_watcher_gets_the_status_then_the_rings_calls_and_door_openings(tmp_path: Path) -> None:
    async def main() -> None:
        async with running_door(
            tmp_path, INTERCOM_CALL_TARGET=TARGET, INTERCOM_DOOR_RELAY_PIN=str(RELAY_PIN)
        ) as door:
            path = door.settings.control_socket
            events = watch(path)
            first = await next_event(events, "status")
            assert first["status"]["call"] == {"state": "idle"}
            await wait_until(lambda: door.control.watching, 2, "the watcher")
            await send_command(path, "press")
            ring = await next_event(events, "ring")
            assert ring["event"] == "ring" and ring["time"][-6] in "+-"
            assert (await next_event(events, "call"))["state"] == "calling"
            await send_command(path, "open")
            assert (await next_event(events, "door"))["event"] == "door opened"
            await send_command(path, "hangup")
            assert (await next_event(events, "ending"))["state"] == "ending"
            await events.aclose()
            await wait_until(lambda: not door.control.watching, 2, "the watcher gone")

    asyncio.run(main())


def test_a_watcher_that_reads_nothing_never_blocks_the_daemon(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(control, "WATCH_QUEUE", 4)

    async def main() -> None:
        async with running_door(tmp_path, INTERCOM_DOOR_RELAY_PIN=str(RELAY_PIN)) as door:
            path = door.settings.control_socket
            reader, writer = await asyncio.open_unix_connection(path)  # never reads again
            writer.write(b'{"command": "watch"}\n')
            await writer.drain()
            await wait_until(lambda: door.control.watching, 2, "the watcher")
            for _ in range(200):  # far more than the queue and the socket buffers hold
                door.control.broadcast({"event": "filler", "text": "x" * 2000})
            await send_command(path, "open")  # the daemon still answers at once
            assert (await status(door))["door"]["opened_count"] == 1
            lines = []
            while line := await asyncio.wait_for(reader.readline(), 5):
                lines.append(json.loads(line))
                if lines[-1].get("event") == "door opened":
                    break
            assert any(event.get("event") == "dropped" for event in lines)
            writer.close()

    asyncio.run(main())


def test_the_history_and_last_ring_survive_a_restart(tmp_path: Path) -> None:
    state = tmp_path / "state"

    async def main() -> None:
        phone, target = await busy_phone()
        settings = {"INTERCOM_CALL_TARGET": target, "INTERCOM_STATE_DIR": str(state)}
        async with running_door(tmp_path, **settings) as door:
            door.press()
            await wait_until(lambda: door.doorbell.state.value == "idle", 10, "the call's end")
            before = await status(door)
        phone.close()
        assert before["history"][0]["outcome"] == "busy"
        assert before["last_ring"] is not None
        async with running_door(tmp_path, **settings) as door:
            after = await status(door)
        assert after["history"] == before["history"]
        assert after["last_ring"] == before["last_ring"]
        kept = json.loads((state / "state.json").read_text())
        assert kept["door_lock"] == {"failures": 0, "locked_until": None}

    asyncio.run(main())


def test_systemd_hears_a_status_line_only_when_it_changes(tmp_path: Path) -> None:
    path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.setblocking(False)

    async def main() -> str:
        phone, target = await busy_phone()
        notifier = SystemdNotifier({"NOTIFY_SOCKET": str(path)})
        async with running_door(tmp_path, INTERCOM_CALL_TARGET=target, notifier=notifier) as door:
            door.press()
            door.status()
            door.press()  # ignored: no change, nothing sent
            await wait_until(lambda: door.doorbell.state.value == "idle", 10, "the call's end")
        phone.close()
        return target

    try:
        target = asyncio.run(main())
        sent = []
        while True:
            try:
                sent.append(sock.recv(512).decode())
            except BlockingIOError:
                break
    finally:
        sock.close()
    statuses = [m for m in sent if m.startswith(("READY=1", "STATUS="))]
    assert statuses == [
        "READY=1\nSTATUS=no SIP server: direct calls only",
        f"STATUS=calling {target}",
        "STATUS=no SIP server: direct calls only",
    ]


# -- the control socket's errors --------------------------------------------------------------


def test_a_socket_that_never_answers_is_a_timeout_with_a_message(tmp_path: Path) -> None:
    path = str(tmp_path / "mute.sock")

    async def main() -> str:
        server = await asyncio.start_unix_server(lambda r, w: None, path=path)  # accepts, mute
        async with server:
            with pytest.raises(ControlError) as caught:
                await send_command(path, "status", timeout=0.3)
        return str(caught.value)

    message = asyncio.run(main())
    assert message == (
        f"the intercom at {path} did not answer within 0.3 s (busy or hung? see journalctl "
        "-u intercom)"
    )


def test_a_socket_left_behind_is_refused_with_a_message(tmp_path: Path) -> None:
    path = tmp_path / "stale.sock"
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(path))
    stale.close()  # the file stays, nobody listens

    with pytest.raises(ControlError, match="refuses connections"):
        asyncio.run(send_command(str(path), "status"))


def test_a_daemon_that_hangs_up_without_a_reply_says_so(tmp_path: Path) -> None:
    path = str(tmp_path / "rude.sock")

    async def hang_up(reader, writer) -> None:
        await reader.readline()
        writer.close()

    async def main() -> None:
        server = await asyncio.start_unix_server(hang_up, path=path)
        async with server:
            with pytest.raises(ControlError, match="closed the connection without a reply"):
                await send_command(path, "status")

    asyncio.run(main())


# -- the journal --------------------------------------------------------------------------------

JOURNAL_CHILD = r"""
import logging, os, sys
st = os.fstat(2)
if sys.argv[1] == "journal":
    os.environ["JOURNAL_STREAM"] = f"{st.st_dev}:{st.st_ino}"
elif sys.argv[1] == "other":
    os.environ["JOURNAL_STREAM"] = f"{st.st_dev}:{st.st_ino + 1}"
from intercom.cli import _setup_logging
_setup_logging("DEBUG")
log = logging.getLogger("intercom.test")
log.debug("d"); log.info("i"); log.warning("w"); log.error("e"); log.critical("c")
try:
    raise ValueError("boom")
except ValueError:
    log.exception("failed")
"""


@pytest.mark.parametrize("where", ["journal", "other", "unset"])
def test_log_lines_carry_their_priority_only_into_the_journal(tmp_path: Path, where: str) -> None:
    log = tmp_path / "stderr"
    with open(log, "wb") as stderr:
        done = subprocess.run(
            [sys.executable, "-c", JOURNAL_CHILD, where], stderr=stderr, timeout=20,
            env={k: v for k, v in os.environ.items() if k != "JOURNAL_STREAM"},
        )  # fmt: skip
    assert done.returncode == 0
    lines = log.read_text().splitlines()
    plain = ["DEBUG intercom.test: d", "INFO intercom.test: i", "WARNING intercom.test: w",
             "ERROR intercom.test: e", "CRITICAL intercom.test: c",
             "ERROR intercom.test: failed"]  # fmt: skip
    if where == "journal":
        assert lines[:6] == [
            f"<{p}>{line}" for p, line in zip((7, 6, 4, 3, 2, 3), plain, strict=True)
        ]
        assert lines[6] == "<3>Traceback (most recent call last):"
        assert all(line.startswith("<3>") for line in lines[6:])  # each line of the traceback
    else:
        assert lines[:6] == plain
        assert not any(line.startswith("<") for line in lines)
