"""mosquitto 2.0 (Debian package) as the MQTT broker of the Home Assistant tests, and a watcher.

One :class:`Mosquitto` is one broker process on 127.0.0.1 at a free port, with a configuration
written by the test: anonymous, or with a password file made by ``mosquitto_passwd`` in the
test's directory. No persistence: a restarted broker has forgotten every retained message, so a
test sees whether the door publishes its discovery again. :meth:`Mosquitto.restart` stops it
and starts it on the same port.

Facts about mosquitto 2.0.11 this relies on (tried on loopback): started as root it switches to
the user ``mosquitto`` unless ``user`` names another, and that user could not read the test's
files, so the configuration names the current user; ``-c FILE`` keeps it in the foreground with
its log on stderr (``log_dest stderr``); SIGTERM stops it at once.

:class:`Watcher` is a client of our own (aiomqtt) that subscribes to everything and keeps every
message with its topic, payload and retain flag, for the test to wait on.
"""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import aiomqtt

from .peer_support import TCP, bindable, claim_ports, require_program

__all__ = ["Mosquitto", "Received", "Watcher"]

CONFIG = """\
listener {port} 127.0.0.1
allow_anonymous {anonymous}
{password_file}
persistence false
user {user}
log_dest stderr
log_type error
log_type warning
log_type notice
log_type information
connection_messages true
"""


class Mosquitto:
    """A mosquitto broker on 127.0.0.1 (see the module docstring).

    ``users``: user name -> password; none: anonymous clients are allowed.
    """

    def __init__(self, workdir: Path, *, users: dict[str, str] | None = None) -> None:
        self.workdir = workdir
        self.users = users or {}
        self.port = claim_ports([TCP])
        self._proc: asyncio.subprocess.Process | None = None

    @property
    def address(self) -> str:
        """``host:port`` as INTERCOM_MQTT_HOST."""
        return f"127.0.0.1:{self.port}"

    @property
    def log_file(self) -> Path:
        return self.workdir / "mosquitto.log"

    def log(self) -> str:
        try:
            return self.log_file.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    async def _write_config(self) -> Path:
        self.workdir.mkdir(parents=True, exist_ok=True)
        password_line = ""
        if self.users:
            passwords = self.workdir / "passwords"
            passwords.unlink(missing_ok=True)
            passwords.touch(mode=0o600)
            for user, password in self.users.items():
                process = await asyncio.create_subprocess_exec(
                    require_program("mosquitto_passwd", "mosquitto"), "-b", str(passwords),
                    user, password, stdin=asyncio.subprocess.DEVNULL,
                    stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
                )  # fmt: skip
                out, _ = await asyncio.wait_for(process.communicate(), 10)
                assert process.returncode == 0, out.decode(errors="replace")
            password_line = f"password_file {passwords}"
        config = self.workdir / "mosquitto.conf"
        config.write_text(
            CONFIG.format(
                port=self.port,
                anonymous="false" if self.users else "true",
                password_file=password_line,
                user=getpass.getuser(),
            )
        )
        return config

    async def start(self, timeout: float = 10.0) -> None:
        """Start the broker; return once it listens."""
        config = await self._write_config()
        with open(self.log_file, "ab") as log:
            self._proc = await asyncio.create_subprocess_exec(
                require_program("mosquitto", "mosquitto"), "-c", str(config),
                stdin=asyncio.subprocess.DEVNULL, stdout=log, stderr=log,
            )  # fmt: skip
        deadline = time.monotonic() + timeout
        while bindable(self.port, TCP):
            if self._proc.returncode is not None:
                raise AssertionError(f"mosquitto exited at start:\n{self.log()[-3000:]}")
            if time.monotonic() > deadline:
                raise AssertionError(f"mosquitto did not listen in {timeout} s:\n{self.log()}")
            await asyncio.sleep(0.02)

    async def stop(self) -> None:
        """SIGTERM, then SIGKILL; returns once the port is free again."""
        proc = self._proc
        if proc is None or proc.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            proc.terminate()
        try:
            await asyncio.wait_for(proc.wait(), 5)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()

    async def restart(self) -> None:
        await self.stop()
        await self.start()

    async def __aenter__(self) -> Mosquitto:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


@dataclass(frozen=True)
class Received:
    topic: str
    payload: bytes
    retain: bool
    at: float  #: monotonic time of arrival


class Watcher:
    """Subscribes to ``topics`` (everything by default) and keeps every message in order."""

    def __init__(
        self,
        broker: Mosquitto,
        *,
        user: str | None = None,
        password: str | None = None,
        topics: tuple[str, ...] = ("#",),
    ) -> None:
        self.broker = broker
        self.user = user
        self.password = password
        self.topics = topics
        self.messages: list[Received] = []
        self._client: aiomqtt.Client | None = None
        self._task: asyncio.Task[None] | None = None
        self._arrived = asyncio.Event()

    async def __aenter__(self) -> Watcher:
        self._client = aiomqtt.Client(
            "127.0.0.1", self.broker.port, username=self.user, password=self.password,
            timeout=5,
        )  # fmt: skip
        await self._client.__aenter__()
        for topic in self.topics:
            await self._client.subscribe(topic, qos=1)
        self._task = asyncio.create_task(self._collect(self._client))
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, aiomqtt.MqttError):
                await self._task
        if self._client is not None:
            with contextlib.suppress(aiomqtt.MqttError):
                await self._client.__aexit__(None, None, None)

    async def _collect(self, client: aiomqtt.Client) -> None:
        async for message in client.messages:
            payload = message.payload if isinstance(message.payload, bytes) else b""
            self.messages.append(
                Received(str(message.topic), payload, message.retain, time.monotonic())
            )
            self._arrived.set()

    async def publish(self, topic: str, payload: bytes, *, retain: bool = False) -> None:
        assert self._client is not None
        await self._client.publish(topic, payload, qos=1, retain=retain)

    def on(self, topic: str) -> list[Received]:
        return [m for m in self.messages if m.topic == topic]

    async def until(
        self, predicate: Callable[[Received], bool], timeout: float, what: str, *, start: int = 0
    ) -> Received:
        """The first message from index ``start`` on that ``predicate`` holds for."""
        deadline = time.monotonic() + timeout
        index = start
        while True:
            while index < len(self.messages):
                message = self.messages[index]
                index += 1
                if predicate(message):
                    return message
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                seen = [(m.topic, m.payload[:60], m.retain) for m in self.messages[start:]]
                raise AssertionError(f"no {what} within {timeout} s; seen: {seen}")
            self._arrived.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._arrived.wait(), remaining)

    async def message(
        self, topic: str, payload: bytes | None, timeout: float, *, start: int = 0
    ) -> Received:
        """The first message on ``topic`` (with ``payload``, unless None) from ``start`` on."""
        return await self.until(
            lambda m: m.topic == topic and (payload is None or m.payload == payload),
            timeout,
            f"{topic} {payload!r}",
            start=start,
        )
