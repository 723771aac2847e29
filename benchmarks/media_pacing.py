"""RTP pacing and CPU cost of one call's media, measured on loopback.

Our CallMedia streams to a reflector in another process, which timestamps every packet on
arrival and sends it straight back, so our process does a full-duplex call's work: read the
microphone (a tone), encode, send, receive, jitter-buffer, decode, play (null sink), RTCP.

Printed: the packet interval statistics seen by the reflector (mean, standard deviation, 99th
percentile and maximum of |interval - 20 ms|), the drift of the stream (arrival time of the last
packet against start + n x 20 ms), our CPU seconds per call-minute after a second of warm-up,
and our memory before and after. On Linux also how that CPU splits between the call's media
thread and the rest of the process (the event loop should sleep through the call) and how often
each wakes: the media thread once per 20 ms tick, the rest not at all.

    python -m benchmarks.media_pacing [--seconds 60] [--codec PCMU]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import resource
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from intercom.hw.audio import open_sink, open_source
from intercom.media.codecs import CODECS
from intercom.media.offer_answer import NegotiatedMedia
from intercom.media.stream import MediaStream, StreamStats
from intercom.runtime.call_media import CallMedia
from intercom.runtime.rtp_socket import RtpSockets

FRAME_MS = 20.0
WARM_UP = 1.0


@dataclass(frozen=True)
class PacingReport:
    codec: str
    seconds: float
    packets: int
    mean_ms: float
    std_ms: float
    p99_dev_ms: float
    max_dev_ms: float
    drift_ms: float
    cpu_per_minute: float
    threads: ThreadFigures | None
    rss_before_kb: int
    rss_after_kb: int
    stats: StreamStats

    def lines(self) -> list[str]:
        return [
            f"codec {self.codec}, {self.seconds:.0f} s, {self.packets} packets at the reflector",
            f"interval mean {self.mean_ms:.3f} ms, std {self.std_ms:.3f} ms, "
            f"p99 |dev| {self.p99_dev_ms:.3f} ms, max |dev| {self.max_dev_ms:.3f} ms",
            f"drift over the stream {self.drift_ms:+.3f} ms",
            f"CPU {self.cpu_per_minute:.3f} s per call-minute (full duplex, one process)",
            *([] if self.threads is None else self.threads.lines(self.seconds)),
            f"max RSS {self.rss_before_kb} KiB before, {self.rss_after_kb} KiB after",
            f"received {self.stats.packets_received}, lost {self.stats.packets_lost}, "
            f"late {self.stats.late}, concealed {self.stats.concealed}, "
            f"jitter {self.stats.jitter_ms} ms",
        ]


@dataclass(frozen=True)
class ThreadFigures:
    """On-CPU seconds and voluntary wake-ups of the media thread and of the other threads."""

    media_cpu: float
    media_wakeups: int
    other_cpu: float
    other_wakeups: int

    def lines(self, seconds: float) -> list[str]:
        ticks = seconds * 1000.0 / FRAME_MS
        return [
            f"  media thread {self.media_cpu * 60.0 / seconds:.3f} s per call-minute, "
            f"{self.media_wakeups / ticks:.2f} wake-ups per tick",
            f"  other threads {self.other_cpu * 60.0 / seconds:.3f} s per call-minute, "
            f"{self.other_wakeups / seconds:.2f} wake-ups per second",
        ]


def _media_thread_id() -> int | None:
    """The kernel's id of the call's media thread (CallMedia names it "intercom-media")."""
    return next((t.native_id for t in threading.enumerate() if t.name == "intercom-media"), None)


def _thread_counters() -> dict[int, tuple[float, int]] | None:
    """Per thread of this process: on-CPU seconds and voluntary context switches (Linux)."""
    counters: dict[int, tuple[float, int]] = {}
    try:
        for task in Path("/proc/self/task").iterdir():
            on_cpu = int((task / "schedstat").read_text().split()[0]) / 1e9
            status = (task / "status").read_text()
            switches = int(status.split("voluntary_ctxt_switches:")[1].split()[0])
            counters[int(task.name)] = (on_cpu, switches)
    except (OSError, IndexError, ValueError):
        return None
    return counters


def _thread_figures(
    before: dict[int, tuple[float, int]] | None,
    after: dict[int, tuple[float, int]] | None,
    media_thread: int | None,
) -> ThreadFigures | None:
    if before is None or after is None or media_thread not in after:
        return None
    media = other = (0.0, 0)
    for tid, (on_cpu, switches) in after.items():
        start_cpu, start_switches = before.get(tid, (0.0, 0))
        delta = (on_cpu - start_cpu, switches - start_switches)
        if tid == media_thread:
            media = delta
        else:
            other = (other[0] + delta[0], other[1] + delta[1])
    return ThreadFigures(media[0], media[1], other[0], other[1])


def _reflector() -> None:
    """Child process: echo every datagram, note RTP arrival times, print them when told to."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    print(sock.getsockname()[1], flush=True)
    arrivals: list[int] = []
    while True:
        data, source = sock.recvfrom(2048)
        if data == b"stop":
            break
        if not 200 <= data[1] <= 204:  # RTP, not RTCP (RFC 5761 §4)
            arrivals.append(time.monotonic_ns())
        sock.sendto(data, source)
    sys.stdout.write(json.dumps(arrivals) + "\n")


async def measure(seconds: float, codec: str = "PCMU") -> PacingReport:
    """Stream for ``seconds`` through the reflector and measure."""
    reflector = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.media_pacing", "--reflector"],
        cwd=Path(__file__).resolve().parent.parent,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert reflector.stdout is not None
        port = int(reflector.stdout.readline())
        rng = random.Random(1)
        info = CODECS[codec]
        media = NegotiatedMedia(
            codec=codec,
            payload_type=info.payload_type,
            remote_address="127.0.0.1",
            remote_port=port,
            remote_rtcp_port=port,
            dtmf_payload_type=101,
            dtmf_clock_rate=8000,
            direction="sendrecv",
            ptime=20,
            receive_payload_type=info.payload_type,
            receive_dtmf_payload_type=101,
        )
        sockets = RtpSockets("127.0.0.1", (30000, 39999), rng)
        stream = MediaStream(media, rng=rng, cname="bench@intercom")
        call = CallMedia(
            sockets,
            stream,
            lambda rate: (open_source("tone:440", rate), open_sink("null", rate)),
            on_digit=lambda digit: None,
            on_timeout=lambda: None,
        )
        loop = asyncio.get_running_loop()
        call.start(loop)
        await asyncio.sleep(WARM_UP)  # devices opened, modules imported, buffers settled
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        threads_before = _thread_counters()
        cpu_start = time.process_time()
        await asyncio.sleep(seconds)
        cpu = time.process_time() - cpu_start
        threads_after = _thread_counters()
        media_thread = _media_thread_id()
        stats = call.close()
        rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as stop:
            stop.sendto(b"stop", ("127.0.0.1", port))
        out, _ = reflector.communicate(timeout=10)
    finally:
        if reflector.poll() is None:
            reflector.kill()
            reflector.wait()
    import numpy as np  # after the call: the figures of a G.711 call's memory are without it

    arrivals = np.array(json.loads(out), dtype=np.float64) / 1e6
    intervals = np.diff(arrivals)
    deviation = np.abs(intervals - FRAME_MS)
    expected_last = arrivals[0] + FRAME_MS * len(intervals)
    return PacingReport(
        codec=codec,
        seconds=seconds,
        packets=len(arrivals),
        mean_ms=float(intervals.mean()),
        std_ms=float(intervals.std()),
        p99_dev_ms=float(np.percentile(deviation, 99)),
        max_dev_ms=float(deviation.max()),
        drift_ms=float(arrivals[-1] - expected_last),
        cpu_per_minute=cpu * 60.0 / seconds,
        threads=_thread_figures(threads_before, threads_after, media_thread),
        rss_before_kb=rss_before,
        rss_after_kb=rss_after,
        stats=stats,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--codec", default="PCMU", choices=sorted(CODECS))
    parser.add_argument("--reflector", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.reflector:
        _reflector()
        return
    report = asyncio.run(measure(args.seconds, args.codec))
    print("\n".join(report.lines()))


if __name__ == "__main__":
    main()
