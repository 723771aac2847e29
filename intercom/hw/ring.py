"""A bounded, thread-safe ring of int16 samples between an audio callback and the media thread.

PortAudio calls a stream's callback on its own thread; the runtime reads and writes frames on
the call's media thread. The ring is the only thing they share. Every operation holds the lock
just long enough to copy at most two slices of a preallocated numpy array, so the callback
never waits for more than a memcpy and never allocates more than the array it returns.

Writes are all or nothing: a block that does not fit is refused whole (the caller counts an
overflow) rather than cut, so what is in the ring is always a contiguous run of what was
written, in whole callback blocks or frames.
"""

from __future__ import annotations

import threading

import numpy as np

from intercom.media.pcm import Pcm


class SampleRing:
    """A FIFO of at most ``capacity`` int16 samples (interleaved channels are just samples)."""

    def __init__(self, capacity: int) -> None:
        if capacity <= 0:
            raise ValueError(f"ring capacity must be positive, got {capacity}")
        self.capacity = capacity
        self._buffer = np.zeros(capacity, dtype=np.int16)
        self._start = 0
        self._size = 0
        self._lock = threading.Lock()

    @property
    def available(self) -> int:
        """Samples waiting to be read."""
        return self._size

    @property
    def free(self) -> int:
        """Samples that can still be written."""
        return self.capacity - self._size

    def write(self, samples: Pcm) -> bool:
        """Append all of ``samples``; False (and nothing written) when they do not fit."""
        count = len(samples)
        with self._lock:
            if count > self.capacity - self._size:
                return False
            end = (self._start + self._size) % self.capacity
            first = min(count, self.capacity - end)
            self._buffer[end : end + first] = samples[:first]
            if first < count:
                self._buffer[: count - first] = samples[first:]
            self._size += count
        return True

    def read(self, count: int) -> Pcm | None:
        """Remove and return exactly ``count`` samples, or None (nothing removed) if fewer wait."""
        with self._lock:
            if count > self._size:
                return None
            return self._take(count)

    def read_up_to(self, count: int, multiple: int = 1) -> Pcm:
        """Remove and return at most ``count`` samples, a whole ``multiple`` of them."""
        with self._lock:
            take = min(count, self._size)
            return self._take(take - take % multiple)

    def _take(self, count: int) -> Pcm:
        out = np.empty(count, dtype=np.int16)
        first = min(count, self.capacity - self._start)
        out[:first] = self._buffer[self._start : self._start + first]
        if first < count:
            out[first:] = self._buffer[: count - first]
        self._start = (self._start + count) % self.capacity
        self._size -= count
        return out
