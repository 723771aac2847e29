"""The ``INTERCOM_*`` keys: their names and order, the :class:`~intercom.app.settings.Settings`
field each one fills, which ones are secret, and what an unknown key was probably meant to be.

:data:`KEYS` is in the order of ``systemd/intercom.env.example``; problems are reported in that
order too. Keys that start with ``INTERCOM_`` but are none of :data:`KEYS` are problems with a
did-you-mean (:func:`unknown_key_problem`), and so are near misses of a known key such as
``intercom_sip_user`` (:func:`near_miss`). Neither ever shows the key's value:
``INTERCOM_SIP_PASWORD`` holds a password. The values of :data:`SECRET_KEYS` are kept out of
every message and output (see :mod:`intercom.app.settings`).
"""

from __future__ import annotations

import difflib

__all__ = [
    "FIELD_OF_KEY",
    "KEYS",
    "MQTT_PASSWORD_KEY",
    "PASSWORD_KEY",
    "PREFIX",
    "SECRET_KEYS",
    "near_miss",
    "unknown_key_problem",
]

PREFIX = "INTERCOM_"
"""Every setting's name starts with this."""


# The keys, in the order of systemd/intercom.env.example, and the Settings field of each.
FIELD_OF_KEY: dict[str, str] = {
    # SIP account
    "INTERCOM_SIP_SERVER": "sip_server",
    "INTERCOM_SIP_USER": "sip_user",
    "INTERCOM_SIP_PASSWORD": "sip_password",
    "INTERCOM_SIP_AUTH_USER": "sip_auth_user",
    "INTERCOM_SIP_EXPIRES": "sip_expires",
    "INTERCOM_SIP_OUTBOUND_PROXY": "sip_outbound_proxy",
    # call
    "INTERCOM_CALL_TARGET": "call_target",
    "INTERCOM_RING_TIMEOUT": "ring_timeout",
    "INTERCOM_MAX_CALL_DURATION": "max_call_duration",
    "INTERCOM_CALL_COOLDOWN": "cooldown",
    "INTERCOM_ALLOWED_CALLERS": "allowed_callers",
    "INTERCOM_ANSWER_DELAY": "answer_delay",
    "INTERCOM_ON_RING": "on_ring",
    # door
    "INTERCOM_DOOR_CODE": "door_code",
    "INTERCOM_DOOR_PULSE": "door_pulse",
    "INTERCOM_DOOR_CODE_ATTEMPTS": "door_code_attempts",
    "INTERCOM_DOOR_LOCKOUT": "door_lockout",
    # GPIO
    "INTERCOM_GPIO": "gpio",
    "INTERCOM_BUTTON_PIN": "button_pin",
    "INTERCOM_LED_PIN": "led_pin",
    "INTERCOM_DOOR_RELAY_PIN": "door_relay_pin",
    "INTERCOM_DOOR_RELAY_ACTIVE_LOW": "door_relay_active_low",
    # audio
    "INTERCOM_AUDIO_INPUT": "audio_input",
    "INTERCOM_AUDIO_OUTPUT": "audio_output",
    "INTERCOM_CODECS": "codecs",
    # network and media
    "INTERCOM_SIP_TRANSPORT": "sip_transport",
    "INTERCOM_SIP_BIND": "sip_bind",
    "INTERCOM_TLS_CA_FILE": "tls_ca_file",
    "INTERCOM_TLS_VERIFY": "tls_verify",
    "INTERCOM_SRTP": "srtp",
    "INTERCOM_TRUSTED_HOSTS": "trusted_hosts",
    "INTERCOM_RTP_PORTS": "rtp_ports",
    "INTERCOM_MEDIA_TIMEOUT": "media_timeout",
    # control
    "INTERCOM_CONTROL_SOCKET": "control_socket",
    "INTERCOM_STATE_DIR": "state_dir",
    # Home Assistant over MQTT
    "INTERCOM_MQTT_HOST": "mqtt_host",
    "INTERCOM_MQTT_USER": "mqtt_user",
    "INTERCOM_MQTT_PASSWORD": "mqtt_password",
    "INTERCOM_MQTT_TOPIC": "mqtt_topic",
    "INTERCOM_MQTT_DISCOVERY_PREFIX": "mqtt_discovery_prefix",
    "INTERCOM_NAME": "name",
    # logging
    "INTERCOM_LOG_LEVEL": "log_level",
}

KEYS: tuple[str, ...] = tuple(FIELD_OF_KEY)
"""Every known key, in the order of ``systemd/intercom.env.example``."""

PASSWORD_KEY = "INTERCOM_SIP_PASSWORD"
MQTT_PASSWORD_KEY = "INTERCOM_MQTT_PASSWORD"
SECRET_KEYS = frozenset({PASSWORD_KEY, MQTT_PASSWORD_KEY, "INTERCOM_DOOR_CODE"})
"""Keys whose values ``Settings.redacted()`` hides and no problem line quotes."""


def near_miss(key: str) -> str | None:
    """The known key ``key`` was probably meant to be, for a key outside the prefix."""
    upper = key.upper().replace("-", "_")
    if upper in FIELD_OF_KEY:
        return upper
    matches = difflib.get_close_matches(upper, KEYS, n=1, cutoff=0.85)
    return matches[0] if matches else None


def unknown_key_problem(key: str) -> str:
    """The problem line of an unknown ``INTERCOM_*`` key (its value is never shown)."""
    suffix = key[len(PREFIX) :].upper()
    suffixes = {known[len(PREFIX) :]: known for known in KEYS}
    matches = difflib.get_close_matches(suffix, suffixes, n=1, cutoff=0.6)
    if matches:
        return f"{key}: not a known setting; did you mean {suffixes[matches[0]]}?"
    return f"{key}: not a known setting (intercom.env.example lists them all)"
