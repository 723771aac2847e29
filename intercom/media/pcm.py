"""Linear PCM as the whole audio path carries it: 16-bit signed, mono, 20 ms frames, as bytes.

Theory of operation
===================

A frame is ``bytes``: its samples as signed 16-bit integers in the machine's byte order, which
is what PyAudio's ``paInt16`` streams hand over and take, what ``array("h")`` and
``memoryview.cast("h")`` read, and, on every little-endian machine (ARM, x86), byte for byte
what a 16-bit WAV file holds. Bytes and not numpy arrays because a G.711 call does no
arithmetic on samples: the codec is table lookups that Python runs in C on bytes
(:mod:`intercom.media.g711`), a device or file at the codec's rate passes frames through, and
a concealed frame or a mixed cue is rare enough for per-sample Python. Importing numpy would
cost a Pi 13 to 18 MB for nothing; only resampling, a multi-channel device or an analysis
imports it, lazily. Frames are immutable, so a frame can be kept (the loss concealer keeps the
last good one) or handed to several consumers without a copy.

:func:`samples` reads a frame as numbers, :func:`from_samples` makes one from numbers.
WAV files are little-endian whatever the machine: :func:`to_little_endian` and
:func:`from_little_endian` swap the bytes of each sample on a big-endian machine and return
the frame itself everywhere else.
"""

from __future__ import annotations

import sys
from array import array
from collections.abc import Iterable
from typing import TypeAlias

Pcm: TypeAlias = bytes
"""A frame of mono signed 16-bit samples in native byte order (2 bytes per sample)."""

FRAME_MS = 20
"""Every frame, RTP packet and device period is 20 ms (ptime 20)."""

SAMPLE_BYTES = 2
"""Bytes per sample."""

LITTLE_ENDIAN = sys.byteorder == "little"


def frame_samples(sample_rate: int) -> int:
    """Samples in one 20 ms frame at ``sample_rate`` (160 at 8 kHz, 320 at 16 kHz)."""
    return sample_rate * FRAME_MS // 1000


def silence(sample_rate: int) -> Pcm:
    """One frame of digital silence."""
    return bytes(SAMPLE_BYTES * frame_samples(sample_rate))


def samples(frame: Pcm) -> memoryview:
    """The samples of ``frame`` as signed integers (a read-only view, no copy)."""
    return memoryview(frame).cast("h")


def from_samples(values: Iterable[int]) -> Pcm:
    """A frame of ``values`` (each within -32768..32767, else OverflowError)."""
    return array("h", values).tobytes()


def _swapped(data: bytes) -> bytes:
    values = array("h", data)
    values.byteswap()
    return values.tobytes()


def to_little_endian(frame: Pcm) -> bytes:
    """The samples of ``frame`` as little-endian bytes (a WAV file's order)."""
    return frame if LITTLE_ENDIAN else _swapped(frame)


def from_little_endian(data: bytes) -> Pcm:
    """A frame from little-endian 16-bit samples (an even number of bytes)."""
    return data if LITTLE_ENDIAN else _swapped(data)
