"""A bounded, thread-safe ring of int16 samples between an audio callback and the media thread.

PortAudio calls a stream's callback on its own thread; the runtime reads and writes frames on
the call's media thread. The ring is the only thing they share. Every operation holds the lock
just long enough to copy at most two slices of a preallocated ``bytearray``, so the callback
never waits for more than a memcpy and never allocates more than the bytes it returns.

Samples go in and come out as bytes of native 16-bit integers (:mod:`intercom.media.pcm`),
the format PortAudio's ``paInt16`` blocks already have, so a block is stored as it comes.

Writes are all or nothing: a block that does not fit is refused whole (the caller counts an
overflow) rather than cut, so what is in the ring is always a contiguous run of what was
written, in whole callback blocks or frames.
"""

from __future__ import annotations

import threading

from intercom.media.pcm import SAMPLE_BYTES, Pcm


class SampleRing:
    """A FIFO of at most ``capacity`` int16 samples (interleaved channels are just samples)."""

    def __init__(self, capacity: int) -> None:
        if capacity <= 0:
            raise ValueError(f"ring capacity must be positive, got {capacity}")
        self.capacity = capacity
        self._size_bytes = SAMPLE_BYTES * capacity
        self._buffer = bytearray(self._size_bytes)
        self._view = memoryview(self._buffer)
        self._start = 0  # byte offset of the oldest sample
        self._used = 0  # bytes waiting
        self._lock = threading.Lock()

    @property
    def available(self) -> int:
        """Samples waiting to be read."""
        return self._used // SAMPLE_BYTES

    @property
    def free(self) -> int:
        """Samples that can still be written."""
        return (self._size_bytes - self._used) // SAMPLE_BYTES

    def write(self, samples: bytes) -> bool:
        """Append all of ``samples`` (native int16 bytes); False (and nothing written) when they
        do not fit. ValueError for an odd number of bytes, which no stream of samples has."""
        count = len(samples)
        if count % SAMPLE_BYTES:
            raise ValueError(f"{count} bytes are not whole 16-bit samples")
        data = memoryview(samples)
        with self._lock:
            if count > self._size_bytes - self._used:
                return False
            end = (self._start + self._used) % self._size_bytes
            first = min(count, self._size_bytes - end)
            self._view[end : end + first] = data[:first]
            if first < count:
                self._view[: count - first] = data[first:]
            self._used += count
        return True

    def read(self, count: int) -> Pcm | None:
        """Remove and return exactly ``count`` samples, or None (nothing removed) if fewer wait."""
        with self._lock:
            if SAMPLE_BYTES * count > self._used:
                return None
            return self._take(SAMPLE_BYTES * count)

    def read_up_to(self, count: int, multiple: int = 1) -> Pcm:
        """Remove and return at most ``count`` samples, a whole ``multiple`` of them."""
        with self._lock:
            take = min(count, self._used // SAMPLE_BYTES)
            return self._take(SAMPLE_BYTES * (take - take % multiple))

    def _take(self, size: int) -> Pcm:
        start = self._start
        first = min(size, self._size_bytes - start)
        out = self._view[start : start + first].tobytes()
        if first < size:
            out += self._view[: size - first].tobytes()
        self._start = (start + size) % self._size_bytes
        self._used -= size
        return out
