"""The Home Assistant settings: INTERCOM_MQTT_* and INTERCOM_NAME, read, checked, typed, the
password as secret as the SIP one (intercom.app.settings_mqtt through load_settings)."""

from __future__ import annotations

from pathlib import Path

import pytest

from intercom.app.settings import Settings, SettingsError, load_settings
from intercom.sip.locate import HostPort

PASSWORD = "mq-S3cret#x"
NO_SERVER = (
    "INTERCOM_SIP_SERVER is empty: no registration; calls go straight to the host named in "
    "INTERCOM_CALL_TARGET"
)
TARGET = {"INTERCOM_CALL_TARGET": "sip:family@10.0.0.2"}


def problems_of(environ: dict[str, str]) -> list[str]:
    with pytest.raises(SettingsError) as info:
        load_settings({**TARGET, **environ})
    return info.value.problems


def test_defaults() -> None:
    settings = Settings()
    assert settings.mqtt_host is None  # no MQTT
    assert (settings.mqtt_user, settings.mqtt_password) == (None, None)
    assert settings.mqtt_topic == ""  # intercom/<host name>, completed where the name is known
    assert settings.mqtt_discovery_prefix == "homeassistant"
    assert settings.name == "Door intercom"
    shown = settings.redacted()
    assert shown["INTERCOM_MQTT_HOST"] == "(not set)"
    assert shown["INTERCOM_MQTT_TOPIC"] == "intercom/<host name>"
    assert shown["INTERCOM_MQTT_DISCOVERY_PREFIX"] == "homeassistant"
    assert shown["INTERCOM_NAME"] == "Door intercom"


def test_every_key_read() -> None:
    settings = load_settings({
        **TARGET,
        "INTERCOM_MQTT_HOST": " homeassistant.local:1884 ",
        "INTERCOM_MQTT_USER": "door",
        "INTERCOM_MQTT_PASSWORD": PASSWORD,
        "INTERCOM_MQTT_TOPIC": "home/doors/front",
        "INTERCOM_MQTT_DISCOVERY_PREFIX": "ha",
        "INTERCOM_NAME": "Front door",
    })  # fmt: skip
    assert settings.mqtt_host == HostPort("homeassistant.local", 1884)
    assert settings.mqtt_user == "door"
    assert settings.mqtt_password == PASSWORD
    assert settings.mqtt_topic == "home/doors/front"
    assert settings.mqtt_discovery_prefix == "ha"
    assert settings.name == "Front door"
    assert settings.warnings == (NO_SERVER,)


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("broker", HostPort("broker")),  # the port: 1883 where it is used
        ("192.168.1.5:8883", HostPort("192.168.1.5", 8883)),
        ("[2001:db8::1]:1883", HostPort("2001:db8::1", 1883)),
    ],
)
def test_broker_host_port(host: str, expected: HostPort) -> None:
    assert load_settings({**TARGET, "INTERCOM_MQTT_HOST": host}).mqtt_host == expected


@pytest.mark.parametrize(
    ("environ", "problem"),
    [
        ({"INTERCOM_MQTT_HOST": "mqtt://broker:1883"},
         "INTERCOM_MQTT_HOST: 'mqtt://broker:1883' is a URL; write only host[:port], "
         "e.g. broker:1883"),
        ({"INTERCOM_MQTT_HOST": "broker:99999"}, "INTERCOM_MQTT_HOST: 'broker:99999' is not "
         "host[:port]"),
        ({"INTERCOM_MQTT_HOST": "bro ker"}, "INTERCOM_MQTT_HOST: 'bro ker' is not host[:port]"),
        ({"INTERCOM_MQTT_HOST": "b", "INTERCOM_MQTT_USER": "a\tb"},
         "INTERCOM_MQTT_USER: contains a control character"),
        ({"INTERCOM_MQTT_TOPIC": "intercom/#"},
         "INTERCOM_MQTT_TOPIC: 'intercom/#' contains an MQTT wildcard (+ or #)"),
        ({"INTERCOM_MQTT_TOPIC": "intercom/+/x"},
         "INTERCOM_MQTT_TOPIC: 'intercom/+/x' contains an MQTT wildcard (+ or #)"),
        ({"INTERCOM_MQTT_TOPIC": "/intercom"},
         "INTERCOM_MQTT_TOPIC: '/intercom' has an empty level (a / at either end, or //)"),
        ({"INTERCOM_MQTT_TOPIC": "a//b"},
         "INTERCOM_MQTT_TOPIC: 'a//b' has an empty level (a / at either end, or //)"),
        ({"INTERCOM_MQTT_TOPIC": "$SYS/door"},
         "INTERCOM_MQTT_TOPIC: '$SYS/door' starts with $, which brokers keep for their own "
         "topics"),
        ({"INTERCOM_MQTT_TOPIC": "x" * 201},
         "INTERCOM_MQTT_TOPIC: '" + "x" * 201 + "' is longer than 200 characters"),
        ({"INTERCOM_MQTT_DISCOVERY_PREFIX": "homeassistant/"},
         "INTERCOM_MQTT_DISCOVERY_PREFIX: 'homeassistant/' has an empty level (a / at either "
         "end, or //)"),
        ({"INTERCOM_NAME": "Front\x07door"},
         "INTERCOM_NAME: 'Front\\x07door' contains a control character"),
        ({"INTERCOM_NAME": "n" * 65}, "INTERCOM_NAME: is longer than 64 characters"),
    ],
)  # fmt: skip
def test_bad_values_are_clear_problems(environ: dict[str, str], problem: str) -> None:
    problems = problems_of(environ)
    assert len(problems) == 1
    assert problems[0].startswith(problem), problems


def test_every_mqtt_problem_at_once() -> None:
    problems = problems_of({
        "INTERCOM_MQTT_HOST": "tcp://x", "INTERCOM_MQTT_TOPIC": "a/#",
        "INTERCOM_MQTT_DISCOVERY_PREFIX": "+", "INTERCOM_NAME": "\x00",
    })  # fmt: skip
    assert [p.split(":")[0] for p in problems] == [
        "INTERCOM_MQTT_HOST", "INTERCOM_MQTT_TOPIC", "INTERCOM_MQTT_DISCOVERY_PREFIX",
        "INTERCOM_NAME",
    ]  # fmt: skip


def test_a_password_needs_a_user_and_is_never_shown() -> None:
    (problem,) = problems_of({"INTERCOM_MQTT_HOST": "broker", "INTERCOM_MQTT_PASSWORD": PASSWORD})
    assert problem == (
        "INTERCOM_MQTT_PASSWORD: is set, but INTERCOM_MQTT_USER is empty: MQTT sends a password "
        "only with a user name"
    )
    assert PASSWORD not in problem


def test_the_password_is_as_secret_as_the_sip_one() -> None:
    settings = load_settings({
        **TARGET, "INTERCOM_MQTT_HOST": "broker", "INTERCOM_MQTT_USER": "door",
        "INTERCOM_MQTT_PASSWORD": f" {PASSWORD} ",
    })  # fmt: skip
    assert settings.mqtt_password == f" {PASSWORD} "  # exactly as written
    assert PASSWORD not in repr(settings) and PASSWORD not in str(settings)
    assert settings.redacted()["INTERCOM_MQTT_PASSWORD"] == "***"
    assert PASSWORD not in repr(settings.redacted()) and PASSWORD not in str(settings.warnings)
    assert Settings().redacted()["INTERCOM_MQTT_PASSWORD"] == "(not set)"


def test_a_misspelt_password_key_is_never_echoed() -> None:
    (problem,) = problems_of({"INTERCOM_MQTT_PASWORD": PASSWORD})
    assert problem == (
        "INTERCOM_MQTT_PASWORD: not a known setting; did you mean INTERCOM_MQTT_PASSWORD?"
    )


def test_an_env_file_others_can_read_warns_when_it_holds_the_mqtt_password(
    tmp_path: Path,
) -> None:
    path = tmp_path / "intercom.env"
    path.write_text(
        "INTERCOM_CALL_TARGET=sip:a@10.0.0.2\nINTERCOM_MQTT_HOST=broker\n"
        f"INTERCOM_MQTT_USER=door\nINTERCOM_MQTT_PASSWORD={PASSWORD}\n"
    )
    path.chmod(0o644)
    warnings = load_settings({}, str(path)).warnings
    assert warnings[0] == (
        f"{path}: mode 0644 lets every user read INTERCOM_MQTT_PASSWORD; make it 0600 "
        f"(chmod 600 {path})"
    )
    assert PASSWORD not in str(warnings)


def test_mqtt_keys_without_a_broker_warn() -> None:
    settings = load_settings({**TARGET, "INTERCOM_MQTT_USER": "door",
                              "INTERCOM_MQTT_TOPIC": "intercom/front"})  # fmt: skip
    assert settings.warnings == (
        NO_SERVER,
        "INTERCOM_MQTT_USER, INTERCOM_MQTT_TOPIC set, but INTERCOM_MQTT_HOST is empty: no MQTT",
    )


def test_a_base_topic_under_the_discovery_prefix_warns() -> None:
    settings = load_settings({**TARGET, "INTERCOM_MQTT_HOST": "broker",
                              "INTERCOM_MQTT_TOPIC": "homeassistant/door"})  # fmt: skip
    assert settings.warnings[-1] == (
        "INTERCOM_MQTT_TOPIC: 'homeassistant/door' lies under the discovery prefix "
        "'homeassistant', where Home Assistant looks for configurations; choose another"
    )
