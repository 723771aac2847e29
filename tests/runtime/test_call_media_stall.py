"""A stalled media clock catches up: every frame due is sent and played, up to MAX_CATCH_UP.

A starved CPU (a CPU quota's throttled 100 ms period, a slow board's busy moment) makes a tick
late; the frames due meanwhile go out in one burst with consecutive timestamps, and the speaker
gets as many frames, so neither side of the call loses audio. Ticks are driven by hand with
exact times: no thread, no sleep.
"""

from __future__ import annotations

import itertools
import random
import struct

from intercom.hw.audio_files import NullSink, ToneSource
from intercom.media.stream import MediaStream
from intercom.runtime.call_media import FRAME, MAX_CATCH_UP, CallMedia

from ..media.test_stream import media as negotiated


class FakeSockets:
    """Records what is sent; nothing arrives."""

    def __init__(self) -> None:
        self.rtp: list[bytes] = []

    def drain(self, on_rtp: object, on_rtcp: object, now: float) -> None:
        pass

    def send_rtp(self, packet: bytes, destination: object) -> None:
        self.rtp.append(packet)

    def send_rtcp(self, packet: bytes, destination: object) -> None:
        pass

    def close(self) -> None:
        pass


def _call() -> tuple[CallMedia, FakeSockets, NullSink]:
    media = negotiated("PCMU", ("127.0.0.1", 40000))
    sockets = FakeSockets()
    sink = NullSink(8000)
    call = CallMedia(
        sockets,  # type: ignore[arg-type]
        MediaStream(media, rng=random.Random(1), cname="stall@test"),
        lambda rate: (ToneSource(440.0, rate), sink),
        on_digit=lambda digit: None,
        on_timeout=lambda: None,
    )
    call._open_devices()
    call.stream.start(0.0)
    return call, sockets, sink


def _timestamps(packets: list[bytes]) -> list[int]:
    return [struct.unpack_from("!I", p, 4)[0] for p in packets]


def test_a_stall_of_150_ms_sends_and_plays_every_frame_due() -> None:
    call, sockets, sink = _call()
    assert call._tick(0.0)  # frame 0 on time
    assert call._tick(0.150 + 0.001)  # the thread slept through 7 ticks
    stamps = _timestamps(sockets.rtp)
    assert len(stamps) == 8 == int(0.151 / FRAME) + 1
    assert [b - a for a, b in itertools.pairwise(stamps)] == [160] * 7  # no skip
    assert sink.stats()["frames"] == 8  # the speaker kept up too
    assert call.stream.skipped == 0


def test_a_stall_longer_than_the_catch_up_skips_the_backlog() -> None:
    call, sockets, _ = _call()
    assert call._tick(0.0)
    late = (MAX_CATCH_UP + 5) * FRAME + 0.001
    assert call._tick(late)
    stamps = _timestamps(sockets.rtp)
    assert len(stamps) == 2  # the backlog is not sent as a burst...
    assert stamps[1] - stamps[0] == (MAX_CATCH_UP + 5) * 160  # ...but its time passes
    assert call.stream.skipped == MAX_CATCH_UP + 4
