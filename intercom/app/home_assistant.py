"""Home Assistant over MQTT, the pure part: topics, discovery configs, state, rings, commands.

Theory of operation
===================

The door is one Home Assistant *device* announced by MQTT discovery (design.md, "Home Assistant
over MQTT"). Its configs are published retained under
``<prefix>/<component>/<node id>/<object id>/config`` and name the same ``device`` and the same
availability topic:

=============================  =================  ==================================================
entity (component/object id)   name               topic it follows
=============================  =================  ==================================================
``event/ring``                 Doorbell           ``<base>/ring``: ``{"event_type": "ring", ...}``
``button/open_door``           Open door          commands on ``<base>/door/open`` (``PRESS``)
``sensor/registration``        Registration       ``<base>/registration`` (status' object)
``sensor/call``                Call               ``<base>/call``
``sensor/last_call``           Last call          ``<base>/last_call``
=============================  =================  ==================================================

``<base>`` is ``INTERCOM_MQTT_TOPIC`` (default ``intercom/<host name>``), the node id is the base
topic with every character outside ``[A-Za-z0-9_-]`` made ``_``, and each ``unique_id`` is the
node id and the object id. The state topics carry the objects of ``intercom status --json``
(``registration``, ``call``, ``last_call``) as JSON, retained; each sensor's state is the
object's ``state`` (or ``outcome``) and the whole object its attributes. Availability
(``<base>/availability``) is ``online`` while the daemon runs, ``offline`` as the connection's
will and on a clean stop, retained. A ring is an event, QoS 1, never retained (a retained ring
would ring again in every Home Assistant that starts). The button exists only with a door
relay; without one its config is published empty, which removes a stale one.

Commands come in on two topics: ``PRESS`` on the button's command topic opens the door, and
``online`` on ``<prefix>/status`` (Home Assistant's birth message) asks for every config and
state again. A *retained* message on the command topic is ignored: the door opens for a press
now, never for one the broker kept from the past.

:class:`Outbox` is what the MQTT adapter sends, decided without I/O: rings in order (at most
:data:`MAX_RINGS`, none older than :data:`RING_MAX_AGE` seconds), retained items coalesced to
their latest value per topic and re-sent whole after a reconnect or Home Assistant's birth.
:func:`reconnect_delay` is the jittered, capped backoff between connection attempts.
"""

from __future__ import annotations

import json
import logging
import re
from collections import deque
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Any

from intercom.app.outcome import OUTCOMES
from intercom.app.settings import Settings
from intercom.app.status import CALL_STATES, REGISTRATION_STATES, DoorbellStatus, render_status

__all__ = [
    "CALL_STATES",
    "MAX_RINGS",
    "OFFLINE",
    "ONLINE",
    "PRESS",
    "REGISTRATION_STATES",
    "RING_MAX_AGE",
    "Command",
    "HomeAssistant",
    "Message",
    "Outbox",
    "Topics",
    "base_topic",
    "node_id",
    "reconnect_delay",
]

logger = logging.getLogger(__name__)

ONLINE = b"online"
OFFLINE = b"offline"
PRESS = b"PRESS"
"""The button's press payload (Home Assistant's default ``payload_press``)."""
MAX_RINGS = 16
"""Rings kept while the broker is away; the oldest goes first when more come."""
RING_MAX_AGE = 60.0
"""Seconds after which a ring not yet delivered is dropped: news of a visitor long gone."""
RECONNECT_FIRST = 1.0
RECONNECT_MAX = 60.0

_NODE_CHARS = re.compile(r"[^A-Za-z0-9_-]")
_HOST_CHARS = re.compile(r"[^A-Za-z0-9_.-]")


@dataclass(frozen=True, slots=True)
class Message:
    """One MQTT publication."""

    topic: str
    payload: bytes
    retain: bool
    qos: int = 1


class Command(Enum):
    OPEN_DOOR = "open door"  #: the "Open door" button was pressed
    HOME_ASSISTANT_ONLINE = "home assistant online"  #: its birth: send every config again


def base_topic(configured: str, host_name: str) -> str:
    """``INTERCOM_MQTT_TOPIC``, or ``intercom/<host name>`` when it is not set."""
    if configured:
        return configured
    host = _HOST_CHARS.sub("-", host_name.split(".")[0]) or "door"
    return f"intercom/{host}"


def node_id(base: str) -> str:
    """The discovery node id of the base topic: only ``[A-Za-z0-9_-]``."""
    return _NODE_CHARS.sub("_", base)


def reconnect_delay(attempt: int, draw: float) -> float:
    """Seconds before connection attempt ``attempt + 1`` after ``attempt`` failed ones (0:
    the first failure): doubling from 1 s up to 60 s, jittered to between half and all of it
    by ``draw`` in [0, 1), so that doors restarted together do not hammer a broker together."""
    base = min(RECONNECT_FIRST * 2.0 ** min(attempt, 16), RECONNECT_MAX)
    return base * (0.5 + 0.5 * draw)


@dataclass(frozen=True, slots=True)
class Topics:
    """Every topic of one door."""

    base: str
    prefix: str
    node: str

    @property
    def availability(self) -> str:
        return f"{self.base}/availability"

    @property
    def ring(self) -> str:
        return f"{self.base}/ring"

    @property
    def open_door(self) -> str:
        return f"{self.base}/door/open"

    @property
    def birth(self) -> str:
        """Home Assistant's own status (``online`` when it starts)."""
        return f"{self.prefix}/status"

    def state(self, name: str) -> str:
        return f"{self.base}/{name}"

    def config(self, component: str, object_id: str) -> str:
        return f"{self.prefix}/{component}/{self.node}/{object_id}/config"


class HomeAssistant:
    """The messages of one door (see the module docstring).

    Args:
        settings: ``mqtt_topic``, ``mqtt_discovery_prefix``, ``name`` and whether a door relay
            is configured (the button) are read.
        host_name: this machine's name, for the default base topic.
        sw_version: the intercom's version, shown on the device.
    """

    def __init__(self, settings: Settings, host_name: str, sw_version: str) -> None:
        base = base_topic(settings.mqtt_topic, host_name)
        self.topics = Topics(base, settings.mqtt_discovery_prefix, node_id(base))
        self.name = settings.name
        self.has_relay = settings.door_relay_pin is not None
        self.sw_version = sw_version

    # -- what goes out ------------------------------------------------------------------------

    def discovery(self) -> list[Message]:
        """Every config, retained (the button's empty without a relay: it removes it)."""
        t = self.topics
        messages = [
            self._config("event", "ring", {
                "name": "Doorbell", "device_class": "doorbell", "event_types": ["ring"],
                "state_topic": t.ring, "icon": "mdi:doorbell",
            }),
            self._config("sensor", "registration", self._enum_sensor(
                "Registration", "registration", "state", REGISTRATION_STATES, "mdi:phone-check"
            )),
            self._config("sensor", "call", self._enum_sensor(
                "Call", "call", "state", CALL_STATES, "mdi:phone-ring"
            )),
            self._config("sensor", "last_call", self._enum_sensor(
                "Last call", "last_call", "outcome", OUTCOMES, "mdi:phone-log"
            )),
        ]  # fmt: skip
        button = t.config("button", "open_door")
        if self.has_relay:
            messages.append(self._config("button", "open_door", {
                "name": "Open door", "command_topic": t.open_door,
                "payload_press": PRESS.decode(), "qos": 1, "icon": "mdi:door-open",
            }))  # fmt: skip
        else:
            messages.append(Message(button, b"", retain=True))
        return messages

    def availability(self, online: bool) -> Message:
        """``online`` or ``offline``, retained (``offline`` is also the connection's will)."""
        return Message(self.topics.availability, ONLINE if online else OFFLINE, retain=True)

    def state(self, status: DoorbellStatus) -> list[Message]:
        """The status objects the sensors follow, retained."""
        shown = render_status(status)
        return [
            Message(self.topics.state(name), _json(shown[name]), retain=True)
            for name in ("registration", "call", "last_call")
        ]

    def ring(self, wall: float) -> Message:
        """The event of one ring at ``wall`` (Unix time), never retained."""
        at = datetime.fromtimestamp(wall).astimezone().isoformat(timespec="seconds")
        return Message(self.topics.ring, _json({"event_type": "ring", "at": at}), retain=False)

    # -- what comes in ------------------------------------------------------------------------

    def subscriptions(self) -> tuple[str, ...]:
        """The topics to subscribe to."""
        return (self.topics.open_door, self.topics.birth)

    def command(self, topic: str, payload: bytes, retained: bool) -> Command | None:
        """The command a received message asks for; None: nothing to do (logged why)."""
        t = self.topics
        if topic == t.open_door:
            if retained:
                logger.warning("x MQTT: retained message on %s ignored: the door opens for a "
                               "press now, never for one the broker kept", topic)  # fmt: skip
            elif payload.strip() == PRESS:
                return Command.OPEN_DOOR
            else:
                logger.info("x MQTT: %s: payload of %d bytes is not %s; ignored", topic,
                            len(payload), PRESS.decode())  # fmt: skip
        elif topic == t.birth:
            if payload.strip() == ONLINE and not retained:  # a retained one: just sent anyway
                return Command.HOME_ASSISTANT_ONLINE
        else:
            logger.debug("x MQTT: message on %s ignored", topic)
        return None

    # -- helpers ------------------------------------------------------------------------------

    def _config(self, component: str, object_id: str, fields: dict[str, Any]) -> Message:
        t = self.topics
        config = {
            **fields,
            "unique_id": f"{t.node}_{object_id}",
            "availability_topic": t.availability,
            "payload_available": ONLINE.decode(),
            "payload_not_available": OFFLINE.decode(),
            "device": {
                "identifiers": [t.node],
                "name": self.name,
                "manufacturer": "intercom",
                "model": "SIP door intercom",
                "sw_version": self.sw_version,
            },
            "origin": {"name": "intercom", "sw_version": self.sw_version},
        }
        return Message(t.config(component, object_id), _json(config), retain=True)

    def _enum_sensor(
        self, name: str, topic: str, field: str, options: tuple[str, ...], icon: str
    ) -> dict[str, Any]:
        state = self.topics.state(topic)
        return {
            "name": name, "state_topic": state, "value_template": f"{{{{ value_json.{field} }}}}",
            "json_attributes_topic": state, "device_class": "enum", "options": list(options),
            "icon": icon,
        }  # fmt: skip


def _json(value: object) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


class Outbox:
    """What the MQTT adapter sends next (see the module docstring); times are monotonic.

    The adapter loops: :meth:`next`, publish it, :meth:`sent`. Rings wait in order behind the
    retained items still to send after a (re)connect: Home Assistant must know the event entity
    before it fires. Then rings, then changed states. A retained item is taken as sent only
    with the payload that was sent: a newer one that came meanwhile goes out next.
    """

    def __init__(self) -> None:
        self._rings: deque[tuple[float, Message]] = deque()
        self._setup: dict[str, Message] = {}  # discovery configs and availability
        self._states: dict[str, Message] = {}
        self._sent: dict[str, bytes] = {}  # retained topic -> the payload the broker has
        self.dropped = 0  #: rings dropped, too old or too many

    def ring(self, message: Message, now: float) -> None:
        """A ring to deliver; the oldest waiting one is dropped when :data:`MAX_RINGS` wait."""
        if len(self._rings) >= MAX_RINGS:
            self._rings.popleft()
            self._drop("more than %d rings waiting", MAX_RINGS)
        self._rings.append((now, message))

    def setup(self, messages: list[Message]) -> None:
        """Discovery configs or availability: sent before rings and states."""
        for message in messages:
            self._setup[message.topic] = message

    def state(self, messages: list[Message]) -> None:
        """Retained states; only the latest payload of each topic is sent."""
        for message in messages:
            self._states[message.topic] = message

    def resend_all(self) -> None:
        """After a (re)connect or Home Assistant's birth: every retained item again."""
        self._sent.clear()

    def next(self, now: float) -> Message | None:
        """The next message to publish (None: nothing); rings past their age are dropped."""
        for message in self._setup.values():
            if self._sent.get(message.topic) != message.payload:
                return message
        while self._rings and now - self._rings[0][0] > RING_MAX_AGE:
            self._rings.popleft()
            self._drop("not delivered within %.0f s", RING_MAX_AGE)
        if self._rings:
            return self._rings[0][1]
        for message in self._states.values():
            if self._sent.get(message.topic) != message.payload:
                return message
        return None

    def sent(self, message: Message) -> None:
        """``message`` (the last one :meth:`next` returned) reached the broker."""
        if message.retain:
            self._sent[message.topic] = message.payload
        elif self._rings and self._rings[0][1] is message:
            self._rings.popleft()

    @property
    def pending(self) -> int:
        """Rings waiting to be delivered."""
        return len(self._rings)

    def _drop(self, why: str, *args: object) -> None:
        self.dropped += 1
        logger.warning("x MQTT: ring dropped: " + why, *args)
