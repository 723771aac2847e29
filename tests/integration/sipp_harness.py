"""Run sipp (the independent SIP peer of the integration tests) over loopback.

One :class:`Sipp` is one sipp process bound to 127.0.0.1 (or another loopback address),
started in the background with ``asyncio.create_subprocess_exec`` so a test can drive the user
agent under test in the same event loop while sipp plays its scenario::

    async with Sipp(SCENARIOS / "callee_busy.xml") as peer:
        ...  # make the UA call sip:door@127.0.0.1:{peer.port}
        result = await peer.wait()
    assert result.returncode == 0, result.explain()

sipp exits 0 only when every call of its scenario ran to the end. Whatever else happens (an
unexpected message, a missing one within ``recv_timeout``, a failed ``check_it`` regexp, the
global ``timeout``), the exit status is non-zero and :meth:`SippResult.explain` shows why: the
tail of sipp's error log, its ``<log>`` output, the SIP messages it sent and received and its
final statistics screen.

Facts about sipp 3.6.1 this module relies on (tried, not guessed):

- ``-i 127.0.0.1 -mi 127.0.0.1`` keep sipp off the machine's real interfaces. Any address of
  127/8 works the same way (``-i 127.0.0.2 -mi 127.0.0.2``: Linux loopback answers all of
  127.0.0.0/8), which lets a test send from a source address other than 127.0.0.1.
- ``-timeout Ns -timeout_error``: a run that outlives the global timeout exits 255 with
  "<scenario> timed out after ..." on stderr (without ``-timeout_error`` it exits 97).
- Exit status 1 means a failed call, but sipp also exits 1 when it refuses a scenario
  (invalid XML, a variable referenced once): stderr says which.
- On SIGTERM sipp exits 0, so :meth:`Sipp.stop` marks the result ``killed`` (``ok`` False).
- sipp also opens a UDP control socket on 0.0.0.0:8888 (8889, ... when taken); no option
  binds it to loopback.
- In scenarios, ``<ereg search_in="hdr" header="To:">`` finds the header name as a
  case-sensitive substring (no compact forms; the value keeps its leading blank) and
  ``case_indep`` is ignored: the scenarios expect canonical header names (``Contact:``,
  ``To:``, ``Authorization:``...) where they capture values, and search whole messages with
  ``[Aa]``-style classes where case matters. ``check_it`` fails a call only in ``<recv>``
  actions (in a ``<nop>`` it is ignored), and the call still runs to its end.
- ``-recv_timeout`` fails a call whose expected message does not come; a scenario may give a
  ``<recv>`` its own ``timeout`` to override it.
- sipp binds its RTP echo sockets on ``-mp`` and ``-mp + 2`` (default 6000, moving up when
  taken). Every instance gets a free even port of its own (``Sipp.media_port``, the port in
  its SDP) so it is known in advance and never lands in the UA's RTP range by accident.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import os
import re
import shutil
import signal
import tempfile
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from tests.integration.peer_support import (
    BOTH,
    TCP,
    UDP,
    bindable,
    claim_ports,
    require_program,
    tail,
)

__all__ = [
    "SCENARIOS",
    "Sipp",
    "SippResult",
    "free_media_port",
    "free_port",
    "require_sipp",
]

#: The directory holding the project's sipp scenarios.
SCENARIOS = Path(__file__).resolve().parent / "sipp"

Transport = Literal["udp", "tcp"]

_EXIT_MEANINGS = {
    0: "all calls succeeded",
    1: "at least one call failed, or sipp refused the scenario: see stderr",
    97: "exit on an internal command (stop_now)",
    99: "normal exit without any call processed",
    255: "fatal error: a bad scenario or option, or the global -timeout expired",
    254: "fatal error binding a socket",
}

_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b[()][A-Za-z0-9]")


def require_sipp() -> str:
    """Return the path of the sipp executable, or raise a clear error if it is missing."""
    return require_program("sipp")


def free_port() -> int:
    """A port on 127.0.0.1 that is free for both UDP and TCP right now."""
    return claim_ports([BOTH])


def free_media_port() -> int:
    """An even UDP port ``p`` on 127.0.0.1 with ``p`` .. ``p + 3`` free (RTP/RTCP, audio+video).

    sipp binds its RTP echo sockets on ``-mp`` and ``-mp + 2``.
    """
    return claim_ports([UDP] * 4, even=True)


@dataclass
class SippResult:
    """How one sipp process ended and what it logged."""

    returncode: int
    stdout: str
    stderr: str
    #: The ``-trace_msg`` log: every SIP message sipp sent and received, in order.
    messages: str
    #: The ``-trace_err`` log: unexpected messages, failed regexps, timeouts.
    errors: str = ""
    #: The ``-trace_logs`` log: the scenario's own ``<log message=...>`` lines.
    logs: str = ""
    command: list[str] = field(default_factory=list)
    #: True when the harness had to kill sipp because it outlived ``wait(timeout)``.
    killed: bool = False

    @property
    def ok(self) -> bool:
        """Exit 0 on its own (sipp also exits 0 when the harness SIGTERMs it)."""
        return self.returncode == 0 and not self.killed

    def explain(self, lines: int = 60) -> str:
        """A readable account of the run: ``assert result.returncode == 0, result.explain()``."""
        code = self.returncode
        meaning = _EXIT_MEANINGS.get(code % 256, "unknown exit status")
        if code < 0:
            meaning = f"killed by signal {-code}"
        head = f"sipp exited with {code} ({meaning})"
        if self.killed:
            head += "; the harness killed it after its wait timeout"
        sections = [head, "command: " + " ".join(self.command)]
        for title, text, n in (
            ("error log (-trace_err)", self.errors, lines),
            ("scenario <log> output", self.logs, lines),
            ("stderr", self.stderr, lines),
            ("SIP message trace (-trace_msg), last lines", self.messages, 2 * lines),
            ("final screen (stdout), last lines", _ANSI.sub("", self.stdout), lines),
        ):
            if text.strip():
                sections.append(f"----- {title} -----\n{tail(text, n)}")
        return "\n".join(sections)


_LIVE: weakref.WeakSet[Sipp] = weakref.WeakSet()


@atexit.register
def _kill_leftovers() -> None:
    for sipp in list(_LIVE):
        sipp.kill()


class Sipp:
    """One sipp process on 127.0.0.1 (or ``host``), started in the background.

    ``scenario``: the XML file (``-sf``); a bare name is looked up in :data:`SCENARIOS`.
    ``port``: the SIP port sipp binds (``-p``); 0 picks one free for UDP and TCP, and it is known
    (``self.port``) before :meth:`start`, so the UA under test can be configured first.
    ``transport``: ``udp`` (``-t u1``) or ``tcp`` (``-t t1``), one socket either way.
    ``remote``: the UA's address for UAC scenarios (sipp sends the first request there).
    ``variables``: ``-set name value`` for scenario variables declared ``<Global>``.
    ``calls``: ``-m``; sipp exits after this many calls have ended.
    ``timeout``: ``-timeout`` for the whole run (with ``-timeout_error``), in seconds.
    ``recv_timeout``: ``-recv_timeout`` in seconds: how long any ``<recv>`` without its own
    ``timeout`` waits before the call fails; defaults to ``timeout``.
    ``extra_args``: appended to the command line as they are (``-rtp_echo`` to echo media).
    ``host``: the loopback address sipp binds for SIP and media (``-i``/``-mi``), 127.0.0.1 by
    default; another 127.x.y.z makes sipp a different source host. ``port`` 0 still picks a
    port that is free on 127.0.0.1.
    """

    def __init__(
        self,
        scenario: str | Path,
        *,
        port: int = 0,
        transport: Transport = "udp",
        remote: tuple[str, int] | None = None,
        variables: dict[str, str] | None = None,
        calls: int = 1,
        timeout: float = 20.0,
        recv_timeout: float | None = None,
        extra_args: list[str] | tuple[str, ...] = (),
        workdir: str | Path | None = None,
        host: str = "127.0.0.1",
    ) -> None:
        if not host.startswith("127."):
            raise ValueError(f"sipp must stay on loopback (127.0.0.0/8), not {host!r}")
        path = Path(scenario)
        if not path.is_absolute() and not path.exists() and (SCENARIOS / path).exists():
            path = SCENARIOS / path
        if not path.exists():
            raise FileNotFoundError(f"sipp scenario not found: {scenario}")
        if transport not in ("udp", "tcp"):
            raise ValueError(f"transport must be 'udp' or 'tcp', not {transport!r}")
        self.scenario = path.resolve()
        self.host = host
        self.port = port or free_port()
        self.media_port = free_media_port()
        self.transport: Transport = transport
        self.remote = remote
        self.variables = dict(variables or {})
        self.calls = calls
        self.timeout = timeout
        self.recv_timeout = timeout if recv_timeout is None else recv_timeout
        self.extra_args = list(extra_args)
        self._own_workdir = workdir is None
        self.workdir = Path(workdir) if workdir is not None else None
        self._proc: asyncio.subprocess.Process | None = None
        self._result: SippResult | None = None

    # -- files -------------------------------------------------------------------------------

    def _file(self, name: str) -> Path:
        assert self.workdir is not None
        return self.workdir / f"{self.scenario.stem}_{self.port}_{name}"

    @property
    def message_file(self) -> Path:
        return self._file("messages.log")

    @property
    def error_file(self) -> Path:
        return self._file("errors.log")

    @property
    def log_file(self) -> Path:
        return self._file("logs.log")

    @property
    def stdout_file(self) -> Path:
        return self._file("stdout.txt")

    @property
    def stderr_file(self) -> Path:
        return self._file("stderr.txt")

    # -- command -----------------------------------------------------------------------------

    def command(self) -> list[str]:
        """The sipp command line (valid once the work directory exists, i.e. after start)."""
        cmd = [require_sipp()]
        if self.remote is not None:
            host, rport = self.remote
            cmd.append(f"{host}:{rport}")
        cmd += [
            "-sf",
            str(self.scenario),
            "-i",
            self.host,
            "-mi",
            self.host,
            "-p",
            str(self.port),
            "-mp",
            str(self.media_port),
            "-t",
            "u1" if self.transport == "udp" else "t1",
            "-m",
            str(self.calls),
            "-timeout",
            f"{self.timeout:g}s",
            "-timeout_error",
            "-recv_timeout",
            str(max(1, round(self.recv_timeout * 1000))),
            "-nostdin",
            "-trace_msg",
            "-message_file",
            str(self.message_file),
            "-trace_err",
            "-error_file",
            str(self.error_file),
            "-trace_logs",
            "-log_file",
            str(self.log_file),
        ]
        for name, value in self.variables.items():
            cmd += ["-set", name, value]
        cmd += self.extra_args
        return cmd

    # -- life cycle --------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.returncode is None

    async def start(self) -> None:
        """Start sipp and return once it had a moment to bind its socket."""
        if self._proc is not None:
            raise RuntimeError("this Sipp was already started")
        if self.workdir is None:
            self.workdir = Path(tempfile.mkdtemp(prefix="sipp-"))
        self.workdir.mkdir(parents=True, exist_ok=True)
        cmd = self.command()
        with open(self.stdout_file, "wb") as out, open(self.stderr_file, "wb") as err:
            self._proc = await asyncio.create_subprocess_exec(
                *cmd,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                cwd=self.workdir,
                start_new_session=True,
                env={**os.environ, "TERM": "dumb"},
            )
        _LIVE.add(self)
        # A UAS must be listening before the UA sends to it: wait until the port is taken
        # (or sipp died, e.g. on a scenario error: wait() then reports why).
        kinds = UDP if self.transport == "udp" else TCP
        for _ in range(100):
            if self._proc.returncode is not None or not bindable(self.port, kinds, self.host):
                break
            await asyncio.sleep(0.02)

    async def wait(self, timeout: float | None = None) -> SippResult:
        """Wait for sipp to exit (killing it after ``timeout``, default ``self.timeout + 10``)."""
        if self._proc is None:
            raise RuntimeError("sipp was not started")
        if self._result is not None:
            return self._result
        limit = self.timeout + 10 if timeout is None else timeout
        killed = False
        try:
            await asyncio.wait_for(self._proc.wait(), limit)
        except TimeoutError:
            killed = True
            await self._terminate()
        return self._collect(killed)

    async def stop(self, grace: float = 2.0) -> SippResult:
        """End sipp now (SIGTERM, then SIGKILL after ``grace`` seconds) and collect its result."""
        if self._proc is None:
            raise RuntimeError("sipp was not started")
        if self._result is not None:
            return self._result
        killed = self._proc.returncode is None
        if killed:
            await self._terminate(grace)
        return self._collect(killed)

    def kill(self) -> None:
        """Best-effort SIGKILL without waiting (for interpreter exit and garbage collection)."""
        proc = self._proc
        if proc is not None and proc.returncode is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)

    async def _terminate(self, grace: float = 2.0) -> None:
        proc = self._proc
        assert proc is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), grace)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            await proc.wait()

    def _collect(self, killed: bool) -> SippResult:
        assert self._proc is not None and self._proc.returncode is not None

        def read(path: Path) -> str:
            try:
                return path.read_text(errors="replace")
            except FileNotFoundError:
                return ""

        self._result = SippResult(
            returncode=self._proc.returncode,
            stdout=read(self.stdout_file),
            stderr=read(self.stderr_file),
            messages=read(self.message_file),
            errors=read(self.error_file),
            logs=read(self.log_file),
            command=self.command(),
            killed=killed,
        )
        _LIVE.discard(self)
        if self._own_workdir and self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)
        return self._result

    async def __aenter__(self) -> Sipp:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._proc is not None and self._result is None:
            await self.stop()

    def __del__(self) -> None:
        self.kill()

    def __repr__(self) -> str:
        return f"<Sipp {self.scenario.name} {self.host}:{self.port}/{self.transport}>"
