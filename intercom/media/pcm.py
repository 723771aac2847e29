"""Linear PCM as the whole audio path carries it: 16-bit signed, mono, 20 ms frames."""

from __future__ import annotations

from typing import TypeAlias

import numpy as np
import numpy.typing as npt

Pcm: TypeAlias = npt.NDArray[np.int16]
"""A frame of mono 16-bit samples (native byte order)."""

FRAME_MS = 20
"""Every frame, RTP packet and device period is 20 ms (ptime 20)."""


def frame_samples(sample_rate: int) -> int:
    """Samples in one 20 ms frame at ``sample_rate`` (160 at 8 kHz, 320 at 16 kHz)."""
    return sample_rate * FRAME_MS // 1000


def silence(sample_rate: int) -> Pcm:
    """One frame of digital silence."""
    return np.zeros(frame_samples(sample_rate), dtype=np.int16)
