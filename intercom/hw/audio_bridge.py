"""The real-time side of PyAudio streams: what PortAudio's callback thread and the media thread
share.

PortAudio calls a stream's callback on its own real-time thread once per device period. The
callback does as little as possible: a capture callback copies the block PortAudio hands it into
a :class:`~intercom.hw.ring.SampleRing`; a playback callback copies a block out of one (or
silence). Neither blocks (the ring's lock only guards a memcpy), logs, allocates more than a
block, or raises: anything unexpected is caught and counted, because an exception in a callback
would stop the stream for the rest of the call. The media thread's side (``read_frame`` /
``write_frame``) does the expensive part: down-mixing, resampling (soxr keeps its filter state
from frame to frame, so there are no clicks at frame edges) and the one-time log line for each
kind of trouble.

Frames and blocks are bytes of native 16-bit samples (:mod:`intercom.media.pcm`), PortAudio's
own ``paInt16`` format: a device opened at the codec's rate in mono passes them through
untouched. Spreading a mono frame over several playback channels is slice assignment, also
without numpy; averaging captured channels and resampling need arithmetic in bulk, so numpy
and soxr are imported when a device needs them (:func:`~intercom.hw.audio_files.downmix`,
:class:`Resampler`), never for a device at the codec's rate in mono.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from intercom.hw.audio_files import downmix
from intercom.hw.ring import SampleRing
from intercom.media.pcm import SAMPLE_BYTES, Pcm, frame_samples

logger = logging.getLogger(__name__)

PA_CONTINUE = 0
"""``pyaudio.paContinue``: what a callback returns to keep the stream running."""

_XRUN_FLAGS = 0x0F
"""PortAudio's input underflow/overflow and output underflow/overflow status bits."""

RESAMPLE_QUALITY = "MQ"
"""soxr's 16-bit medium quality: flat to 3.4 kHz at 8 kHz and alias-free, about 35 ms of
latency between 48 and 8 kHz; "HQ" adds about 130 ms there, "LQ" dulls 3.4 kHz, "QQ" aliases."""

DEFAULT_BUFFER_MS = 200
DEFAULT_PREBUFFER_MS = 40


@dataclass(frozen=True, slots=True)
class StreamFormat:
    """The rate and channel count a PortAudio stream is opened with."""

    rate: int
    channels: int


class Resampler:
    """A mono 16-bit stream from ``from_rate`` to ``to_rate`` that keeps its filter state across
    chunks (soxr, with numpy, imported here: only a device at another rate needs them)."""

    def __init__(self, from_rate: int, to_rate: int) -> None:
        import numpy
        import soxr

        self._numpy: Any = numpy
        self._stream = soxr.ResampleStream(
            from_rate, to_rate, 1, dtype="int16", quality=RESAMPLE_QUALITY
        )

    def resample(self, chunk: Pcm) -> Pcm:
        """The resampled audio of ``chunk`` that is ready (soxr works in blocks: it may be
        more or less than the chunk's share, and empty at first)."""
        samples = self._numpy.frombuffer(chunk, dtype=self._numpy.int16)
        out: Pcm = self._stream.resample_chunk(samples).tobytes()
        return out


def _resampler(from_rate: int, to_rate: int) -> Resampler | None:
    """A resampler that keeps its filter state across frames; None for no change."""
    if from_rate == to_rate:
        return None
    return Resampler(from_rate, to_rate)


def upmix(frame: Pcm, channels: int) -> Pcm:
    """``frame`` on every one of ``channels`` interleaved channels."""
    if channels == 1:
        return frame
    out = bytearray(len(frame) * channels)
    step = SAMPLE_BYTES * channels
    for channel in range(channels):
        for byte in range(SAMPLE_BYTES):
            out[SAMPLE_BYTES * channel + byte :: step] = frame[byte::SAMPLE_BYTES]
    return bytes(out)


class _Counters:
    """What both sides share: the ring between the threads, and trouble counters written by a
    callback and reported by the media thread's side once each."""

    _MESSAGES: dict[str, str] = {}
    _FIGURES: tuple[str, ...] = ()

    def __init__(self, sample_rate: int, device: StreamFormat, buffer_ms: int) -> None:
        self.sample_rate = sample_rate
        self.device = device
        self.ring = SampleRing(device.rate * device.channels * buffer_ms // 1000)
        self.frames = 0
        self.overflows = 0
        self.underflows = 0
        self.xruns = 0
        self.callback_errors = 0
        self.first_error: str | None = None
        self._reported: set[str] = set()

    def _caught(self, error: Exception) -> None:
        self.callback_errors += 1
        if self.first_error is None:
            self.first_error = repr(error)

    def report(self) -> None:
        """Log each kind of trouble the first time it is seen (never from the callback)."""
        if len(self._reported) == len(self._MESSAGES):
            return
        for name, message in self._MESSAGES.items():
            if name not in self._reported and getattr(self, name):
                self._reported.add(name)
                if name == "callback_errors":
                    logger.error(message, self.first_error)
                else:
                    logger.warning(message)

    def stats(self) -> dict[str, int]:
        """The counters (only those a side can have: ``_FIGURES``) and the buffered audio."""
        figures = {name: getattr(self, name) for name in self._FIGURES}
        buffered = self.ring.available // self.device.channels
        figures["buffered_ms"] = buffered * 1000 // self.device.rate
        return figures


class CaptureBridge(_Counters):
    """Capture side: the PortAudio callback fills a ring, ``read_frame`` makes codec frames."""

    _FIGURES = ("frames", "overflows", "xruns", "callback_errors")

    _MESSAGES = {
        "overflows": "audio input: capture buffer full, audio dropped (not read fast enough); "
        "further drops are only counted",
        "xruns": "audio input: the device reported an overrun; further ones are only counted",
        "callback_errors": "audio input: capture callback failed: %s; further ones are counted",
    }

    def __init__(
        self,
        sample_rate: int,
        device: StreamFormat,
        buffer_ms: int = DEFAULT_BUFFER_MS,
    ) -> None:
        super().__init__(sample_rate, device, buffer_ms)
        self._frame = frame_samples(sample_rate)
        self._direct = device.rate == sample_rate and device.channels == 1
        self._resampler = _resampler(device.rate, sample_rate)
        self._pending: Pcm = b""

    def callback(
        self, in_data: bytes | None, frame_count: int, time_info: object, status: int
    ) -> tuple[None, int]:
        """PortAudio's capture callback: store the block; never blocks, never raises."""
        try:
            if status & _XRUN_FLAGS:
                self.xruns += 1
            if in_data and not self.ring.write(in_data):
                self.overflows += 1
        except Exception as error:
            self._caught(error)
        return None, PA_CONTINUE

    def read_frame(self) -> Pcm | None:
        """One mono frame at ``sample_rate``, or None when not enough has been captured."""
        self.report()
        if self._direct:
            frame = self.ring.read(self._frame)
        else:
            size = SAMPLE_BYTES * self._frame
            if len(self._pending) < size:
                raw = self.ring.read_up_to(self.ring.capacity, self.device.channels)
                if raw:
                    mono = downmix(raw, self.device.channels)
                    if self._resampler is not None:
                        mono = self._resampler.resample(mono)
                    self._pending += mono
            if len(self._pending) < size:
                return None
            frame = self._pending[:size]
            self._pending = self._pending[size:]
        if frame is not None:
            self.frames += 1
        return frame


class PlaybackBridge(_Counters):
    """Playback side: ``write_frame`` fills a ring, the PortAudio callback drains it."""

    _FIGURES = ("frames", "overflows", "underflows", "xruns", "callback_errors")

    _MESSAGES = {
        "overflows": "audio output: playback buffer full, frame dropped; "
        "further drops are only counted",
        "underflows": "audio output: ran out of audio, playing silence; "
        "further underflows are only counted",
        "xruns": "audio output: the device reported an underrun; further ones are only counted",
        "callback_errors": "audio output: playback callback failed: %s; further ones are counted",
    }

    def __init__(
        self,
        sample_rate: int,
        device: StreamFormat,
        buffer_ms: int = DEFAULT_BUFFER_MS,
        prebuffer_ms: int = DEFAULT_PREBUFFER_MS,
    ) -> None:
        super().__init__(sample_rate, device, buffer_ms)
        self._prebuffer = device.rate * device.channels * prebuffer_ms // 1000
        self._primed = False
        self._silence: dict[int, bytes] = {}
        self._resampler = _resampler(sample_rate, device.rate)

    def write_frame(self, frame: Pcm) -> None:
        """Queue one mono frame; a frame that does not fit is dropped and counted."""
        self.report()
        samples = frame if self._resampler is None else self._resampler.resample(frame)
        if self.ring.write(upmix(samples, self.device.channels)):
            self.frames += 1
        else:
            self.overflows += 1

    def callback(
        self, in_data: bytes | None, frame_count: int, time_info: object, status: int
    ) -> tuple[bytes, int]:
        """PortAudio's playback callback: one block of audio or silence; never blocks or raises."""
        wanted = frame_count * self.device.channels
        try:
            if status & _XRUN_FLAGS:
                self.xruns += 1
            if not self._primed:
                if self.ring.available < max(self._prebuffer, wanted):
                    return self._quiet(wanted), PA_CONTINUE
                self._primed = True
            block = self.ring.read(wanted)
            if block is None:
                self.underflows += 1
                self._primed = False
                rest = self.ring.read_up_to(wanted, self.device.channels)
                block = rest + bytes(SAMPLE_BYTES * wanted - len(rest))
            return block, PA_CONTINUE
        except Exception as error:
            self._caught(error)
            return self._quiet(wanted), PA_CONTINUE

    def _quiet(self, samples: int) -> bytes:
        quiet = self._silence.get(samples)
        if quiet is None:
            quiet = self._silence[samples] = bytes(2 * samples)
        return quiet
