"""The three callers of the side-by-side benchmark, each a process started and driven alike.

Every caller registers at the benchmark's registrar as user ``bench`` on start, calls the
callee's user through it when told to dial, hangs up when told, and stops. The command that
dials is a small local message, so that "press to INVITE" measures the SIP stack and not the
tool that delivers the press:

* :class:`IntercomCaller`: ``python -m intercom run`` (mock GPIO, ``wav:`` input, ``null``
  output, PCMU only, log level INFO as deployed); dial and hang up are the control socket's
  ``press`` and ``hangup`` requests, the ones ``intercom press|hangup`` send (written here
  directly: starting the ``intercom`` command itself would add an interpreter start).
* :class:`BaresipCaller`: baresip 1.0.0 with one account at the registrar, ``aufile`` playing
  the WAV, the ``aubridge,nil`` player (ALSA's null device is unpaced and spins a core),
  driven over ``ctrl_tcp`` (JSON in netstrings): ``dial``, ``hangup``, ``quit``.
* :class:`PyVoipCaller`: pyVoIP 1.6.8 in the bench venv running
  :mod:`benchmarks.pyvoip_caller`, driven by lines on its stdin.

``started_at`` is ``time.time()`` just before the process is spawned; the benchmark compares it
with the capture's stamps.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import json
import os
import shutil
import signal
import socket
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH_VENV = ROOT / ".bench" / "venv"
BARESIP_MODULES = Path("/usr/lib/baresip/modules")
USER = "bench"


@dataclass(frozen=True, slots=True)
class Setup:
    """What every caller is given."""

    registrar: tuple[str, int]
    target: str  #: the callee's user at the registrar
    wav: Path  #: 8 kHz mono 16-bit, longer than the call
    workdir: Path
    lifetime: float  #: a caller left running longer than this is stopped by itself

    @property
    def server(self) -> str:
        return f"{self.registrar[0]}:{self.registrar[1]}"


def free_port(*, udp: bool = True, tcp: bool = False, even: bool = False, span: int = 1) -> int:
    """A port ``p`` with ``p .. p + span - 1`` free for the asked protocols on 127.0.0.1."""
    for _ in range(200):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.bind(("127.0.0.1", 0))
            base = probe.getsockname()[1]
        if (even and base % 2) or base + span > 65535:
            continue
        if all(_bindable(base + n, udp, tcp) for n in range(span)):
            return int(base)
    raise RuntimeError("no free port range on 127.0.0.1")


def _bindable(port: int, udp: bool, tcp: bool) -> bool:
    kinds = ([socket.SOCK_DGRAM] if udp else []) + ([socket.SOCK_STREAM] if tcp else [])
    try:
        for kind in kinds:
            with socket.socket(socket.AF_INET, kind) as probe:
                probe.bind(("127.0.0.1", port))
    except OSError:
        return False
    return True


_LIVE: set[asyncio.subprocess.Process] = set()


@atexit.register
def _kill_leftovers() -> None:
    """A benchmark stopped half-way (Ctrl-C) leaves no caller running."""
    for process in _LIVE:
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.kill()


class Caller:
    """A caller process; subclasses start it and deliver the commands."""

    name = "caller"

    def __init__(self, setup: Setup) -> None:
        self.setup = setup
        self.process: asyncio.subprocess.Process | None = None
        self.started_at = 0.0
        self.log_path = setup.workdir / f"{self.name}.log"

    @property
    def pid(self) -> int:
        assert self.process is not None, "not started"
        return self.process.pid

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.returncode is None

    async def _spawn(
        self, *cmd: str, env: dict[str, str] | None = None, stdin: bool = False
    ) -> None:
        with open(self.log_path, "ab") as log:
            self.started_at = time.time()
            self.process = await asyncio.create_subprocess_exec(
                *cmd, env=env, stdout=log, stderr=log,
                stdin=asyncio.subprocess.PIPE if stdin else asyncio.subprocess.DEVNULL,
            )  # fmt: skip
        _LIVE.add(self.process)

    async def start(self) -> None:
        raise NotImplementedError

    async def dial(self) -> float:
        """Tell it to call the target; ``time.time()`` just before the command went out."""
        raise NotImplementedError

    async def hangup(self) -> None:
        raise NotImplementedError

    async def stop(self) -> None:
        """Ask it to stop (it un-REGISTERs); SIGTERM, then SIGKILL if it lingers."""
        await self._ask_to_stop()
        await self._reap(5.0)

    async def _ask_to_stop(self) -> None:
        if self.running:
            assert self.process is not None
            self.process.send_signal(signal.SIGTERM)

    async def _reap(self, timeout: float) -> None:
        process = self.process
        if process is None:
            return
        for sig in (None, signal.SIGTERM, signal.SIGKILL):
            if sig is not None and process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    process.send_signal(sig)
            try:
                await asyncio.wait_for(process.wait(), timeout)
                break
            except TimeoutError:
                continue
        _LIVE.discard(process)

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


class IntercomCaller(Caller):
    name = "intercom"

    async def start(self) -> None:
        self.socket_path = self.setup.workdir / "control.sock"
        env = {k: v for k, v in os.environ.items() if not k.startswith("INTERCOM_")}
        env.update({
            "INTERCOM_SIP_SERVER": self.setup.server,
            "INTERCOM_SIP_USER": USER,
            "INTERCOM_SIP_PASSWORD": "bench-unused",  # the registrar never challenges
            "INTERCOM_SIP_BIND": "127.0.0.1:0",
            "INTERCOM_CALL_TARGET": self.setup.target,
            "INTERCOM_CODECS": "PCMU",
            "INTERCOM_GPIO": "mock",
            "INTERCOM_AUDIO_INPUT": f"wav:{self.setup.wav}",
            "INTERCOM_AUDIO_OUTPUT": "null",
            "INTERCOM_MAX_CALL_DURATION": str(round(self.setup.lifetime)),
            "INTERCOM_CONTROL_SOCKET": str(self.socket_path),
            "INTERCOM_LOG_LEVEL": "INFO",
        })  # fmt: skip
        await self._spawn(sys.executable, "-m", "intercom", "run", env=env)

    async def _control(self, command: str) -> float:
        deadline = time.monotonic() + 10
        while not self.socket_path.exists():
            if time.monotonic() > deadline or not self.running:
                raise RuntimeError(f"no control socket:\n{self.log_tail()}")
            await asyncio.sleep(0.02)
        reader, writer = await asyncio.open_unix_connection(str(self.socket_path))
        at = time.time()
        writer.write(json.dumps({"command": command}).encode() + b"\n")
        await writer.drain()
        reply = json.loads(await asyncio.wait_for(reader.readline(), 10))
        writer.close()
        if not reply.get("ok"):
            raise RuntimeError(f"intercom {command}: {reply}")
        return at

    async def dial(self) -> float:
        return await self._control("press")

    async def hangup(self) -> None:
        await self._control("hangup")


class BaresipCaller(Caller):
    name = "baresip"

    async def start(self) -> None:
        program = shutil.which("baresip")
        if program is None or not (BARESIP_MODULES / "ctrl_tcp.so").exists():
            raise RuntimeError("baresip 1.0.0 is missing: apt-get install baresip")
        home = self.setup.workdir / "baresip"
        home.mkdir(exist_ok=True)
        sip_port = free_port(udp=True, tcp=True, span=2)  # TLS takes sip_port + 1
        self.ctrl_port = free_port(udp=False, tcp=True)
        rtp = free_port(even=True, span=10)
        config = {
            "poll_method": "epoll",
            "sip_listen": f"127.0.0.1:{sip_port}",
            "audio_player": "aubridge,nil",
            "audio_alert": "aubridge,nil",
            "audio_source": f"aufile,{self.setup.wav}",
            "ausrc_srate": "8000",
            "ausrc_channels": "1",
            "rtp_ports": f"{rtp}-{rtp + 9}",
            "rtcp_mux": "no",
            "module_path": str(BARESIP_MODULES),
            "ctrl_tcp_listen": f"127.0.0.1:{self.ctrl_port}",
            "statmode_default": "off",
            "ringback_disabled": "yes",
            "menu_bell": "no",
        }
        lines = [f"{name}\t{value}" for name, value in config.items()]
        lines += [f"module\t{m}" for m in ("g711.so", "aufile.so", "aubridge.so")]
        lines += ["module_tmp\taccount.so", "module_app\tmenu.so", "module_app\tctrl_tcp.so"]
        (home / "config").write_text("\n".join(lines) + "\n")
        (home / "accounts").write_text(
            f"<sip:{USER}@{self.setup.server}>;auth_pass=bench-unused;regint=600"
            ";audio_codecs=PCMU/8000/1\n"
        )
        lifetime = str(round(self.setup.lifetime))
        await self._spawn(program, "-f", str(home), "-n", "127.0.0.1", "-t", lifetime)
        self._token = 0
        self._writer: asyncio.StreamWriter | None = None
        deadline = time.monotonic() + 10
        while self._writer is None:
            try:
                reader, self._writer = await asyncio.open_connection("127.0.0.1", self.ctrl_port)
            except OSError:
                if time.monotonic() > deadline or not self.running:
                    raise RuntimeError(f"no ctrl_tcp:\n{self.log_tail()}") from None
                await asyncio.sleep(0.02)
        self._drain = asyncio.create_task(self._discard(reader))

    @staticmethod
    async def _discard(reader: asyncio.StreamReader) -> None:
        with contextlib.suppress(OSError):
            while await reader.read(4096):
                pass

    async def _command(self, command: str, params: str = "") -> float:
        assert self._writer is not None
        self._token += 1
        body = json.dumps({"command": command, "params": params, "token": str(self._token)})
        at = time.time()
        self._writer.write(f"{len(body)}:{body},".encode())
        await self._writer.drain()
        return at

    async def dial(self) -> float:
        return await self._command("dial", f"sip:{self.setup.target}@{self.setup.server}")

    async def hangup(self) -> None:
        await self._command("hangup")

    async def _ask_to_stop(self) -> None:
        if self.running:
            with contextlib.suppress(OSError):
                await self._command("quit")
        if self._writer is not None:
            self._writer.close()
        self._drain.cancel()


class PyVoipCaller(Caller):
    name = "pyVoIP"

    async def start(self) -> None:
        python = BENCH_VENV / "bin" / "python"
        if not python.exists():
            raise RuntimeError(f"{python} missing: run ./dev.sh bench (it makes the bench venv)")
        host, port = self.setup.registrar
        rtp = free_port(even=True, span=10)
        await self._spawn(
            str(python), str(ROOT / "benchmarks" / "pyvoip_caller.py"),
            "--server", host, "--port", str(port), "--user", USER,
            "--sip-port", str(free_port()), "--rtp-low", str(rtp), "--rtp-high", str(rtp + 9),
            "--target", self.setup.target, "--wav", str(self.setup.wav),
            stdin=True,
        )  # fmt: skip

    async def _line(self, command: str) -> float:
        assert self.process is not None and self.process.stdin is not None
        at = time.time()
        self.process.stdin.write(command.encode() + b"\n")
        await self.process.stdin.drain()
        return at

    async def dial(self) -> float:
        return await self._line("dial")

    async def hangup(self) -> None:
        await self._line("hangup")

    async def _ask_to_stop(self) -> None:
        if self.running:
            with contextlib.suppress(OSError):
                await self._line("quit")


CALLERS: dict[str, type[Caller]] = {
    "intercom": IntercomCaller,
    "baresip": BaresipCaller,
    "pyVoIP": PyVoipCaller,
}
