"""``intercom run`` imports only what its settings need (issue 13: start-up time and memory).

A door with an IP-literal (or ``host:port``) server, ``wav:``/``null`` audio and mock GPIO must
start without dnspython (SRV only), PyAudio and its bridge (a sound card only), soxr (a
resampler only), G722 (a G.722 call only) and the demo. Each case runs ``intercom run``'s own
entry point (:func:`intercom.cli.main`) in a fresh interpreter, against a registrar thread in
that process which answers every request with 200. ``sys.modules`` is listed twice: as the daemon
sends its first REGISTER (an audit hook on ``socket.sendto``, on the daemon's own thread), and
when the daemon tells systemd it is ready (``NOTIFY_SOCKET``). Then SIGTERM stops the daemon as
systemd would. No timing is measured here
(``benchmarks/startup.py`` does that); what is checked is which modules were loaded.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import wave
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(60)

ROOT = Path(__file__).resolve().parents[2]

NEVER_IMPORTED = (
    "dns",  # dnspython: only for an SRV question (a host name without a port)
    "pyaudio",
    "intercom.hw.pyaudio_device",  # and its resampling bridge: only for a sound card
    "intercom.hw.audio_bridge",
    "soxr",  # only for audio at another rate than the codec's
    "G722",  # only once a G.722 call starts
    "intercom.demo",
    "numpy",  # frames are bytes: only resampling and downmixing need it
    "aiomqtt",  # only with INTERCOM_MQTT_HOST
    "paho",
    "cryptography",  # only a call that negotiated SRTP
    "intercom.media.srtp",
)
"""Top-level packages (or modules) a wav/null, mock-GPIO, IP-literal door never loads."""

AFTER_THE_FIRST_REGISTER = (
    "gpiozero",
    "intercom.runtime.media_calls",
    "intercom.runtime.tone_output",
    "intercom.media.stream",
    "intercom.media.codecs",  # unless INTERCOM_CODECS is set: the settings check the names
)
"""Loaded by the daemon's start once the first REGISTER is out: the pins and the media stack."""

CHILD = r"""
import json, os, signal, socket, sys, threading

registrar = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
registrar.bind(("127.0.0.1", 0))
notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
notify.bind(sys.argv[1])
host = os.environ.pop("TEST_SERVER_HOST")
os.environ["INTERCOM_SIP_SERVER"] = f"{host}:{registrar.getsockname()[1]}"
os.environ["NOTIFY_SOCKET"] = sys.argv[1]
seen = {}

def answer(data, source):
    head = data.decode().split("\r\n\r\n", 1)[0].split("\r\n")
    keep = [line for line in head[1:]
            if line.split(":", 1)[0].strip().lower() in ("via", "from", "to", "call-id", "cseq")]
    reply = "\r\n".join(["SIP/2.0 200 OK", *keep, "Expires: 3600", "Content-Length: 0", "", ""])
    registrar.sendto(reply.encode(), source)

def serve():
    while True:
        data, source = registrar.recvfrom(65535)
        if data.strip():  # not a keepalive
            answer(data, source)

def on_send(event, args):
    # On the daemon's own thread, as it sends: its first datagram to the registrar is the
    # first REGISTER (the registrar thread would look at sys.modules too late, at random).
    if event == "socket.sendto" and args[1] == registrar.getsockname():
        seen.setdefault("first_register", sorted(sys.modules))

sys.addaudithook(on_send)

def watch_ready():
    while b"READY=1" not in notify.recv(4096):
        pass
    seen["ready"] = sorted(sys.modules)
    os.kill(os.getpid(), signal.SIGTERM)

threading.Thread(target=serve, daemon=True).start()
threading.Thread(target=watch_ready, daemon=True).start()
from intercom.cli import main
code = main(["run"])
print(json.dumps({"code": code, **seen}))
"""


def _write_wav(path: Path) -> None:
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(8000)
        wav.writeframes(b"\x00\x10" * 1600)


def _start_modules(tmp_path: Path, host: str, **settings: str) -> dict[str, list[str]]:
    """``sys.modules`` at the first REGISTER and at READY, of ``intercom run`` in a child."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("INTERCOM_")}
    env.update({
        "TEST_SERVER_HOST": host,
        "INTERCOM_SIP_USER": "door",
        "INTERCOM_SIP_PASSWORD": "test-password",
        "INTERCOM_SIP_BIND": "127.0.0.1:0",
        "INTERCOM_CALL_TARGET": "family",
        "INTERCOM_GPIO": "mock",
        "INTERCOM_RTP_PORTS": "42000-42999",
        "INTERCOM_CONTROL_SOCKET": str(tmp_path / "control.sock"),
        "INTERCOM_LOG_LEVEL": "WARNING",
        **settings,
    })  # fmt: skip
    result = subprocess.run(
        [sys.executable, "-c", CHILD, str(tmp_path / "notify.sock")],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=45,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    seen: dict[str, list[str]] = json.loads(result.stdout.splitlines()[-1])
    assert seen.pop("code") == 0, result.stderr
    assert set(seen) == {"first_register", "ready"}, result.stderr
    return seen


def _loaded(modules: list[str], names: tuple[str, ...]) -> list[str]:
    return [m for m in modules if any(m == n or m.startswith(n + ".") for n in names)]


def test_an_ip_literal_wav_door_loads_no_dns_audio_device_resampler_or_g722(
    tmp_path: Path,
) -> None:
    _write_wav(tmp_path / "mic.wav")
    seen = _start_modules(
        tmp_path,
        "127.0.0.1",
        INTERCOM_AUDIO_INPUT=f"wav:{tmp_path}/mic.wav",
        INTERCOM_AUDIO_OUTPUT="null",
    )
    for when, modules in seen.items():
        assert "intercom.runtime.ua" in modules, when  # the lists are the daemon's own
        assert _loaded(modules, NEVER_IMPORTED) == [], when


def test_the_first_register_goes_out_before_the_pins_and_the_media_stack_load(
    tmp_path: Path,
) -> None:
    seen = _start_modules(
        tmp_path, "127.0.0.1", INTERCOM_AUDIO_INPUT="null", INTERCOM_AUDIO_OUTPUT="null"
    )
    assert _loaded(seen["first_register"], AFTER_THE_FIRST_REGISTER) == []
    for name in AFTER_THE_FIRST_REGISTER:  # and by READY they are there: the door is whole
        assert name in seen["ready"]


def test_a_host_name_with_a_port_is_resolved_without_dnspython(tmp_path: Path) -> None:
    # RFC 3263 §4.2: an explicit port means A/AAAA only, which the system resolver answers.
    seen = _start_modules(
        tmp_path, "localhost", INTERCOM_AUDIO_INPUT="null", INTERCOM_AUDIO_OUTPUT="null"
    )
    assert _loaded(seen["ready"], ("dns",)) == []
