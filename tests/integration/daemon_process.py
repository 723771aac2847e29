"""`intercom run` as a child process, driven by the `intercom` command as a user would.

One :class:`DaemonProcess` is ``python -m intercom run`` with an environment built from
``os.environ`` with every ``INTERCOM_*`` key removed (unknown ones make the settings fail) and
then the test's settings; its control socket lives in the test's ``tmp_path``. Its stderr (the
log) goes to a file, never a pipe: a DEBUG log must not fill a pipe nobody reads and stall the
daemon. ``intercom press|hangup|open|status`` run as processes of their own with the same
environment, so the whole command line path is exercised::

    async with DaemonProcess(tmp_path, {"INTERCOM_CALL_TARGET": ...}) as daemon:
        assert (await daemon.cli("press"))[0] == 0
        await daemon.until(lambda s: s["call"]["state"] == "connected", 10, "connected call")
        assert await daemon.terminate() == 0
    assert "Traceback" not in daemon.log()
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

__all__ = ["DaemonProcess", "intercom_env", "sipp_door"]

Status = dict[str, Any]


def intercom_env(settings: Mapping[str, str]) -> dict[str, str]:
    """``os.environ`` without any ``INTERCOM_*`` key, plus ``settings``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("INTERCOM_")}
    env.update(settings)
    return env


def sipp_door(
    tmp_path: Path, registrar_port: int, callee_port: int, door_port: int, **settings: str
) -> DaemonProcess:
    """The door on ``127.0.0.1:door_port``, registering as ``door`` (password ``secret``) at a
    sipp digest registrar and calling ``family`` at a sipp callee, both on loopback; a tone for
    a microphone, no speaker; ``settings`` added or replacing these."""
    return DaemonProcess(tmp_path, {
        "INTERCOM_SIP_SERVER": f"127.0.0.1:{registrar_port}",
        "INTERCOM_SIP_USER": "door",
        "INTERCOM_SIP_PASSWORD": "secret",
        "INTERCOM_SIP_BIND": f"127.0.0.1:{door_port}",
        "INTERCOM_CALL_TARGET": f"sip:family@127.0.0.1:{callee_port}",
        "INTERCOM_AUDIO_INPUT": "tone:700",
        "INTERCOM_AUDIO_OUTPUT": "null",
        "INTERCOM_RTP_PORTS": "47000-47999",
        "INTERCOM_LOG_LEVEL": "INFO",
        **settings,
    })  # fmt: skip


class DaemonProcess:
    """``python -m intercom run`` in the background (see the module docstring).

    ``settings``: ``INTERCOM_*`` keys; ``INTERCOM_CONTROL_SOCKET`` defaults to
    ``tmp_path/control.sock`` and ``INTERCOM_GPIO`` to ``mock``.
    """

    def __init__(self, tmp_path: Path, settings: Mapping[str, str]) -> None:
        self.socket_path = tmp_path / "control.sock"
        self.log_path = tmp_path / "intercom.log"
        defaults = {"INTERCOM_CONTROL_SOCKET": str(self.socket_path), "INTERCOM_GPIO": "mock"}
        self.env = intercom_env({**defaults, **settings})
        self.socket_path = Path(self.env["INTERCOM_CONTROL_SOCKET"])
        self._proc: asyncio.subprocess.Process | None = None
        self.stop_seconds: float | None = None  #: SIGTERM to exit, set by terminate()

    @property
    def returncode(self) -> int | None:
        return None if self._proc is None else self._proc.returncode

    async def start(self, ready_timeout: float = 10.0) -> None:
        """Start the daemon; return once its control socket answers ``status``."""
        with open(self.log_path, "wb") as log:
            self._proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "intercom", "run", env=self.env,
                stdin=asyncio.subprocess.DEVNULL, stdout=log, stderr=log,
            )  # fmt: skip
        deadline = time.monotonic() + ready_timeout
        while True:
            if self._proc.returncode is not None:
                raise AssertionError(
                    f"intercom run exited with {self._proc.returncode}:\n{self.log()}"
                )
            if self.socket_path.exists():
                code, _, _ = await self.cli("status")
                if code == 0:
                    return
            if time.monotonic() > deadline:
                raise AssertionError(f"no control socket within {ready_timeout} s:\n{self.log()}")
            await asyncio.sleep(0.05)

    async def cli(self, *args: str, timeout: float = 20.0) -> tuple[int, str, str]:
        """Run ``python -m intercom ARGS`` with the daemon's environment: (code, out, err)."""
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "intercom", *args, env=self.env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        try:
            out, err = await asyncio.wait_for(process.communicate(), timeout)
        except TimeoutError:
            process.kill()
            await process.wait()
            raise AssertionError(
                f"intercom {' '.join(args)} did not finish in {timeout} s"
            ) from None
        assert process.returncode is not None
        return process.returncode, out.decode(), err.decode()

    async def status(self) -> Status:
        """``intercom status --json``, parsed (asserting it exits 0)."""
        code, out, err = await self.cli("status", "--json")
        assert code == 0, f"intercom status exited {code}: {err}"
        status = json.loads(out)
        assert isinstance(status, dict), out
        return status

    async def until(self, predicate: Callable[[Status], bool], timeout: float, what: str) -> Status:
        """Poll ``intercom status --json`` until ``predicate`` holds; return that status."""
        deadline = time.monotonic() + timeout
        while True:
            status = await self.status()
            if predicate(status):
                return status
            if time.monotonic() > deadline:
                raise AssertionError(f"no {what} within {timeout} s; last status: {status}")
            await asyncio.sleep(0.05)

    async def terminate(self, timeout: float = 5.0) -> int:
        """SIGTERM; the exit code, asserting the daemon exits within ``timeout`` seconds."""
        assert self._proc is not None, "the daemon was not started"
        started = time.monotonic()
        self._proc.send_signal(signal.SIGTERM)
        try:
            code = await asyncio.wait_for(self._proc.wait(), timeout)
        except TimeoutError:
            raise AssertionError(
                f"intercom run still running {timeout} s after SIGTERM:\n{self.log()}"
            ) from None
        self.stop_seconds = time.monotonic() - started
        return code

    async def kill(self) -> None:
        """SIGKILL if still running (cleanup after a failed test)."""
        proc = self._proc
        if proc is not None and proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()

    def log(self) -> str:
        """The daemon's stderr so far."""
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    async def __aenter__(self) -> DaemonProcess:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.kill()
