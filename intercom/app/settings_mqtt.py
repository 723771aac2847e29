"""The rules of the Home Assistant keys: ``INTERCOM_MQTT_*`` and ``INTERCOM_NAME``.

Read by :func:`intercom.app.settings._read_all` with the same :class:`ValueParser` as every other
key, so a bad value is one problem line (``KEY: ...``) among all the others and the default
stands in. :func:`read_mqtt` returns the six values; :func:`mqtt_warnings` adds what works but
is probably not meant (an account or topic for MQTT while no broker is set).

* ``INTERCOM_MQTT_HOST``: ``host[:port]`` (the port defaults to 1883 where it is used); a URL
  such as ``mqtt://broker`` is refused with the form to write instead.
* ``INTERCOM_MQTT_USER``: any text without control characters.
* ``INTERCOM_MQTT_PASSWORD``: exactly as written, never quoted in a message; MQTT sends a
  password only with a user name (MQTT 3.1.1 §3.1.2.9), so it needs ``INTERCOM_MQTT_USER``.
* ``INTERCOM_MQTT_TOPIC`` and ``INTERCOM_MQTT_DISCOVERY_PREFIX``: a topic to publish under:
  levels separated by ``/``, none empty, no wildcard (``+``, ``#``), no control character, not
  starting with ``$`` (the broker's own topics). The topic's default, ``intercom/<host name>``,
  is kept as ``""`` here and completed where the host name is known
  (:func:`intercom.app.home_assistant.base_topic`): settings are pure.
* ``INTERCOM_NAME``: the door's name as people see it, at most :data:`MAX_NAME` characters.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from intercom.app.settings_keys import MQTT_PASSWORD_KEY
from intercom.app.settings_parse import ValueParser
from intercom.sip.locate import HostPort

__all__ = [
    "DEFAULT_DISCOVERY_PREFIX",
    "DEFAULT_NAME",
    "DEFAULT_TOPIC_SHOWN",
    "MAX_NAME",
    "MAX_TOPIC",
    "MqttValues",
    "mqtt_warnings",
    "read_mqtt",
    "topic_problem",
]

DEFAULT_DISCOVERY_PREFIX = "homeassistant"
"""Home Assistant's own default discovery prefix."""
DEFAULT_NAME = "Door intercom"
DEFAULT_TOPIC_SHOWN = "intercom/<host name>"
"""How the default of ``INTERCOM_MQTT_TOPIC`` is shown (``intercom check``, the example file)."""
MAX_NAME = 64
MAX_TOPIC = 200
"""Longest base topic or prefix: the longest topic built on it stays far below MQTT's 65535."""

_CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f]")
_URL = re.compile(r"[a-z][a-z0-9+.-]*://", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class MqttValues:
    """The six values as :class:`~intercom.app.settings.Settings` holds them."""

    host: HostPort | None = None
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    topic: str = ""
    discovery_prefix: str = DEFAULT_DISCOVERY_PREFIX
    name: str = DEFAULT_NAME


def topic_problem(topic: str) -> str | None:
    """Why ``topic`` cannot be a topic to publish under; None when it can."""
    if len(topic) > MAX_TOPIC:
        return f"is longer than {MAX_TOPIC} characters"
    if _CONTROL_CHARS.search(topic):
        return "contains a control character"
    if "+" in topic or "#" in topic:
        return "contains an MQTT wildcard (+ or #)"
    if topic.startswith("$"):
        return "starts with $, which brokers keep for their own topics"
    if "" in topic.split("/"):
        return "has an empty level (a / at either end, or //)"
    return None


def read_mqtt(check: ValueParser) -> MqttValues:
    """The six values, each checked by its rule (a bad one is a problem, its default stands)."""
    host = check.host_port("INTERCOM_MQTT_HOST", _url)
    user = check.text("INTERCOM_MQTT_USER")
    if user is not None and _CONTROL_CHARS.search(user):
        check.problem("INTERCOM_MQTT_USER", "contains a control character")
        user = None
    password = check.values.get(MQTT_PASSWORD_KEY) or None  # exactly as written, never shown
    if password is not None and user is None and "INTERCOM_MQTT_USER" not in check.problems:
        check.problem(
            MQTT_PASSWORD_KEY,
            "is set, but INTERCOM_MQTT_USER is empty: MQTT sends a password only with a user name",
        )
    return MqttValues(
        host=host,
        user=user,
        password=password,
        topic=_topic(check, "INTERCOM_MQTT_TOPIC", ""),
        discovery_prefix=_topic(check, "INTERCOM_MQTT_DISCOVERY_PREFIX", DEFAULT_DISCOVERY_PREFIX),
        name=_name(check),
    )


def mqtt_warnings(check: ValueParser, values: MqttValues) -> None:
    """MQTT keys that do nothing without a broker; a base topic inside the discovery prefix."""
    if values.host is None and "INTERCOM_MQTT_HOST" not in check.problems:
        unused = [
            key
            for key in (
                "INTERCOM_MQTT_USER",
                MQTT_PASSWORD_KEY,
                "INTERCOM_MQTT_TOPIC",
                "INTERCOM_MQTT_DISCOVERY_PREFIX",
            )
            if check.text(key) is not None
        ]
        if unused:
            check.warnings.append(
                f"{', '.join(unused)} set, but INTERCOM_MQTT_HOST is empty: no MQTT"
            )
        return
    prefix = values.discovery_prefix
    if values.topic == prefix or values.topic.startswith(prefix + "/"):
        check.warnings.append(
            f"INTERCOM_MQTT_TOPIC: {values.topic!r} lies under the discovery prefix "
            f"{prefix!r}, where Home Assistant looks for configurations; choose another"
        )


def _url(text: str) -> str | None:
    if not _URL.match(text):
        return None
    rest = text.split("://", 1)[1].rstrip("/")
    return f"URL; write only host[:port], e.g. {rest or 'broker'}"


def _topic(check: ValueParser, key: str, default: str) -> str:
    text = check.text(key)
    if text is None:
        return default
    problem = topic_problem(text)
    if problem is not None:
        check.problem(key, f"{text!r} {problem}")
        return default
    return text


def _name(check: ValueParser) -> str:
    key = "INTERCOM_NAME"
    text = check.text(key)
    if text is None:
        return DEFAULT_NAME
    if _CONTROL_CHARS.search(text):
        check.problem(key, f"{text!r} contains a control character")
        return DEFAULT_NAME
    if len(text) > MAX_NAME:
        check.problem(key, f"is longer than {MAX_NAME} characters")
        return DEFAULT_NAME
    return text
