"""The control socket: ``intercom press|hangup|open|status`` talking to the running daemon.

A Unix stream socket, created mode 0660 in the service's RuntimeDirectory: whoever can write
to it can ring and open the door, so only the service's user and group may. One request per
line, one reply per line, both small JSON objects::

    > {"command": "status"}
    < {"ok": true, "status": {...}}
    > {"command": "open"}
    < {"ok": true}
    > nonsense
    < {"ok": false, "error": "not a JSON object"}

A malformed request gets an error reply and changes nothing. Lines are capped at
``MAX_LINE`` bytes and an idle connection is closed after ``IDLE_TIMEOUT`` seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

from intercom.errors import IntercomError

logger = logging.getLogger(__name__)

COMMANDS = ("press", "hangup", "open", "status")
MAX_LINE = 4096
IDLE_TIMEOUT = 10.0
SOCKET_MODE = 0o660

Handler = Callable[[str], dict[str, Any]]
"""Runs one command and returns the reply's fields (``ok`` is added)."""


class ControlError(IntercomError):
    """The daemon could not be reached, or refused the request."""


class ControlServer:
    """Serves the control socket for the daemon."""

    def __init__(self, path: str, handler: Handler) -> None:
        self.path = path
        self._handler = handler
        self._server: asyncio.AbstractServer | None = None

    async def start(self) -> None:
        """Bind the socket mode 0660 (ControlError with the reason if that is impossible)."""
        path = Path(self.path)
        if not path.parent.is_dir():
            raise ControlError(
                f"control socket {self.path}: the directory {path.parent} does not exist "
                "(systemd creates /run/intercom; elsewhere set INTERCOM_CONTROL_SOCKET)"
            )
        _remove_stale(path)
        previous = os.umask(0o117)  # no window in which the socket is wider than 0660
        try:
            self._server = await asyncio.start_unix_server(
                self._serve, path=self.path, limit=MAX_LINE
            )
        except OSError as exc:
            raise ControlError(f"control socket {self.path}: {exc.strerror or exc}") from exc
        finally:
            os.umask(previous)
        os.chmod(self.path, SOCKET_MODE)
        logger.info("- control socket %s", self.path)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
            with contextlib.suppress(OSError):
                os.unlink(self.path)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                try:
                    line = await asyncio.wait_for(reader.readline(), IDLE_TIMEOUT)
                except (TimeoutError, ValueError, asyncio.LimitOverrunError):
                    break  # idle, or a line beyond MAX_LINE: hang up
                if not line:
                    break
                writer.write(json.dumps(self._reply(line)).encode() + b"\n")
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError, OSError):
                await writer.wait_closed()

    def _reply(self, line: bytes) -> dict[str, Any]:
        try:
            request = json.loads(line)
        except (ValueError, UnicodeDecodeError):
            return _refuse("not a JSON object")
        if not isinstance(request, dict):
            return _refuse("not a JSON object")
        command = request.get("command")
        if command not in COMMANDS:
            return _refuse(f"unknown command {command!r}; known: {', '.join(COMMANDS)}")
        try:
            return {"ok": True, **self._handler(command)}
        except IntercomError as exc:
            return _refuse(str(exc))


def _refuse(error: str) -> dict[str, Any]:
    logger.info("x control request refused: %s", error)
    return {"ok": False, "error": error}


def _remove_stale(path: Path) -> None:
    """A socket file left by a crash: remove it unless a daemon still answers on it."""
    try:
        mode = path.lstat().st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(mode):
        raise ControlError(f"control socket {path}: exists and is not a socket")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        try:
            probe.connect(str(path))
        except OSError:
            path.unlink()
            return
    raise ControlError(f"control socket {path}: another intercom is running")


async def send_command(path: str, command: str, timeout: float = 5.0) -> dict[str, Any]:
    """One request to the running daemon; ControlError when it cannot be reached."""
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_unix_connection(path), timeout)
    except FileNotFoundError as exc:
        raise ControlError(f"the intercom is not running (no control socket at {path})") from exc
    except PermissionError as exc:
        raise ControlError(
            f"no permission for {path}: run as the intercom user or a member of its group"
        ) from exc
    except (OSError, TimeoutError) as exc:
        raise ControlError(f"the intercom at {path} does not answer: {exc}") from exc
    try:
        writer.write(json.dumps({"command": command}).encode() + b"\n")
        await writer.drain()
        line = await asyncio.wait_for(reader.readline(), timeout)
    except (OSError, TimeoutError) as exc:
        raise ControlError(f"the intercom at {path} does not answer: {exc}") from exc
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
    try:
        reply = json.loads(line)
    except ValueError as exc:
        raise ControlError(f"the intercom at {path} sent no valid reply") from exc
    if not isinstance(reply, dict):
        raise ControlError(f"the intercom at {path} sent no valid reply")
    if not reply.get("ok"):
        raise ControlError(str(reply.get("error", "refused")))
    return reply
