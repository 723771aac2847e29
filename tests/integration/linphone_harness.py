"""linphonec (Debian `linphone-cli`, liblinphone 5.1) as a headless SIP phone on loopback.

One :class:`LinphonePeer` is one ``linphonec`` process with its own home and configuration,
driven through its standard input, its console output read line by line::

    async with LinphonePeer(source_wav, tmp_path / "linphone") as phone:
        await phone.register("family", kamailio.address, "secret")
        call_id = await phone.wait_incoming(timeout=10)
        await phone.answer(call_id)
        ...
    # phone.recording holds what it received, phone.source what it sent

Facts about linphonec 5.1.65 this module relies on (tried, not guessed):

- liblinphone opens its database under ``$HOME/.local/share/linphone`` and does not register
  until that directory exists; the harness gives every peer its own ``HOME``.
- ``soundcard use files`` makes calls use WAV files instead of a sound card (there is none):
  ``play FILE`` is what the phone sends, ``record FILE`` what it receives (written while the
  call runs). The files are 8 kHz or 16 kHz mono 16-bit; the played one loops.
- ``register USER_URI PROXY PASSWORD`` registers, silently; ``status register`` then prints
  ``registered, identity=USER_URI duration=N`` once it is.
- An incoming call prints ``Receiving new incoming call from URI, assigned id N``; ``answer N``
  takes it (``Call N with URI connected.``), ``terminate N`` hangs up; a call that ends prints
  ``Call N with URI ended (REASON).``, and REASON is ``No error`` after a BYE and after a
  CANCEL alike (even one whose Reason says another phone answered).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import time
from pathlib import Path

from .peer_support import UDP, claim_ports, require_program

__all__ = ["LinphonePeer", "require_linphone"]

INCOMING = re.compile(r"Receiving new incoming call from (\S+), assigned id (\d+)")


def require_linphone() -> str:
    return require_program("linphonec", "linphone-cli")


class LinphonePeer:
    """A headless linphonec on 127.0.0.1 (see the module docstring)."""

    def __init__(self, source: Path, workdir: Path) -> None:
        self.source = source
        self.workdir = workdir
        self.recording = workdir / "received.wav"
        self.sip_port = claim_ports([UDP])
        self.rtp_port = claim_ports([UDP, UDP, UDP, UDP], even=True)
        self.lines: list[str] = []
        self._proc: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task[None] | None = None
        self._changed = asyncio.Event()
        self._consumed = 0

    def output(self) -> str:
        return "\n".join(self.lines)

    async def start(self) -> None:
        home = self.workdir / "home"
        (home / ".local" / "share" / "linphone").mkdir(parents=True, exist_ok=True)
        config = self.workdir / "linphonerc"
        config.write_text(
            f"[sip]\nsip_port={self.sip_port}\nsip_tcp_port=0\n"
            f"[rtp]\naudio_rtp_port={self.rtp_port}\n[sound]\necho_cancellation=0\n"
        )
        self._proc = await asyncio.create_subprocess_exec(
            require_linphone(), "-c", str(config),
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT, cwd=self.workdir,
            env={**os.environ, "HOME": str(home)}, start_new_session=True,
        )  # fmt: skip
        self._reader = asyncio.create_task(self._read())
        await self.send("soundcard use files")
        await self.send(f"play {self.source}")
        await self.send(f"record {self.recording}")

    async def _read(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        while line := await self._proc.stdout.readline():
            self.lines.append(line.decode(errors="replace").rstrip())
            self._changed.set()
        self._changed.set()

    async def send(self, command: str) -> None:
        proc = self._proc
        assert proc is not None and proc.stdin is not None
        proc.stdin.write(command.encode() + b"\n")
        await proc.stdin.drain()

    async def wait_line(self, pattern: re.Pattern[str] | str, timeout: float) -> re.Match[str]:
        """The first line not waited for yet that matches ``pattern``."""
        regex = re.compile(pattern) if isinstance(pattern, str) else pattern
        deadline = time.monotonic() + timeout
        while True:
            self._changed.clear()
            for index in range(self._consumed, len(self.lines)):
                match = regex.search(self.lines[index])
                if match is not None:
                    self._consumed = index + 1
                    return match
            left = deadline - time.monotonic()
            if left <= 0 or (self._proc is not None and self._proc.returncode is not None):
                raise AssertionError(
                    f"linphonec: no line matching {regex.pattern!r} within {timeout} s:\n"
                    + "\n".join(self.lines[-40:])
                )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), min(left, 0.2))

    async def register(self, user: str, registrar: str, password: str) -> None:
        """REGISTER ``user`` at ``registrar`` (``host:port``); return once it is registered."""
        host = registrar.rsplit(":", 1)[0]
        await self.send(f"register sip:{user}@{host} sip:{registrar} {password}")
        deadline = time.monotonic() + 10
        while True:
            await self.send("status register")
            with contextlib.suppress(AssertionError):
                await self.wait_line(rf"(?<!un)registered, identity=sip:{user}@", 0.5)
                return
            if time.monotonic() > deadline:
                raise AssertionError("linphonec did not register:\n" + self.output()[-3000:])

    async def wait_incoming(self, timeout: float) -> int:
        """The id of the next incoming call."""
        return int((await self.wait_line(INCOMING, timeout))[2])

    async def answer(self, call_id: int) -> None:
        await self.send(f"answer {call_id}")
        await self.wait_line(rf"Call {call_id} with \S+ connected", 5)

    async def hangup(self, call_id: int) -> None:
        await self.send(f"terminate {call_id}")

    async def wait_ended(self, call_id: int, timeout: float) -> str:
        """The reason the call ended, as linphonec prints it."""
        return (await self.wait_line(rf"Call {call_id} with \S+ ended \((.*)\)\.", timeout))[1]

    async def stop(self) -> None:
        proc = self._proc
        if proc is None or proc.returncode is not None:
            return
        with contextlib.suppress(Exception):
            await self.send("quit")
        try:
            await asyncio.wait_for(proc.wait(), 5)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            await proc.wait()
        if self._reader is not None:
            await asyncio.gather(self._reader, return_exceptions=True)

    async def __aenter__(self) -> LinphonePeer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()
