"""The intercom, baresip 1.0.0 and pyVoIP 1.6.8 in the same call, measured side by side.

One command (``./dev.sh bench``, or ``python -m benchmarks.side_by_side`` as root) runs, on
this machine and in one go, the same two-way G.711 (PCMU) call with each of three callers
(:mod:`benchmarks.callers`) against the same loopback callee: sipp with ``-rtp_echo``
(:file:`benchmarks/echo_callee.xml`), reached through the same digest-less registrar
(:mod:`benchmarks.registrar`) at which each caller registers first. Each run of a caller:

1. start the process; its first REGISTER on the wire gives "start to first REGISTER";
2. after a short warm-up, a registered span without a call: idle CPU per registered hour;
3. dial (the intercom's control-socket press, baresip's ctrl_tcp ``dial``, a line to the
   pyVoIP driver); its INVITE on the wire gives "press to INVITE";
4. from a second after the first RTP packet, ``--seconds`` of call: CPU (user+sys over all the
   caller's processes and threads, :mod:`benchmarks.proc`), VmRSS sampled each half second
   (the median is "steady") and VmHWM at the end ("peak"), and the send intervals of the
   caller's RTP packets as the capture on ``lo`` stamped them (:mod:`benchmarks.capture`);
5. hang up and stop.

The callers take turns, round after round, so that a change of load on the machine falls on
all of them. Then it runs the refused-INVITE flood of :mod:`benchmarks.flood` against the
intercom, and the starved-CPU benchmark when :mod:`benchmarks.starved` exists (its
``run(argv: list[str]) -> list[str]`` returns the lines to print; ``--starved-args`` passes
arguments on). It prints the medians over the runs with min-max and the ratios to baresip, and
writes ``side_by_side.md`` (the table), ``side_by_side.json`` (every run's figures) and
``side_by_side.png`` (a histogram of send intervals per caller, drawn by
:mod:`benchmarks.plot` in the bench venv) into ``--results``: ``benchmarks/results/`` for a
full run (the defaults), ``.bench/results/`` for a shorter try.

    python -m benchmarks.side_by_side [--seconds 60] [--runs 3] [--idle-seconds 30]
        [--only intercom|baresip|pyVoIP ...] [--no-flood] [--no-starved] [--results DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import inspect
import json
import math
import os
import platform
import shlex
import shutil
import struct
import subprocess
import sys
import tempfile
import time
import wave
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from benchmarks.callers import BENCH_VENV, CALLERS, ROOT, USER, Caller, Setup, free_port
from benchmarks.capture import Capture, first, rtp_times
from benchmarks.proc import cpu_sample, cpu_seconds, memory_kib, tree
from benchmarks.registrar import Registrar, open_registrar
from benchmarks.report import RunFigures, render_table
from benchmarks.stats import interval_stats, intervals, percentile

TARGET = "echo"  # the callee's user at the registrar
WARM_UP = 2.0  # seconds after the first REGISTER before the idle span
SETTLE = 1.0  # seconds after the first RTP packet before the call is measured
STEP_TIMEOUT = 20.0
DEFAULT_RESULTS = ROOT / "benchmarks" / "results"
PNG = "side_by_side.png"


@dataclass
class Rig:
    """What every run shares: the capture, the registrar, the callee, the work folder."""

    capture: Capture
    registrar: Registrar
    media_port: int
    workdir: Path
    wav: Path
    options: argparse.Namespace

    @property
    def registrar_port(self) -> int:
        return self.registrar.address[1]


@dataclass
class CallerResults:
    runs: list[RunFigures] = field(default_factory=list)
    intervals_ms: list[float] = field(default_factory=list)


# -- the source audio ------------------------------------------------------------------------


def write_source(path: Path, seconds: float) -> None:
    """An 8 kHz mono 16-bit WAV of ``seconds``: three tones that swell and fade like speech,
    the same for every caller."""
    frames = bytearray()
    for n in range(int(seconds * 8000)):
        t = n / 8000
        envelope = 0.5 + 0.5 * math.sin(2 * math.pi * 3 * t)
        value = sum(math.sin(2 * math.pi * f * t) for f in (300.0, 1100.0, 2300.0)) / 3
        frames += struct.pack("<h", int(9000 * envelope * value))
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(8000)
        out.writeframes(bytes(frames))


# -- one run ---------------------------------------------------------------------------------


async def _until(
    what: str, check: Callable[[], bool], caller: Caller, timeout: float = STEP_TIMEOUT
) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if not caller.running:
            raise RuntimeError(f"{caller.name} exited before {what}:\n{caller.log_tail()}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"no {what} within {timeout:.0f} s:\n{caller.log_tail()}")
        await asyncio.sleep(0.02)


async def _sample_rss(pids: list[int], samples: list[int], stop: asyncio.Event) -> None:
    while not stop.is_set():
        samples.append(memory_kib(pids, "VmRSS"))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 0.5)


async def measure_run(rig: Rig, kind: type[Caller], label: str) -> tuple[RunFigures, list[float]]:
    """One run of one caller (see the module doc); the figures and its send intervals (ms)."""
    options = rig.options
    workdir = Path(tempfile.mkdtemp(prefix=f"{kind.name}-", dir=rig.workdir))
    lifetime = options.idle_seconds + options.seconds + 120
    caller = kind(Setup(rig.registrar.address, TARGET, rig.wav, workdir, lifetime))
    rig.registrar.bindings.clear()
    rig.capture.clear()
    figures: dict[str, object] = {}
    sent_ms: list[float] = []
    try:
        await caller.start()
        spawned = caller.started_at
        port = rig.registrar_port

        def registered() -> bool:
            packets = rig.capture.packets(spawned)
            return USER in rig.registrar.bindings and bool(
                first(packets, port, b"REGISTER ", spawned)
            )

        await _until("registration", registered, caller)
        register = first(rig.capture.packets(spawned), port, b"REGISTER ", spawned)
        assert register is not None
        figures["start_to_register_s"] = register.at - spawned
        await asyncio.sleep(WARM_UP)

        pids = tree(caller.pid)
        before = cpu_sample(pids)
        await asyncio.sleep(options.idle_seconds)
        idle = cpu_seconds(before, cpu_sample(tree(caller.pid)))
        figures["idle_cpu_per_hour"] = idle * 3600 / options.idle_seconds

        pressed = await caller.dial()

        def rtp_flows() -> bool:
            return bool(rtp_times(rig.capture.packets(pressed), rig.media_port, pressed, math.inf))

        await _until("RTP to the callee", rtp_flows, caller)
        invite = first(rig.capture.packets(pressed), port, b"INVITE ", pressed)
        if invite is not None:
            figures["press_to_invite_s"] = invite.at - pressed
        await asyncio.sleep(SETTLE)

        pids = tree(caller.pid)
        rss: list[int] = []
        stop = asyncio.Event()
        sampler = asyncio.create_task(_sample_rss(pids, rss, stop))
        start, before = time.time(), cpu_sample(pids)
        await asyncio.sleep(options.seconds)
        end, after = time.time(), cpu_sample(tree(caller.pid))
        peak = memory_kib(pids, "VmHWM")
        stop.set()
        await sampler
        figures["cpu_per_call_minute"] = cpu_seconds(before, after) * 60 / (end - start)
        figures["rss_steady_mib"] = percentile([float(r) for r in rss], 50.0) / 1024
        figures["rss_peak_mib"] = peak / 1024
        await caller.hangup()
        await asyncio.sleep(0.3)
        times = rtp_times(rig.capture.packets(start), rig.media_port, start, end)
        figures["pacing"] = interval_stats(times)
        sent_ms = [gap * 1e3 for gap in intervals(times)]
    except (RuntimeError, OSError, ValueError) as exc:
        figures["error"] = f"{type(exc).__name__}: {exc}"
    finally:
        await caller.stop()
    run = RunFigures(**figures)  # type: ignore[arg-type]
    print(summary_line(label, run), flush=True)
    return run, sent_ms


def summary_line(label: str, run: RunFigures) -> str:
    def show(value: float | None, fmt: str) -> str:
        return "-" if value is None else fmt.format(value)

    text = (
        f"{label}: CPU {show(run.cpu_per_call_minute, '{:.3f}')} s/call-min, idle "
        f"{show(run.idle_cpu_per_hour, '{:.3f}')} s/h, RSS {show(run.rss_steady_mib, '{:.1f}')}"
        f" / peak {show(run.rss_peak_mib, '{:.1f}')} MiB, REGISTER after "
        f"{show(run.start_to_register_s, '{:.3f}')} s, INVITE after "
        f"{show(run.press_to_invite_s, '{:.4f}')} s"
    )
    if run.pacing is not None:
        p = run.pacing
        text += (
            f", RTP {p.packets} packets, mean {p.mean_ms:.3f} SD {p.sd_ms:.3f} p99 "
            f"{p.p99_dev_ms:.2f} max {p.max_dev_ms:.2f} ms, {p.gaps} gaps"
        )
    if run.error:
        text += f"\n  FAILED: {run.error}"
    return text


# -- the whole benchmark ---------------------------------------------------------------------


async def run_callers(options: argparse.Namespace, workdir: Path) -> dict[str, CallerResults]:
    sipp = shutil.which("sipp")
    if sipp is None:
        raise SystemExit("sipp is missing: apt-get install sip-tester")
    wav = workdir / "source.wav"
    write_source(wav, options.idle_seconds + options.seconds + 60)
    sipp_port = free_port(udp=True, tcp=True)
    media_port = free_port(even=True, span=4)
    with open(workdir / "sipp.log", "wb") as log:
        callee = await asyncio.create_subprocess_exec(
            sipp, "-sf", str(ROOT / "benchmarks" / "echo_callee.xml"),
            "-i", "127.0.0.1", "-mi", "127.0.0.1", "-p", str(sipp_port), "-mp", str(media_port),
            "-rtp_echo", "-m", "1000", "-nostdin", "-trace_err",
            "-error_file", str(workdir / "sipp-errors.log"),
            stdout=log, stderr=log, cwd=workdir,
        )  # fmt: skip
    registrar, transport = await open_registrar({TARGET: ("127.0.0.1", sipp_port)})
    capture = Capture()
    capture.start()
    rig = Rig(capture, registrar, media_port, workdir, wav, options)
    results = {name: CallerResults() for name in options.only}
    try:
        for n in range(options.runs):
            for name in options.only:
                run, sent = await measure_run(rig, CALLERS[name], f"{name} {n + 1}/{options.runs}")
                results[name].runs.append(run)
                results[name].intervals_ms.extend(sent)
    finally:
        capture.stop()
        transport.close()
        callee.terminate()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(callee.wait(), 5)
        if callee.returncode is None:
            callee.kill()
            await callee.wait()
    return results


def run_flood(options: argparse.Namespace) -> tuple[list[str], str | None]:
    """flood.py's daemon measurement: its lines, and the table's cell (refused per CPU-s)."""
    from benchmarks import flood

    figures = asyncio.run(flood.measure_daemon(options.flood_seconds, options.flood_rate))
    return figures.lines(), f"{figures.refused_per_cpu_second:,.0f}"


def run_starved(options: argparse.Namespace) -> list[str]:
    """benchmarks/starved.py's summary lines, or why there are none. Its contract: ``run(args)``
    returns the lines to print; ``args`` is what its ``parser()`` makes of ``--starved-args``
    (the argument list itself when it has no parser)."""
    try:
        starved = importlib.import_module("benchmarks.starved")
    except ModuleNotFoundError as exc:
        if exc.name != "benchmarks.starved":
            raise
        return ["starved: benchmarks/starved.py does not exist yet: nothing measured"]
    run = getattr(starved, "run", None)
    if run is None:
        return ["starved: benchmarks/starved.py has no run(args) -> list[str]: nothing measured"]
    argv = shlex.split(options.starved_args)
    make_parser = getattr(starved, "parser", None)
    try:
        lines = run(make_parser().parse_args(argv) if make_parser is not None else argv)
        if inspect.isawaitable(lines):
            lines = asyncio.run(lines)  # type: ignore[arg-type]
    except SystemExit as exc:  # its own refusals (not root, a bad argument)
        return [f"starved: stopped: {exc}"]
    return ["starved.py (the intercom alone in a cgroup with a CPU quota):"] + [
        str(line) for line in lines
    ]


def _version(*cmd: str) -> str:
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=20).stdout
    except (OSError, subprocess.TimeoutExpired):
        return "?"
    return out.strip().splitlines()[0] if out.strip() else "?"


def machine() -> str:
    model = "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return f"{os.cpu_count()} x {model}, Linux {platform.release()}"


def load_average() -> str:
    """The 1, 5 and 15 minute load averages: the benchmark shares the machine."""
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def write_results(
    options: argparse.Namespace,
    results: dict[str, CallerResults],
    table: str,
    notes: list[str],
    started: tuple[datetime, str],
) -> Path:
    folder = Path(options.results)
    folder.mkdir(parents=True, exist_ok=True)
    baresip = _version("dpkg-query", "-W", "-f=${Version}", "baresip")
    pyvoip = _version(
        str(BENCH_VENV / "bin" / "python"), "-c", "import pyVoIP; print(pyVoIP.__version__)"
    )
    when, load = started
    head = [
        "# Side-by-side benchmark: the intercom, baresip and pyVoIP in the same call",
        "",
        f"Run {when:%Y-%m-%d %H:%M} UTC on {machine()}; load average {load} at the start, "
        f"{load_average()} at the end.",
        f"{options.runs} runs per caller, taking turns; each run a {options.seconds:.0f} s "
        f"two-way PCMU call to sipp `-rtp_echo` on loopback after {options.idle_seconds:.0f} s "
        "registered without a call. Medians over the runs, (min-max), [ratio to baresip's "
        f"median]. baresip {baresip} (Debian), pyVoIP {pyvoip} (PyPI), Python "
        f"{platform.python_version()}. Produced by `./dev.sh bench`; how each figure is "
        "measured: [benchmarks/side_by_side.py](../side_by_side.py).",
        "",
    ]
    text = "\n".join(head) + "\n" + table
    if notes:
        text += "\n```text\n" + "\n".join(notes) + "\n```\n"
    text += "\n![RTP send intervals per caller](side_by_side.png)\n"
    (folder / "side_by_side.md").write_text(text)
    raw = {name: [run.as_json() for run in r.runs] for name, r in results.items()}
    (folder / "side_by_side.json").write_text(json.dumps(raw, indent=1) + "\n")
    plot_source = folder / ".intervals.json"
    plot_source.write_text(json.dumps({n: r.intervals_ms for n, r in results.items()}))
    python = BENCH_VENV / "bin" / "python"
    try:
        subprocess.run(
            [str(python), "-m", "benchmarks.plot", str(plot_source), str(folder / PNG)],
            cwd=ROOT,
            check=True,
            timeout=120,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        print(f"no plot: {exc} (matplotlib lives in {BENCH_VENV}: ./dev.sh bench makes it)")
    finally:
        plot_source.unlink(missing_ok=True)
    return folder


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="measured call, s")
    parser.add_argument("--runs", type=int, default=3, help="runs per caller")
    parser.add_argument("--idle-seconds", type=float, default=30.0, help="registered, no call")
    parser.add_argument("--only", action="append", choices=list(CALLERS), help="repeatable")
    parser.add_argument("--no-flood", action="store_true", help="skip flood.py")
    parser.add_argument("--flood-seconds", type=float, default=5.0)
    parser.add_argument("--flood-rate", type=float, default=1000.0)
    parser.add_argument("--no-starved", action="store_true", help="skip starved.py")
    parser.add_argument("--starved-args", default="", help="arguments for benchmarks/starved.py")
    parser.add_argument("--results", help="folder for the table and plot")
    options = parser.parse_args(argv)
    full = options.only is None and options.seconds >= 60 and options.runs >= 3
    options.only = options.only or list(CALLERS)
    if options.results is None:
        options.results = str(DEFAULT_RESULTS if full else ROOT / ".bench" / "results")
    return options


def main(argv: list[str] | None = None) -> None:
    options = parse_args(argv)
    if os.geteuid() != 0:
        raise SystemExit("the capture on lo needs root (an AF_PACKET socket): run as root")
    started = datetime.now(UTC), load_average()
    with tempfile.TemporaryDirectory(prefix="side-by-side-") as tmp:
        results = asyncio.run(run_callers(options, Path(tmp)))
    notes: list[str] = []
    extra: list[tuple[str, dict[str, str]]] = []
    if not options.no_flood:
        lines, cell = run_flood(options)
        notes += ["flood.py against intercom run:", *lines]
        if cell is not None:
            extra.append(("refused INVITEs per CPU-second (flood.py)", {"intercom": cell}))
    if not options.no_starved:
        notes += run_starved(options)
    table = render_table({name: r.runs for name, r in results.items()}, extra)
    print()
    print(table)
    print("\n".join(notes))
    folder = write_results(options, results, table, notes, started)
    print(f"\nwritten: {folder}/side_by_side.md, side_by_side.json, side_by_side.png")
    if any(run.error for r in results.values() for run in r.runs):
        sys.exit(1)


if __name__ == "__main__":
    main()
