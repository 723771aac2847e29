"""Settings: defaults, a full file, every wrong value's message, all problems at once, the
environment over the file, secrets kept out of every output, and the shipped example file."""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path

import pytest

from intercom.app.doorbell import Doorbell
from intercom.app.policy import AllowedCaller
from intercom.app.settings import KEYS, Settings, SettingsError, load_settings
from intercom.errors import IntercomError
from intercom.sip.locate import HostPort
from intercom.sip.uri import SipUri

EXAMPLE = Path(__file__).resolve().parents[2] / "systemd" / "intercom.env.example"
PASSWORD = "s3cr3t-Pa55"
NO_SERVER = (
    "INTERCOM_SIP_SERVER is empty: no registration; calls go straight to the host named in "
    "INTERCOM_CALL_TARGET"
)
NO_TARGET = "INTERCOM_CALL_TARGET is not set: a press of the button only logs an error"

FULL_FILE = f"""\
# a complete configuration
INTERCOM_SIP_SERVER=pbx.example.net:5070
INTERCOM_SIP_USER=door
INTERCOM_SIP_PASSWORD='{PASSWORD}'
INTERCOM_SIP_AUTH_USER=door-auth
INTERCOM_SIP_EXPIRES=300
INTERCOM_SIP_OUTBOUND_PROXY=[2001:db8::5]:5060
INTERCOM_CALL_TARGET=sip:family@pbx.example.net
INTERCOM_RING_TIMEOUT=45
INTERCOM_MAX_CALL_DURATION=2.5
INTERCOM_CALL_COOLDOWN=0
INTERCOM_ALLOWED_CALLERS= alice, ,bob@pbx.example.net,tel:+4930123456,
INTERCOM_ANSWER_DELAY=1.5
INTERCOM_DOOR_CODE=25a0#
INTERCOM_DOOR_PULSE=30
INTERCOM_DOOR_CODE_ATTEMPTS=5
INTERCOM_DOOR_LOCKOUT=600
INTERCOM_GPIO=MOCK
INTERCOM_BUTTON_PIN=5
INTERCOM_LED_PIN=0
INTERCOM_DOOR_RELAY_PIN=27
INTERCOM_AUDIO_INPUT=wav:/var/lib/intercom/door.wav
INTERCOM_AUDIO_OUTPUT=USB Audio
INTERCOM_CODECS=pcmu, g722
INTERCOM_SIP_TRANSPORT=TCP
INTERCOM_SIP_BIND=[::]
INTERCOM_TRUSTED_HOSTS=192.168.1.10, 10.0.0.0/8, [2001:db8::1], 2001:db8::/32
INTERCOM_RTP_PORTS=16384-16483
INTERCOM_MEDIA_TIMEOUT=20
INTERCOM_CONTROL_SOCKET=/run/door/control.sock
INTERCOM_LOG_LEVEL=debug
"""


def write(tmp_path: Path, text: str, mode: int = 0o600) -> str:
    path = tmp_path / "intercom.env"
    path.write_text(text)
    path.chmod(mode)
    return str(path)


def problems_of(environ: dict[str, str], env_file: str | None = None) -> list[str]:
    with pytest.raises(SettingsError) as info:
        load_settings(environ, env_file)
    return info.value.problems


# ---- defaults and a full file ----------------------------------------------------------------


def test_defaults_are_design_md():
    settings = load_settings({})
    assert settings == Settings()  # warnings do not take part in ==
    assert (settings.sip_server, settings.sip_user, settings.sip_password) == (None, "", None)
    assert settings.sip_transport == "udp"
    assert settings.sip_bind == HostPort("0.0.0.0", 5060)
    assert settings.sip_expires == 600
    assert settings.call_target is None
    assert settings.sip_outbound_proxy is None
    assert (settings.ring_timeout, settings.max_call_duration) == (30.0, 180.0)
    assert settings.gpio == "auto"
    assert (settings.button_pin, settings.led_pin, settings.door_relay_pin) == (17, None, None)
    assert (settings.door_code, settings.door_pulse) == (None, 3.0)
    assert (settings.audio_input, settings.audio_output) == ("default", "default")
    assert settings.codecs == ("G722", "PCMU", "PCMA")
    assert (settings.allowed_callers, settings.trusted_hosts) == ((), ())
    assert settings.rtp_ports == (10000, 20000)
    assert settings.control_socket == "/run/intercom/control.sock"
    assert settings.log_level == "INFO"
    assert (settings.media_timeout, settings.cooldown, settings.answer_delay) == (30.0, 5.0, 0.0)
    assert (settings.door_code_attempts, settings.door_lockout) == (3, 300.0)
    assert settings.warnings == (NO_SERVER, NO_TARGET)


def test_full_file(tmp_path):
    settings = load_settings({"PATH": "/usr/bin", "HOME": "/root"}, write(tmp_path, FULL_FILE))
    assert settings == Settings(
        sip_server=HostPort("pbx.example.net", 5070),
        sip_user="door",
        sip_password=PASSWORD,
        sip_auth_user="door-auth",
        sip_expires=300,
        sip_outbound_proxy=HostPort("2001:db8::5", 5060),
        call_target=SipUri("pbx.example.net", "family"),
        ring_timeout=45.0,
        max_call_duration=2.5,
        cooldown=0.0,
        allowed_callers=(
            AllowedCaller("alice"),
            AllowedCaller("bob", "pbx.example.net"),
            AllowedCaller("+4930123456", tel=True),
        ),
        answer_delay=1.5,
        door_code="25A0#",
        door_pulse=30.0,
        door_code_attempts=5,
        door_lockout=600.0,
        gpio="mock",
        button_pin=5,
        led_pin=0,
        door_relay_pin=27,
        audio_input="wav:/var/lib/intercom/door.wav",
        audio_output="USB Audio",
        codecs=("PCMU", "G722"),
        sip_transport="tcp",
        sip_bind=HostPort("::", 5060),
        trusted_hosts=tuple(
            ipaddress.ip_network(n)
            for n in ("192.168.1.10", "10.0.0.0/8", "2001:db8::1", "2001:db8::/32")
        ),
        rtp_ports=(16384, 16483),
        media_timeout=20.0,
        control_socket="/run/door/control.sock",
        log_level="DEBUG",
    )
    assert settings.warnings == ()
    # What the doorbell builds from it must not fail at runtime either.
    bell = Doorbell(settings, lambda: "c1")
    assert bell.open_request(0.0) and bell.snapshot().registration == "registering"
    assert len(bell.policy.trusted_networks) == 4


def test_environment_overrides_the_file_key_by_key(tmp_path):
    path = write(tmp_path, "INTERCOM_RING_TIMEOUT=45\nINTERCOM_LOG_LEVEL=DEBUG\n")
    settings = load_settings({"INTERCOM_RING_TIMEOUT": "10"}, path)
    assert (settings.ring_timeout, settings.log_level) == (10.0, "DEBUG")


def test_an_empty_environment_value_means_the_default_even_over_the_file(tmp_path):
    path = write(tmp_path, "INTERCOM_LED_PIN=27\nINTERCOM_RING_TIMEOUT=45\n")
    settings = load_settings({"INTERCOM_LED_PIN": "", "INTERCOM_RING_TIMEOUT": "  "}, path)
    assert (settings.led_pin, settings.ring_timeout) == (None, 30.0)


def test_from_env_is_the_pure_core():
    settings = Settings.from_env({"INTERCOM_RING_TIMEOUT": "12", "PATH": "/bin"})
    assert settings.ring_timeout == 12.0
    with pytest.raises(SettingsError) as info:
        Settings.from_env({"INTERCOM_GPIO": "x"})
    assert info.value.problems == ["INTERCOM_GPIO: 'x' is not pi, mock or auto"]


def test_keys_outside_the_prefix_are_ignored(tmp_path):
    path = write(tmp_path, "PYTHONUNBUFFERED=1\nGPIOZERO_PIN_FACTORY=mock\n")
    assert load_settings({"PATH": "/bin", "LANG": "C"}, path) == Settings()


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("0.0.0.0", "0.0.0.0:5060"),
        ("127.0.0.1:0", "127.0.0.1:0"),  # any free port (the demo)
        ("192.168.1.30:5070", "192.168.1.30:5070"),
        ("[::]", "[::]:5060"),
        ("[::1]:5070", "[::1]:5070"),
        ("[2001:DB8::1]:5060", "[2001:db8::1]:5060"),
    ],
)
def test_bind_is_normalised_to_address_and_port(value, expected):
    assert str(load_settings({"INTERCOM_SIP_BIND": value}).sip_bind) == expected


@pytest.mark.parametrize(
    "target",
    ["sip:alice@192.168.1.20", "sips:alice@pbx.example.net:5061", "alice@pbx", "sip:10.0.0.9"],
)
def test_call_targets_without_a_server(target):
    uri = target if target.startswith(("sip:", "sips:")) else f"sip:{target}"
    assert load_settings({"INTERCOM_CALL_TARGET": f" {target} "}).call_target == SipUri.parse(uri)


@pytest.mark.parametrize("target", ["family", "**9", "+4930123456", "620"])
def test_call_target_user_names_at_the_server(target):
    environ = {"INTERCOM_SIP_SERVER": "fritz.box:5070", "INTERCOM_SIP_USER": "door"}
    settings = load_settings({**environ, "INTERCOM_CALL_TARGET": target})
    assert settings.call_target == SipUri("fritz.box", target, 5070)  # completed here, once


def test_allowed_callers_are_parsed_once_and_shown_as_entries():
    environ = {"INTERCOM_SIP_SERVER": "pbx.example", "INTERCOM_SIP_USER": "door"}
    callers = " alice, sip:Bob@PBX.example:5070 ,+4930123456, tel:+4930999"
    settings = load_settings({**environ, "INTERCOM_ALLOWED_CALLERS": callers})
    assert settings.allowed_callers == (
        AllowedCaller("alice"),
        AllowedCaller("Bob", "pbx.example", 5070),
        AllowedCaller("+4930123456"),
        AllowedCaller("+4930999", tel=True),
    )
    shown = settings.redacted()["INTERCOM_ALLOWED_CALLERS"]
    assert shown == "alice,Bob@pbx.example:5070,+4930123456,tel:+4930999"
    # The policy takes the typed entries as they are: nothing parses them a second time.
    assert Doorbell(settings, lambda: "c1").policy.allowed is settings.allowed_callers


def test_password_is_taken_exactly_as_written():
    settings = load_settings({"INTERCOM_SIP_PASSWORD": " pa ss "})
    assert settings.sip_password == " pa ss "
    assert load_settings({"INTERCOM_SIP_PASSWORD": ""}).sip_password is None


# ---- wrong values: one exact line each -------------------------------------------------------

RELAY = {"INTERCOM_DOOR_RELAY_PIN": "22"}
LONG_SOCKET = "/run/" + "x" * 110


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        (
            {"INTERCOM_RING_TIMEOUT": "abc"},
            "INTERCOM_RING_TIMEOUT: 'abc' is not a number of seconds",
        ),
        (
            {"INTERCOM_RING_TIMEOUT": "30s"},
            "INTERCOM_RING_TIMEOUT: '30s' is not a number of seconds",
        ),
        ({"INTERCOM_RING_TIMEOUT": "0"}, "INTERCOM_RING_TIMEOUT: '0' must be more than 0 seconds"),
        (
            {"INTERCOM_MAX_CALL_DURATION": "-5"},
            "INTERCOM_MAX_CALL_DURATION: '-5' must be more than 0 seconds",
        ),
        ({"INTERCOM_CALL_COOLDOWN": "-1"}, "INTERCOM_CALL_COOLDOWN: '-1' must not be negative"),
        (
            {"INTERCOM_ANSWER_DELAY": "soon"},
            "INTERCOM_ANSWER_DELAY: 'soon' is not a number of seconds",
        ),
        (
            {"INTERCOM_DOOR_LOCKOUT": "nan"},
            "INTERCOM_DOOR_LOCKOUT: 'nan' is not a number of seconds",
        ),
        (
            {"INTERCOM_MEDIA_TIMEOUT": "1e3"},
            "INTERCOM_MEDIA_TIMEOUT: '1e3' is not a number of seconds",
        ),
        (
            {"INTERCOM_MEDIA_TIMEOUT": "0.0"},
            "INTERCOM_MEDIA_TIMEOUT: '0.0' must be more than 0 seconds",
        ),
        (
            {"INTERCOM_DOOR_PULSE": "30.5"},
            "INTERCOM_DOOR_PULSE: '30.5' is more than 30 seconds; a door opener is not made to "
            "stay energised that long",
        ),
        ({"INTERCOM_DOOR_PULSE": "0"}, "INTERCOM_DOOR_PULSE: '0' must be more than 0 seconds"),
        ({"INTERCOM_SIP_EXPIRES": "10.5"}, "INTERCOM_SIP_EXPIRES: '10.5' is not a whole number"),
        (
            {"INTERCOM_SIP_EXPIRES": "0"},
            "INTERCOM_SIP_EXPIRES: '0' must be between 1 and 4294967295",
        ),
        (
            {"INTERCOM_DOOR_CODE_ATTEMPTS": "0"},
            "INTERCOM_DOOR_CODE_ATTEMPTS: '0' must be between 1 and 1000",
        ),
        ({"INTERCOM_BUTTON_PIN": "28"}, "INTERCOM_BUTTON_PIN: '28' is not a BCM pin number (0-27)"),
        (
            {"INTERCOM_LED_PIN": "GPIO27"},
            "INTERCOM_LED_PIN: 'GPIO27' is not a BCM pin number (0-27)",
        ),
        (
            {"INTERCOM_DOOR_RELAY_PIN": "-1"},
            "INTERCOM_DOOR_RELAY_PIN: '-1' is not a BCM pin number (0-27)",
        ),
        (
            {"INTERCOM_LED_PIN": "17"},
            "INTERCOM_LED_PIN: '17' is also INTERCOM_BUTTON_PIN; each pin can do one job",
        ),
        (
            {"INTERCOM_LED_PIN": "27", "INTERCOM_DOOR_RELAY_PIN": "27"},
            "INTERCOM_DOOR_RELAY_PIN: '27' is also INTERCOM_LED_PIN; each pin can do one job",
        ),
        (
            {"INTERCOM_SIP_TRANSPORT": "sctp"},
            "INTERCOM_SIP_TRANSPORT: 'sctp' is not udp, tcp or tls",
        ),
        (
            {"INTERCOM_TLS_CA_FILE": "ca.pem"},
            "INTERCOM_TLS_CA_FILE: 'ca.pem' is not an absolute path",
        ),
        ({"INTERCOM_TLS_VERIFY": "maybe"}, "INTERCOM_TLS_VERIFY: 'maybe' is not yes or no"),
        ({"INTERCOM_GPIO": "rpi"}, "INTERCOM_GPIO: 'rpi' is not pi, mock or auto"),
        (
            {"INTERCOM_LOG_LEVEL": "verbose"},
            "INTERCOM_LOG_LEVEL: 'verbose' is not DEBUG, INFO, WARNING or ERROR",
        ),
        (
            {"INTERCOM_SIP_SERVER": "sip:pbx.example.net", "INTERCOM_SIP_USER": "door"},
            "INTERCOM_SIP_SERVER: 'sip:pbx.example.net' is a URI; write only host[:port], "
            "e.g. pbx.example.net",
        ),
        (
            {"INTERCOM_SIP_SERVER": "pbx:99999", "INTERCOM_SIP_USER": "door"},
            "INTERCOM_SIP_SERVER: 'pbx:99999' is not host[:port]: port 99999 is not in 1..65535",
        ),
        (
            {"INTERCOM_SIP_OUTBOUND_PROXY": "[::1"},
            "INTERCOM_SIP_OUTBOUND_PROXY: '[::1' is not host[:port]: missing ']'",
        ),
        (
            {"INTERCOM_SIP_USER": "door@pbx"},
            "INTERCOM_SIP_USER: 'door@pbx' should be the user name only; the server goes in "
            "INTERCOM_SIP_SERVER",
        ),
        (
            {"INTERCOM_SIP_USER": "my door"},
            "INTERCOM_SIP_USER: 'my door' is not a SIP user name (letters, digits, "
            "-_.!~*'()&=+$,;?/ or %XX escapes)",
        ),
        (
            {"INTERCOM_SIP_AUTH_USER": 'a"b'},
            "INTERCOM_SIP_AUTH_USER: 'a\"b' may not contain '\"', '\\' or control characters",
        ),
        (
            {"INTERCOM_CALL_TARGET": "alice smith"},
            "INTERCOM_CALL_TARGET: 'alice smith' is not a SIP URI (sip:user@host), user@host or "
            "user name",
        ),
        (
            {"INTERCOM_CALL_TARGET": "tel:+4930"},
            "INTERCOM_CALL_TARGET: 'tel:+4930' is not a SIP URI (sip:user@host), user@host or "
            "user name",
        ),
        (
            {"INTERCOM_CALL_TARGET": "sip:alice@"},
            "INTERCOM_CALL_TARGET: 'sip:alice@' is not a SIP URI (sip:user@host), user@host or "
            "user name",
        ),
        (
            {"INTERCOM_CALL_TARGET": "alice"},
            "INTERCOM_CALL_TARGET: 'alice' is a user name at the server, but INTERCOM_SIP_SERVER "
            "is empty; write a SIP URI such as sip:alice@192.168.1.20",
        ),
        (
            {"INTERCOM_DOOR_CODE": "12x4y", **RELAY},
            "INTERCOM_DOOR_CODE: may only hold the DTMF keys 0-9, *, # and A-D, not 'xy'",
        ),
        (
            {"INTERCOM_DOOR_CODE": "123", **RELAY},
            "INTERCOM_DOOR_CODE: must be 4 to 16 keys long, not 3",
        ),
        (
            {"INTERCOM_DOOR_CODE": "1" * 17, **RELAY},
            "INTERCOM_DOOR_CODE: must be 4 to 16 keys long, not 17",
        ),
        (
            {"INTERCOM_DOOR_CODE": "1234"},
            "INTERCOM_DOOR_CODE: a door code needs INTERCOM_DOOR_RELAY_PIN (the relay it opens)",
        ),
        (
            {"INTERCOM_AUDIO_INPUT": "wav:"},
            "INTERCOM_AUDIO_INPUT: 'wav:' needs a file path after 'wav:', "
            "e.g. wav:/var/lib/intercom/door.wav",
        ),
        (
            {"INTERCOM_AUDIO_INPUT": "tone:loud"},
            "INTERCOM_AUDIO_INPUT: 'tone:loud' needs a frequency above 0 and at most 20000 Hz "
            "after 'tone:', e.g. tone:440",
        ),
        (
            {"INTERCOM_AUDIO_INPUT": "TONE:0"},
            "INTERCOM_AUDIO_INPUT: 'TONE:0' needs a frequency above 0 and at most 20000 Hz "
            "after 'tone:', e.g. tone:440",
        ),
        (
            {"INTERCOM_AUDIO_OUTPUT": "tone:440"},
            "INTERCOM_AUDIO_OUTPUT: 'tone:440' cannot be an output (a tone is an input only); "
            "use default, a device index or name, wav:PATH or null",
        ),
        (
            {"INTERCOM_CODECS": "PCMU,opus"},
            "INTERCOM_CODECS: unknown codec 'opus' (known: PCMU, PCMA, G722)",
        ),
        (
            {"INTERCOM_CODECS": ","},
            "INTERCOM_CODECS: no codec named in ',' (known: PCMU, PCMA, G722)",
        ),
        (
            {"INTERCOM_SIP_BIND": "pbx:5060"},
            "INTERCOM_SIP_BIND: 'pbx:5060' needs an IP address to listen on (0.0.0.0: every IPv4 "
            "address, [::]: every IPv6 address)",
        ),
        (
            {"INTERCOM_SIP_BIND": "::1:5060"},
            "INTERCOM_SIP_BIND: '::1:5060': put an IPv6 address in brackets, e.g. [::]:5060",
        ),
        (
            {"INTERCOM_SIP_BIND": "0.0.0.0:70000"},
            "INTERCOM_SIP_BIND: '0.0.0.0:70000' has no valid port (0-65535 after the last ':')",
        ),
        (
            {"INTERCOM_SIP_BIND": "[::1"},
            "INTERCOM_SIP_BIND: '[::1' lacks the ']' closing the IPv6 address",
        ),
        (
            {"INTERCOM_SIP_BIND": "[10.0.0.1]:5060"},
            "INTERCOM_SIP_BIND: '[10.0.0.1]:5060': only an IPv6 address goes in brackets",
        ),
        (
            {"INTERCOM_TRUSTED_HOSTS": "10.0.0.0/8, pbx.lan", "INTERCOM_ALLOWED_CALLERS": "a@b"},
            "INTERCOM_TRUSTED_HOSTS: 'pbx.lan' is a host name; only IP addresses and networks "
            "are trusted (e.g. 192.168.1.10 or 192.168.1.0/24)",
        ),
        (
            {"INTERCOM_TRUSTED_HOSTS": "10.0.0.0/33"},
            "INTERCOM_TRUSTED_HOSTS: '10.0.0.0/33' is not an IP address or network "
            "(e.g. 192.168.1.10 or 192.168.1.0/24)",
        ),
        (
            {"INTERCOM_ALLOWED_CALLERS": "alice@pbx, <sip:bob@pbx>"},
            "INTERCOM_ALLOWED_CALLERS: '<sip:bob@pbx>' is not a user name, user@host, SIP URI "
            "or tel: URI",
        ),
        (
            {"INTERCOM_ALLOWED_CALLERS": "+4930123456, alice"},
            "INTERCOM_ALLOWED_CALLERS: 'alice' is a bare user name, which means that user at "
            "INTERCOM_SIP_SERVER, and no server is set: write user@host",
        ),
        (
            {"INTERCOM_RTP_PORTS": "10000"},
            "INTERCOM_RTP_PORTS: '10000' is not a port range like 10000-20000",
        ),
        (
            {"INTERCOM_RTP_PORTS": "20000-10000"},
            "INTERCOM_RTP_PORTS: '20000-10000' must lie within 1024-65535, the lower port first",
        ),
        (
            {"INTERCOM_RTP_PORTS": "80-1000"},
            "INTERCOM_RTP_PORTS: '80-1000' must lie within 1024-65535, the lower port first",
        ),
        (
            {"INTERCOM_RTP_PORTS": "10001-10002"},
            "INTERCOM_RTP_PORTS: '10001-10002' holds no even/odd port pair (RTP takes an even "
            "port, RTCP the next one)",
        ),
        (
            {"INTERCOM_CONTROL_SOCKET": "control.sock"},
            "INTERCOM_CONTROL_SOCKET: 'control.sock' is not an absolute path",
        ),
        (
            {"INTERCOM_CONTROL_SOCKET": LONG_SOCKET},
            f"INTERCOM_CONTROL_SOCKET: {LONG_SOCKET!r} is too long for a Unix socket "
            "(115 bytes, at most 107)",
        ),
        (
            {"INTERCOM_SIP_SERVER": "pbx.example.net"},
            "INTERCOM_SIP_USER: required when INTERCOM_SIP_SERVER is set",
        ),
        (
            {"INTERCOM_RING_TIMEOUT": "30 # seconds"},
            "INTERCOM_RING_TIMEOUT: '30 # seconds' is not a number of seconds (a '#' starts a "
            "comment only at the start of a line)",
        ),
        (
            {"INTERCOM_RING_TIMOUT": "30"},
            "INTERCOM_RING_TIMOUT: not a known setting; did you mean INTERCOM_RING_TIMEOUT?",
        ),
        (
            {"INTERCOM_DOOR_RELAY_ACTIVE_LOW": "maybe"},
            "INTERCOM_DOOR_RELAY_ACTIVE_LOW: 'maybe' is not yes or no",
        ),
        (
            {"INTERCOM_FROBNICATE": "1"},
            "INTERCOM_FROBNICATE: not a known setting (intercom.env.example lists them all)",
        ),
        (
            {"intercom_sip_user": "door"},
            "intercom_sip_user: not a known setting; did you mean INTERCOM_SIP_USER?",
        ),
    ],
    ids=lambda value: next(iter(value)) if isinstance(value, dict) else "",
)
def test_each_wrong_value_has_its_exact_message(environ, expected):
    assert problems_of(environ) == [expected]


def test_a_valid_value_with_an_even_odd_pair():
    assert load_settings({"INTERCOM_RTP_PORTS": "10000-10001"}).rtp_ports == (10000, 10001)
    assert load_settings({"INTERCOM_RTP_PORTS": "10001 - 10003"}).rtp_ports == (10001, 10003)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("yes", True), ("TRUE", True), ("on", True), ("1", True), ("no", False), ("Off", False),
     ("0", False), ("", False)],
)  # fmt: skip
def test_yes_or_no_values(text, expected):
    settings = load_settings({"INTERCOM_DOOR_RELAY_ACTIVE_LOW": text})
    assert settings.door_relay_active_low is expected
    assert settings.redacted()["INTERCOM_DOOR_RELAY_ACTIVE_LOW"] == ("yes" if expected else "no")


def test_an_active_low_relay_on_a_pin_pulled_low_at_boot_is_warned_about():
    def warnings(pin: str) -> list[str]:
        base = {"INTERCOM_DOOR_RELAY_ACTIVE_LOW": "yes", "INTERCOM_DOOR_RELAY_PIN": pin}
        return [w for w in load_settings(base).warnings if "ACTIVE_LOW" in w]

    assert warnings("22") == [
        "INTERCOM_DOOR_RELAY_ACTIVE_LOW with GPIO22: that pin is pulled low from power-on until "
        "the service starts, which energises a low-trigger relay; GPIO0-8 boot pulled high"
    ]
    assert warnings("6") == []


def test_case_insensitive_choices_are_normalised():
    settings = load_settings(
        {"INTERCOM_SIP_TRANSPORT": "Tcp", "INTERCOM_GPIO": "PI", "INTERCOM_LOG_LEVEL": "warning"}
    )
    assert (settings.sip_transport, settings.gpio, settings.log_level) == ("tcp", "pi", "WARNING")


# ---- all problems at once --------------------------------------------------------------------


def test_a_file_with_five_mistakes_gives_five_lines(tmp_path):
    path = write(
        tmp_path,
        "INTERCOM_RING_TIMEOUT=abc\n"
        "INTERCOM_GPIO=raspberry\n"
        "INTERCOM_BUTTON_PIN=40\n"
        "INTERCOM_CODECS=opus\n"
        "INTERCOM_SIP_TRANSPORT=sctp\n",
    )
    with pytest.raises(SettingsError) as info:
        load_settings({}, path)
    expected = [
        "INTERCOM_RING_TIMEOUT: 'abc' is not a number of seconds",
        "INTERCOM_GPIO: 'raspberry' is not pi, mock or auto",
        "INTERCOM_BUTTON_PIN: '40' is not a BCM pin number (0-27)",
        "INTERCOM_CODECS: unknown codec 'opus' (known: PCMU, PCMA, G722)",
        "INTERCOM_SIP_TRANSPORT: 'sctp' is not udp, tcp or tls",
    ]
    assert info.value.problems == expected
    assert str(info.value).splitlines() == expected
    assert isinstance(info.value, IntercomError) and isinstance(info.value, ValueError)


def test_syntax_errors_unknown_keys_and_bad_values_come_together(tmp_path):
    path = write(
        tmp_path,
        "export INTERCOM_SIP_USER=door\n"
        "INTERCOM_SIP_SERVER=pbx.example.net\n"
        "intercom_led_pin=27\n"
        "INTERCOM_DOOR_PULSE=45\n",
    )
    assert problems_of({"INTERCOM_CALL_TARGT": "x"}, path) == [
        f"{path}:1: 'export INTERCOM_SIP_USER': systemd does not understand 'export' (a shell "
        "word); write INTERCOM_SIP_USER=... without it",
        "intercom_led_pin: not a known setting; did you mean INTERCOM_LED_PIN?",
        "INTERCOM_CALL_TARGT: not a known setting; did you mean INTERCOM_CALL_TARGET?",
        "INTERCOM_SIP_USER: required when INTERCOM_SIP_SERVER is set",
        "INTERCOM_DOOR_PULSE: '45' is more than 30 seconds; a door opener is not made to stay "
        "energised that long",
    ]


def test_problems_follow_the_order_of_the_keys():
    environ = {"INTERCOM_LOG_LEVEL": "x", "INTERCOM_RING_TIMEOUT": "x", "INTERCOM_GPIO": "x"}
    lines = problems_of(environ)
    assert [line.split(":")[0] for line in lines] == [
        "INTERCOM_RING_TIMEOUT",
        "INTERCOM_GPIO",
        "INTERCOM_LOG_LEVEL",
    ]


def test_an_unreadable_file_is_one_problem_among_the_others(tmp_path):
    missing = str(tmp_path / "missing.env")
    assert problems_of({"INTERCOM_GPIO": "x"}, missing) == [
        f"{missing}: cannot read the env file: No such file or directory",
        "INTERCOM_GPIO: 'x' is not pi, mock or auto",
    ]


# ---- secrets ---------------------------------------------------------------------------------


def test_the_password_never_appears(tmp_path):
    path = write(tmp_path, FULL_FILE + f"INTERCOM_SIP_PASWORD={PASSWORD}\nINTERCOM_GPIO=x\n")
    with pytest.raises(SettingsError) as info:
        load_settings({}, path)
    assert PASSWORD not in str(info.value) and PASSWORD not in repr(info.value)
    assert "INTERCOM_SIP_PASWORD: not a known setting; did you mean INTERCOM_SIP_PASSWORD?" in (
        info.value.problems
    )
    settings = load_settings({}, write(tmp_path, FULL_FILE))
    assert settings.sip_password == PASSWORD
    assert PASSWORD not in repr(settings) and PASSWORD not in str(settings)
    assert PASSWORD not in repr(settings.redacted()) and PASSWORD not in str(settings.warnings)


def test_a_password_with_a_hash_gets_no_hint_that_would_echo_it():
    settings = load_settings({"INTERCOM_SIP_PASSWORD": "a #b"})
    assert settings.sip_password == "a #b"


def test_the_door_code_is_a_secret_too():
    settings = load_settings({"INTERCOM_DOOR_CODE": "97531", **RELAY})
    assert settings.door_code == "97531"
    assert "97531" not in repr(settings)
    assert settings.redacted()["INTERCOM_DOOR_CODE"] == "***"
    line = problems_of({"INTERCOM_DOOR_CODE": "975", **RELAY})[0]
    assert "975" not in line


def test_redacted():
    settings = load_settings(
        {
            "INTERCOM_SIP_PASSWORD": PASSWORD,
            "INTERCOM_DOOR_PULSE": "2.5",
            "INTERCOM_ALLOWED_CALLERS": "alice,bob",
            "INTERCOM_SIP_SERVER": "pbx.example",
            "INTERCOM_SIP_USER": "door",
            "INTERCOM_TRUSTED_HOSTS": "10.0.0.0/8",
        }
    )
    shown = settings.redacted()
    assert list(shown) == list(KEYS)
    assert shown["INTERCOM_SIP_PASSWORD"] == "***"
    assert shown["INTERCOM_DOOR_CODE"] == "(not set)"
    assert shown["INTERCOM_DOOR_PULSE"] == "2.5"
    assert shown["INTERCOM_RING_TIMEOUT"] == "30"
    assert shown["INTERCOM_ALLOWED_CALLERS"] == "alice,bob"
    assert shown["INTERCOM_RTP_PORTS"] == "10000-20000"
    assert shown["INTERCOM_LED_PIN"] == "(not set)"
    assert Settings().redacted()["INTERCOM_SIP_PASSWORD"] == "(not set)"


# ---- warnings --------------------------------------------------------------------------------


def test_warnings_for_working_but_doubtful_settings():
    settings = load_settings(
        {
            "INTERCOM_SIP_SERVER": "pbx",
            "INTERCOM_SIP_USER": "door",
            "INTERCOM_SIP_EXPIRES": "30",
            "INTERCOM_CALL_TARGET": "family",
            "INTERCOM_TRUSTED_HOSTS": "0.0.0.0/0",
        }
    )
    assert settings.warnings == (
        "INTERCOM_TRUSTED_HOSTS: '0.0.0.0/0' trusts every address, so anyone can call in with "
        "a forged From header",
        "INTERCOM_SIP_PASSWORD is not set: registration works only with a server that accepts "
        "the intercom without one (by its address)",
        "INTERCOM_TRUSTED_HOSTS is set, but INTERCOM_ALLOWED_CALLERS is empty: every incoming "
        "call is still refused",
        "INTERCOM_SIP_EXPIRES: 30 s is shorter than most servers accept (they answer 423 "
        "Interval Too Brief and the intercom retries with theirs)",
    )


def test_allowed_callers_without_any_trusted_source_warn():
    settings = load_settings(
        {"INTERCOM_ALLOWED_CALLERS": "alice@pbx", "INTERCOM_CALL_TARGET": "sip:a@10.0.0.2"}
    )
    assert settings.warnings == (
        NO_SERVER,
        "INTERCOM_ALLOWED_CALLERS is set, but with neither INTERCOM_SIP_SERVER nor "
        "INTERCOM_TRUSTED_HOSTS no call comes from a trusted source: all are refused",
    )


def test_an_env_file_others_can_read_warns_when_it_holds_the_password(tmp_path):
    text = f"INTERCOM_SIP_PASSWORD={PASSWORD}\nINTERCOM_CALL_TARGET=sip:a@10.0.0.2\n"
    path = write(tmp_path, text, mode=0o644)
    assert load_settings({}, path).warnings == (
        f"{path}: mode 0644 lets every user read INTERCOM_SIP_PASSWORD; make it 0600 "
        f"(chmod 600 {path})",
        NO_SERVER,
    )
    assert load_settings({}, write(tmp_path, text, mode=0o640)).warnings == (NO_SERVER,)
    no_password = write(tmp_path, "INTERCOM_CALL_TARGET=sip:a@10.0.0.2\n", mode=0o644)
    assert load_settings({}, no_password).warnings == (NO_SERVER,)
    writable = write(tmp_path, "INTERCOM_CALL_TARGET=sip:a@10.0.0.2\n", mode=0o646)
    assert load_settings({}, writable).warnings[0] == (
        f"{writable}: mode 0646 lets every user change the settings; make it 0600 "
        f"(chmod 600 {writable})"
    )


def test_a_key_assigned_twice_in_the_file_warns(tmp_path):
    path = write(tmp_path, "INTERCOM_RING_TIMEOUT=20\nINTERCOM_RING_TIMEOUT=25\n")
    settings = load_settings({}, path)
    assert settings.ring_timeout == 25.0
    assert settings.warnings[0] == (
        f"{path}:2: INTERCOM_RING_TIMEOUT is assigned again (first on line 1); the later value "
        "is used"
    )


# ---- the shipped example file ----------------------------------------------------------------

_EXAMPLE_LINE = re.compile(r"#(INTERCOM_[A-Z_]+)=(.*)")
_DEFAULT_LINE = re.compile(r"#   default: (.*)")


def test_example_loads_as_shipped_with_only_warnings():
    from intercom.app.settings import read_env_file

    assert read_env_file(str(EXAMPLE)) == {}  # everything commented out
    settings = load_settings({}, str(EXAMPLE))
    assert settings == Settings()
    assert settings.warnings == (NO_SERVER, NO_TARGET)


def test_example_documents_every_key_once_with_its_true_default():
    lines = EXAMPLE.read_text().splitlines()
    documented: dict[str, str] = {}
    for number, line in enumerate(lines):
        match = _EXAMPLE_LINE.fullmatch(line)
        if match is None:
            continue
        key = match[1]
        assert key not in documented, f"{key} twice"
        default = _DEFAULT_LINE.fullmatch(lines[number - 1])
        assert default is not None, f"{key}: no '#   default:' line above it"
        documented[key] = default[1]
    assert list(documented) == list(KEYS)  # every key, in the order of the settings
    assert documented == Settings().redacted()


def test_example_with_every_line_uncommented_is_a_clean_configuration(tmp_path):
    text = re.sub(r"(?m)^#(INTERCOM_)", r"\1", EXAMPLE.read_text())
    path = write(tmp_path, text)
    settings = load_settings({}, path)
    assert settings.warnings == ()
    assert settings.sip_server == HostPort("pbx.example.net")
    assert settings.sip_password == "change-me"
    assert settings.door_code == "2580#"
    assert settings.audio_input == "USB Audio"
    assert (settings.button_pin, settings.led_pin, settings.door_relay_pin) == (17, 27, 22)
    Doorbell(settings, lambda: "c1")


@pytest.mark.parametrize(
    ("server", "target", "warning"),
    [
        ("fritz.box", "**610,**620", "looks like a list of numbers"),
        ("pbx.example", "601;602", "looks like a list of numbers"),
        ("fritz.box", "620", "looks like a FRITZ!Box internal number without its stars"),
        ("192.168.178.1", "9", "the FRITZ!Box dials internal numbers as **9"),
        ("fritz.box", "**9", None),
        ("fritz.box", "**620", None),
        ("pbx.example", "620", None),  # not a FRITZ!Box: 620 may well be an extension
        ("fritz.box", "family", None),
    ],
)
def test_call_targets_that_are_probably_not_meant_warn(server, target, warning):
    settings = load_settings(
        {"INTERCOM_SIP_SERVER": server, "INTERCOM_SIP_USER": "door",
         "INTERCOM_SIP_PASSWORD": "x", "INTERCOM_CALL_TARGET": target}
    )  # fmt: skip
    found = [w for w in settings.warnings if w.startswith("INTERCOM_CALL_TARGET")]
    if warning is None:
        assert found == []
    else:
        assert len(found) == 1 and warning in found[0], found


def test_tls_settings_and_the_warning_of_an_unchecked_server():
    base = {"INTERCOM_SIP_SERVER": "pbx.example", "INTERCOM_SIP_USER": "door",
            "INTERCOM_SIP_PASSWORD": PASSWORD, "INTERCOM_CALL_TARGET": "family"}  # fmt: skip
    tls = Settings.from_env({**base, "INTERCOM_SIP_TRANSPORT": "TLS",
                             "INTERCOM_TLS_CA_FILE": "/etc/intercom/ca.pem"})  # fmt: skip
    assert (tls.sip_transport, tls.tls_ca_file, tls.tls_verify) == (
        "tls",
        "/etc/intercom/ca.pem",
        True,
    )
    assert tls.warnings == ()
    unchecked = Settings.from_env(
        {**base, "INTERCOM_SIP_TRANSPORT": "tls", "INTERCOM_TLS_VERIFY": "off"}
    )
    assert unchecked.warnings == (
        "INTERCOM_TLS_VERIFY=off: the SIP server's certificate is not checked, so anyone on the "
        "path can pose as the server; for tests only",
    )
    assert (tls.srtp, Settings.from_env(base).srtp) == ("mandatory", "off")  # the defaults
    optional = Settings.from_env(
        {**base, "INTERCOM_SIP_TRANSPORT": "tls", "INTERCOM_SRTP": "Optional"}
    )
    assert (optional.srtp, optional.warnings) == ("optional", ())
    keys_in_clear = Settings.from_env({**base, "INTERCOM_SRTP": "mandatory"})
    assert keys_in_clear.warnings == (
        "INTERCOM_SRTP=mandatory over udp: the SRTP keys (SDES) travel in the SDP of cleartext "
        "SIP, so anyone who reads the signalling can decrypt the audio; use "
        "INTERCOM_SIP_TRANSPORT=tls",
    )
    with pytest.raises(
        SettingsError, match="INTERCOM_SRTP: 'yes' is not off, optional or mandatory"
    ):
        Settings.from_env({**base, "INTERCOM_SRTP": "yes"})
    clear = Settings.from_env({**base, "INTERCOM_TLS_CA_FILE": "/etc/intercom/ca.pem"})
    assert clear.warnings == (
        "INTERCOM_TLS_CA_FILE and INTERCOM_TLS_VERIFY apply to INTERCOM_SIP_TRANSPORT=tls only",
    )


@pytest.mark.parametrize(
    ("value", "argv"),
    [
        ("/usr/local/bin/notify", ("/usr/local/bin/notify",)),
        ("notify-send 'Front door' \"is ringing\"", ("notify-send", "Front door", "is ringing")),
        (
            "  curl -s -d ring https://ntfy.sh/door  ",
            ("curl", "-s", "-d", "ring", "https://ntfy.sh/door"),
        ),
    ],
)
def test_on_ring_is_split_like_a_command_line(value, argv):
    settings = Settings.from_env({"INTERCOM_ON_RING": value})
    assert settings.on_ring == argv
    import shlex

    assert shlex.split(settings.redacted()["INTERCOM_ON_RING"]) == list(argv)


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("notify 'unclosed", "cannot be split into words: No closing quotation"),
        ("./notify", "'./notify' is a relative path: give an absolute path or a command name"),
        ("bin/notify --x", "'bin/notify' is a relative path"),
        ("notify | mail", "'|' needs a shell, but the command runs without one"),
        ("''", "names no program"),
    ],
)
def test_on_ring_problems(value, problem):
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({"INTERCOM_ON_RING": value})
    assert len(caught.value.problems) == 1
    assert caught.value.problems[0].startswith("INTERCOM_ON_RING: ")
    assert problem in caught.value.problems[0]
