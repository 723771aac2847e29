"""What SRTP costs per packet: protect and unprotect of one 20 ms PCMU packet, and SRTCP.

Medians over repeated ``timeit`` runs, in microseconds per packet, for each suite's tag. A
call sends 50 packets a second and receives 50: 10 microseconds a packet each way is 60 ms of
CPU per call-minute. RTCP is one compound every few seconds and counts for nothing.

    python -m benchmarks.srtp [--repeat 7] [--number 20000]
"""

from __future__ import annotations

import argparse
import statistics
import struct
import timeit
from collections.abc import Callable

from intercom.media.rtcp import build_compound, build_receiver_report, build_sdes
from intercom.media.sdes import SUITES
from intercom.media.srtp import SrtpContext

SALT = bytes(range(16, 30))


def packets(count: int) -> list[bytes]:
    return [struct.pack("!BBHII", 0x80, 0, n & 0xFFFF, n * 160, 0x1234) + b"\x55" * 160
            for n in range(count)]  # fmt: skip


def _timed(step: Callable[[bytes], object], inputs: list[bytes]) -> float:
    """Seconds for ``step`` over every input once (a fresh context each run: no replays)."""
    feed = iter(inputs)
    return timeit.timeit(lambda: step(next(feed)), number=len(inputs))


def measure(suite_name: str, number: int, repeat: int) -> tuple[float, float, float]:
    suite = SUITES[suite_name]
    key = bytes(range(suite.key_length))
    plain = packets(number)
    sender = SrtpContext(suite, key, SALT)
    protected = [sender.protect_rtp(p) for p in plain]
    protect_times = [
        _timed(SrtpContext(suite, key, SALT).protect_rtp, plain) for _ in range(repeat)
    ]
    unprotect_times = [
        _timed(SrtpContext(suite, key, SALT).unprotect_rtp, protected) for _ in range(repeat)
    ]
    report = build_compound(build_receiver_report(0x1234, []), build_sdes(0x1234, "door@i"))
    rtcp = SrtpContext(suite, key, SALT)
    rtcp_time = statistics.median(
        timeit.repeat(lambda: rtcp.protect_rtcp(report), number=1000, repeat=repeat)
    )
    return (statistics.median(protect_times) / number * 1e6,
            statistics.median(unprotect_times) / number * 1e6, rtcp_time / 1000 * 1e6)  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--number", type=int, default=20000)
    args = parser.parse_args()
    print("suite                    protect us  unprotect us  SRTCP us  CPU ms/call-minute")
    for name in ("AES_CM_128_HMAC_SHA1_80", "AES_CM_128_HMAC_SHA1_32", "AES_256_CM_HMAC_SHA1_80"):
        protect, unprotect, rtcp = measure(name, args.number, args.repeat)
        per_minute = (protect + unprotect) * 50 * 60 / 1000
        print(f"{name:24} {protect:10.2f}  {unprotect:12.2f}  {rtcp:8.2f}  {per_minute:18.0f}")


if __name__ == "__main__":
    main()
