"""Idle cost of a registered intercom: CPU seconds per registered hour and wake-ups per second.

``intercom run`` starts as a process with mock GPIO and registers at the demo PBX (a digest
registrar on loopback, :mod:`intercom.demo.pbx`). After a warm-up we read the process's CPU
time (the scheduler's per-thread nanosecond counters in /proc) and its context switches (each
voluntary switch is a sleep, so a polling loop shows up as a steady rate) over the measured
span, then stop it with SIGTERM.
The budget is under 0.6 CPU-s per registered hour with no polling: only timers (registration
refresh, the RFC 5626 CRLF keepalive every ~25 s, the systemd watchdog when enabled).

    python -m benchmarks.idle [--seconds 120] [--expires 600]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
import tempfile
from pathlib import Path

from intercom.demo.run import open_pbx
from intercom.sip.core import Address
from intercom.sip.message import Message, Request

ACCOUNTS = {"door": "benchmark-password"}
WARM_UP = 3.0


def _cpu_seconds(pid: int) -> float:
    """Time on a CPU over all threads, from the scheduler's nanosecond counters."""
    tasks = Path(f"/proc/{pid}/task").iterdir()
    return sum(int((task / "schedstat").read_text().split()[0]) for task in tasks) / 1e9


def _switches(pid: int) -> tuple[int, int, int]:
    """Voluntary switches over all threads, involuntary ones, and the thread count."""
    voluntary = involuntary = threads = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        threads += 1
        for line in (task / "status").read_text().splitlines():
            if line.startswith("voluntary_ctxt_switches"):
                voluntary += int(line.split()[1])
            elif line.startswith("nonvoluntary_ctxt_switches"):
                involuntary += int(line.split()[1])
    return voluntary, involuntary, threads


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS"):
            return int(line.split()[1]) / 1024
    return 0.0


async def _measure(seconds: float, expires: int) -> None:
    registers = 0

    def trace(source: Address, destination: Address, message: Message) -> None:
        nonlocal registers
        if isinstance(message, Request) and message.method == "REGISTER":
            registers += 1

    pbx, transport = await open_pbx(ACCOUNTS, trace)
    with tempfile.TemporaryDirectory(prefix="intercom-idle-") as tmp:
        env = {k: v for k, v in os.environ.items() if not k.startswith("INTERCOM_")}
        env.update({
            "INTERCOM_SIP_SERVER": f"{pbx.address.host}:{pbx.address.port}",
            "INTERCOM_SIP_USER": "door",
            "INTERCOM_SIP_PASSWORD": ACCOUNTS["door"],
            "INTERCOM_SIP_BIND": "127.0.0.1:0",
            "INTERCOM_SIP_EXPIRES": str(expires),
            "INTERCOM_CALL_TARGET": "family",
            "INTERCOM_GPIO": "mock",
            "INTERCOM_AUDIO_INPUT": "null",
            "INTERCOM_AUDIO_OUTPUT": "null",
            "INTERCOM_CONTROL_SOCKET": f"{tmp}/control.sock",
            "INTERCOM_LOG_LEVEL": "WARNING",
        })  # fmt: skip
        daemon = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "intercom", "run", env=env
        )
        try:
            await asyncio.sleep(WARM_UP)
            if "door" not in pbx.bindings:
                raise SystemExit("the intercom did not register at the demo PBX")
            pid = daemon.pid
            cpu0, (vol0, inv0, _) = _cpu_seconds(pid), _switches(pid)
            await asyncio.sleep(seconds)
            cpu1, (vol1, inv1, threads) = _cpu_seconds(pid), _switches(pid)
            rss = _rss_mib(pid)
        finally:
            daemon.send_signal(signal.SIGTERM)
            code = await asyncio.wait_for(daemon.wait(), 10)
            transport.close()
    cpu = cpu1 - cpu0
    print(f"measured {seconds:.0f} s registered (expires {expires} s) after {WARM_UP:.0f} s")
    print(f"CPU: {cpu:.4f} s -> {cpu * 3600 / seconds:.3f} CPU-s per registered hour (budget 0.6)")
    print(f"wake-ups: {(vol1 - vol0) / seconds:.2f}/s voluntary, "
          f"{(inv1 - inv0) / seconds:.2f}/s involuntary, over {threads} threads")  # fmt: skip
    print(f"memory: {rss:.1f} MiB resident; REGISTERs received by the PBX in all: "
          f"{registers}; exit code {code}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=120.0)
    parser.add_argument("--expires", type=int, default=600)
    args = parser.parse_args()
    asyncio.run(_measure(args.seconds, args.expires))


if __name__ == "__main__":
    main()
