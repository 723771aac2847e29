"""Call-progress tones the door plays to the visitor: ringback, busy, error, door opened.

A visitor at the door hears what a caller hears on a phone: a ringback while the family's
phones ring (ITU-T E.180 / the common European 425 Hz, 1 s on, 4 s off), a busy tone when the
call is refused (425 Hz, 0.5 s on, 0.5 s off, three times), a special information tone when the
call fails (ITU-T E.180's 950 / 1400 / 1800 Hz sequence), and two short high beeps when the door
opens. Each tone is a cadence: (frequency or 0 for silence, milliseconds) steps, optionally
repeated; :class:`TonePlayer` renders it frame by frame at the device's rate, the phase
continuous across frames, with 5 ms ramps at each edge so nothing clicks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from intercom.feedback import Tone
from intercom.media.pcm import FRAME_MS, Pcm, frame_samples

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


class TonePlayer:
    """Frames of one tone at ``sample_rate``; :meth:`next_frame` is None once it has ended."""

    def __init__(self, tone: Cadence, sample_rate: int) -> None:
        self.tone = tone
        self._rate = sample_rate
        self._frame = frame_samples(sample_rate)
        self._frames = [self._render(hz, ms) for hz, ms in tone.steps]
        self._step = 0
        self._offset = 0  # frame within the step

    def _render(self, hz: float, ms: int) -> Pcm:
        """A whole step, ramped in and out (steps are short: at most a few hundred frames)."""
        count = max(1, round(ms / FRAME_MS)) * self._frame
        if hz == 0:
            return np.zeros(count, dtype=np.int16)
        t = np.arange(count) / self._rate
        wave = AMPLITUDE * np.sin(2 * math.pi * hz * t)
        ramp = min(count // 2, self._rate * RAMP_MS // 1000)
        envelope = np.ones(count)
        envelope[:ramp] = np.linspace(0.0, 1.0, ramp)
        envelope[count - ramp :] = np.linspace(1.0, 0.0, ramp)
        return np.rint(wave * envelope).astype(np.int16)

    @property
    def finished(self) -> bool:
        return self._step >= len(self._frames)

    def next_frame(self) -> Pcm | None:
        if self.finished:
            return None
        samples = self._frames[self._step]
        frame = samples[self._offset : self._offset + self._frame]
        self._offset += self._frame
        if self._offset >= len(samples):
            self._offset = 0
            self._step += 1
            if self._step == len(self._frames) and self.tone.repeat:
                self._step = 0
        return frame


def mix(frame: Pcm, cue: Pcm) -> Pcm:
    """``cue`` laid over ``frame`` (same length), clipped to 16 bits: a tone over call audio."""
    total = frame.astype(np.int32)
    total += cue
    np.clip(total, -32768, 32767, out=total)
    return total.astype(np.int16)
