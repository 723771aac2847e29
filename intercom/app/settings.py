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
* Secrets: the value of ``INTERCOM_SIP_PASSWORD`` never appears in a message, in ``repr``
  or in :meth:`Settings.redacted`; nor does ``INTERCOM_DOOR_CODE``, which opens the house as
  surely as a key (messages about it name the offending characters or the length only).
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
"""

from __future__ import annotations

import difflib
import ipaddress
import logging
import math
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Literal

from intercom.app.env_file import EnvFile, parse_env_text
from intercom.app.policy import AllowedCaller, parse_networks
from intercom.errors import IntercomError
from intercom.media.codecs import parse_codec_list
from intercom.sip.errors import RemoteProtocolError
from intercom.sip.locate import parse_hostport
from intercom.sip.uri import SipUri, parse_uri

__all__ = [
    "KEYS",
    "PREFIX",
    "Settings",
    "SettingsError",
    "load_settings",
    "read_env_file",
]

logger = logging.getLogger(__name__)

PREFIX = "INTERCOM_"
"""Every setting's name starts with this."""

Transport = Literal["udp", "tcp"]
GpioMode = Literal["pi", "mock", "auto"]

# The keys, in the order of systemd/intercom.env.example, and the Settings field of each.
_FIELD_OF_KEY: dict[str, str] = {
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
    # audio
    "INTERCOM_AUDIO_INPUT": "audio_input",
    "INTERCOM_AUDIO_OUTPUT": "audio_output",
    "INTERCOM_CODECS": "codecs",
    # network and media
    "INTERCOM_SIP_TRANSPORT": "sip_transport",
    "INTERCOM_SIP_BIND": "sip_bind",
    "INTERCOM_TRUSTED_HOSTS": "trusted_hosts",
    "INTERCOM_RTP_PORTS": "rtp_ports",
    "INTERCOM_MEDIA_TIMEOUT": "media_timeout",
    # control
    "INTERCOM_CONTROL_SOCKET": "control_socket",
    # logging
    "INTERCOM_LOG_LEVEL": "log_level",
}

KEYS: tuple[str, ...] = tuple(_FIELD_OF_KEY)
"""Every known key, in the order of ``systemd/intercom.env.example``."""

_PASSWORD = "INTERCOM_SIP_PASSWORD"
_SECRET_KEYS = frozenset({_PASSWORD, "INTERCOM_DOOR_CODE"})
_HIDDEN = "***"
_NOT_SET = "(not set)"

MAX_DOOR_PULSE = 30.0
"""Longest relay pulse, seconds: door openers are made for seconds, not for minutes."""
MAX_PIN = 27
"""Highest BCM GPIO number on the 40-pin header."""
DOOR_CODE_LENGTH = (4, 16)
MAX_SOCKET_PATH = 107
"""Longest Unix socket path in bytes (``sun_path`` is 108 with its terminating NUL)."""
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")

_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)")
_WHOLE = re.compile(r"[+-]?[0-9]+")
_PORT_RANGE = re.compile(r"([0-9]{1,6})\s*-\s*([0-9]{1,6})")
_DTMF = frozenset("0123456789*#ABCD")
# RFC 3261 §25.1 "user": unreserved / escaped / user-unreserved.
_SIP_USER = re.compile(r"(?:[A-Za-z0-9\-_.!~*'()&=+$,;?/]|%[0-9A-Fa-f]{2})+")
_CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f]")
_INLINE_COMMENT = re.compile(r"\s[#;]")


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
    sip_server: str = ""  #: registrar/proxy host[:port]; "": no registration, direct calls
    sip_user: str = ""  #: the account's user name; required with a server
    sip_password: str | None = field(default=None, repr=False)  #: None: no password
    sip_auth_user: str | None = None  #: digest user name when it differs from sip_user
    sip_expires: int = 600  #: requested registration lifetime, seconds
    sip_outbound_proxy: str = ""  #: host[:port] every request goes through; "": none
    # call
    call_target: str | None = None  #: SIP URI, user@host or user name at the server
    ring_timeout: float = 30.0  #: seconds before an unanswered call is cancelled
    max_call_duration: float = 180.0  #: seconds before an answered call is ended
    cooldown: float = 5.0  #: seconds after a call during which a press calls nobody
    allowed_callers: tuple[str, ...] = ()  #: who may call in (see intercom.app.policy)
    answer_delay: float = 0.0  #: seconds before an allowed incoming call is answered
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
    # audio
    audio_input: str = "default"  #: microphone spec (see intercom.hw.audio)
    audio_output: str = "default"  #: speaker spec
    codecs: tuple[str, ...] = ("G722", "PCMU", "PCMA")  #: in order of preference
    # network and media
    sip_transport: Transport = "udp"  #: transport of requests to the server
    sip_bind: str = "0.0.0.0:5060"  #: local "address:port", always with the port
    trusted_hosts: tuple[str, ...] = ()  #: addresses or networks calls may come in from
    rtp_ports: tuple[int, int] = (10000, 20000)  #: lowest and highest RTP/RTCP port
    media_timeout: float = 30.0  #: seconds without media before a call is ended
    # control
    control_socket: str = "/run/intercom/control.sock"  #: Unix socket of the CLI commands
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
        for key, name in _FIELD_OF_KEY.items():
            value = getattr(self, name)
            if key in _SECRET_KEYS:
                shown[key] = _HIDDEN if value else _NOT_SET
            else:
                shown[key] = _display(key, value)
        return shown


def _display(key: str, value: object) -> str:
    if value is None or value == "" or value == ():
        return _NOT_SET
    if key == "INTERCOM_RTP_PORTS" and isinstance(value, tuple):
        return f"{value[0]}-{value[1]}"
    if isinstance(value, tuple):
        return ",".join(str(item) for item in value)
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
                elif (suggestion := _near_miss(key)) is not None:
                    problems.append(f"{key}: not a known setting; did you mean {suggestion}?")
            warnings += _permission_warnings(env_file, bool(parsed.values.get(_PASSWORD)))
    for key, value in environ.items():
        if key.startswith(PREFIX):
            values[key] = value
        elif key.upper().startswith(PREFIX) and (suggestion := _near_miss(key)) is not None:
            problems.append(f"{key}: not a known setting; did you mean {suggestion}?")
    return _build(values, problems, warnings)


def _permission_warnings(path: str, has_password: bool) -> list[str]:
    """Design.md: the env file is installed 0600. Other users may neither change it (it says
    where the door calls and who may open it) nor read the password in it."""
    try:
        mode = os.stat(path).st_mode & 0o777
    except OSError:
        return []
    if mode & 0o002:
        what = "change the settings"
    elif mode & 0o004 and has_password:
        what = "read INTERCOM_SIP_PASSWORD"
    else:
        return []
    return [f"{path}: mode {mode:04o} lets every user {what}; make it 0600 (chmod 600 {path})"]


def _near_miss(key: str) -> str | None:
    """The known key ``key`` was probably meant to be, for a key outside the prefix."""
    upper = key.upper().replace("-", "_")
    if upper in _FIELD_OF_KEY:
        return upper
    matches = difflib.get_close_matches(upper, KEYS, n=1, cutoff=0.85)
    return matches[0] if matches else None


def _suggest(key: str) -> str:
    """The problem line of an unknown ``INTERCOM_*`` key (its value is never shown)."""
    suffix = key[len(PREFIX) :].upper()
    suffixes = {known[len(PREFIX) :]: known for known in KEYS}
    matches = difflib.get_close_matches(suffix, suffixes, n=1, cutoff=0.6)
    if matches:
        return f"{key}: not a known setting; did you mean {suffixes[matches[0]]}?"
    return f"{key}: not a known setting (intercom.env.example lists them all)"


# -- checking -----------------------------------------------------------------------------------


def _build(values: Mapping[str, str], problems: list[str], warnings: list[str]) -> Settings:
    for key in sorted(k for k in values if k.startswith(PREFIX) and k not in _FIELD_OF_KEY):
        problems.append(_suggest(key))
    check = _Checker(values, warnings)
    settings = check.settings()
    for key in KEYS:  # in the order of the example file, whatever order they were checked in
        problems += check.problems.get(key, [])
    if problems:
        raise SettingsError(problems)
    return settings


class _Checker:
    """Reads each key with its rule; a bad value becomes a problem and the default stands in,
    so that every key is looked at and every problem reported."""

    def __init__(self, values: Mapping[str, str], warnings: list[str]) -> None:
        self.values = values
        self.problems: dict[str, list[str]] = {}  # key -> its problems
        self.warnings = warnings

    def settings(self) -> Settings:
        d = Settings()
        server = self.host_port("INTERCOM_SIP_SERVER")
        user = self.sip_user(server)
        password = self.values.get(_PASSWORD) or None  # exactly as written, never shown
        auth_user = self.auth_user()
        expires = self.whole("INTERCOM_SIP_EXPIRES", d.sip_expires, 1, 2**32 - 1)
        proxy = self.host_port("INTERCOM_SIP_OUTBOUND_PROXY")
        target = self.call_target(server)
        relay_pin = self.pin("INTERCOM_DOOR_RELAY_PIN", None)
        settings = Settings(
            sip_server=server,
            sip_user=user,
            sip_password=password,
            sip_auth_user=auth_user,
            sip_expires=expires,
            sip_outbound_proxy=proxy,
            call_target=target,
            ring_timeout=self.seconds("INTERCOM_RING_TIMEOUT", d.ring_timeout, positive=True),
            max_call_duration=self.seconds(
                "INTERCOM_MAX_CALL_DURATION", d.max_call_duration, positive=True
            ),
            cooldown=self.seconds("INTERCOM_CALL_COOLDOWN", d.cooldown),
            allowed_callers=self.allowed_callers(),
            answer_delay=self.seconds("INTERCOM_ANSWER_DELAY", d.answer_delay),
            door_code=self.door_code(relay_pin),
            door_pulse=self.seconds(
                "INTERCOM_DOOR_PULSE", d.door_pulse, positive=True, maximum=MAX_DOOR_PULSE
            ),
            door_code_attempts=self.whole(
                "INTERCOM_DOOR_CODE_ATTEMPTS", d.door_code_attempts, 1, 1000
            ),
            door_lockout=self.seconds("INTERCOM_DOOR_LOCKOUT", d.door_lockout),
            gpio=self.gpio(),
            button_pin=self.button_pin(d.button_pin),
            led_pin=self.pin("INTERCOM_LED_PIN", None),
            door_relay_pin=relay_pin,
            audio_input=self.audio("INTERCOM_AUDIO_INPUT", output=False),
            audio_output=self.audio("INTERCOM_AUDIO_OUTPUT", output=True),
            codecs=self.codecs(d.codecs),
            sip_transport=self.transport(),
            sip_bind=self.bind(d.sip_bind),
            trusted_hosts=self.trusted_hosts(),
            rtp_ports=self.rtp_ports(d.rtp_ports),
            media_timeout=self.seconds("INTERCOM_MEDIA_TIMEOUT", d.media_timeout, positive=True),
            control_socket=self.control_socket(d.control_socket),
            log_level=self.log_level(d.log_level),
        )
        self.distinct_pins(settings)
        self.cross_warnings(settings)
        return replace(settings, warnings=tuple(self.warnings))

    # -- plumbing ---------------------------------------------------------------------------

    def text(self, key: str) -> str | None:
        """The value without surrounding blanks; None when absent or empty (the default)."""
        value = self.values.get(key)
        if value is None or not value.strip():
            return None
        return value.strip()

    def problem(self, key: str, what: str) -> None:
        line = f"{key}: {what}"
        if key not in _SECRET_KEYS and _INLINE_COMMENT.search(self.values.get(key, "")):
            line += " (a '#' starts a comment only at the start of a line)"
        self.problems.setdefault(key, []).append(line)

    def items(self, key: str) -> list[str]:
        """A comma list: items trimmed, empty ones dropped."""
        text = self.text(key) or ""
        return [item.strip() for item in text.split(",") if item.strip()]

    # -- numbers ----------------------------------------------------------------------------

    def seconds(
        self, key: str, default: float, *, positive: bool = False, maximum: float | None = None
    ) -> float:
        text = self.text(key)
        if text is None:
            return default
        if not _NUMBER.fullmatch(text):
            self.problem(key, f"{text!r} is not a number of seconds")
            return default
        value = float(text)
        if not math.isfinite(value):
            self.problem(key, f"{text!r} is not a number of seconds")
        elif positive and value <= 0:
            self.problem(key, f"{text!r} must be more than 0 seconds")
        elif value < 0:
            self.problem(key, f"{text!r} must not be negative")
        elif maximum is not None and value > maximum:
            self.problem(
                key,
                f"{text!r} is more than {maximum:g} seconds; a door opener is "
                "not made to stay energised that long",
            )
        else:
            return value
        return default

    def whole(self, key: str, default: int, low: int, high: int) -> int:
        text = self.text(key)
        if text is None:
            return default
        if not _WHOLE.fullmatch(text):
            self.problem(key, f"{text!r} is not a whole number")
            return default
        value = int(text) if len(text) <= 20 else high + 1
        if not low <= value <= high:
            self.problem(key, f"{text!r} must be between {low} and {high}")
            return default
        return value

    def pin(self, key: str, default: int | None) -> int | None:
        text = self.text(key)
        if text is None:
            return default
        if not _WHOLE.fullmatch(text) or len(text) > 3 or not 0 <= int(text) <= MAX_PIN:
            self.problem(key, f"{text!r} is not a BCM pin number (0-{MAX_PIN})")
            return default
        return int(text)

    def button_pin(self, default: int) -> int:
        pin = self.pin("INTERCOM_BUTTON_PIN", default)
        return default if pin is None else pin

    def distinct_pins(self, settings: Settings) -> None:
        used: dict[int, str] = {}
        for key in ("INTERCOM_BUTTON_PIN", "INTERCOM_LED_PIN", "INTERCOM_DOOR_RELAY_PIN"):
            pin = getattr(settings, _FIELD_OF_KEY[key])
            if pin is None or key in self.problems:  # a bad value already has its problem
                continue
            if pin in used:
                self.problem(key, f"'{pin}' is also {used[pin]}; each pin can do one job")
            else:
                used[pin] = key

    # -- choices ----------------------------------------------------------------------------

    def transport(self) -> Transport:
        text = self.text("INTERCOM_SIP_TRANSPORT")
        choices: dict[str, Transport] = {"udp": "udp", "tcp": "tcp"}
        if text is None:
            return "udp"
        if text.lower() not in choices:
            self.problem("INTERCOM_SIP_TRANSPORT", f"{text!r} is not udp or tcp")
            return "udp"
        return choices[text.lower()]

    def gpio(self) -> GpioMode:
        text = self.text("INTERCOM_GPIO")
        choices: dict[str, GpioMode] = {"pi": "pi", "mock": "mock", "auto": "auto"}
        if text is None:
            return "auto"
        if text.lower() not in choices:
            self.problem("INTERCOM_GPIO", f"{text!r} is not pi, mock or auto")
            return "auto"
        return choices[text.lower()]

    def log_level(self, default: str) -> str:
        text = self.text("INTERCOM_LOG_LEVEL")
        if text is None:
            return default
        if text.upper() not in LOG_LEVELS:
            self.problem("INTERCOM_LOG_LEVEL", f"{text!r} is not DEBUG, INFO, WARNING or ERROR")
            return default
        return text.upper()

    # -- SIP --------------------------------------------------------------------------------

    def host_port(self, key: str) -> str:
        """``host[:port]`` of a server or proxy, as written; "" when not set."""
        text = self.text(key)
        if text is None:
            return ""
        if text.lower().startswith(("sip:", "sips:")):
            self.problem(key, f"{text!r} is a URI; write only host[:port], e.g. pbx.example.net")
            return ""
        try:
            parse_hostport(text)
        except ValueError as exc:
            detail = str(exc).removeprefix(f"invalid host:port {text!r}: ")
            self.problem(key, f"{text!r} is not host[:port]: {detail}")
            return ""
        return text

    def sip_user(self, server: str) -> str:
        key = "INTERCOM_SIP_USER"
        text = self.text(key)
        if text is None:
            if server or self.text("INTERCOM_SIP_SERVER"):
                self.problem(key, "required when INTERCOM_SIP_SERVER is set")
            return ""
        if "@" in text:
            self.problem(
                key,
                f"{text!r} should be the user name only; the server goes in INTERCOM_SIP_SERVER",
            )
            return ""
        if not _SIP_USER.fullmatch(text):
            self.problem(
                key,
                f"{text!r} is not a SIP user name (letters, digits, -_.!~*'()"
                "&=+$,;?/ or %XX escapes)",
            )
            return ""
        return text

    def auth_user(self) -> str | None:
        key = "INTERCOM_SIP_AUTH_USER"
        text = self.text(key)
        if text is None:
            return None
        if '"' in text or "\\" in text or _CONTROL_CHARS.search(text):
            self.problem(key, f"{text!r} may not contain '\"', '\\' or control characters")
            return None
        return text

    def call_target(self, server: str) -> str | None:
        key = "INTERCOM_CALL_TARGET"
        text = self.text(key)
        if text is None:
            return None
        lowered = text.lower()
        if lowered.startswith(("sip:", "sips:")) or "@" in text:
            uri_text = text if lowered.startswith(("sip:", "sips:")) else "sip:" + text
            try:
                uri = parse_uri(uri_text)
            except RemoteProtocolError:
                uri = None
            if not isinstance(uri, SipUri):
                self.problem(
                    key, f"{text!r} is not a SIP URI (sip:user@host), user@host or user name"
                )
                return None
            return text
        if not _SIP_USER.fullmatch(text) or ":" in text:
            self.problem(key, f"{text!r} is not a SIP URI (sip:user@host), user@host or user name")
            return None
        if not server and not self.text("INTERCOM_SIP_SERVER"):
            self.problem(
                key,
                f"{text!r} is a user name at the server, but INTERCOM_SIP_SERVER "
                f"is empty; write a SIP URI such as sip:{text}@192.168.1.20",
            )
            return None
        return text

    def allowed_callers(self) -> tuple[str, ...]:
        key = "INTERCOM_ALLOWED_CALLERS"
        entries: list[str] = []
        for entry in self.items(key):
            try:
                AllowedCaller.parse(entry)
            except ValueError:
                self.problem(key, f"{entry!r} is not a user name, user@host, SIP URI or tel: URI")
            else:
                entries.append(entry)
        return tuple(entries)

    # -- door -------------------------------------------------------------------------------

    def door_code(self, relay_pin: int | None) -> str | None:
        key = "INTERCOM_DOOR_CODE"
        text = self.text(key)
        if text is None:
            return None
        code = text.upper()  # the value itself is never shown: it opens the door
        bad = "".join(dict.fromkeys(char for char in text if char.upper() not in _DTMF))
        low, high = DOOR_CODE_LENGTH
        if bad:
            self.problem(key, f"may only hold the DTMF keys 0-9, *, # and A-D, not {bad!r}")
            return None
        if not low <= len(code) <= high:
            self.problem(key, f"must be {low} to {high} keys long, not {len(code)}")
            return None
        if relay_pin is None:
            self.problem(key, "a door code needs INTERCOM_DOOR_RELAY_PIN (the relay it opens)")
            return None
        return code

    # -- audio ------------------------------------------------------------------------------

    def audio(self, key: str, *, output: bool) -> str:
        text = self.text(key)
        if text is None:
            return "default"
        lowered = text.lower()
        if lowered.startswith("wav:") and not text[4:].strip():
            self.problem(
                key, f"{text!r} needs a file path after 'wav:', e.g. wav:/var/lib/intercom/door.wav"
            )
            return "default"
        if lowered.startswith("tone:"):
            if output:
                self.problem(
                    key,
                    f"{text!r} cannot be an output (a tone is an input only); use "
                    "default, a device index or name, wav:PATH or null",
                )
                return "default"
            number = text[5:].strip()
            if not _NUMBER.fullmatch(number) or not 0 < float(number) <= 20000:
                self.problem(
                    key,
                    f"{text!r} needs a frequency above 0 and at most 20000 Hz "
                    "after 'tone:', e.g. tone:440",
                )
                return "default"
        return text

    def codecs(self, default: tuple[str, ...]) -> tuple[str, ...]:
        text = self.text("INTERCOM_CODECS")
        if text is None:
            return default
        try:
            return parse_codec_list(text)
        except ValueError as exc:
            self.problem("INTERCOM_CODECS", str(exc))
            return default

    # -- network ----------------------------------------------------------------------------

    def bind(self, default: str) -> str:
        """``address[:port]`` to listen on, normalised to ``address:port`` (``[v6]:port``);
        port 0 means any free port."""
        key = "INTERCOM_SIP_BIND"
        text = self.text(key)
        if text is None:
            return default
        if text.startswith("["):
            host, close, rest = text[1:].partition("]")
            if not close:
                self.problem(key, f"{text!r} lacks the ']' closing the IPv6 address")
                return default
        elif text.count(":") > 1:
            self.problem(key, f"{text!r}: put an IPv6 address in brackets, e.g. [::]:5060")
            return default
        else:
            host, colon, port_text = text.partition(":")
            rest = colon + port_text
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            self.problem(
                key,
                f"{text!r} needs an IP address to listen on (0.0.0.0: every IPv4 "
                "address, [::]: every IPv6 address)",
            )
            return default
        if text.startswith("[") != (address.version == 6):
            self.problem(key, f"{text!r}: only an IPv6 address goes in brackets")
            return default
        port = 5060
        if rest:
            port_text = rest[1:] if rest.startswith(":") else ""
            valid = port_text.isascii() and port_text.isdigit() and len(port_text) <= 5
            if not valid or int(port_text) > 65535:
                self.problem(key, f"{text!r} has no valid port (0-65535 after the last ':')")
                return default
            port = int(port_text)
        return f"[{address}]:{port}" if address.version == 6 else f"{address}:{port}"

    def trusted_hosts(self) -> tuple[str, ...]:
        key = "INTERCOM_TRUSTED_HOSTS"
        entries: list[str] = []
        for entry in self.items(key):
            try:
                (network,) = parse_networks([entry])
            except ValueError:
                if re.search(r"[A-Za-z]", entry) and ":" not in entry:
                    self.problem(
                        key,
                        f"{entry!r} is a host name; only IP addresses and "
                        "networks are trusted (e.g. 192.168.1.10 or "
                        "192.168.1.0/24)",
                    )
                else:
                    self.problem(
                        key,
                        f"{entry!r} is not an IP address or network "
                        "(e.g. 192.168.1.10 or 192.168.1.0/24)",
                    )
                continue
            if network.prefixlen == 0:
                self.warnings.append(
                    f"{key}: {entry!r} trusts every address, so anyone can "
                    "call in with a forged From header"
                )
            entries.append(entry)
        return tuple(entries)

    def rtp_ports(self, default: tuple[int, int]) -> tuple[int, int]:
        key = "INTERCOM_RTP_PORTS"
        text = self.text(key)
        if text is None:
            return default
        match = _PORT_RANGE.fullmatch(text)
        if match is None:
            self.problem(key, f"{text!r} is not a port range like 10000-20000")
            return default
        low, high = int(match[1]), int(match[2])
        if not 1024 <= low < high <= 65535:
            self.problem(key, f"{text!r} must lie within 1024-65535, the lower port first")
            return default
        first_even = low + low % 2
        if first_even + 1 > high:
            self.problem(
                key,
                f"{text!r} holds no even/odd port pair (RTP takes an even port, RTCP the next one)",
            )
            return default
        return low, high

    def control_socket(self, default: str) -> str:
        key = "INTERCOM_CONTROL_SOCKET"
        text = self.text(key)
        if text is None:
            return default
        if not text.startswith("/"):
            self.problem(key, f"{text!r} is not an absolute path")
            return default
        size = len(os.fsencode(text))
        if size > MAX_SOCKET_PATH:
            self.problem(
                key,
                f"{text!r} is too long for a Unix socket ({size} bytes, at most {MAX_SOCKET_PATH})",
            )
            return default
        return text

    # -- warnings ---------------------------------------------------------------------------

    def cross_warnings(self, s: Settings) -> None:
        add = self.warnings.append
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
        if s.sip_server and s.sip_expires < 60:
            add(
                f"INTERCOM_SIP_EXPIRES: {s.sip_expires} s is shorter than most servers accept "
                "(they answer 423 Interval Too Brief and the intercom retries with theirs)"
            )
