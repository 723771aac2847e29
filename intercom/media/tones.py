"""Call-progress tones the door plays to the visitor: ringback, busy, error, door opened.

A visitor at the door hears what a caller hears on a phone: a ringback while the family's
phones ring (ITU-T E.180 / the common European 425 Hz, 1 s on, 4 s off), a busy tone when the
call is refused (425 Hz, 0.5 s on, 0.5 s off, three times), a special information tone when the
call fails (ITU-T E.180's 950 / 1400 / 1800 Hz sequence), and two short high beeps when the door
opens. Each tone is a cadence: (frequency or 0 for silence, milliseconds) steps, optionally
repeated; :class:`TonePlayer` renders it frame by frame at the device's rate, the phase
continuous across frames, with 5 ms ramps at each edge so nothing clicks.

Frames are bytes (:mod:`intercom.media.pcm`). A step is rendered sample by sample in Python
(a few milliseconds for the longest, a second of ringback at 16 kHz) once per process and
rate, then cut into frames, and a silent step plays one shared frame of silence. :func:`mix`
adds a cue to the call's audio with ``map`` in C and clips per sample only when the sum leaves
16 bits: about 15 microseconds a frame, and only while a cue plays.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from operator import add

from intercom.feedback import Tone
from intercom.media.pcm import FRAME_MS, Pcm, frame_samples, from_samples, samples, silence

AMPLITUDE = 0.25 * 32767  # -12 dBFS: audible at a door, far from clipping
RAMP_MS = 5


@dataclass(frozen=True, slots=True)
class Cadence:
    steps: tuple[tuple[float, int], ...]  # (Hz, 0 = silence; duration ms, a multiple of 20)
    repeat: bool  # loop until stopped, else play once


TONES: dict[Tone, Cadence] = {
    Tone.RINGBACK: Cadence(((425, 1000), (0, 4000)), repeat=True),
    Tone.BUSY: Cadence(((425, 500), (0, 500)) * 3, repeat=False),
    Tone.ERROR: Cadence(((950, 340), (1400, 340), (1800, 340), (0, 1000)), repeat=False),
    Tone.OPENED: Cadence(((1500, 100), (0, 60), (1500, 100)), repeat=False),
}
"""The cadence of every :class:`~intercom.feedback.Tone`."""


@lru_cache(maxsize=32)
def _render(hz: float, frames: int, rate: int) -> tuple[Pcm, ...]:
    """``frames`` frames of a sine at ``hz``, ramped in and out over :data:`RAMP_MS` each."""
    size = frame_samples(rate)
    count = frames * size
    ramp = min(count // 2, rate * RAMP_MS // 1000)
    step = 2 * math.pi * hz / rate
    level = [AMPLITUDE] * count
    for k in range(ramp):  # 0 .. 1 over the first ramp samples, 1 .. 0 over the last ones
        level[k] = level[count - 1 - k] = AMPLITUDE * k / (ramp - 1) if ramp > 1 else 0.0
    whole = from_samples(round(level[k] * math.sin(step * k)) for k in range(count))
    return tuple(whole[2 * size * n : 2 * size * (n + 1)] for n in range(frames))


class TonePlayer:
    """Frames of one tone at ``sample_rate``; :meth:`next_frame` is None once it has ended."""

    def __init__(self, tone: Cadence, sample_rate: int) -> None:
        self.tone = tone
        quiet = silence(sample_rate)
        self._steps = [
            _render(hz, max(1, round(ms / FRAME_MS)), sample_rate)
            if hz
            else (quiet,) * max(1, round(ms / FRAME_MS))
            for hz, ms in tone.steps
        ]
        self._step = 0
        self._offset = 0  # frame within the step

    @property
    def finished(self) -> bool:
        return self._step >= len(self._steps)

    def next_frame(self) -> Pcm | None:
        if self.finished:
            return None
        frames = self._steps[self._step]
        frame = frames[self._offset]
        self._offset += 1
        if self._offset >= len(frames):
            self._offset = 0
            self._step += 1
            if self._step == len(self._steps) and self.tone.repeat:
                self._step = 0
        return frame


def mix(frame: Pcm, cue: Pcm) -> Pcm:
    """``cue`` laid over ``frame`` (same length), clipped to 16 bits: a tone over call audio."""
    if len(frame) != len(cue):
        raise ValueError(f"a cue of {len(cue)} bytes cannot lie over a frame of {len(frame)}")
    total = list(map(add, samples(frame), samples(cue)))
    if max(total, default=0) > 32767 or min(total, default=0) < -32768:  # rare: clip per sample
        total = [max(-32768, min(32767, value)) for value in total]
    return from_samples(total)
