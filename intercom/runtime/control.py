"""The control socket: ``intercom press|hangup|open|status|watch`` talking to the running daemon.

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

``watch`` turns the connection into a subscription: the reply (with the status) is followed by
one JSON line per event the daemon broadcasts (:meth:`ControlServer.broadcast`), until the
client hangs up::

    > {"command": "watch"}
    < {"ok": true, "status": {...}}
    < {"time": "2026-12-07T10:15:02+01:00", "event": "ring"}
    < {"time": "2026-12-07T10:15:02+01:00", "event": "call", "state": "calling", ...}

A watcher never slows the daemon: each has a queue of at most ``WATCH_QUEUE`` events; what does
not fit is dropped and the watcher later gets ``{"event": "dropped", "count": N}``; one that
does not take its lines for ``WATCH_STALL`` seconds is disconnected. At most ``MAX_WATCHERS``
watch at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import stat
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from intercom.errors import IntercomError

logger = logging.getLogger(__name__)

COMMANDS = ("press", "hangup", "open", "status", "watch")
MAX_LINE = 4096
IDLE_TIMEOUT = 10.0
SOCKET_MODE = 0o660
WATCH_QUEUE = 64
WATCH_STALL = 10.0
MAX_WATCHERS = 8

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
        self._watchers: set[_Watcher] = set()

    @property
    def watching(self) -> bool:
        """Somebody follows the events (so they are worth building)."""
        return bool(self._watchers)

    def broadcast(self, event: dict[str, Any]) -> None:
        """Hand ``event`` to every watcher; returns at once (see the module docstring)."""
        line = json.dumps(event).encode() + b"\n"
        for watcher in self._watchers:
            watcher.put(line)

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
        for watcher in list(self._watchers):
            watcher.put(None)  # the end: the watcher's connection closes
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
                reply = self._reply(line)
                watch = reply.get("ok") and reply.pop("watch", False)
                if watch and len(self._watchers) >= MAX_WATCHERS:
                    reply = _refuse(f"{MAX_WATCHERS} watchers already")
                    watch = False
                writer.write(json.dumps(reply).encode() + b"\n")
                await writer.drain()
                if watch:
                    await self._watch(reader, writer)
                    break
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError, OSError):
                await writer.wait_closed()

    async def _watch(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Push events to one watcher until it hangs up, stalls or the daemon stops."""
        watcher = _Watcher()
        self._watchers.add(watcher)
        hung_up = asyncio.ensure_future(reader.read(MAX_LINE))  # EOF: the watcher is gone
        try:
            while True:
                line = await watcher.next(hung_up)
                if line is None:
                    break
                writer.write(line)
                try:
                    await asyncio.wait_for(writer.drain(), WATCH_STALL)
                except TimeoutError:
                    logger.info("x a watcher took no events for %.0f s: disconnected",
                                WATCH_STALL)  # fmt: skip
                    break
        finally:
            self._watchers.discard(watcher)
            hung_up.cancel()

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
            reply = {"ok": True, **self._handler(command)}
        except IntercomError as exc:
            return _refuse(str(exc))
        if command == "watch":
            reply["watch"] = True  # taken off again by _serve
        return reply


class _Watcher:
    """One watcher's bounded queue of lines; None ends it."""

    def __init__(self) -> None:
        self._queue: asyncio.Queue[bytes | None] = asyncio.Queue(WATCH_QUEUE)
        self.dropped = 0

    def put(self, line: bytes | None) -> None:
        try:
            self._queue.put_nowait(line)
        except asyncio.QueueFull:
            if line is None:  # the end still has to arrive
                self._queue.get_nowait()
                self._queue.put_nowait(None)
            else:
                self.dropped += 1

    async def next(self, hung_up: asyncio.Future[bytes]) -> bytes | None:
        """The next line to send (a note of what was dropped first); None: stop."""
        if self.dropped:
            note = {"event": "dropped", "count": self.dropped}
            self.dropped = 0
            return json.dumps(note).encode() + b"\n"
        if not self._queue.empty():
            return self._queue.get_nowait()
        getting = asyncio.ensure_future(self._queue.get())
        waiting: set[asyncio.Future[Any]] = {getting, hung_up}
        done, _ = await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
        if getting not in done:
            getting.cancel()
            return None  # the watcher hung up (or wrote something: it should not)
        return getting.result()


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
    """One request to the running daemon; ControlError (saying what happened) when it cannot
    be reached, does not answer in ``timeout`` seconds, or refuses."""
    reader, writer = await _connect(path, timeout)
    try:
        return await _request(path, reader, writer, command, timeout)
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


async def watch(path: str, timeout: float = 5.0) -> AsyncIterator[dict[str, Any]]:
    """``intercom watch``: the status first (``{"status": ...}``), then every event the daemon
    pushes, until it stops (ControlError: it went away)."""
    reader, writer = await _connect(path, timeout)
    try:
        yield await _request(path, reader, writer, "watch", timeout)
        while True:
            try:
                line = await reader.readline()
            except (OSError, ValueError) as exc:
                raise ControlError(f"the connection to the intercom at {path} broke: "
                                   f"{_why(exc)}") from exc  # fmt: skip
            if not line:
                raise ControlError(f"the intercom at {path} closed the connection (stopped?)")
            with contextlib.suppress(ValueError):
                event = json.loads(line)
                if isinstance(event, dict):
                    yield event
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


async def _connect(path: str, timeout: float) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    try:
        return await asyncio.wait_for(
            asyncio.open_unix_connection(path, limit=MAX_LINE * 64), timeout
        )
    except FileNotFoundError as exc:
        raise ControlError(f"the intercom is not running (no control socket at {path})") from exc
    except PermissionError as exc:
        raise ControlError(
            f"no permission for {path}: run as the intercom user or a member of its group"
        ) from exc
    except ConnectionRefusedError as exc:
        raise ControlError(
            f"the intercom is not running: {path} refuses connections (left by a daemon "
            "that stopped?)"
        ) from exc
    except TimeoutError as exc:
        raise ControlError(
            f"the intercom at {path} did not accept the connection within {timeout:g} s "
            "(busy or hung? see journalctl -u intercom)"
        ) from exc
    except OSError as exc:
        raise ControlError(f"the intercom at {path} cannot be reached: {_why(exc)}") from exc


async def _request(
    path: str,
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    command: str,
    timeout: float,
) -> dict[str, Any]:
    try:
        writer.write(json.dumps({"command": command}).encode() + b"\n")
        await writer.drain()
        line = await asyncio.wait_for(reader.readline(), timeout)
    except TimeoutError as exc:
        raise ControlError(
            f"the intercom at {path} did not answer within {timeout:g} s "
            "(busy or hung? see journalctl -u intercom)"
        ) from exc
    except (OSError, ValueError) as exc:
        raise ControlError(f"the intercom at {path} did not answer: {_why(exc)}") from exc
    if not line:
        raise ControlError(f"the intercom at {path} closed the connection without a reply")
    try:
        reply = json.loads(line)
    except ValueError as exc:
        raise ControlError(f"the intercom at {path} sent no valid reply") from exc
    if not isinstance(reply, dict):
        raise ControlError(f"the intercom at {path} sent no valid reply")
    if not reply.get("ok"):
        error = reply.get("error")
        raise ControlError(str(error) if error else f"the intercom at {path} refused {command}")
    return reply


def _why(exc: BaseException) -> str:
    """An exception as a few words, never empty."""
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__
