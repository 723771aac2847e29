"""Start-up time and memory of ``intercom run``: process start to first REGISTER, RSS registered
and RSS over a long call.

``intercom run`` starts as a process (mock GPIO, a WAV file as its microphone, null speaker)
registering over UDP at the demo PBX, a digest registrar on loopback
(:mod:`intercom.demo.pbx`), ``--runs`` times. For each run we take the time from just before the
process is spawned to the moment the PBX receives its first REGISTER (the PBX runs on this
process's event loop and stamps each datagram as it is read), then, once registered and
settled, the process's resident memory (``VmRSS``) and its peak (``VmHWM``) from /proc. It
prints the median and the min-max of each.

With ``--call-minutes M`` one more run places a call: ``intercom press`` through the control
socket, the PBX relays the INVITE to sipp answering with ``-sn uas -rtp_echo`` (PCMU echoed),
and the process's memory is read every minute of the call; a flat line from minute 1 to
minute M is the target (no per-packet or per-call growth).

The child runs as an installed intercom does: with byte-compiled modules. A
``PYTHONDONTWRITEBYTECODE`` in the environment is dropped for it and one warm-up start, not
counted, writes the ``__pycache__`` files (without them every start compiles the whole package,
about 0.1 s more here and far more on a Pi Zero).

    python -m benchmarks.startup [--runs 10] [--call-minutes 0] [--audio-input wav|null]
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import shutil
import signal
import socket
import statistics
import struct
import sys
import tempfile
import time
import wave
from dataclasses import dataclass
from pathlib import Path

from intercom.demo.pbx import DemoPbx
from intercom.demo.run import open_pbx
from intercom.runtime.control import send_command
from intercom.sip.core import Address
from intercom.sip.message import Message, Request, Response
from intercom.sip.uri import SipUri

ACCOUNTS = {"door": "benchmark-password"}
SETTLE = 1.0
"""Seconds after the 200 to the REGISTER before memory is read: start-up has finished."""
REGISTER_TIMEOUT = 10.0


@dataclass
class Run:
    to_register: float  #: seconds, process spawn to the PBX reading the first REGISTER
    to_registered: float  #: seconds, process spawn to the PBX sending the 200 to REGISTER
    rss_kib: int  #: VmRSS once registered
    hwm_kib: int  #: VmHWM once registered


def _memory_kib(pid: int) -> tuple[int, int]:
    """VmRSS and VmHWM of ``pid`` in KiB."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            fields[name] = int(value.split()[0])
    return fields["VmRSS"], fields["VmHWM"]


def _write_tone(path: Path, seconds: float = 2.0, rate: int = 8000) -> None:
    """A 440 Hz mono 16-bit WAV file at the codec rate (no resampling needed)."""
    step = 2 * math.pi * 440 / rate
    samples = (round(8000 * math.sin(step * n)) for n in range(int(seconds * rate)))
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(b"".join(struct.pack("<h", s) for s in samples))


class _Watch:
    """What the PBX saw of the door: the first REGISTER's arrival time and the first 200."""

    def __init__(self) -> None:
        self.first_register: float | None = None
        self.registered_at: float | None = None
        self.registered = asyncio.Event()
        self.seen = asyncio.Event()

    def trace(self, source: Address, destination: Address, message: Message) -> None:
        if isinstance(message, Request) and message.method == "REGISTER":
            if self.first_register is None:
                self.first_register = time.monotonic()
                self.seen.set()
        elif (
            isinstance(message, Response)
            and message.status == 200
            and (message.headers.get("CSeq") or "").endswith("REGISTER")
        ):
            if self.registered_at is None:
                self.registered_at = time.monotonic()
            self.registered.set()


def _env(server: Address, tmp: str, audio_input: str, extra: dict[str, str]) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("INTERCOM_") and k != "PYTHONDONTWRITEBYTECODE"
    }
    env.update({
        "INTERCOM_SIP_SERVER": f"{server.host}:{server.port}",
        "INTERCOM_SIP_USER": "door",
        "INTERCOM_SIP_PASSWORD": ACCOUNTS["door"],
        "INTERCOM_SIP_BIND": "127.0.0.1:0",
        "INTERCOM_CALL_TARGET": "echo",
        "INTERCOM_GPIO": "mock",
        "INTERCOM_AUDIO_INPUT": audio_input,
        "INTERCOM_AUDIO_OUTPUT": "null",
        "INTERCOM_RTP_PORTS": "42000-42999",
        "INTERCOM_CONTROL_SOCKET": f"{tmp}/control.sock",
        "INTERCOM_LOG_LEVEL": "WARNING",
    })  # fmt: skip
    env.update(extra)
    return env


async def _start(
    tmp: str, audio_input: str, extra: dict[str, str] | None = None
) -> tuple[asyncio.subprocess.Process, Run, asyncio.BaseTransport, DemoPbx]:
    watch = _Watch()
    pbx, transport = await open_pbx(ACCOUNTS, watch.trace)
    env = _env(pbx.address, tmp, audio_input, extra or {})
    with open(f"{tmp}/intercom.log", "ab") as log:
        t0 = time.monotonic()
        daemon = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "intercom", "run", env=env,
            stdin=asyncio.subprocess.DEVNULL, stdout=log, stderr=log,
        )  # fmt: skip
    try:
        await asyncio.wait_for(watch.seen.wait(), REGISTER_TIMEOUT)
        await asyncio.wait_for(watch.registered.wait(), REGISTER_TIMEOUT)
    except TimeoutError:
        daemon.kill()
        await daemon.wait()
        transport.close()
        log_text = Path(f"{tmp}/intercom.log").read_text(errors="replace")
        raise SystemExit(f"the intercom did not register at the demo PBX:\n{log_text}") from None
    assert watch.first_register is not None and watch.registered_at is not None
    await asyncio.sleep(SETTLE)
    rss, hwm = _memory_kib(daemon.pid)
    run = Run(watch.first_register - t0, watch.registered_at - t0, rss, hwm)
    return daemon, run, transport, pbx


async def _stop(daemon: asyncio.subprocess.Process, transport: asyncio.BaseTransport) -> int:
    daemon.send_signal(signal.SIGTERM)
    try:
        return await asyncio.wait_for(daemon.wait(), 10)
    finally:
        transport.close()


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def _call(tmp: str, audio_input: str, minutes: int) -> list[tuple[float, int, int]]:
    """Memory samples (minute, VmRSS, VmHWM) over a call of ``minutes`` to a sipp echo."""
    sipp = shutil.which("sipp")
    if sipp is None:
        raise SystemExit("--call-minutes needs sipp (Debian package sip-tester)")
    port = _free_udp_port()
    echo = await asyncio.create_subprocess_exec(
        sipp, "-sn", "uas", "-i", "127.0.0.1", "-mi", "127.0.0.1", "-p", str(port),
        "-mp", str(_free_udp_port()), "-rtp_echo", "-m", "1", "-nostdin",
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL, cwd=tmp, env={**os.environ, "TERM": "dumb"},
    )  # fmt: skip
    await asyncio.sleep(0.3)  # sipp binds its port
    duration = str(minutes * 60 + 120)
    daemon, _, transport, pbx = await _start(
        tmp, audio_input, {"INTERCOM_MAX_CALL_DURATION": duration}
    )
    pbx.bindings["echo"] = SipUri(host="127.0.0.1", user="echo", port=port)  # the PBX relays
    samples: list[tuple[float, int, int]] = []
    control = f"{tmp}/control.sock"
    try:
        await send_command(control, "press")
        deadline = time.monotonic() + REGISTER_TIMEOUT
        while (await send_command(control, "status"))["status"]["call"]["state"] != "connected":
            if time.monotonic() > deadline:
                raise SystemExit("the call to the sipp echo was not answered")
            await asyncio.sleep(0.1)
        start = time.monotonic()
        samples.append((0.0, *_memory_kib(daemon.pid)))
        for minute in range(1, minutes + 1):
            await asyncio.sleep(start + 60 * minute - time.monotonic())
            samples.append((float(minute), *_memory_kib(daemon.pid)))
        call = (await send_command(control, "status"))["status"]["call"]["state"]
        if call != "connected":
            raise SystemExit(f"the call ended early (state {call})")
        await send_command(control, "hangup")
        await asyncio.sleep(0.5)
    finally:
        await _stop(daemon, transport)
        if echo.returncode is None:
            echo.kill()
        await echo.wait()
    return samples


def _spread(values: list[float], unit: str, scale: float = 1.0, digits: int = 3) -> str:
    median = statistics.median(values) * scale
    return (
        f"median {median:.{digits}f} {unit} "
        f"(min {min(values) * scale:.{digits}f}, max {max(values) * scale:.{digits}f})"
    )


async def _measure(runs: int, minutes: int, audio: str) -> None:
    with tempfile.TemporaryDirectory(prefix="intercom-startup-") as tmp:
        audio_input = "null"
        if audio == "wav":
            _write_tone(Path(tmp) / "tone.wav")
            audio_input = f"wav:{tmp}/tone.wav"
        results: list[Run] = []
        for index in range(runs + 1):
            daemon, run, transport, _ = await _start(tmp, audio_input)
            code = await _stop(daemon, transport)
            if code != 0:
                raise SystemExit(f"intercom run exited with {code}")
            if index > 0:  # the first one is the warm-up that writes the bytecode
                results.append(run)
        print(f"intercom run, {runs} runs (UDP registrar on loopback, mock GPIO, "
              f"{audio} input, null output), Python {sys.version.split()[0]}")  # fmt: skip
        print("start to first REGISTER: "
              + _spread([r.to_register for r in results], "s"))  # fmt: skip
        print("start to registered (200 to the digest REGISTER): "
              + _spread([r.to_registered for r in results], "s"))  # fmt: skip
        print("registered, VmRSS: "
              + _spread([r.rss_kib for r in results], "MiB", 1 / 1024, 1))  # fmt: skip
        print("registered, VmHWM: "
              + _spread([r.hwm_kib for r in results], "MiB", 1 / 1024, 1))  # fmt: skip
        if minutes:
            samples = await _call(tmp, audio_input, minutes)
            for minute, rss, hwm in samples:
                print(f"call minute {minute:>4.0f}: VmRSS {rss / 1024:.1f} MiB, "
                      f"VmHWM {hwm / 1024:.1f} MiB")  # fmt: skip
            first = samples[1] if len(samples) > 1 else samples[0]
            last = samples[-1]
            print(f"in the call: VmRSS minute 1 -> {minutes}: {first[1] / 1024:.1f} -> "
                  f"{last[1] / 1024:.1f} MiB ({(last[1] - first[1]) / 1024:+.1f}); "
                  f"peak {last[2] / 1024:.1f} MiB")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10, help="start-ups measured (default 10)")
    parser.add_argument(
        "--call-minutes", type=int, default=0, help="then a call of this many minutes"
    )
    parser.add_argument("--audio-input", choices=("wav", "null"), default="wav")
    args = parser.parse_args()
    asyncio.run(_measure(args.runs, args.call_minutes, args.audio_input))


if __name__ == "__main__":
    main()
