"""The intercom's settings: every ``INTERCOM_*`` key of design.md, read, checked and typed.

Theory of operation
===================

Settings come from two places, key by key: the env file named by ``--env-file`` (systemd's
``EnvironmentFile=`` syntax, see :mod:`intercom.app.env_file`) and the real environment, which
wins. Under systemd the service's ``EnvironmentFile=`` has already put the file into the
environment, so ``intercom run`` needs no ``--env-file`` there; ``intercom check --env-file``
reads the same file the same way and also reports the lines systemd would silently ignore.

:func:`load_settings` checks everything before anything starts and collects *every* problem
into one :class:`SettingsError`, one line each, starting with the key::

    INTERCOM_RING_TIMEOUT: 'abc' is not a number of seconds
    INTERCOM_LED_PIN: '17' is also INTERCOM_BUTTON_PIN; each pin can do one job

Rules that hold for every key:

* An empty value (or one of blanks only) means the key's default; blanks around a value are
  dropped (not around the password, which is taken exactly as written).
* Numbers of seconds are decimal (``30``, ``2.5``); whole numbers and pins are digits only.
* Keys that start with ``INTERCOM_`` but are none of :data:`KEYS` are problems with a
  did-you-mean (difflib), and so are near misses of a known key such as ``intercom_sip_user``
  (in the env file, or in the environment). Other keys are left alone.
* Secrets: the value of ``INTERCOM_SIP_PASSWORD`` (or ``INTERCOM_MQTT_PASSWORD``) never
  appears in a message, in ``repr`` or in :meth:`Settings.redacted`; nor does
  ``INTERCOM_DOOR_CODE``, which opens the house as surely as a key (messages about it name the
  offending characters or the length only).
  Unknown keys are never echoed with their value: ``INTERCOM_SIP_PASWORD`` holds a password.

Cross-checks between keys: ``INTERCOM_SIP_USER`` is required when ``INTERCOM_SIP_SERVER`` is
set; a bare user name as ``INTERCOM_CALL_TARGET`` needs the server; the button, LED and relay
pins must be distinct; a door code needs a relay. Things that work but are probably not what
the user wants (no server, no call target, allowed callers nobody can be trusted for, an
env file other users can read while it holds the password, ...) are
:attr:`Settings.warnings`, which ``intercom check`` prints and ``intercom run`` should log.

What is checked here is syntax and consistency only. Whether an audio device exists or a WAV
file can be read is ``intercom check``'s job (:func:`intercom.hw.audio.validate_spec`); here
``wav:`` only needs a path and ``tone:`` a frequency. :meth:`Settings.from_env` is pure; the
only I/O of this module is :func:`read_env_file` (and :func:`load_settings` through it)
reading and ``stat``-ing the one file it is given.

This module assembles :class:`Settings` and checks the keys that depend on each other; the
table of keys (names, order, secrets, did-you-mean) is :mod:`intercom.app.settings_keys` and
the rule of each single value is :mod:`intercom.app.settings_parse`.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import get_args

from intercom.app.env_file import EnvFile, parse_env_text
from intercom.app.policy import AllowedCaller, Network
from intercom.app.settings_hook import ON_RING_KEY, read_on_ring
from intercom.app.settings_keys import (
    FIELD_OF_KEY,
    KEYS,
    MQTT_PASSWORD_KEY,
    PASSWORD_KEY,
    PREFIX,
    SECRET_KEYS,
    near_miss,
    unknown_key_problem,
)
from intercom.app.settings_mqtt import (
    DEFAULT_DISCOVERY_PREFIX,
    DEFAULT_NAME,
    DEFAULT_TOPIC_SHOWN,
    mqtt_warnings,
    read_mqtt,
)
from intercom.app.settings_parse import (
    LOG_LEVELS,
    MAX_DOOR_PULSE,
    SRTP_MODES,
    GpioMode,
    Transport,
    ValueParser,
)
from intercom.errors import IntercomError
from intercom.sip.locate import HostPort
from intercom.sip.uri import SipUri

__all__ = [
    "KEYS",
    "PREFIX",
    "Settings",
    "SettingsError",
    "load_settings",
    "read_env_file",
]

logger = logging.getLogger(__name__)

DEFAULT_BIND = HostPort("0.0.0.0", 5060)
"""Every IPv4 address, the SIP port."""
_HIDDEN = "***"
_NOT_SET = "(not set)"


class SettingsError(IntercomError, ValueError):
    """The settings cannot be used; :attr:`problems` lists every reason, one line each.

    ``str()`` is all of them, one per line. No line contains the SIP password.
    """

    def __init__(self, problems: Iterable[str]) -> None:
        self.problems: list[str] = list(problems)
        super().__init__("\n".join(self.problems))

    def __str__(self) -> str:
        return "\n".join(self.problems)


@dataclass(frozen=True, slots=True)
class Settings:
    """Validated settings; the defaults are those of design.md. Build with :func:`load_settings`
    or :meth:`from_env`; constructing one directly skips all checks (for tests)."""

    # SIP account
    sip_server: HostPort | None = None  #: registrar/proxy; None: no registration, direct calls
    sip_user: str = ""  #: the account's user name; required with a server
    sip_password: str | None = field(default=None, repr=False)  #: None: no password
    sip_auth_user: str | None = None  #: digest user name when it differs from sip_user
    sip_expires: int = 600  #: requested registration lifetime, seconds
    sip_outbound_proxy: HostPort | None = None  #: where every request goes through; None: none
    # call
    call_target: SipUri | None = None  #: the one-number (a bare user name: at the server)
    ring_timeout: float = 30.0  #: seconds before an unanswered call is cancelled
    max_call_duration: float = 180.0  #: seconds before an answered call is ended
    cooldown: float = 5.0  #: seconds after a call during which a press calls nobody
    allowed_callers: tuple[AllowedCaller, ...] = ()  #: who may call in (intercom.app.policy)
    answer_delay: float = 0.0  #: seconds before an allowed incoming call is answered
    on_ring: tuple[str, ...] = ()  #: the command run on every ring (intercom.app.settings_hook)
    # door
    door_code: str | None = field(default=None, repr=False)  #: DTMF keys that open the door
    door_pulse: float = 3.0  #: seconds the door relay is energised
    door_code_attempts: int = 3  #: wrong codes in a row before the lockout
    door_lockout: float = 300.0  #: seconds the door code is refused after that
    # GPIO
    gpio: GpioMode = "auto"  #: pin factory: real pins, gpiozero's MockFactory, or try both
    button_pin: int = 17  #: BCM number of the doorbell button
    led_pin: int | None = None  #: BCM number of the status LED; None: no LED
    door_relay_pin: int | None = None  #: BCM number of the door relay; None: no relay
    door_relay_active_low: bool = False  #: the relay input energises on a low level
    # audio
    audio_input: str = "default"  #: microphone spec (see intercom.hw.audio)
    audio_output: str = "default"  #: speaker spec
    codecs: tuple[str, ...] = ("G722", "PCMU", "PCMA")  #: in order of preference
    # network and media
    sip_transport: Transport = "udp"  #: transport of requests to the server
    sip_bind: HostPort = DEFAULT_BIND  #: local address and port (0: any free)
    tls_ca_file: str = ""  #: CAs a TLS server's certificate must chain to; "": system store
    tls_verify: bool = True  #: False (tests only): a TLS server's certificate is not checked
    srtp: str = "off"  #: off, optional or mandatory (INTERCOM_SRTP; mandatory with tls)
    trusted_hosts: tuple[Network, ...] = ()  #: networks calls may come in from
    rtp_ports: tuple[int, int] = (10000, 20000)  #: lowest and highest RTP/RTCP port
    media_timeout: float = 30.0  #: seconds without media before a call is ended
    # control
    control_socket: str = "/run/intercom/control.sock"  #: Unix socket of the CLI commands
    state_dir: str = ""  #: kept state (door-code lockout); "": systemd's $STATE_DIRECTORY
    # Home Assistant over MQTT (intercom.app.settings_mqtt)
    mqtt_host: HostPort | None = None  #: the broker; None: no MQTT
    mqtt_user: str | None = None  #: the broker account's user name
    mqtt_password: str | None = field(default=None, repr=False)  #: None: no password
    mqtt_topic: str = ""  #: base topic of the door's state and commands; "": intercom/<host>
    mqtt_discovery_prefix: str = DEFAULT_DISCOVERY_PREFIX  #: Home Assistant's discovery prefix
    name: str = DEFAULT_NAME  #: the door's name as people see it
    # logging
    log_level: str = "INFO"  #: DEBUG, INFO, WARNING or ERROR
    #: things that work but are probably not meant (for ``intercom check`` and the log)
    warnings: tuple[str, ...] = field(default=(), compare=False)

    @classmethod
    def from_env(cls, values: Mapping[str, str]) -> Settings:
        """Settings from an already merged mapping (keys not starting with ``INTERCOM_`` are
        ignored); :class:`SettingsError` with every problem. Pure: no file, no clock."""
        return _build(values, [], [])

    def redacted(self) -> dict[str, str]:
        """Every key (in :data:`KEYS` order) with its value as text, secrets as ``***``.

        For ``intercom check``: ``(not set)`` for an absent value, lists comma-joined, the RTP
        range as ``low-high``, whole seconds without ``.0``.
        """
        shown: dict[str, str] = {}
        for key, name in FIELD_OF_KEY.items():
            value = getattr(self, name)
            if key in SECRET_KEYS:
                shown[key] = _HIDDEN if value else _NOT_SET
            else:
                shown[key] = _display(key, value)
        return shown


def _item(item: object) -> str:
    """A list item as written: a one-address network as its address."""
    if isinstance(item, Network) and item.num_addresses == 1:
        return str(item.network_address)
    return str(item)


def _display(key: str, value: object) -> str:
    if key == "INTERCOM_MQTT_TOPIC" and value == "":
        return DEFAULT_TOPIC_SHOWN
    if value is None or value == "" or value == ():
        return _NOT_SET
    if key == ON_RING_KEY and isinstance(value, tuple):
        import shlex

        return shlex.join(value) if value else _NOT_SET
    if key == "INTERCOM_RTP_PORTS" and isinstance(value, tuple):
        return f"{value[0]}-{value[1]}"
    if isinstance(value, tuple):
        return ",".join(_item(item) for item in value)
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    return str(value)


# -- reading ------------------------------------------------------------------------------------


def read_env_file(path: str) -> dict[str, str]:
    """Every assignment of the env file at ``path`` (all keys, not only ``INTERCOM_*``).

    Raises :class:`SettingsError` listing every malformed line as ``"path:line: problem"``, or
    the one reason the file cannot be read.
    """
    parsed = _read_env_file(path)
    if parsed.problems:
        raise SettingsError(parsed.problems)
    return dict(parsed.values)


def _read_env_file(path: str) -> EnvFile:
    try:
        with open(path, "rb") as file:
            data = file.read()
    except OSError as exc:
        reason = exc.strerror or str(exc)
        hint = ""
        if isinstance(exc, PermissionError):
            hint = " (it holds the password and is readable by root only: run this with sudo)"
        raise SettingsError([f"{path}: cannot read the env file: {reason}{hint}"]) from None
    return parse_env_text(data.decode("utf-8", "surrogateescape"), path)


def load_settings(environ: Mapping[str, str], env_file: str | None = None) -> Settings:
    """The settings from ``env_file`` (if given) overridden by ``environ``, key by key.

    Only ``INTERCOM_*`` keys of ``environ`` are looked at. Raises :class:`SettingsError` with
    every problem at once: the env file's syntax errors (``path:line: ...``) and every bad
    value (``KEY: ...``).
    """
    problems: list[str] = []
    warnings: list[str] = []
    values: dict[str, str] = {}
    if env_file is not None:
        try:
            parsed = _read_env_file(env_file)
        except SettingsError as exc:
            problems += exc.problems
        else:
            problems += parsed.problems
            warnings += parsed.warnings
            for key, value in parsed.values.items():
                if key.startswith(PREFIX):
                    values[key] = value
                elif (suggestion := near_miss(key)) is not None:
                    problems.append(f"{key}: not a known setting; did you mean {suggestion}?")
            secrets = [key for key in (PASSWORD_KEY, MQTT_PASSWORD_KEY) if parsed.values.get(key)]
            warnings += _permission_warnings(env_file, secrets)
    for key, value in environ.items():
        if key.startswith(PREFIX):
            values[key] = value
        elif key.upper().startswith(PREFIX) and (suggestion := near_miss(key)) is not None:
            problems.append(f"{key}: not a known setting; did you mean {suggestion}?")
    return _build(values, problems, warnings)


def _permission_warnings(path: str, passwords: list[str]) -> list[str]:
    """Design.md: the env file is installed 0600. Other users may neither change it (it says
    where the door calls and who may open it) nor read the password in it."""
    try:
        mode = os.stat(path).st_mode & 0o777
    except OSError:
        return []
    if mode & 0o002:
        what = "change the settings"
    elif mode & 0o004 and passwords:
        what = "read " + " and ".join(passwords)
    else:
        return []
    return [f"{path}: mode {mode:04o} lets every user {what}; make it 0600 (chmod 600 {path})"]


# -- checking -----------------------------------------------------------------------------------


def _build(values: Mapping[str, str], problems: list[str], warnings: list[str]) -> Settings:
    for key in sorted(k for k in values if k.startswith(PREFIX) and k not in FIELD_OF_KEY):
        problems.append(unknown_key_problem(key))
    check = ValueParser(values, warnings)
    settings = _read_all(check)
    for key in KEYS:  # in the order of the example file, whatever order they were checked in
        problems += check.problems.get(key, [])
    if problems:
        raise SettingsError(problems)
    return settings


def _read_all(check: ValueParser) -> Settings:
    """Every key read with its rule (a key a rule depends on is read first), then the checks
    of several keys at once."""
    d = Settings()
    server = check.host_port("INTERCOM_SIP_SERVER")
    user = check.sip_user(server)
    password = check.values.get(PASSWORD_KEY) or None  # exactly as written, never shown
    auth_user = check.auth_user()
    expires = check.whole("INTERCOM_SIP_EXPIRES", d.sip_expires, 1, 2**32 - 1)
    proxy = check.host_port("INTERCOM_SIP_OUTBOUND_PROXY")
    target = check.call_target(server)
    relay_pin = check.pin("INTERCOM_DOOR_RELAY_PIN", None)
    transport = check.choice("INTERCOM_SIP_TRANSPORT", get_args(Transport), d.sip_transport)
    mqtt = read_mqtt(check)
    settings = Settings(
        sip_server=server,
        sip_user=user,
        sip_password=password,
        sip_auth_user=auth_user,
        sip_expires=expires,
        sip_outbound_proxy=proxy,
        call_target=target,
        ring_timeout=check.seconds("INTERCOM_RING_TIMEOUT", d.ring_timeout, positive=True),
        max_call_duration=check.seconds(
            "INTERCOM_MAX_CALL_DURATION", d.max_call_duration, positive=True
        ),
        cooldown=check.seconds("INTERCOM_CALL_COOLDOWN", d.cooldown),
        allowed_callers=check.allowed_callers(server or proxy),
        answer_delay=check.seconds("INTERCOM_ANSWER_DELAY", d.answer_delay),
        on_ring=read_on_ring(check),
        door_code=check.door_code(relay_pin),
        door_pulse=check.seconds(
            "INTERCOM_DOOR_PULSE", d.door_pulse, positive=True, maximum=MAX_DOOR_PULSE
        ),
        door_code_attempts=check.whole(
            "INTERCOM_DOOR_CODE_ATTEMPTS", d.door_code_attempts, 1, 1000
        ),
        door_lockout=check.seconds("INTERCOM_DOOR_LOCKOUT", d.door_lockout),
        gpio=check.choice("INTERCOM_GPIO", get_args(GpioMode), d.gpio),
        button_pin=check.button_pin(d.button_pin),
        led_pin=check.pin("INTERCOM_LED_PIN", None),
        door_relay_pin=relay_pin,
        door_relay_active_low=check.flag("INTERCOM_DOOR_RELAY_ACTIVE_LOW", d.door_relay_active_low),
        audio_input=check.audio("INTERCOM_AUDIO_INPUT", output=False),
        audio_output=check.audio("INTERCOM_AUDIO_OUTPUT", output=True),
        codecs=check.codecs(d.codecs),
        sip_transport=transport,
        sip_bind=check.bind(d.sip_bind),
        tls_ca_file=check.absolute_path("INTERCOM_TLS_CA_FILE", d.tls_ca_file),
        tls_verify=check.flag("INTERCOM_TLS_VERIFY", d.tls_verify),
        srtp=check.choice(
            "INTERCOM_SRTP", SRTP_MODES, "mandatory" if transport == "tls" else "off"
        ),
        trusted_hosts=check.trusted_hosts(),
        rtp_ports=check.rtp_ports(d.rtp_ports),
        media_timeout=check.seconds("INTERCOM_MEDIA_TIMEOUT", d.media_timeout, positive=True),
        control_socket=check.control_socket(d.control_socket),
        state_dir=check.absolute_path("INTERCOM_STATE_DIR", d.state_dir),
        mqtt_host=mqtt.host,
        mqtt_user=mqtt.user,
        mqtt_password=mqtt.password,
        mqtt_topic=mqtt.topic,
        mqtt_discovery_prefix=mqtt.discovery_prefix,
        name=mqtt.name,
        log_level=check.choice("INTERCOM_LOG_LEVEL", LOG_LEVELS, d.log_level),
    )
    _distinct_pins(check, settings)
    _cross_warnings(check, settings)
    mqtt_warnings(check, mqtt)
    return replace(settings, warnings=tuple(check.warnings))


def _distinct_pins(check: ValueParser, settings: Settings) -> None:
    """The button, LED and relay pins must be distinct."""
    used: dict[int, str] = {}
    for key in ("INTERCOM_BUTTON_PIN", "INTERCOM_LED_PIN", "INTERCOM_DOOR_RELAY_PIN"):
        pin = getattr(settings, FIELD_OF_KEY[key])
        if pin is None or key in check.problems:  # a bad value already has its problem
            continue
        if pin in used:
            check.problem(key, f"'{pin}' is also {used[pin]}; each pin can do one job")
        else:
            used[pin] = key


LAST_PULLED_UP_PIN = 8
"""GPIO0-8 boot with their pull-up on (BCM283x); the higher pins boot pulled low."""


def _cross_warnings(check: ValueParser, s: Settings) -> None:
    """Combinations of keys that work but are probably not what the user wants."""
    add = check.warnings.append
    if not s.sip_server:
        add(
            "INTERCOM_SIP_SERVER is empty: no registration; calls go straight to the host "
            "named in INTERCOM_CALL_TARGET"
        )
    elif s.sip_password is None:
        add(
            "INTERCOM_SIP_PASSWORD is not set: registration works only with a server that "
            "accepts the intercom without one (by its address)"
        )
    if s.call_target is None:
        add("INTERCOM_CALL_TARGET is not set: a press of the button only logs an error")
    else:
        _call_target_warnings(add, s.call_target.user or "", s.sip_server)
    if s.allowed_callers and not s.sip_server and not s.trusted_hosts:
        add(
            "INTERCOM_ALLOWED_CALLERS is set, but with neither INTERCOM_SIP_SERVER nor "
            "INTERCOM_TRUSTED_HOSTS no call comes from a trusted source: all are refused"
        )
    if s.trusted_hosts and not s.allowed_callers:
        add(
            "INTERCOM_TRUSTED_HOSTS is set, but INTERCOM_ALLOWED_CALLERS is empty: every "
            "incoming call is still refused"
        )
    pin = s.door_relay_pin
    if s.door_relay_active_low and pin is not None and pin > LAST_PULLED_UP_PIN:
        add(
            f"INTERCOM_DOOR_RELAY_ACTIVE_LOW with GPIO{pin}: that pin is pulled low from "
            "power-on until the service starts, which energises a low-trigger relay; "
            f"GPIO0-{LAST_PULLED_UP_PIN} boot pulled high"
        )
    if s.sip_transport == "tls" and not s.tls_verify:
        add(
            "INTERCOM_TLS_VERIFY=off: the SIP server's certificate is not checked, so anyone "
            "on the path can pose as the server; for tests only"
        )
    if s.srtp == "mandatory" and s.sip_transport != "tls":
        add(
            f"INTERCOM_SRTP=mandatory over {s.sip_transport}: the SRTP keys (SDES) travel in "
            "the SDP of cleartext SIP, so anyone who reads the signalling can decrypt the "
            "audio; use INTERCOM_SIP_TRANSPORT=tls"
        )
    if s.sip_transport != "tls" and (s.tls_ca_file or not s.tls_verify):
        add("INTERCOM_TLS_CA_FILE and INTERCOM_TLS_VERIFY apply to INTERCOM_SIP_TRANSPORT=tls only")
    if s.sip_server and s.sip_expires < 60:
        add(
            f"INTERCOM_SIP_EXPIRES: {s.sip_expires} s is shorter than most servers accept "
            "(they answer 423 Interval Too Brief and the intercom retries with theirs)"
        )


_NUMBER_LIST = re.compile(r"\*{0,2}\d+(?:\s*[,;&]\s*\*{0,2}\d+)+")
_FRITZ_INTERNAL = re.compile(r"[1-9]|6[0-2][0-9]")
"""A FRITZ!Box's internal numbers: 1-9 (ports, **9 the group call), 600-629 (answering
machines, DECT handsets from 610, IP phones from 620)."""


def _call_target_warnings(add: Callable[[str], None], user: str, server: HostPort | None) -> None:
    """A target that is probably not the one-number the user meant."""
    if _NUMBER_LIST.fullmatch(user):
        add(
            f"INTERCOM_CALL_TARGET: {user!r} looks like a list of numbers, but the intercom "
            "calls one target; let the server ring several phones (a FRITZ!Box's group call "
            "**9, a ring group, or one user that several phones register as)"
        )
    host = server.host.lower() if server is not None else ""
    if (host.startswith("fritz.") or host == "192.168.178.1") and _FRITZ_INTERNAL.fullmatch(user):
        add(
            f"INTERCOM_CALL_TARGET: {user!r} looks like a FRITZ!Box internal number without "
            f"its stars; the FRITZ!Box dials internal numbers as **{user} (**9 rings every "
            "phone, **610 the first DECT handset, **620 the first IP phone)"
        )
