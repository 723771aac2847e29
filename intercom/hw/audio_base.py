"""What every audio backend implements: the source and sink Protocols and their one error.

A leaf of :mod:`intercom.hw`: the backends (:mod:`intercom.hw.audio_files`,
:mod:`intercom.hw.pyaudio_device`) import it, and :mod:`intercom.hw.audio` picks among them.
"""

from __future__ import annotations

from typing import Literal, Protocol

from intercom.errors import IntercomError
from intercom.media.pcm import Pcm

Kind = Literal["input", "output"]


class AudioDeviceError(IntercomError):
    """An audio device or file cannot be opened or used; the message says what to change."""


class AudioSource(Protocol):
    """Delivers 20 ms mono frames at ``sample_rate``."""

    sample_rate: int

    def start(self) -> None:
        """Begin capturing (a device starts its stream)."""

    def read_frame(self) -> Pcm | None:
        """One frame, or None when a whole frame is not available yet. Never blocks."""

    def close(self) -> None:
        """Release the device or file. Idempotent."""

    def stats(self) -> dict[str, int]:
        """Counters: frames delivered, overflows and the like."""


class AudioSink(Protocol):
    """Accepts 20 ms mono frames at ``sample_rate``."""

    sample_rate: int

    def start(self) -> None:
        """Begin playing (a device starts its stream)."""

    def write_frame(self, frame: Pcm) -> None:
        """Queue one frame. Never blocks; a frame that does not fit is dropped and counted."""

    def close(self) -> None:
        """Release the device; flush and close a file. Idempotent."""

    def stats(self) -> dict[str, int]:
        """Counters: frames accepted, overflows, underflows and the like."""
