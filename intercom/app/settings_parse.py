"""The rule of each ``INTERCOM_*`` value: its syntax, its range, and its one-line problem.

:class:`ValueParser` reads one key at a time from the merged mapping of values and turns its text
into the typed value of :class:`~intercom.app.settings.Settings`, following the rules every key
shares (see :mod:`intercom.app.settings`: blanks, empty values, decimal numbers, secrets). A bad
value becomes a problem (``"KEY: ..."``, with a hint when the value holds an inline ``#``
comment, which systemd does not strip) and the default stands in, so that every key is looked
at and every problem reported; values that work but are doubtful add warnings.

A check that needs another key's value takes it as an argument (the SIP user and a bare call
target need the server, the door code a relay); the checks of several finished values at once
are :mod:`intercom.app.settings`'s. Syntax only: whether an audio device exists or a WAV file can
be read is ``intercom check``'s job (:func:`intercom.hw.audio.validate_spec`).
"""

from __future__ import annotations

import ipaddress
import math
import os
import re
from collections.abc import Callable, Mapping
from typing import Literal, TypeVar

from intercom.app.policy import AllowedCaller, Network, parse_networks
from intercom.app.settings_keys import SECRET_KEYS
from intercom.sip.errors import RemoteProtocolError
from intercom.sip.locate import HostPort
from intercom.sip.uri import SipUri, parse_uri

__all__ = [
    "DOOR_CODE_LENGTH",
    "LOG_LEVELS",
    "MAX_DOOR_PULSE",
    "MAX_PIN",
    "MAX_SOCKET_PATH",
    "GpioMode",
    "Transport",
    "ValueParser",
]

Transport = Literal["udp", "tcp", "tls"]
SRTP_MODES = ("off", "optional", "mandatory")
"""INTERCOM_SRTP (the media layer's ``offer_answer.SRTP_MODES``, not imported at start-up)."""
GpioMode = Literal["pi", "mock", "auto"]
_C = TypeVar("_C", bound=str)

MAX_DOOR_PULSE = 30.0
"""Longest relay pulse, seconds: door openers are made for seconds, not for minutes."""
MAX_PIN = 27
"""Highest BCM GPIO number on the 40-pin header."""
DOOR_CODE_LENGTH = (4, 16)
MAX_SOCKET_PATH = 107
"""Longest Unix socket path in bytes (``sun_path`` is 108 with its terminating NUL)."""
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")

_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)")
_PHONE = re.compile(r"\+?[0-9][0-9.()-]*")
_WHOLE = re.compile(r"[+-]?[0-9]+")
_PORT_RANGE = re.compile(r"([0-9]{1,6})\s*-\s*([0-9]{1,6})")
_DTMF = frozenset("0123456789*#ABCD")
# RFC 3261 §25.1 "user": unreserved / escaped / user-unreserved.
_SIP_USER = re.compile(r"(?:[A-Za-z0-9\-_.!~*'()&=+$,;?/]|%[0-9A-Fa-f]{2})+")
_CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f]")
_INLINE_COMMENT = re.compile(r"\s[#;]")
_YES = frozenset({"yes", "true", "on", "1"})
_NO = frozenset({"no", "false", "off", "0"})


def _sip_uri(text: str) -> str | None:
    if text.lower().startswith(("sip:", "sips:")):
        return "URI; write only host[:port], e.g. pbx.example.net"
    return None


class ValueParser:
    """Reads each key with its rule; a bad value becomes a problem and the default stands in,
    so that every key is looked at and every problem reported."""

    def __init__(self, values: Mapping[str, str], warnings: list[str]) -> None:
        self.values = values
        self.problems: dict[str, list[str]] = {}  # key -> its problems
        self.warnings = warnings

    # -- plumbing ---------------------------------------------------------------------------

    def text(self, key: str) -> str | None:
        """The value without surrounding blanks; None when absent or empty (the default)."""
        value = self.values.get(key)
        if value is None or not value.strip():
            return None
        return value.strip()

    def problem(self, key: str, what: str) -> None:
        line = f"{key}: {what}"
        if key not in SECRET_KEYS and _INLINE_COMMENT.search(self.values.get(key, "")):
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

    def flag(self, key: str, default: bool) -> bool:
        text = self.text(key)
        if text is None:
            return default
        if text.lower() in _YES:
            return True
        if text.lower() in _NO:
            return False
        self.problem(key, f"{text!r} is not yes or no")
        return default

    # -- choices ----------------------------------------------------------------------------

    def choice(self, key: str, choices: tuple[_C, ...], default: _C) -> _C:
        """One of ``choices``, in any case; ``default`` when not set."""
        text = self.text(key)
        if text is None:
            return default
        for choice in choices:
            if text.lower() == choice.lower():
                return choice
        words = ", ".join(choices[:-1]) + " or " + choices[-1]
        self.problem(key, f"{text!r} is not {words}")
        return default

    # -- SIP --------------------------------------------------------------------------------

    def host_port(self, key: str, url: Callable[[str], str | None] = _sip_uri) -> HostPort | None:
        """``host[:port]`` of a server, proxy or broker; None when not set. ``url(text)``: what
        to write instead of a URI or URL, None when ``text`` is none."""
        text = self.text(key)
        if text is None:
            return None
        if (instead := url(text)) is not None:
            self.problem(key, f"{text!r} is a {instead}")
            return None
        try:
            return HostPort.parse(text)
        except ValueError as exc:
            detail = str(exc).removeprefix(f"invalid host:port {text!r}: ")
            self.problem(key, f"{text!r} is not host[:port]: {detail}")
            return None

    def sip_user(self, server: HostPort | None) -> str:
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

    def call_target(self, server: HostPort | None) -> SipUri | None:
        """The one-number as the URI it calls: ``user@host`` gets ``sip:``, and a bare user
        name means that user at the server (the only place this rule lives)."""
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
            return uri
        if not _SIP_USER.fullmatch(text) or ":" in text:
            self.problem(key, f"{text!r} is not a SIP URI (sip:user@host), user@host or user name")
            return None
        if server is None:
            if not self.text("INTERCOM_SIP_SERVER"):  # else the server's own problem says it
                self.problem(
                    key,
                    f"{text!r} is a user name at the server, but INTERCOM_SIP_SERVER "
                    f"is empty; write a SIP URI such as sip:{text}@192.168.1.20",
                )
            return None
        return SipUri(server.host, text, server.port)

    def allowed_callers(self, home: HostPort | None) -> tuple[AllowedCaller, ...]:
        """The entries; a bare user name means that user at ``home`` (the SIP server or the
        outbound proxy), so without one it must be written user@host."""
        key = "INTERCOM_ALLOWED_CALLERS"
        entries: list[AllowedCaller] = []
        for entry in self.items(key):
            try:
                caller = AllowedCaller.parse(entry)
            except ValueError:
                self.problem(key, f"{entry!r} is not a user name, user@host, SIP URI or tel: URI")
                continue
            bare_name = caller.host is None and not caller.tel
            if bare_name and not home and not _PHONE.fullmatch(caller.user):  # numbers: tel
                self.problem(
                    key,
                    f"{entry!r} is a bare user name, which means that user at "
                    "INTERCOM_SIP_SERVER, and no server is set: write user@host",
                )
                continue
            entries.append(caller)
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
        from intercom.media.codecs import parse_codec_list  # only when the codecs are set

        try:
            return parse_codec_list(text)
        except ValueError as exc:
            self.problem("INTERCOM_CODECS", str(exc))
            return default

    # -- network ----------------------------------------------------------------------------

    def bind(self, default: HostPort) -> HostPort:
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
        return HostPort(str(address), port)

    def trusted_hosts(self) -> tuple[Network, ...]:
        key = "INTERCOM_TRUSTED_HOSTS"
        entries: list[Network] = []
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
            entries.append(network)
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

    def absolute_path(self, key: str, default: str) -> str:
        text = self.text(key)
        if text is None:
            return default
        if not text.startswith("/"):
            self.problem(key, f"{text!r} is not an absolute path")
            return default
        return text

    def control_socket(self, default: str) -> str:
        key = "INTERCOM_CONTROL_SOCKET"
        text = self.absolute_path(key, default)
        if text == default:  # not set, not absolute (a problem), or the default itself
            return default
        size = len(os.fsencode(text))
        if size > MAX_SOCKET_PATH:
            self.problem(
                key,
                f"{text!r} is too long for a Unix socket ({size} bytes, at most {MAX_SOCKET_PATH})",
            )
            return default
        return text
