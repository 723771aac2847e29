"""Run baresip 1.0.0 (the independent media peer of the integration tests) over loopback.

One :class:`BaresipPeer` is one baresip process with its own configuration directory, one
SIP account without registration, bound to 127.0.0.1, playing a WAV file as its microphone
and recording what it decodes, driven through its ``ctrl_tcp`` control socket::

    async with BaresipPeer(source_wav, codecs=["G722"], workdir=tmp_path / "bob") as bob:
        ...  # make our UA call bob.sip_uri (bob answers at once: answer_mode "auto")
        await bob.wait_event("CALL_ESTABLISHED", timeout=5)
        await bob.send_dtmf("12#")
        await bob.wait_event("CALL_CLOSED", timeout=10)
        received = (await bob.recordings())[-1].received
    # compare `received` with what our side played: tests/integration/audio_compare.py

Every wait has a timeout; a failure raises :class:`BaresipFailure` (an AssertionError) whose
message ends with :meth:`BaresipPeer.explain`: the command line, the control events seen and
the tail of baresip's output (with a SIP trace, ``sip_trace=True`` by default).

Facts about baresip 1.0.0 (Debian 12 package) this module relies on (tried, not guessed):

- ``-f DIR`` reads ``DIR/config`` and ``DIR/accounts`` (written here); ``-n 127.0.0.1``
  plus ``sip_listen 127.0.0.1:PORT`` bind SIP on UDP and TCP PORT, and TLS on TCP PORT + 1
  (always): all three are checked free. ``-t SECONDS`` makes it quit on its own, a safety
  net for processes a dead test run leaves behind. It also opens two UDP sockets on random
  ports of 0.0.0.0 and ``::``, which carry none of the SIP or RTP here.
- Account line ``<sip:USER@127.0.0.1:PORT>;regint=0;answermode=auto;audio_codecs=...``:
  no REGISTER; ``answermode=auto`` answers at once (180 then 200), ``manual`` rings until
  the ``accept`` command, ``early`` sends 180 then 183 with SDP (early media flows both
  ways) and waits for ``accept`` too. ``audio_codecs`` wants full ``NAME/RATE/CHANNELS`` entries
  (``G722/16000/1``): a bare ``G722`` is looked up as ``G722/8000/1``, is "not found" and the
  account then offers every loaded codec. With a valid list the SDP offers just those (plus
  telephone-event/8000 as PT 101); G.722 is offered as ``9 G722/8000`` (RFC 3551).
- ``aufile`` (source only) insists that the WAV's rate and channels match what the audio
  source is opened with (by default the codec's rate, mono); otherwise the source fails
  and an incoming call is never answered (it stays at 180). ``ausrc_srate`` set to another
  rate makes baresip resample itself ("enable ausrc resampler"), but its 8 -> 16 kHz
  resampler is a low-pass at about 1.2 kHz (measured: -5 dB at 1 kHz, -30 dB at 1.5 kHz),
  useless for a correlation test. So the harness converts the WAV with soxr to the codecs'
  rate and mono (``source.wav`` in the work directory) whenever the account's codecs share
  one rate, and only falls back to baresip's resampler when they do not. aufile reads the
  whole file at call start and the call is hung up when it has been played: give it more
  seconds than the call lasts.
- ``sndfile`` (an audio filter) writes two files per call into ``snd_path``, named by the
  local time the call's audio started, to the second: ``dump-YYYY-MM-DD-HH-MM-SS-enc.wav``
  (what the source gave the encoder, at the codec's rate: what was sent) and
  ``dump-...-dec.wav`` (what the decoder produced from received RTP, at the codec's rate,
  before the player: what was received). The WAV headers are only complete once the call
  is closed. Two calls starting in the same second overwrite each other's files.
- The player is ``aubridge,nil``: an aubridge device whose source is never opened, so its
  thread never starts and nothing is played (the decoded audio is recorded before the
  player, and decoding is driven by RTP arrival, not by the player). ALSA's ``null`` device
  works too but is unpaced: its player thread spins at ~100 % CPU per baresip during a
  call, against ~1 % with aubridge. No ALSA module is loaded.
- ``ctrl_tcp``: JSON objects in netstrings, one client at a time, events from before the
  client connected are lost (so :meth:`BaresipPeer.start` connects before returning).
  Commands are the menu's long commands: ``{"command": "dial", "params": URI, "token": T}``
  is answered ``{"response": true, "ok": true, "data": "...", "token": T}``. Events look
  like ``{"event": true, "class": "call", "type": "CALL_ESTABLISHED", "id": CALL_ID,
  "direction": "incoming", "peeruri": ..., "accountaor": ..., "param": ...}``.
- Event types seen, in order. Caller: CALL_LOCAL_SDP (param ``offer``), CALL_RINGING,
  CALL_RTCP, CALL_REMOTE_SDP (``answer``), CALL_ESTABLISHED, CALL_RTPESTAB (first RTP
  received), CALL_CLOSED. Callee: CALL_INCOMING (only with ``answermode=manual``: an
  auto-answered call has none), CALL_REMOTE_SDP (``offer``), CALL_LOCAL_SDP (``answer``),
  CALL_RTCP, CALL_ESTABLISHED, CALL_RTPESTAB, CALL_CLOSED. CALL_CLOSED's param is the reason:
  "Connection reset by user" (we hung up), "Connection reset by peer" (BYE received),
  "486 Rejected" when the callee hung up while ringing, "end of file" when aufile ran out.
  A 183 with SDP gives the caller CALL_PROGRESS before its CALL_REMOTE_SDP.
- DTMF: ``sndcode DIGITS`` sends the digits as RFC 4733 telephone-events, one after the
  other, about 0.23 s per digit (all of 0-9 * # A-D arrive, also in G.722 calls). It is an
  in-call command: outside a call the answer is ``ok: false``, "command not found
  (sndcode)". Received RFC 4733 digits are reported as CALL_DTMF_START (param: the digit)
  and CALL_DTMF_END (no param; it may never come for the last digit when the call ends
  right after). Audio keeps flowing meanwhile.
- Without registration the first SIGTERM exits at once (the notes' 32 s wait is the
  un-REGISTER); a second SIGTERM, then SIGKILL, are the fall-backs here.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import json
import os
import re
import shutil
import signal
import tempfile
import time
import wave
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from tests.integration.audio_compare import read_wav_mono, resample, write_wav_mono
from tests.integration.peer_support import BOTH, TCP, UDP, bindable, claim_ports, tail

__all__ = [
    "CODEC_SPECS",
    "DTMF_DIGITS",
    "BaresipEvent",
    "BaresipFailure",
    "BaresipPeer",
    "CallRecording",
    "require_baresip",
]

#: Short codec names (as in intercom.media.codecs) -> baresip's account ``audio_codecs`` entry.
CODEC_SPECS = {"PCMU": "PCMU/8000/1", "PCMA": "PCMA/8000/1", "G722": "G722/16000/1"}

#: The characters ``sndcode`` accepts as DTMF digits.
DTMF_DIGITS = frozenset("0123456789*#ABCD")

MODULE_PATH = Path("/usr/lib/baresip/modules")

AnswerMode = Literal["auto", "manual", "early"]

_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
_DUMP = re.compile(r"^dump-(?P<stamp>\d{4}(?:-\d\d){5})-(?P<dir>enc|dec)\.wav$")


class BaresipFailure(AssertionError):
    """A wait timed out, a command failed or baresip died; the message explains the run."""


def require_baresip() -> str:
    """Return the path of the baresip executable, or raise a clear error if it is missing."""
    path = shutil.which("baresip")
    if path is None:
        raise RuntimeError("baresip not installed: apt-get install baresip (1.0.0 on Debian 12)")
    if not (MODULE_PATH / "ctrl_tcp.so").exists():
        raise RuntimeError(f"baresip modules not found in {MODULE_PATH}")
    return path


# -- ports ----------------------------------------------------------------------------------


def _sip_port() -> int:
    """``p`` free for UDP and TCP with ``p + 1`` free for TCP (baresip's TLS listener)."""
    return claim_ports([BOTH, TCP])


def _rtp_range(count: int = 10) -> tuple[int, int]:
    """An even ``lo`` with ``lo .. lo + count - 1`` all free for UDP."""
    lo = claim_ports([UDP] * count, even=True)
    return lo, lo + count - 1


# -- results --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BaresipEvent:
    """One ``ctrl_tcp`` event (``type`` e.g. CALL_ESTABLISHED, ``cls`` e.g. call)."""

    type: str
    cls: str
    param: str | None
    call_id: str | None
    direction: str | None
    peer_uri: str | None
    #: ``time.monotonic()`` when the harness read it.
    at: float
    raw: Mapping[str, Any] = field(repr=False, compare=False)

    @classmethod
    def from_json(cls, data: Mapping[str, Any], at: float) -> BaresipEvent:
        def text(key: str) -> str | None:
            value = data.get(key)
            return None if value is None else str(value)

        return cls(
            type=str(data.get("type", "")),
            cls=str(data.get("class", "")),
            param=text("param"),
            call_id=text("id"),
            direction=text("direction"),
            peer_uri=text("peeruri"),
            at=at,
            raw=dict(data),
        )


@dataclass(frozen=True, slots=True)
class CallRecording:
    """The two ``sndfile`` dumps of one call (both at the negotiated codec's sample rate)."""

    #: Local start time from the file names, ``YYYY-MM-DD-HH-MM-SS``.
    stamp: str
    #: ``dump-STAMP-dec.wav``: audio decoded from the RTP baresip received.
    received: Path
    #: ``dump-STAMP-enc.wav``: audio baresip's source handed to the encoder (what it sent).
    sent: Path


def _wav_complete(path: Path) -> bool:
    """True once libsndfile closed the file (RIFF size matches and the header parses)."""
    try:
        size = path.stat().st_size
        with open(path, "rb") as f:
            head = f.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            return False
        if int.from_bytes(head[4:8], "little") != size - 8:
            return False
        with wave.open(str(path), "rb") as w:
            return w.getnframes() > 0
    except (OSError, EOFError, wave.Error):
        return False


def _wav_format(path: Path) -> tuple[int, int, int]:
    """``(rate, channels, sample width)`` of a WAV file; ValueError if it is not one."""
    try:
        with wave.open(str(path), "rb") as w:
            return w.getframerate(), w.getnchannels(), w.getsampwidth()
    except (OSError, EOFError, wave.Error) as exc:
        raise ValueError(f"source {path} is not a readable PCM WAV file: {exc}") from exc


def _source_rate(path: Path) -> int:
    return _wav_format(path)[0]


def _prepare_source(source: Path, rate: int, target: Path) -> Path:
    """``source`` if it is mono 16-bit at ``rate``, else its soxr conversion at ``target``."""
    if _wav_format(source) == (rate, 1, 2):
        return source
    source_rate, samples = read_wav_mono(source)
    write_wav_mono(target, rate, resample(samples, source_rate, rate))
    return target


# -- the peer -------------------------------------------------------------------------------

_LIVE: weakref.WeakSet[BaresipPeer] = weakref.WeakSet()


@atexit.register
def _kill_leftovers() -> None:
    for peer in list(_LIVE):
        peer.kill()


class BaresipPeer:
    """One baresip process on 127.0.0.1 with one account, driven over ``ctrl_tcp``.

    ``source``: the WAV its aufile source plays in every call (PCM, any rate, mono or stereo;
    it must last longer than the call, or baresip hangs up when it ends). It is converted to
    mono 16-bit at the codecs' rate (see :attr:`play_rate`) when it is not that already.
    ``user``: the account's user part; :attr:`sip_uri` is ``sip:USER@127.0.0.1:PORT``.
    ``codecs``: what the account offers and accepts, in order of preference: names of
    :data:`CODEC_SPECS` or baresip's own ``NAME/RATE/CH``; empty means every loaded codec
    (PCMU, PCMA, G722).
    ``answer_mode``: ``auto`` answers incoming calls at once, ``manual`` rings until
    :meth:`accept`, ``early`` sends 183 with SDP (early media) and waits for :meth:`accept`.
    ``port``: the SIP port (UDP+TCP; TLS takes port + 1, so that must be free too); 0 picks
    a free pair.
    ``workdir``: where config, accounts, logs and ``recordings/`` go. Given, it is kept (pass
    a pytest ``tmp_path`` to keep the recordings after the peer stopped); None makes a
    temporary directory that :meth:`stop` removes.
    ``max_lifetime``: baresip's own ``-t``: it quits after this many seconds whatever happens.
    ``sip_trace``: ``-s``, every SIP message in the output (and so in :meth:`explain`).
    ``extra_config``: more ``config`` lines (``name -> value``), replacing defaults by name.
    ``registrar``, ``password``: ``host:port`` of a server to REGISTER ``USER@registrar`` at
    (:meth:`wait_registered`), as a phone of a one-number service does; None: no registration.
    """

    def __init__(
        self,
        source: str | Path,
        *,
        user: str = "bob",
        codecs: Sequence[str] = ("PCMU",),
        answer_mode: AnswerMode = "auto",
        port: int = 0,
        workdir: str | Path | None = None,
        max_lifetime: float = 120.0,
        sip_trace: bool = True,
        extra_config: Mapping[str, str] | None = None,
        registrar: str | None = None,
        password: str | None = None,
        media_encryption: str | None = None,
    ) -> None:
        """``media_encryption``: baresip's ``mediaenc`` of the account (``srtp-mand``: SDES
        SRTP, RTP/SAVP only; ``srtp``: SDES keys on RTP/AVP), loading its srtp module."""
        self.media_encryption = media_encryption
        self.registrar = registrar
        self.password = password
        self.source = Path(source).resolve()
        if not self.source.exists():
            raise FileNotFoundError(f"source WAV not found: {source}")
        _wav_format(self.source)
        if not re.fullmatch(r"[A-Za-z0-9._~-]+", user):
            raise ValueError(f"user must be a plain SIP user part, not {user!r}")
        if answer_mode not in ("auto", "manual", "early"):
            raise ValueError(f"answer_mode must be auto, manual or early, not {answer_mode!r}")
        self.user = user
        self.codecs = tuple(CODEC_SPECS.get(c.upper(), c) for c in codecs)
        for spec in self.codecs:
            if spec.count("/") != 2:
                raise ValueError(
                    f"codec {spec!r}: use one of {sorted(CODEC_SPECS)} or NAME/RATE/CHANNELS"
                )
        rates = {int(spec.split("/")[1]) for spec in self.codecs} if self.codecs else {8000, 16000}
        #: The rate aufile plays at: the codecs' common rate, else the source's own rate.
        self.play_rate = rates.pop() if len(rates) == 1 else _source_rate(self.source)
        #: The file aufile plays: ``source`` itself, or its conversion (set by start()).
        self.played: Path = self.source
        self.answer_mode: AnswerMode = answer_mode
        self.port = port or _sip_port()
        self.ctrl_port = claim_ports([TCP])
        self.rtp_ports = _rtp_range()
        self.max_lifetime = max_lifetime
        self.sip_trace = sip_trace
        self.extra_config = dict(extra_config or {})
        self._own_workdir = workdir is None
        self.workdir = Path(workdir) if workdir is not None else None
        self.events: list[BaresipEvent] = []
        self._consumed: set[int] = set()
        self._changed = asyncio.Event()
        self._responses: dict[str, dict[str, Any]] = {}
        self._token = 0
        self._proc: asyncio.subprocess.Process | None = None
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._read_task: asyncio.Task[None] | None = None
        self._read_error: str | None = None
        self._stopped = False
        self._final_output: str | None = None

    # -- files ---------------------------------------------------------------------------

    @property
    def sip_uri(self) -> str:
        return f"sip:{self.user}@127.0.0.1:{self.port}"

    @property
    def record_dir(self) -> Path:
        return self._dir / "recordings"

    @property
    def stdout_file(self) -> Path:
        return self._dir / "stdout.txt"

    @property
    def stderr_file(self) -> Path:
        return self._dir / "stderr.txt"

    @property
    def _dir(self) -> Path:
        if self.workdir is None:
            raise RuntimeError("the peer has no work directory before start()")
        return self.workdir

    def config_lines(self) -> dict[str, str]:
        """The ``config`` file as ``name -> value`` (one line each, in this order)."""
        lo, hi = self.rtp_ports
        config = {
            "poll_method": "epoll",
            "sip_listen": f"127.0.0.1:{self.port}",
            "call_local_timeout": "120",
            "call_max_calls": "4",
            "audio_player": "aubridge,nil",
            "audio_alert": "aubridge,nil",
            "audio_source": f"aufile,{self.played}",
            # Equal to the codec's rate unless the codecs' rates differ (see module doc).
            "ausrc_srate": str(self.play_rate),
            "ausrc_channels": "1",
            "audio_buffer": "20-160",
            "rtp_ports": f"{lo}-{hi}",
            "rtcp_mux": "no",
            "jitter_buffer_delay": "5-10",
            "module_path": str(MODULE_PATH),
            "snd_path": str(self.record_dir),
            "ctrl_tcp_listen": f"127.0.0.1:{self.ctrl_port}",
            "statmode_default": "off",
            "ringback_disabled": "yes",
            "menu_bell": "no",
        }
        config.update(self.extra_config)
        return config

    def _config_text(self) -> str:
        lines = [f"{name}\t{value}" for name, value in self.config_lines().items()]
        # Order matters: codecs in preference order, then filters, drivers, UI/control.
        modules = ["g711.so", "g722.so", "sndfile.so", "aufile.so", "aubridge.so"]
        if self.media_encryption is not None:
            modules.append("srtp.so")
        lines += [f"module\t{m}" for m in modules]
        lines += ["module_tmp\taccount.so", "module_app\tmenu.so", "module_app\tctrl_tcp.so"]
        return "\n".join(lines) + "\n"

    def account_line(self) -> str:
        if self.registrar is None:
            line = f"<sip:{self.user}@127.0.0.1:{self.port}>;regint=0"
        else:  # registered at a server, as a phone of a one-number service is
            line = f"<sip:{self.user}@{self.registrar}>;auth_pass={self.password};regint=300"
        line += f";answermode={self.answer_mode}"
        if self.codecs:
            line += ";audio_codecs=" + ",".join(self.codecs)
        if self.media_encryption is not None:
            line += f";mediaenc={self.media_encryption}"
        return line

    def command_line(self) -> list[str]:
        cmd = [require_baresip(), "-f", str(self._dir), "-n", "127.0.0.1"]
        cmd += ["-t", str(max(1, round(self.max_lifetime)))]
        if self.sip_trace:
            cmd.append("-s")
        return cmd

    # -- life cycle ----------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.returncode is None

    @property
    def returncode(self) -> int | None:
        return None if self._proc is None else self._proc.returncode

    async def start(self, timeout: float = 5.0) -> None:
        """Start baresip; return once its control socket is connected and SIP is bound."""
        if self._proc is not None:
            raise RuntimeError("this BaresipPeer was already started")
        if self.workdir is None:
            self.workdir = Path(tempfile.mkdtemp(prefix="baresip-"))
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.record_dir.mkdir(exist_ok=True)
        self.played = _prepare_source(self.source, self.play_rate, self._dir / "source.wav")
        (self._dir / "config").write_text(self._config_text())
        (self._dir / "accounts").write_text(self.account_line() + "\n")
        with open(self.stdout_file, "wb") as out, open(self.stderr_file, "wb") as err:
            self._proc = await asyncio.create_subprocess_exec(
                *self.command_line(),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                cwd=self._dir,
                start_new_session=True,
                env={**os.environ, "TERM": "dumb"},
            )
        _LIVE.add(self)
        deadline = time.monotonic() + timeout
        while True:
            if self._proc.returncode is not None:
                raise self._failure("baresip exited during start-up")
            try:
                self._reader, self._writer = await asyncio.open_connection(
                    "127.0.0.1", self.ctrl_port
                )
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise self._failure(
                        f"ctrl_tcp did not accept on 127.0.0.1:{self.ctrl_port} within {timeout} s"
                    ) from None
                await asyncio.sleep(0.05)
        self._read_task = asyncio.create_task(self._read_loop())
        while bindable(self.port, UDP):
            if self._proc.returncode is not None or time.monotonic() > deadline:
                raise self._failure(f"baresip did not bind SIP on 127.0.0.1:{self.port}")
            await asyncio.sleep(0.05)

    async def stop(self, grace: float = 3.0) -> None:
        """Stop baresip: SIGTERM, a second SIGTERM after ``grace`` s, then SIGKILL.

        Removes the work directory if the peer made it. Safe to call twice.
        """
        if self._stopped:
            return
        self._stopped = True
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(OSError, ConnectionError):
                await self._writer.wait_closed()
        proc = self._proc
        if proc is not None and proc.returncode is None:
            for sig in (signal.SIGTERM, signal.SIGTERM, signal.SIGKILL):
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, sig)
                try:
                    await asyncio.wait_for(proc.wait(), grace if sig != signal.SIGKILL else 5)
                    break
                except TimeoutError:
                    continue
        if self._read_task is not None:
            self._read_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._read_task
        _LIVE.discard(self)
        if self._own_workdir and self.workdir is not None:
            self._final_output = self.output()
            shutil.rmtree(self.workdir, ignore_errors=True)

    def kill(self) -> None:
        """Best-effort SIGKILL without waiting (interpreter exit, garbage collection)."""
        proc = self._proc
        if proc is not None and proc.returncode is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)

    async def __aenter__(self) -> BaresipPeer:
        try:
            await self.start()
        except BaseException:
            await self.stop()
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def __del__(self) -> None:
        self.kill()

    def __repr__(self) -> str:
        return f"<BaresipPeer {self.sip_uri} ctrl={self.ctrl_port} codecs={self.codecs}>"

    # -- control socket ------------------------------------------------------------------

    async def _read_loop(self) -> None:
        reader = self._reader
        assert reader is not None
        try:
            while True:
                head = await reader.readuntil(b":")
                length = int(head[:-1])
                body = await reader.readexactly(length + 1)
                if body[-1:] != b",":
                    raise ValueError(f"netstring without its trailing comma: {body[-20:]!r}")
                message = json.loads(body[:-1])
                if message.get("event"):
                    self.events.append(BaresipEvent.from_json(message, time.monotonic()))
                elif message.get("response"):
                    self._responses[str(message.get("token"))] = message
                self._changed.set()
        except asyncio.IncompleteReadError:
            self._read_error = "ctrl_tcp connection closed by baresip"
        except (OSError, ValueError) as exc:
            self._read_error = f"ctrl_tcp read failed: {exc!r}"
        finally:
            self._changed.set()

    async def _until(self, ready: Any, timeout: float, what: str) -> Any:
        """Wait until ``ready()`` returns something not None; fail clearly on timeout/death."""
        deadline = time.monotonic() + timeout
        while True:
            self._changed.clear()
            result = ready()
            if result is not None:
                return result
            if self._read_error is not None:
                raise self._failure(f"{what}: {self._read_error}")
            left = deadline - time.monotonic()
            if left <= 0:
                raise self._failure(f"{what}: nothing within {timeout} s")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), min(left, 0.1))

    async def command(self, name: str, params: str | None = None, timeout: float = 5.0) -> str:
        """Run a menu long command (``dial``, ``hangup``, ``sndcode``...); return its output."""
        if self._writer is None:
            raise RuntimeError("baresip is not started")
        self._token += 1
        token = str(self._token)
        request: dict[str, str] = {"command": name, "token": token}
        if params is not None:
            request["params"] = params
        data = json.dumps(request).encode()
        self._writer.write(str(len(data)).encode() + b":" + data + b",")
        await self._writer.drain()
        what = f"response to {name} {params or ''}".rstrip()
        response: dict[str, Any] = await self._until(
            lambda: self._responses.pop(token, None), timeout, what
        )
        if not response.get("ok", False):
            raise self._failure(f"{what}: not ok: {response!r}")
        return str(response.get("data", ""))

    async def dial(self, uri: str) -> None:
        """Place an outgoing call (``dial``); follow it with :meth:`wait_event`."""
        await self.command("dial", uri)

    async def accept(self) -> None:
        """Answer the ringing incoming call (``answer_mode="manual"``)."""
        await self.command("accept")

    async def hangup(self) -> None:
        """Hang up the current call (a ringing incoming one is rejected with 486)."""
        await self.command("hangup")

    async def send_dtmf(self, digits: str) -> None:
        """Send RFC 4733 DTMF events in the current call (``sndcode``), one after another."""
        bad = sorted(set(digits) - DTMF_DIGITS)
        if not digits or bad:
            raise ValueError(f"DTMF digits must be from 0-9*#A-D, got {digits!r}")
        await self.command("sndcode", digits)

    # -- events --------------------------------------------------------------------------

    def _take(self, type_: str, call_id: str | None) -> BaresipEvent | None:
        for index, event in enumerate(self.events):
            if index in self._consumed or event.type != type_:
                continue
            if call_id is not None and event.call_id != call_id:
                continue
            self._consumed.add(index)
            return event
        return None

    async def wait_event(
        self, type_: str, timeout: float = 5.0, *, call_id: str | None = None
    ) -> BaresipEvent:
        """The oldest event of this type (and call) not returned before; waits if none yet.

        Events are kept from the moment the control socket connected, so an event that came
        before the call to wait_event is found too. Raises :class:`BaresipFailure` on timeout.
        """
        result: BaresipEvent = await self._until(
            lambda: self._take(type_, call_id), timeout, f"event {type_}"
        )
        return result

    async def wait_dtmf(self, count: int, timeout: float = 5.0) -> str:
        """The next ``count`` digits received (CALL_DTMF_START events), in order."""
        digits = ""
        deadline = time.monotonic() + timeout
        while len(digits) < count:
            left = max(0.0, deadline - time.monotonic())
            try:
                event = await self.wait_event("CALL_DTMF_START", left)
            except BaresipFailure as exc:
                raise self._failure(
                    f"only {digits!r} of {count} DTMF digits within {timeout} s"
                ) from exc
            digits += event.param or "?"
        return digits

    # -- recordings ----------------------------------------------------------------------

    def _recording_files(self) -> list[CallRecording]:
        found: dict[str, dict[str, Path]] = {}
        if self.workdir is None or not self.record_dir.exists():
            return []
        for path in self.record_dir.iterdir():
            match = _DUMP.match(path.name)
            if match:
                found.setdefault(match["stamp"], {})[match["dir"]] = path
        return [
            CallRecording(stamp, files["dec"], files["enc"])
            for stamp, files in sorted(found.items())
            if "dec" in files and "enc" in files
        ]

    async def recordings(self, timeout: float = 3.0) -> list[CallRecording]:
        """The calls' sndfile dumps, oldest first, once every one of them is complete.

        A dump is complete once its call is closed (libsndfile writes the header on close),
        so call this after CALL_CLOSED. Raises :class:`BaresipFailure` if there is none or
        one stays incomplete for ``timeout`` seconds.
        """

        def ready() -> list[CallRecording] | None:
            found = self._recording_files()
            if found and all(_wav_complete(r.received) and _wav_complete(r.sent) for r in found):
                return found
            return None

        deadline = time.monotonic() + timeout
        while True:
            result = ready()
            if result is not None:
                return result
            if time.monotonic() > deadline:
                names = sorted(p.name for p in self.record_dir.glob("*")) or ["none"]
                raise self._failure(
                    f"no complete recordings in {self.record_dir} within {timeout} s "
                    f"(files: {', '.join(names)}; is the call closed?)"
                )
            await asyncio.sleep(0.05)

    # -- diagnostics ---------------------------------------------------------------------

    async def wait_registered(self, timeout: float = 10.0) -> None:
        """Until the registrar has answered our REGISTER 200 (read from the output: the
        ``REGISTER_OK`` event comes before the control socket is connected)."""
        done = re.compile(rf"{re.escape(self.user)}@\S+: \{{\d+/\w+/v4\}} 200 OK")
        await self._until(
            lambda: True if done.search(self.output()) else None, timeout, "registration"
        )

    def output(self) -> str:
        """baresip's stdout and stderr so far, ANSI colours removed."""
        if self._final_output is not None:
            return self._final_output
        texts = []
        for path in (self.stdout_file, self.stderr_file) if self.workdir else ():
            with contextlib.suppress(FileNotFoundError):
                texts.append(path.read_text(errors="replace"))
        return _ANSI.sub("", "\n".join(t for t in texts if t.strip()))

    def explain(self, lines: int = 80) -> str:
        """Command line, exit status, control events and the output's tail, for messages."""
        state = "running" if self.running else f"exited with {self.returncode}"
        head = [f"baresip {self.sip_uri} (ctrl 127.0.0.1:{self.ctrl_port}) {state}"]
        if self.workdir is not None:
            head.append("command: " + " ".join(self.command_line()))
            head.append(f"account: {self.account_line()}")
        events = [f"{e.type} {e.param or ''}".rstrip() for e in self.events]
        head.append("events: " + (", ".join(events) or "none"))
        return "\n".join([*head, "----- output, last lines -----", tail(self.output(), lines)])

    def _failure(self, message: str) -> BaresipFailure:
        return BaresipFailure(f"{message}\n{self.explain()}")
