"""What a flood of strangers' INVITEs costs the door: refused INVITEs per CPU-second.

Two measurements, both of INVITEs from 50 addresses none of which is trusted, each source
within the per-source rate limit (20/s), so that every INVITE is refused with a stateless 403
(intercom/sip/gate.py) and none is merely dropped:

* **endpoint**: the sans-IO :class:`~intercom.sip.endpoint.Endpoint` alone, fed pre-built
  INVITEs with an injected clock advancing 1 ms per message (1000/s); the process's CPU time
  over ``receive`` plus ``datagrams_to_send``. This is the gate's own cost, without sockets.
* **daemon**: ``intercom run`` as a process (mock GPIO, no server, log level INFO) on loopback,
  flooded by :class:`Flooder` (50 UDP sockets bound to 127.0.1.1 to 127.0.1.50, pre-built
  INVITEs paced by the monotonic clock) at ``--rate`` INVITEs per second for ``--seconds``; the
  daemon's CPU time over all its threads (the scheduler's nanosecond counters in /proc), the
  403s the flooders got back, and the lines the daemon logged.

Printed: INVITEs refused per CPU-second and microseconds per refusal for each, the share
answered and the daemon's log lines. Measured on the 2-core development machine (shared with
other work, so the spread is wide): the endpoint alone refuses 70,000 to 110,000 INVITEs per
CPU-second (9 to 15 us each: the light scan and the 403 built as text); the daemon 8,600 to
17,700 (57 to 115 us each, asyncio's datagram path and the two system calls included), all
5000 of a 5 s flood answered and 46 log lines in all. A flood of 1000/s thus takes 6 to 12 %
of one core, so the asyncio datagram path is kept rather than reading the socket
ourselves. Before the gate, each such INVITE held a server transaction retransmitting its
403 for 32 s: the loop fell behind and a press of the button did not connect.

With ``--responses``, another measurement instead: **stray responses**. The endpoint alone,
during a call of its own, is fed responses carrying that call's Call-ID with branches of the
sprayer's guessing (a 183 with SDP, a 200), from the 50 addresses (each dropped by the gate
before any parsing, counted and logged once per source) and, for comparison, the same from the
trusted server (parsed in full, then dropped as stray by the endpoint); printed: responses
dropped per CPU-second each way. Measured on the development machine: 195,000 to 220,000 per
CPU-second unparsed (4.5 to 5 us each) against 7,200 to 8,200 parsed (120 to 140 us each), the
cost every stray response had before the gate looked at responses.

    python -m benchmarks.flood [--count 20000] [--seconds 5] [--rate 1000] [--no-daemon]
        [--variant plain|folded|lf|lowercase]
    python -m benchmarks.flood --responses [--count 20000]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import random
import selectors
import signal
import socket
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from intercom.sip.core import Address
from intercom.sip.endpoint import Endpoint, EndpointConfig
from intercom.sip.uri import SipUri

SOURCES = tuple(f"127.0.1.{n}" for n in range(1, 51))
"""The flooders' addresses: loopback answers all of 127/8, so each is a host of its own."""
TRUSTED = "192.0.2.5"  # the endpoint's only trusted source (the SIP server)


VARIANTS = ("plain", "folded", "lf", "lowercase")
"""How :func:`invite` writes the INVITE: as scanners do; with a folded header line (RFC 3261
§7.3.1); with bare LF line ends; with ``sip/2.0`` in lower case in its request line. The
parser accepts all four, so the gate must refuse all four as cheaply."""


def invite(
    source: str, port: int, n: int, target: str = "127.0.0.1:5060", variant: str = "plain"
) -> bytes:
    """A stranger's INVITE number ``n`` with an SDP offer, as a scanner or a toll fraudster
    sends it: its own Call-ID, branch and From tag; written as ``variant`` says."""
    body = (
        f"v=0\r\no=- {n} 1 IN IP4 {source}\r\ns=-\r\nc=IN IP4 {source}\r\nt=0 0\r\n"
        "m=audio 4000 RTP/AVP 0 8\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n"
    )
    head = (
        f"INVITE sip:door@{target} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP {source}:{port};branch=z9hG4bKflood{n};rport\r\n"
        f'From: "Front door" <sip:100@{source}>;tag=fl{n}\r\n'
        f"To: <sip:door@{target}>\r\nCall-ID: flood-{n}@{source}\r\nCSeq: 1 INVITE\r\n"
        f"Contact: <sip:100@{source}:{port}>\r\nMax-Forwards: 70\r\n"
        f"User-Agent: friendly-scanner\r\nContent-Type: application/sdp\r\n"
        f"Content-Length: {len(body)}\r\n"
    )
    blank = "\r\n"
    if variant == "folded":
        head += "Subject: hi\r\n there\r\n"
    elif variant == "lf":
        head, blank = head.replace("\r\n", "\n"), "\n"
    elif variant == "lowercase":
        head = head.replace(" SIP/2.0\r\n", " sip/2.0\r\n", 1)
    elif variant != "plain":
        raise ValueError(f"no INVITE variant {variant!r}: one of {', '.join(VARIANTS)}")
    return f"{head}{blank}{body}".encode()


# -- the sans-IO endpoint alone --------------------------------------------------------------


@dataclass(slots=True)
class EndpointFigures:
    invites: int
    refused: int
    cpu_seconds: float
    variant: str = "plain"

    def lines(self) -> list[str]:
        per_second = self.refused / self.cpu_seconds if self.cpu_seconds else float("inf")
        return [
            f"endpoint: {self.refused} of {self.invites} {self.variant} INVITEs refused with 403"
            f" in {self.cpu_seconds:.3f} CPU-s: {per_second:,.0f} refused per CPU-second "
            f"({1e6 / per_second:.1f} us each)"
        ]


def measure_endpoint(count: int, variant: str = "plain") -> EndpointFigures:
    """``count`` INVITEs (written as ``variant`` says) from the 50 sources at 1000/s of
    injected time."""
    endpoint = Endpoint(
        EndpointConfig(local_host="127.0.0.1", local_port=5060, user="door"),
        rng=random.Random(1),
        answer_offer=lambda call_id, offer: None,
        is_trusted_source=lambda host: host == TRUSTED,
    )
    messages = [
        (
            invite(SOURCES[n % len(SOURCES)], 5070, n, variant=variant),
            Address("udp", SOURCES[n % 50], 5070),
        )
        for n in range(count)
    ]
    refused = 0
    started = time.process_time()
    for n, (data, source) in enumerate(messages):
        endpoint.receive(data, source, n * 0.001)
        for answer, _ in endpoint.datagrams_to_send():
            refused += answer.startswith(b"SIP/2.0 403 ")
    cpu = time.process_time() - started
    return EndpointFigures(count, refused, cpu, variant)


# -- stray responses at the endpoint alone ---------------------------------------------------


def stray_response(call_id: str, n: int, status: int = 200) -> bytes:
    """A forged response to the door's call ``call_id``: right Call-ID, a guessed branch and
    From-tag, the sprayer's own Contact and SDP."""
    body = "v=0\r\no=- 1 1 IN IP4 127.0.1.1\r\ns=-\r\nc=IN IP4 127.0.1.1\r\nt=0 0\r\n"
    return (
        f"SIP/2.0 {status} OK\r\n"
        f"Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKguess{n};rport=5060\r\n"
        f"From: <sip:door@127.0.0.1>;tag=guess{n}\r\nTo: <sip:family@127.0.0.1>;tag=m{n}\r\n"
        f"Call-ID: {call_id}\r\nCSeq: 1 INVITE\r\nContact: <sip:m@127.0.1.1:5070>\r\n"
        f"Content-Type: application/sdp\r\nContent-Length: {len(body)}\r\n\r\n{body}"
    ).encode()


@dataclass(slots=True)
class ResponseFigures:
    responses: int
    dropped: int  #: by the gate, unparsed
    cpu_seconds: float
    trusted_dropped: int  #: the same from the trusted server: parsed, then dropped as stray
    trusted_cpu_seconds: float

    def lines(self) -> list[str]:
        def rate(dropped: int, cpu: float) -> str:
            per_second = dropped / cpu if cpu else float("inf")
            return f"{per_second:,.0f} dropped per CPU-second ({1e6 / per_second:.1f} us each)"

        return [
            f"endpoint: {self.dropped} of {self.responses} stray responses from "
            f"{len(SOURCES)} addresses dropped unparsed in {self.cpu_seconds:.3f} CPU-s: "
            f"{rate(self.dropped, self.cpu_seconds)}",
            f"endpoint: the same from the trusted server (parsed): {self.trusted_dropped} in "
            f"{self.trusted_cpu_seconds:.3f} CPU-s: "
            f"{rate(self.trusted_dropped, self.trusted_cpu_seconds)}",
        ]


def measure_stray_responses(count: int) -> ResponseFigures:
    """``count`` stray responses (183 and 200 with SDP) to a ringing call of the door's, from
    the 50 sources and then from the trusted server, at 1000/s of injected time."""
    figures: list[tuple[int, float]] = []
    for trusted in (False, True):
        endpoint = Endpoint(
            EndpointConfig(local_host="127.0.0.1", local_port=5060, user="door"),
            rng=random.Random(1),
            answer_offer=lambda call_id, offer: None,
            is_trusted_source=lambda host: host == TRUSTED,
        )
        call = endpoint.call(SipUri("127.0.0.1", "family", 5062), None, 0.0)
        endpoint.datagrams_to_send()
        messages = [
            (stray_response(call.call_id, n, 183 if n % 2 else 200),
             Address("udp", TRUSTED if trusted else SOURCES[n % len(SOURCES)], 5070))
            for n in range(count)
        ]  # fmt: skip
        started = time.process_time()
        for n, (data, source) in enumerate(messages):
            endpoint.receive(data, source, 0.001 + n * 0.001)
            endpoint.datagrams_to_send()
        figures.append((endpoint.gate.log.stray_responses, time.process_time() - started))
        assert endpoint.next_event() is None, "a stray response reached the call"
    (dropped, cpu), (trusted_dropped, trusted_cpu) = figures
    return ResponseFigures(count, dropped, cpu, trusted_dropped, trusted_cpu)


# -- flooding a running daemon ---------------------------------------------------------------


@dataclass
class FloodResult:
    """What the flooders sent and got back, per source address."""

    sent: dict[str, int] = field(default_factory=dict)
    answered: dict[str, int] = field(default_factory=dict)  # 403s received
    other: int = 0  # any other datagram received
    late_sends: int = 0  # sends more than 50 ms behind their schedule (the flooder's own lag)

    @property
    def total_sent(self) -> int:
        return sum(self.sent.values())

    @property
    def total_answered(self) -> int:
        return sum(self.answered.values())


class Flooder:
    """UDP sockets bound to ``sources`` sending pre-built INVITEs (written as ``variant``
    says, :data:`VARIANTS`) to ``target`` at ``rate`` per second in all, round-robin, paced by
    the monotonic clock; :meth:`run` blocks (run it in a thread) and counts the 403s each
    socket gets back."""

    def __init__(
        self,
        target: tuple[str, int],
        *,
        sources: tuple[str, ...] = SOURCES,
        rate: float = 1000.0,
        seconds: float = 5.0,
        drain: float = 1.0,
        variant: str = "plain",
    ) -> None:
        self.target = target
        self.rate = rate
        self.seconds = seconds
        self.drain = drain
        self._stop = False
        self._sockets: list[tuple[str, socket.socket]] = []
        for host in sources:
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sock.bind((host, 0))
            sock.setblocking(False)
            self._sockets.append((host, sock))
        count = int(rate * seconds)
        where = f"{target[0]}:{target[1]}"
        self._messages = [
            (sock, invite(host, sock.getsockname()[1], n, where, variant))
            for n in range(count)
            for host, sock in [self._sockets[n % len(self._sockets)]]
        ]

    def stop(self) -> None:
        self._stop = True

    def run(self) -> FloodResult:
        result = FloodResult(
            sent={host: 0 for host, _ in self._sockets},
            answered={host: 0 for host, _ in self._sockets},
        )
        selector = selectors.DefaultSelector()
        for host, sock in self._sockets:
            selector.register(sock, selectors.EVENT_READ, host)
        interval = 1.0 / self.rate
        start = time.monotonic()
        index = 0
        total = len(self._messages)
        end = start + self.seconds + self.drain
        try:
            while not self._stop:
                now = time.monotonic()
                while index < total and start + index * interval <= now:
                    sock, data = self._messages[index]
                    if now - (start + index * interval) > 0.05:
                        result.late_sends += 1
                    try:
                        sock.sendto(data, self.target)
                        host = sock.getsockname()[0]
                        result.sent[host] += 1
                    except BlockingIOError:
                        pass
                    index += 1
                if index >= total and now >= end:
                    break
                wait = (start + index * interval - now) if index < total else (end - now)
                for key, _ in selector.select(max(0.0, min(wait, 0.05))):
                    reader = key.fileobj
                    assert isinstance(reader, socket.socket)
                    while True:
                        try:
                            data = reader.recv(4096)
                        except BlockingIOError:
                            break
                        if data.startswith(b"SIP/2.0 403 "):
                            result.answered[key.data] += 1
                        else:
                            result.other += 1
        finally:
            selector.close()
            for _, sock in self._sockets:
                sock.close()
        return result


def _cpu_seconds(pid: int) -> float:
    tasks = Path(f"/proc/{pid}/task").iterdir()
    return sum(int((task / "schedstat").read_text().split()[0]) for task in tasks) / 1e9


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass(frozen=True, slots=True)
class DaemonFigures:
    """What flooding ``intercom run`` measured."""

    seconds: float
    rate: float
    sent: int
    answered: int  #: INVITEs refused with 403
    other: int  #: other datagrams the flooders got back
    cpu_seconds: float  #: the daemon's, over all its threads
    log_lines: int
    exit_code: int
    late_sends: int
    variant: str = "plain"

    @property
    def refused_per_cpu_second(self) -> float:
        return self.answered / self.cpu_seconds if self.cpu_seconds else float("inf")

    def lines(self) -> list[str]:
        per_second = self.refused_per_cpu_second
        return [
            f"daemon: {self.sent} {self.variant} INVITEs sent in {self.seconds:.0f} s "
            f"({self.rate:.0f}/s from {len(SOURCES)} addresses), {self.answered} refused with 403 "
            f"({100 * self.answered / max(1, self.sent):.1f} %), {self.other} other answers",
            f"daemon: {self.cpu_seconds:.3f} CPU-s: {per_second:,.0f} refused per CPU-second "
            f"({1e6 / max(per_second, 1e-9):.0f} us each), "
            f"{self.cpu_seconds / self.seconds * 100:.0f} % of a core",
            f"daemon: {self.log_lines} log lines in all; exit code {self.exit_code}; flooder "
            f"late sends {self.late_sends}",
        ]


async def measure_daemon(seconds: float, rate: float, variant: str = "plain") -> DaemonFigures:
    port = _free_port()
    with tempfile.TemporaryDirectory(prefix="intercom-flood-") as tmp:
        env = {k: v for k, v in os.environ.items() if not k.startswith("INTERCOM_")}
        env.update({
            "INTERCOM_SIP_BIND": f"127.0.0.1:{port}",
            "INTERCOM_CALL_TARGET": "sip:family@127.0.0.1:9",
            "INTERCOM_GPIO": "mock",
            "INTERCOM_AUDIO_INPUT": "null",
            "INTERCOM_AUDIO_OUTPUT": "null",
            "INTERCOM_CONTROL_SOCKET": f"{tmp}/control.sock",
            "INTERCOM_LOG_LEVEL": "INFO",
        })  # fmt: skip
        log_path = Path(tmp) / "intercom.log"
        with open(log_path, "wb") as log:
            daemon = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "intercom", "run", env=env, stdout=log, stderr=log
            )
        try:
            for _ in range(200):
                if Path(f"{tmp}/control.sock").exists():
                    break
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.5)
            flooder = Flooder(
                ("127.0.0.1", port), rate=rate, seconds=seconds, drain=0.5, variant=variant
            )
            cpu0 = _cpu_seconds(daemon.pid)
            result = await asyncio.to_thread(flooder.run)
            cpu = _cpu_seconds(daemon.pid) - cpu0
        finally:
            daemon.send_signal(signal.SIGTERM)
            code = await asyncio.wait_for(daemon.wait(), 10)
        lines = log_path.read_text(errors="replace").splitlines()
    return DaemonFigures(
        seconds=seconds,
        rate=rate,
        sent=result.total_sent,
        answered=result.total_answered,
        other=result.other,
        cpu_seconds=cpu,
        log_lines=len(lines),
        exit_code=code,
        late_sends=result.late_sends,
        variant=variant,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=20000, help="INVITEs for the endpoint")
    parser.add_argument("--seconds", type=float, default=5.0, help="flood of the daemon")
    parser.add_argument("--rate", type=float, default=1000.0, help="INVITEs/s at the daemon")
    parser.add_argument("--no-daemon", action="store_true", help="the endpoint only")
    parser.add_argument(
        "--variant", choices=VARIANTS, default="plain", help="how the INVITEs are written"
    )
    parser.add_argument("--responses", action="store_true", help="stray responses instead")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)  # the endpoint's first-sight lines: not figures
    if args.responses:
        print("\n".join(measure_stray_responses(args.count).lines()))
        return
    print("\n".join(measure_endpoint(args.count, args.variant).lines()))
    if not args.no_daemon:
        figures = asyncio.run(measure_daemon(args.seconds, args.rate, args.variant))
        print("\n".join(figures.lines()))


if __name__ == "__main__":
    main()
