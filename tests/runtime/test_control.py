"""The control socket over a real Unix socket: commands, mode 0660, malformed requests."""

from __future__ import annotations

import asyncio
import os
import socket
import stat
from pathlib import Path
from typing import Any

import pytest

from intercom.errors import IntercomError
from intercom.runtime.control import ControlError, ControlServer, send_command

pytestmark = pytest.mark.timeout(10)


class Daemon:
    def __init__(self) -> None:
        self.commands: list[str] = []

    def __call__(self, command: str) -> dict[str, Any]:
        self.commands.append(command)
        if command == "open":
            raise IntercomError("door locked out for 300 s")
        if command == "status":
            return {"status": {"call": {"state": "idle"}}}
        return {}


async def _raw(path: str, payload: bytes) -> bytes:
    reader, writer = await asyncio.open_unix_connection(path)
    writer.write(payload)
    await writer.drain()
    line = await reader.readline()
    writer.close()
    return line


def test_commands_round_trip_and_errors_are_replies(tmp_path: Path) -> None:
    path = str(tmp_path / "control.sock")
    daemon = Daemon()

    async def main() -> None:
        server = ControlServer(path, daemon)
        await server.start()
        try:
            assert stat.S_IMODE(os.stat(path).st_mode) == 0o660
            assert await send_command(path, "press") == {"ok": True}
            reply = await send_command(path, "status")
            assert reply["status"] == {"call": {"state": "idle"}}
            with pytest.raises(ControlError, match="locked out"):
                await send_command(path, "open")
            assert b'"not a JSON object"' in await _raw(path, b"nonsense\n")
            assert b"unknown command 'reboot'" in await _raw(path, b'{"command": "reboot"}\n')
            assert b'"ok": false' in await _raw(path, b"[1, 2]\n")
        finally:
            await server.close()
        assert not os.path.exists(path)

    asyncio.run(main())
    assert daemon.commands == ["press", "status", "open"]  # malformed requests changed nothing


def test_no_daemon_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ControlError, match="not running"):
        asyncio.run(send_command(str(tmp_path / "none.sock"), "status"))


def test_a_stale_socket_is_replaced_but_a_live_daemon_is_not(tmp_path: Path) -> None:
    path = str(tmp_path / "control.sock")
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(path)
    stale.close()  # the file stays, nobody listens: a crashed daemon's leftover

    async def main() -> None:
        first = ControlServer(path, Daemon())
        await first.start()
        try:
            with pytest.raises(ControlError, match="another intercom is running"):
                await ControlServer(path, Daemon()).start()
        finally:
            await first.close()

    asyncio.run(main())


def test_missing_directory_and_oversized_lines(tmp_path: Path) -> None:
    with pytest.raises(ControlError, match="does not exist"):
        asyncio.run(ControlServer(str(tmp_path / "no" / "c.sock"), Daemon()).start())
    path = str(tmp_path / "control.sock")
    daemon = Daemon()

    async def main() -> None:
        server = ControlServer(path, daemon)
        await server.start()
        try:
            assert await _raw(path, b"x" * 10_000 + b"\n") == b""  # hung up on
            assert await send_command(path, "press") == {"ok": True}  # still serving
        finally:
            await server.close()

    asyncio.run(main())
    assert daemon.commands == ["press"]
