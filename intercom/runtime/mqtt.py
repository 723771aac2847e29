"""The MQTT adapter of the publisher port: Home Assistant through aiomqtt (paho underneath).

Theory of operation
===================

:class:`MqttPublisher` is a :class:`~intercom.app.publisher.Publisher`. The daemon hands it
rings and states; they go into an :class:`~intercom.app.home_assistant.Outbox` and one task
sends them. Nothing the daemon calls awaits the broker, so a broker that is down, slow or
restarting never delays a call: the doorbell has placed its call before it tells us.

The task, while not stopped: connect (the will ``offline`` on the availability topic, retained;
aiomqtt runs paho's blocking connect in an executor thread), subscribe to the button's command
topic and Home Assistant's ``<prefix>/status``, queue every discovery config, ``online`` and
the current state, then send whatever the outbox holds, in its order, each publication QoS 1 and
awaited (at most :data:`PUBLISH_TIMEOUT`) in this task only. A lost connection (an error, a
missed keepalive) ends the session; the next attempt follows a jittered backoff doubling from
1 s to 60 s (:func:`~intercom.app.home_assistant.reconnect_delay`) and sends everything retained
again, and the rings that waited (none older than a minute). Home Assistant's birth message
(``online`` on ``<prefix>/status``) queues every config and state again.

A received ``PRESS`` on the command topic calls ``on_open`` on the loop: the daemon opens the
door exactly as ``intercom open`` does. On a clean stop the outbox is flushed, ``offline``
published and the connection closed with a DISCONNECT (so the will is not sent), all within
:data:`STOP_TIMEOUT`; a broker that is away is not waited for.

Logging: the first failure to connect is a warning, and a failure with another reason; the same
failure again is a debug line (one per attempt, at most one a minute). The password is never
logged: aiomqtt's and paho's messages do not carry it, and the settings keep it out of ``repr``.
aiomqtt is imported by this module only, and the daemon imports this module only when
``INTERCOM_MQTT_HOST`` is set.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import socket

import aiomqtt

from intercom import __version__
from intercom.app.home_assistant import (
    Command,
    HomeAssistant,
    Outbox,
    reconnect_delay,
)
from intercom.app.publisher import OnOpen
from intercom.app.settings import Settings
from intercom.app.status import DoorbellStatus

__all__ = ["DEFAULT_PORT", "MqttPublisher"]

logger = logging.getLogger(__name__)

DEFAULT_PORT = 1883
KEEPALIVE = 30
"""Seconds between pings: a broker that went away unseen is noticed within 1.5 of them."""
CONNECT_TIMEOUT = 10.0
PUBLISH_TIMEOUT = 10.0
STOP_TIMEOUT = 2.0
"""Seconds a clean stop gives the last states and ``offline`` to reach the broker."""


class MqttPublisher:
    """The door as a Home Assistant device over MQTT (see the module docstring).

    Args:
        settings: ``mqtt_host`` must be set.
        host_name: for the default base topic; the machine's by default.
        rng: draws the backoff's jitter.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        host_name: str | None = None,
        rng: random.Random | None = None,
    ) -> None:
        assert settings.mqtt_host is not None, "MQTT is not configured"
        self._host = settings.mqtt_host.host
        self._port = settings.mqtt_host.port or DEFAULT_PORT
        self._user = settings.mqtt_user
        self._password = settings.mqtt_password
        self.ha = HomeAssistant(settings, host_name or socket.gethostname(), __version__)
        self.outbox = Outbox()
        self._rng = rng or random.Random()
        self._on_open: OnOpen | None = None
        self._status: DoorbellStatus | None = None
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._stop = asyncio.Event()
        self._had_session = False
        self.connected = False  #: a session is up (subscribed)
        self.connections = 0  #: sessions so far

    @property
    def broker(self) -> str:
        return f"{self._host}:{self._port}"

    # -- the port -------------------------------------------------------------------------------

    def start(self, on_open: OnOpen) -> None:
        self._on_open = on_open
        self._task = asyncio.get_running_loop().create_task(self._run(), name="mqtt")

    def ring(self, now: float, wall: float) -> None:
        self.outbox.ring(self.ha.ring(wall), now)
        if not self.connected:
            logger.info("x MQTT: broker %s not connected; the ring waits (%d waiting)",
                        self.broker, self.outbox.pending)  # fmt: skip
        self._wake.set()

    def update(self, status: DoorbellStatus) -> None:
        if status == self._status:
            return
        self._status = status
        self.outbox.state(self.ha.state(status))
        self._wake.set()

    async def stop(self) -> None:
        task = self._task
        if task is None:
            return
        self._task = None
        self._stop.set()
        self._wake.set()
        if self.connected:  # let the session flush and say offline
            with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(asyncio.shield(task), STOP_TIMEOUT)
        if not task.done():
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError, aiomqtt.MqttError):
            await task

    # -- the task -------------------------------------------------------------------------------

    async def _run(self) -> None:
        failures = 0
        last_reason: str | None = None
        while not self._stop.is_set():
            try:
                await self._session()
                return  # a clean stop
            except aiomqtt.MqttError as exc:
                reason = str(exc) or type(exc).__name__
            except Exception as exc:  # a bug: never let it take the doorbell down; say it, retry
                logger.exception("x MQTT: the session failed")
                reason = f"{type(exc).__name__}: {exc}"
            self.connected = False
            if self._stop.is_set():
                return
            if self._had_session:  # it was up: start the backoff afresh, and say it
                self._had_session, failures, last_reason = False, 0, None
            delay = reconnect_delay(failures, self._rng.random())
            failures += 1
            level = logging.DEBUG if reason == last_reason else logging.WARNING
            last_reason = reason
            logger.log(level, "x MQTT: broker %s: %s%s; retrying in %.1f s", self.broker,
                       reason, _hint(reason), delay)  # fmt: skip
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), delay)

    async def _session(self) -> None:
        ha = self.ha
        will = aiomqtt.Will(ha.topics.availability, ha.availability(False).payload, 1, True)
        async with aiomqtt.Client(
            self._host, self._port, username=self._user, password=self._password,
            identifier=ha.topics.node, will=will, keepalive=KEEPALIVE, timeout=CONNECT_TIMEOUT,
            logger=logging.getLogger(f"{__name__}.client"),
        ) as client:  # fmt: skip
            for topic in ha.subscriptions():
                await client.subscribe(topic, qos=1)
            self._had_session = True
            self.connected = True
            self.connections += 1
            logger.info("- MQTT: connected to %s as %s (discovery under %s/)", self.broker,
                        ha.topics.node, ha.topics.prefix)  # fmt: skip
            self._announce()
            receiver = asyncio.create_task(self._receive(client), name="mqtt-receive")
            try:
                await self._send(client, receiver)
            finally:
                self.connected = False
                receiver.cancel()
                with contextlib.suppress(asyncio.CancelledError, aiomqtt.MqttError):
                    await receiver

    def _announce(self) -> None:
        """Every config, ``online`` and the current state, to be sent (again)."""
        self.outbox.setup([*self.ha.discovery(), self.ha.availability(True)])
        self.outbox.resend_all()
        self._wake.set()

    async def _send(self, client: aiomqtt.Client, receiver: asyncio.Task[None]) -> None:
        loop = asyncio.get_running_loop()
        while True:
            if receiver.done():
                receiver.result()  # its MqttError: the connection is lost
                raise aiomqtt.MqttError("the connection ended")
            message = self.outbox.next(loop.time())
            if message is not None:
                await client.publish(
                    message.topic, message.payload, qos=message.qos, retain=message.retain,
                    timeout=PUBLISH_TIMEOUT,
                )  # fmt: skip
                self.outbox.sent(message)
                logger.debug("> MQTT %s (%d bytes)", message.topic, len(message.payload))
                continue
            if self._stop.is_set():
                await client.publish(
                    self.ha.topics.availability, self.ha.availability(False).payload, qos=1,
                    retain=True, timeout=STOP_TIMEOUT,
                )  # fmt: skip
                logger.info("- MQTT: offline")
                return
            self._wake.clear()
            await self._wake.wait()

    async def _receive(self, client: aiomqtt.Client) -> None:
        try:
            async for message in client.messages:
                payload = message.payload if isinstance(message.payload, bytes) else b""
                command = self.ha.command(str(message.topic), payload, message.retain)
                if command is Command.OPEN_DOOR:
                    logger.info("< MQTT: open door (%s)", message.topic)
                    if self._on_open is not None:
                        self._on_open()
                elif command is Command.HOME_ASSISTANT_ONLINE:
                    logger.info("< MQTT: Home Assistant started; sending discovery again")
                    self._announce()
        finally:
            self._wake.set()  # the sender notices the end of the connection


def _hint(reason: str) -> str:
    lowered = reason.lower()
    if "not authori" in lowered or "bad user name or password" in lowered:
        return " (check INTERCOM_MQTT_USER and INTERCOM_MQTT_PASSWORD)"
    return ""
