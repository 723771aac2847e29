"""The doorbell's settings: :class:`DoorbellConfig`, checked on construction, and the part of
the validated :class:`intercom.app.settings.Settings` it is made from (:meth:`from_settings`).

The configuration only holds values; :class:`intercom.app.doorbell.Doorbell` applies them, and
hands ``door_code``, ``code_attempts`` and ``lockout`` to :class:`intercom.app.door_lock.DoorLock`
and ``allowed_callers``, ``trusted_networks`` and ``home_domains`` to
:class:`intercom.app.policy.CallPolicy`, which check them in turn.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from intercom.app.policy import Network, parse_networks
from intercom.sip.locate import parse_hostport

__all__ = ["DoorbellConfig"]


class _SettingsLike(Protocol):
    """What :meth:`DoorbellConfig.from_settings` reads (``intercom.app.settings.Settings``)."""

    @property
    def call_target(self) -> str | None: ...
    @property
    def ring_timeout(self) -> float: ...
    @property
    def max_call_duration(self) -> float: ...
    @property
    def cooldown(self) -> float: ...
    @property
    def door_code(self) -> str | None: ...
    @property
    def door_pulse(self) -> float: ...
    @property
    def door_code_attempts(self) -> int: ...
    @property
    def door_lockout(self) -> float: ...
    @property
    def answer_delay(self) -> float: ...
    @property
    def allowed_callers(self) -> tuple[str, ...]: ...
    @property
    def trusted_hosts(self) -> tuple[str, ...]: ...
    @property
    def door_relay_pin(self) -> int | None: ...
    @property
    def sip_server(self) -> str: ...
    @property
    def sip_outbound_proxy(self) -> str: ...


@dataclass(frozen=True, slots=True)
class DoorbellConfig:
    """The doorbell's settings (defaults as in design.md). ``ValueError`` for impossible ones."""

    call_target: str | None = None  #: the one-number; None: a press only shows an error
    ring_timeout: float = 30.0  #: seconds before an unanswered call is cancelled
    max_call_duration: float = 180.0  #: seconds before an answered call is ended
    cooldown: float = 5.0  #: seconds after a call during which a press does nothing
    door_code: str | None = None  #: DTMF keys that open the door; None: no code
    door_pulse: float = 3.0  #: seconds the relay is energised
    code_attempts: int = 3  #: wrong codes in a row before the lockout
    lockout: float = 300.0  #: seconds the door code is locked out
    answer_delay: float = 0.0  #: seconds before an allowed incoming call is answered
    allowed_callers: tuple[str, ...] = ()  #: see :class:`intercom.app.policy.AllowedCaller`
    trusted_networks: tuple[Network, ...] = ()  #: besides the SIP server's own addresses
    home_domains: tuple[str, ...] = ()  #: hosts where a bare allowed user name is matched
    has_relay: bool = False  #: a door relay is wired (INTERCOM_DOOR_RELAY_PIN)
    registration: bool = False  #: a SIP server is configured: the status starts "registering"

    def __post_init__(self) -> None:
        positive = {"ring_timeout": self.ring_timeout, "door_pulse": self.door_pulse,
                    "max_call_duration": self.max_call_duration}  # fmt: skip
        for name, value in positive.items():
            if not value > 0:
                raise ValueError(f"{name} must be a positive number of seconds, not {value}")
        not_negative = {"cooldown": self.cooldown, "lockout": self.lockout,
                        "answer_delay": self.answer_delay}  # fmt: skip
        for name, value in not_negative.items():
            if not value >= 0:
                raise ValueError(f"{name} must not be a negative number of seconds: {value}")
        if self.code_attempts < 1:
            raise ValueError(f"code_attempts must be at least 1, not {self.code_attempts}")

    @classmethod
    def from_settings(cls, settings: _SettingsLike) -> DoorbellConfig:
        """The doorbell's part of the validated settings (``ValueError`` for a trusted host
        that is not an address or network)."""
        return cls(
            call_target=settings.call_target or None,
            ring_timeout=settings.ring_timeout,
            max_call_duration=settings.max_call_duration,
            cooldown=settings.cooldown,
            door_code=settings.door_code or None,
            door_pulse=settings.door_pulse,
            code_attempts=settings.door_code_attempts,
            lockout=settings.door_lockout,
            answer_delay=settings.answer_delay,
            allowed_callers=tuple(settings.allowed_callers),
            trusted_networks=parse_networks(settings.trusted_hosts),
            home_domains=tuple(
                parse_hostport(server)[0]
                for server in (settings.sip_server, settings.sip_outbound_proxy)
                if server
            ),
            has_relay=settings.door_relay_pin is not None,
            registration=bool(settings.sip_server),
        )
