"""DoorbellConfig: impossible values refused, and the doorbell's part of the settings."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

import pytest

from intercom.app.doorbell import Doorbell
from intercom.app.doorbell_config import DoorbellConfig


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("ring_timeout", 0, "ring_timeout must be a positive number of seconds, not 0"),
        ("max_call_duration", -1, "max_call_duration must be a positive"),
        ("door_pulse", 0.0, "door_pulse must be a positive"),
        ("cooldown", -0.5, "cooldown must not be a negative number of seconds: -0.5"),
        ("lockout", -1, "lockout must not be a negative"),
        ("answer_delay", -1, "answer_delay must not be a negative"),
        ("code_attempts", 0, "code_attempts must be at least 1, not 0"),
    ],
)
def test_config_validation(field, value, message):
    with pytest.raises(ValueError, match=message):
        DoorbellConfig(**{field: value})


def test_bad_door_code_or_caller_is_refused():
    with pytest.raises(ValueError, match="door code key 'x' is not a DTMF digit"):
        Doorbell(DoorbellConfig(door_code="12x4"))
    with pytest.raises(ValueError, match="names no user"):
        Doorbell(DoorbellConfig(allowed_callers=("sip:pbx.example",)))


@dataclass(frozen=True)
class FakeSettings:
    call_target: str | None = "family"
    ring_timeout: float = 20.0
    max_call_duration: float = 120.0
    cooldown: float = 4.0
    door_code: str | None = "4711"
    door_pulse: float = 2.5
    door_code_attempts: int = 5
    door_lockout: float = 600.0
    answer_delay: float = 1.0
    allowed_callers: tuple[str, ...] = ("alice",)
    trusted_hosts: tuple[str, ...] = ("10.0.0.0/8", "192.0.2.1")
    door_relay_pin: int | None = 27
    sip_server: str = "pbx.example"
    sip_outbound_proxy: str = "[2001:db8::5]:5070"


def test_config_from_settings():
    assert DoorbellConfig.from_settings(FakeSettings()) == DoorbellConfig(
        call_target="family", ring_timeout=20.0, max_call_duration=120.0, cooldown=4.0,
        door_code="4711", door_pulse=2.5, code_attempts=5, lockout=600.0, answer_delay=1.0,
        allowed_callers=("alice",),
        trusted_networks=(ipaddress.ip_network("10.0.0.0/8"),
                          ipaddress.ip_network("192.0.2.1/32")),
        home_domains=("pbx.example", "2001:db8::5"),
        has_relay=True, registration=True,
    )  # fmt: skip
    bare = DoorbellConfig.from_settings(
        FakeSettings(call_target="", door_code="", door_relay_pin=None, sip_server="",
                     sip_outbound_proxy="")
    )  # fmt: skip
    assert (bare.call_target, bare.door_code, bare.has_relay, bare.registration,
            bare.home_domains) == (None, None, False, False, ())  # fmt: skip
