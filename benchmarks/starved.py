"""A call on a starved CPU, as on a Pi Zero 2: the smallest CPU quota at which it stays clean.

``intercom run`` (mock GPIO, ``wav:`` audio) calls a baresip callee on loopback that plays a
known signal and records what it decodes. Once the daemon is up, it is moved alone into a
cgroup with a CPU quota (cgroup v1 ``cpu.cfs_quota_us``/``cpu.cfs_period_us``, or v2
``cpu.max``; root is needed), and the button is pressed: the whole call runs starved. The quota
steps down (50 %, 25 %, 12 %, 6 %, 3 %, 2 %, 1 % of one core by default) until a call breaks.

A call is clean when

* the RTP the door sends, read outside the process (a packet socket on ``lo``), has no gap:
  no missing sequence number and no timestamp jump (frames the door skipped after a stall).
  A stall (an interval between two packets above 60 ms, three frames) followed by a burst of
  the frames due is printed but only breaks the call with ``--max-stall-ms``: the audio is all
  there, and the correlation below shows whether the peer's jitter buffer absorbed it;
* the audio both ways is the source: the local correlation of
  ``tests/integration/audio_compare.py`` (every half-second window at its own lag) of what
  baresip decoded against the door's WAV, and of what the door recorded against baresip's, is
  at least ``--min-correlation`` (0.99: one concealed frame inside a burst already costs more).

Printed: one line per call (quota, RTP figures, correlations, the door's own figures), then
for each codec the smallest clean quota. ::

    python -m benchmarks.starved                          # G722 and PCMU, 10 s calls
    python -m benchmarks.starved --codecs PCMU --quotas 6,3,2 --seconds 5 --repeat 2

``run(args)`` returns the summary lines, for ``benchmarks.side_by_side``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from benchmarks.capture import Capture, rtp_numbers

FRAME_S = 0.020
DEFAULT_QUOTAS = (50.0, 25.0, 12.0, 6.0, 3.0, 2.0, 1.0)
"""Per cent of one core, stepped down."""
TICKS_PER_FRAME = {"PCMU": 160, "PCMA": 160, "G722": 160}
"""RTP timestamp step per 20 ms frame (G.722's RTP clock is 8000 Hz, RFC 3551)."""
SIGNAL_RATE = {"PCMU": 8000, "PCMA": 8000, "G722": 16000}
SETTLE_S = 1.0
"""The first second of each recording is not judged (prefetch, first packets)."""
GAPS_SHOWN = 5
"""Gaps whose times a report lists."""
_RTP_PORTS = "47000-47999"
"""The door's RTP ports: the capture knows the door's packets by them."""


# -- pure parts -------------------------------------------------------------------------------


def quota_us(percent: float, period_us: int) -> int:
    """The CFS quota for ``percent`` of one core per period (the kernel's minimum is 1 ms)."""
    if percent <= 0 or period_us <= 0:
        raise ValueError(f"need a positive share and period, not {percent} % of {period_us} us")
    return max(1000, round(period_us * percent / 100))


def parse_quotas(text: str) -> tuple[float, ...]:
    """``"50,25,12"`` -> (50.0, 25.0, 12.0), highest first."""
    values = tuple(sorted({float(part) for part in text.split(",") if part.strip()}, reverse=True))
    if not values or values[-1] <= 0 or values[0] > 100 * (os.cpu_count() or 1):
        raise argparse.ArgumentTypeError(f"quotas must be positive per cents: {text!r}")
    return values


@dataclass(frozen=True, slots=True)
class RtpReport:
    """The door's sent RTP as the capture saw it."""

    packets: int
    missing: int  # sequence numbers never seen
    skipped_frames: int  # timestamp advanced by more than one frame per sequence number
    stalls: int  # intervals above the stall threshold
    max_interval_ms: float
    p99_dev_ms: float  # 99th percentile of |interval - 20 ms|
    gaps_at: tuple[float, ...] = ()  # seconds after the first packet: the first gaps or stalls

    @property
    def gaps(self) -> int:
        """Frames missing from the stream."""
        return self.missing + self.skipped_frames


def analyse_rtp(
    packets: Sequence[tuple[float, int, int]], frame_ticks: int, stall_s: float = 0.060
) -> RtpReport:
    """``packets``: (arrival seconds, sequence, timestamp) in arrival order, one stream.

    Sequence numbers and timestamps wrap (16 and 32 bits). RFC 4733 events share the sequence
    space and hold their timestamp: they count neither as missing nor as skipped.
    """
    if not packets:
        return RtpReport(0, 0, 0, 0, 0.0, 0.0)
    missing = skipped = long = 0
    deviations: list[float] = []
    max_interval = 0.0
    gaps_at: list[float] = []
    first_at, last_seq, last_ts = packets[0]
    last_at = first_at
    for at, seq, ts in packets[1:]:
        step = (seq - last_seq) & 0xFFFF
        if step == 0 or step >= 0x8000:
            continue  # a duplicate or a reordered packet: not the stream's progress
        events = missing + skipped + long
        missing += step - 1
        advance = (ts - last_ts) & 0xFFFFFFFF
        if advance < 0x80000000 and advance > step * frame_ticks:
            skipped += (advance - step * frame_ticks) // frame_ticks
        interval = at - last_at
        deviations.append(abs(interval - FRAME_S))
        max_interval = max(max_interval, interval)
        if interval > stall_s:
            long += 1
        if missing + skipped + long > events and len(gaps_at) < GAPS_SHOWN:
            gaps_at.append(round(at - first_at, 2))
        last_at, last_seq, last_ts = at, seq, ts
    deviations.sort()
    p99 = deviations[min(len(deviations) - 1, int(0.99 * len(deviations)))] if deviations else 0.0
    return RtpReport(
        len(packets), missing, skipped, long, max_interval * 1000, p99 * 1000, tuple(gaps_at)
    )


@dataclass(frozen=True, slots=True)
class CallResult:
    codec: str
    percent: float
    rtp: RtpReport
    to_phone: float  # local correlation of what baresip decoded with the door's WAV
    to_door: float  # ... of what the door recorded with baresip's WAV
    door: str  # the door's own figures of the call (status), one line
    error: str = ""

    def clean(self, min_correlation: float, max_stall_ms: float | None = None) -> bool:
        return (
            not self.error
            and self.rtp.packets > 0
            and self.rtp.gaps == 0
            and (max_stall_ms is None or self.rtp.max_interval_ms <= max_stall_ms)
            and min(self.to_phone, self.to_door) >= min_correlation
        )

    def line(self, min_correlation: float, max_stall_ms: float | None = None) -> str:
        verdict = "clean" if self.clean(min_correlation, max_stall_ms) else "BROKEN"
        if self.error:
            return f"{self.codec} {self.percent:5.1f} %: {verdict}: {self.error}"
        r = self.rtp
        return (
            f"{self.codec} {self.percent:5.1f} %: {verdict}; sent RTP {r.packets} packets, "
            f"missing {r.missing}, skipped frames {r.skipped_frames}, stalls over 60 ms "
            f"{r.stalls}{_at(r.gaps_at)}, max {r.max_interval_ms:.1f} ms, "
            f"p99 |dev| {r.p99_dev_ms:.2f} ms;"
            f" correlation door->phone {self.to_phone:.4f}, phone->door {self.to_door:.4f}; "
            f"door: {self.door}"
        )


def _at(times: Sequence[float]) -> str:
    return f" (at {', '.join(f'{t:g}' for t in times)} s)" if times else ""


def smallest_clean(
    results: Sequence[CallResult], min_correlation: float, max_stall_ms: float | None = None
) -> float | None:
    """The lowest quota above every broken call (all its calls clean), or None."""
    broken = [r.percent for r in results if not r.clean(min_correlation, max_stall_ms)]
    floor = max(broken, default=0.0)
    return min((r.percent for r in results if r.percent > floor), default=None)


# -- the cgroup -------------------------------------------------------------------------------


class CpuQuota:
    """A cgroup of its own with a CPU quota (v1 cpu controller or v2 ``cpu.max``)."""

    def __init__(self, period_us: int, root: Path = Path("/sys/fs/cgroup")) -> None:
        self.period_us = period_us
        name = f"intercom-starved-{os.getpid()}"
        if (root / "cpu" / "cpu.cfs_quota_us").exists():
            self.version = 1
            self.parent = root / "cpu"
        elif (root / "cgroup.controllers").exists():
            self.version = 2
            self.parent = root
            control = root / "cgroup.subtree_control"
            if "cpu" not in control.read_text().split():
                control.write_text("+cpu")
        else:
            raise RuntimeError(f"no cgroup cpu controller under {root} (v1 cpu/ or v2)")
        self.path = self.parent / name
        self.path.mkdir(exist_ok=True)
        if self.version == 1:
            (self.path / "cpu.cfs_period_us").write_text(str(period_us))

    def set(self, percent: float) -> None:
        quota = quota_us(percent, self.period_us)
        if self.version == 1:
            (self.path / "cpu.cfs_quota_us").write_text(str(quota))
        else:
            (self.path / "cpu.max").write_text(f"{quota} {self.period_us}")

    def add(self, pid: int) -> None:
        (self.path / "cgroup.procs").write_text(str(pid))

    def throttled_s(self) -> float:
        """Time the group spent throttled so far (cpu.stat)."""
        for line in (self.path / "cpu.stat").read_text().splitlines():
            key, _, value = line.partition(" ")
            if key == "throttled_time":  # v1, ns
                return int(value) / 1e9
            if key == "throttled_usec":  # v2
                return int(value) / 1e6
        return 0.0

    def remove(self) -> None:
        with contextlib.suppress(OSError):
            for pid in (self.path / "cgroup.procs").read_text().split():
                with contextlib.suppress(OSError):
                    (self.parent / "cgroup.procs").write_text(pid)
            self.path.rmdir()


# -- one call ---------------------------------------------------------------------------------


async def _one_call(
    codec: str, percent: float, quota: CpuQuota, seconds: float, work: Path
) -> CallResult:
    from tests.integration.audio_compare import compare_wavs, make_test_wav
    from tests.integration.baresip_harness import BaresipPeer
    from tests.integration.daemon_process import DaemonProcess
    from tests.integration.peer_support import BOTH, claim_ports

    rate = SIGNAL_RATE[codec]
    work.mkdir(parents=True, exist_ok=True)
    door_wav, phone_wav, heard = work / "door.wav", work / "phone.wav", work / "door-heard.wav"
    talk = seconds + 30.0  # the WAVs outlast the call: baresip hangs up when its file ends
    make_test_wav(door_wav, rate, talk, "bursts", seed=101)
    make_test_wav(phone_wav, rate, talk, "bursts", seed=202)
    low, high = (int(p) for p in _RTP_PORTS.split("-"))
    async with BaresipPeer(
        phone_wav, user="bob", codecs=[codec], workdir=work / "phone", sip_trace=False
    ) as phone:
        settings = {
            "INTERCOM_CALL_TARGET": phone.sip_uri,
            "INTERCOM_SIP_BIND": f"127.0.0.1:{claim_ports([BOTH])}",
            "INTERCOM_RTP_PORTS": _RTP_PORTS,
            "INTERCOM_CODECS": codec,
            "INTERCOM_AUDIO_INPUT": f"wav:{door_wav}",
            "INTERCOM_AUDIO_OUTPUT": f"wav:{heard}",
            "INTERCOM_STATE_DIR": str(work / "state"),
            "INTERCOM_MAX_CALL_DURATION": str(round(seconds + 60)),
        }
        daemon = DaemonProcess(work, settings)
        await daemon.start(ready_timeout=30)
        try:
            assert daemon._proc is not None
            quota.set(percent)
            quota.add(daemon._proc.pid)
            throttled = quota.throttled_s()
            phone_low, phone_high = phone.rtp_ports
            door_ports, phone_ports = range(low, high + 1), range(phone_low, phone_high + 1)
            capture = Capture(ports=door_ports)
            capture.start()
            try:
                code, out, err = await daemon.cli("press")
                if code != 0:
                    return CallResult(codec, percent, analyse_rtp([], 160), 0, 0, "",
                                      f"press failed: {out}{err}")  # fmt: skip
                await phone.wait_event("CALL_ESTABLISHED", 10 + 2000 / percent)
                await asyncio.sleep(seconds)
                await phone.hangup()
                await phone.wait_event("CALL_CLOSED", 10)
                (recording,) = await phone.recordings(timeout=10)
                status = await daemon.until(
                    lambda s: s["call"]["state"] == "idle" and s.get("last_call") is not None,
                    10 + 2000 / percent,
                    "call ended",
                )
            finally:
                capture.stop()
                packets = rtp_numbers(capture.packets(), door_ports, phone_ports)
            throttled = quota.throttled_s() - throttled
        finally:
            await daemon.kill()
    last = status["last_call"]
    door = (
        f"sent {last.get('packets_sent')}, received {last.get('packets_received')}, "
        f"lost {last.get('packets_lost')}, jitter {last.get('jitter_ms')} ms; "
        f"throttled {throttled:.2f} s"
    )
    rtp = analyse_rtp(packets, TICKS_PER_FRAME[codec])
    to_phone = compare_wavs(door_wav, recording.received, skip_seconds=SETTLE_S)
    to_door = compare_wavs(phone.played, heard, skip_seconds=SETTLE_S)
    return CallResult(
        codec, percent, rtp, to_phone.local_correlation, to_door.local_correlation, door
    )


async def _sweep(args: argparse.Namespace, say: list[str]) -> list[str]:
    summary: list[str] = []
    quota = CpuQuota(round(args.period_ms * 1000))
    try:
        with tempfile.TemporaryDirectory(prefix="starved-") as tmp:
            root = Path(args.keep or tmp)
            for codec in args.codecs:
                results: list[CallResult] = []
                for percent in args.quotas:
                    broken = False
                    for attempt in range(args.repeat):
                        work = root / f"{codec}-{percent:g}-{attempt}"
                        try:
                            result = await _one_call(codec, percent, quota, args.seconds, work)
                        except (AssertionError, OSError, ValueError) as exc:
                            first = str(exc).strip().splitlines()[:1] or [type(exc).__name__]
                            result = CallResult(
                                codec, percent, analyse_rtp([], 160), 0, 0, "", first[0]
                            )
                        results.append(result)
                        _say(say, result.line(args.min_correlation, args.max_stall_ms))
                        broken = broken or not result.clean(args.min_correlation, args.max_stall_ms)
                    if broken and not args.all_quotas:
                        break
                best = smallest_clean(results, args.min_correlation, args.max_stall_ms)
                where = "none of the quotas tried" if best is None else f"{best:g} % of one core"
                summary.append(
                    f"starved CPU, {codec}: smallest clean quota {where} "
                    f"(period {args.period_ms:g} ms, {args.seconds:g} s calls, "
                    f"{args.repeat} per quota)"
                )
    finally:
        quota.remove()
    return summary


def _say(sink: list[str], line: str) -> None:
    sink.append(line)
    print(line, flush=True)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.starved", description=__doc__.split("\n")[0]
    )
    p.add_argument("--codecs", type=lambda s: s.upper().split(","), default=["G722", "PCMU"])
    p.add_argument(
        "--quotas",
        type=parse_quotas,
        default=DEFAULT_QUOTAS,
        help="per cents of one core, comma-separated (default 50,25,12,6,3,2,1)",
    )
    p.add_argument("--seconds", type=float, default=10.0, help="talk time per call")
    p.add_argument("--repeat", type=int, default=1, help="calls per quota; all must be clean")
    p.add_argument(
        "--period-ms",
        type=float,
        default=100.0,
        help="CFS period (systemd's CPUQuota= uses 100 ms)",
    )
    p.add_argument(
        "--max-stall-ms",
        type=float,
        default=None,
        help="a longer interval between two sent packets breaks the call too",
    )
    p.add_argument("--min-correlation", type=float, default=0.99)
    p.add_argument("--keep", metavar="DIR", help="keep WAVs, recordings and logs in DIR")
    p.add_argument("--all-quotas", action="store_true", help="go on below the first broken quota")
    return p  # fmt: skip


def run(args: argparse.Namespace) -> list[str]:
    """Sweep the quotas; print one line per call and return the summary lines."""
    unknown = set(args.codecs) - set(SIGNAL_RATE)
    if unknown:
        raise SystemExit(f"unknown codec(s) {sorted(unknown)}: use {sorted(SIGNAL_RATE)}")
    if os.geteuid() != 0:
        raise SystemExit("benchmarks.starved needs root (a cgroup and a packet socket on lo)")
    return asyncio.run(_sweep(args, []))


def main(argv: Sequence[str] | None = None) -> None:
    args = parser().parse_args(argv)
    for line in run(args):
        print(line)


if __name__ == "__main__":
    main(sys.argv[1:])
