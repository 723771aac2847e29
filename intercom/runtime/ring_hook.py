"""``INTERCOM_ON_RING``: a command run on every ring, for everything MQTT does not reach.

Theory of operation
-------------------
:meth:`RingHook.fire` is called right after the doorbell's INVITE was handed to the user agent;
it only schedules a task and returns, so the call never waits for a ``fork``. The task starts
the command without a shell (``asyncio.create_subprocess_exec``) in a session of its own, so
that it and whatever it starts are one process group, stdin and stdout on ``/dev/null`` and
stderr read into a small tail. The daemon never awaits it.

* **Environment.** The daemon's own, without any ``INTERCOM_*`` key (under systemd those came
  from the env file: the SIP and MQTT passwords, the door code) and without systemd's
  ``NOTIFY_SOCKET``/``WATCHDOG_*``; then the ring's facts, :meth:`RingHook.facts`:
  ``INTERCOM_EVENT=ring``, ``INTERCOM_TIME`` (ISO 8601 with the UTC offset),
  ``INTERCOM_UNIX_TIME``, ``INTERCOM_CALL_TARGET``, ``INTERCOM_CALL_ID``, ``INTERCOM_NAME``.
* **Time limit.** After :data:`HOOK_TIMEOUT` seconds the whole process group gets SIGTERM, and
  SIGKILL :data:`KILL_GRACE` seconds later if anything of it is still there.
* **Bound.** At most :data:`MAX_RUNNING` hooks run at once; a ring beyond that runs none (one
  warning until a hook has finished again), so a flood of presses cannot fill a Pi Zero's
  memory with processes. The doorbell's own cooldown already spaces the calls.
* **Failures** (not found, not executable, a non-zero exit, a signal, the time limit) are logged
  once each, in one line, with the last line the command wrote to stderr.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import signal
from collections.abc import Mapping, Sequence
from datetime import datetime

__all__ = [
    "HOOK_TIMEOUT",
    "HOOK_VARIABLES",
    "KILL_GRACE",
    "MAX_RUNNING",
    "RingHook",
    "find_program",
    "hook_environment",
]

logger = logging.getLogger(__name__)

HOOK_TIMEOUT = 10.0
"""Seconds a hook may run before its process group is terminated."""
KILL_GRACE = 1.0
"""Seconds between SIGTERM and SIGKILL of a hook that overran."""
MAX_RUNNING = 2
"""Hooks running at once; a ring beyond that runs none."""
STDERR_TAIL = 512
"""Bytes of the hook's stderr kept for the failure's log line."""

HOOK_VARIABLES = (
    "INTERCOM_EVENT",
    "INTERCOM_TIME",
    "INTERCOM_UNIX_TIME",
    "INTERCOM_CALL_TARGET",
    "INTERCOM_CALL_ID",
    "INTERCOM_NAME",
)
"""The variables a hook finds (:meth:`RingHook.facts`)."""

_DROPPED_PREFIXES = ("INTERCOM_",)
_DROPPED_KEYS = frozenset({"NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "LISTEN_FDS"})


def find_program(argv: Sequence[str], path: str | None = None) -> str | None:
    """What is wrong with running ``argv[0]`` (None: nothing). ``path`` is the PATH to search
    (default: this process's)."""
    program = argv[0]
    if program.startswith("/"):
        if not os.path.isfile(program):
            return f"{program} does not exist"
        if not os.access(program, os.X_OK):
            return f"{program} is not executable (chmod +x {program})"
        return None
    search = os.environ.get("PATH", os.defpath) if path is None else path
    if shutil.which(program, path=search) is None:
        return f"{program!r} is not found on PATH ({search})"
    return None


def hook_environment(environ: Mapping[str, str], facts: Mapping[str, str]) -> dict[str, str]:
    """The hook's environment: ``environ`` without secrets and systemd's sockets, plus
    ``facts``."""
    kept = {
        key: value
        for key, value in environ.items()
        if not key.startswith(_DROPPED_PREFIXES) and key not in _DROPPED_KEYS
    }
    return {**kept, **facts}


class RingHook:
    """Runs ``argv`` on every ring (see the module docstring)."""

    def __init__(
        self,
        argv: Sequence[str],
        *,
        name: str,
        timeout: float = HOOK_TIMEOUT,
        max_running: int = MAX_RUNNING,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self.argv = tuple(argv)
        self.name = name
        self.timeout = timeout
        self.max_running = max_running
        self._environ = os.environ if environ is None else environ
        self._tasks: set[asyncio.Task[None]] = set()
        self._busy_warned = False
        self.finished = 0  #: hooks that have ended (for tests and the curious)

    @property
    def running(self) -> int:
        return len(self._tasks)

    @staticmethod
    def facts(*, wall: float, target: str, call_id: str, name: str) -> dict[str, str]:
        """The environment of one ring."""
        when = datetime.fromtimestamp(wall).astimezone().isoformat(timespec="seconds")
        return {
            "INTERCOM_EVENT": "ring",
            "INTERCOM_TIME": when,
            "INTERCOM_UNIX_TIME": f"{wall:.3f}",
            "INTERCOM_CALL_TARGET": target,
            "INTERCOM_CALL_ID": call_id,
            "INTERCOM_NAME": name,
        }

    def fire(self, *, wall: float, target: str, call_id: str) -> bool:
        """Start the hook for one ring in the background; False when too many still run."""
        if len(self._tasks) >= self.max_running:
            if not self._busy_warned:
                self._busy_warned = True
                logger.warning("x ring hook not run: %d still running (at most %d at once)",
                               len(self._tasks), self.max_running)  # fmt: skip
            return False
        env = hook_environment(
            self._environ, self.facts(wall=wall, target=target, call_id=call_id, name=self.name)
        )
        task = asyncio.get_running_loop().create_task(self._run(env))
        self._tasks.add(task)
        task.add_done_callback(self._done)
        return True

    async def close(self) -> None:
        """Stop the hooks still running (their process groups are terminated)."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        self._busy_warned = False
        self.finished += 1
        if not task.cancelled() and (exc := task.exception()) is not None:
            logger.error("x ring hook: %s", exc, exc_info=exc)

    async def _run(self, env: dict[str, str]) -> None:
        program = self.argv[0]
        try:
            process = await asyncio.create_subprocess_exec(
                *self.argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE,
                env=env,
                start_new_session=True,  # its own process group, killed as one
            )
        except OSError as exc:
            logger.warning("x ring hook %s could not start: %s", program, exc.strerror or exc)
            return
        tail = bytearray()
        try:
            try:
                await asyncio.wait_for(_drain(process, tail), self.timeout)
            except TimeoutError:
                await _terminate(process)
                logger.warning("x ring hook %s killed after %g s%s", program, self.timeout,
                               _last_line(tail))  # fmt: skip
                return
        except asyncio.CancelledError:
            await _terminate(process)
            raise
        code = process.returncode
        if code is not None and code < 0:
            logger.warning("x ring hook %s ended by signal %d%s", program, -code, _last_line(tail))
        elif code:
            logger.warning("x ring hook %s exited with %d%s", program, code, _last_line(tail))
        else:
            logger.debug("- ring hook %s done", program)


async def _drain(process: asyncio.subprocess.Process, tail: bytearray) -> None:
    """Read stderr to its end keeping the last :data:`STDERR_TAIL` bytes, then wait."""
    stream = process.stderr
    assert stream is not None
    while chunk := await stream.read(4096):
        tail += chunk
        del tail[:-STDERR_TAIL]
    await process.wait()


async def _terminate(process: asyncio.subprocess.Process) -> None:
    """SIGTERM to the hook's process group, SIGKILL after the grace, and reap it."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, sig)
        try:
            await asyncio.wait_for(asyncio.shield(process.wait()), KILL_GRACE)
        except TimeoutError:
            continue
        if sig is signal.SIGTERM:  # the leader is gone: make sure its children are too
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)
        return


def _last_line(tail: bytearray) -> str:
    lines = bytes(tail).decode("utf-8", "replace").strip().splitlines()
    if not lines:
        return ""
    return f": {lines[-1].strip()[:200]}"
