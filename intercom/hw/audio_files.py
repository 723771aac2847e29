"""Sources and sinks without a sound card: WAV files, a test tone, and null.

They stand in for a microphone and a speaker in tests, in ``intercom demo`` and on a door
station that should only record. None of them has a clock: a source returns a frame on every
``read_frame()`` call (the caller's 20 ms clock paces it) and a sink accepts every frame at
once.

* :class:`WavSource` reads the whole file when opened, converts it to mono 16-bit at the codec
  rate (channels averaged, 8/24/32-bit samples scaled, rate converted with soxr) and plays it in
  a loop. Only integer PCM WAV files are read (what Python's :mod:`wave` understands). A mono
  16-bit file at the codec's rate is played as it is, a slice of its bytes per frame; averaging
  channels and converting the rate import numpy and soxr, only for a file that needs them.
* :class:`WavSink` records mono 16-bit at the codec rate. Every frame updates the header, so
  even a file left behind by a crash is a valid WAV; ``close()`` finishes it.
* :class:`ToneSource` is a phase-continuous sine at -12 dBFS.
* :class:`NullSource` delivers silence; :class:`NullSink` discards.
"""

from __future__ import annotations

import logging
import math
import os
import wave
from pathlib import Path

from intercom.hw.audio_base import AudioDeviceError
from intercom.media.pcm import (
    LITTLE_ENDIAN,
    SAMPLE_BYTES,
    Pcm,
    frame_samples,
    from_little_endian,
    from_samples,
    silence,
    to_little_endian,
)

logger = logging.getLogger(__name__)

TONE_LEVEL_DBFS = -12.0
TONE_AMPLITUDE = 32767 * 10 ** (TONE_LEVEL_DBFS / 20)
"""Peak of the test tone: about 8231, a comfortable level that leaves headroom."""


def read_wav(path: str, sample_rate: int) -> Pcm:
    """The whole of a PCM WAV file as mono int16 at ``sample_rate``.

    Raises :class:`AudioDeviceError` naming the file when it cannot be read or is not PCM.
    """
    try:
        with wave.open(path, "rb") as wav:
            channels = wav.getnchannels()
            width = wav.getsampwidth()
            rate = wav.getframerate()
            raw = wav.readframes(wav.getnframes())
    except FileNotFoundError:
        raise AudioDeviceError(f"audio input wav:{path}: file not found") from None
    except OSError as error:
        raise AudioDeviceError(f"audio input wav:{path}: cannot read: {error}") from None
    except (wave.Error, EOFError) as error:
        raise AudioDeviceError(
            f"audio input wav:{path}: not a PCM WAV file ({error}); "
            "convert it, e.g. sox in.wav -b 16 out.wav"
        ) from None
    if width not in (1, 2, 3, 4):
        raise AudioDeviceError(f"audio input wav:{path}: unsupported sample width {width * 8} bits")
    samples = _to_int16(raw, width)
    frames = len(samples) // (SAMPLE_BYTES * channels)
    if frames == 0:
        raise AudioDeviceError(f"audio input wav:{path}: the file holds no audio")
    mono = downmix(samples[: SAMPLE_BYTES * frames * channels], channels)
    if rate != sample_rate:
        mono = _resample(mono, rate, sample_rate)
    if len(mono) == 0:
        raise AudioDeviceError(f"audio input wav:{path}: the file is too short")
    return mono


def _resample(mono: Pcm, rate: int, sample_rate: int) -> Pcm:
    """The whole of ``mono`` at ``sample_rate`` (soxr, with numpy, imported for it)."""
    import numpy as np
    import soxr

    resampled = soxr.resample(np.frombuffer(mono, dtype=np.int16), rate, sample_rate)
    out: Pcm = np.asarray(resampled, dtype=np.int16).tobytes()
    return out


def downmix(samples: Pcm, channels: int) -> Pcm:
    """Average interleaved ``channels`` into mono (no overflow: summed in 32 bits).

    One channel passes through; several import numpy for the sum (only a stereo file or a
    device without a mono mode needs it)."""
    if channels == 1:
        return samples
    import numpy as np

    interleaved = np.frombuffer(samples, dtype=np.int16).reshape(-1, channels)
    out: Pcm = (interleaved.sum(axis=1, dtype=np.int32) // channels).astype(np.int16).tobytes()
    return out


def _to_int16(raw: bytes, width: int) -> Pcm:
    """Little-endian PCM samples of ``width`` (1 to 4) bytes as native 16-bit samples (the top
    16 bits of each): the bytes are picked by slicing, without arithmetic."""
    raw = raw[: len(raw) - len(raw) % width]
    if width == 2:
        return from_little_endian(raw)
    count = len(raw) // width
    out = bytearray(SAMPLE_BYTES * count)
    low, high = (0, 1) if LITTLE_ENDIAN else (1, 0)
    if width == 1:
        # 8-bit WAV is unsigned, centred on 128: flipping the top bit makes it signed.
        out[high::2] = raw.translate(_FLIP_SIGN)
    else:
        # The top two bytes of a little-endian sample are its 16 most significant bits.
        out[low::2] = raw[width - 2 :: width]
        out[high::2] = raw[width - 1 :: width]
    return bytes(out)


_FLIP_SIGN = bytes(value ^ 0x80 for value in range(256))


def check_wav_input(path: str) -> None:
    """Raise :class:`AudioDeviceError` unless ``path`` is a readable PCM WAV file."""
    read_wav(path, 8000)


def check_wav_output(path: str) -> None:
    """Raise :class:`AudioDeviceError` unless a WAV file can be created at ``path``."""
    target = Path(path)
    directory = target.parent
    if target.is_dir():
        raise AudioDeviceError(f"audio output wav:{path}: is a directory")
    if not directory.is_dir():
        raise AudioDeviceError(f"audio output wav:{path}: directory {directory} does not exist")
    if target.exists():
        if not os.access(target, os.W_OK):
            raise AudioDeviceError(f"audio output wav:{path}: file is not writable")
    elif not os.access(directory, os.W_OK | os.X_OK):
        raise AudioDeviceError(f"audio output wav:{path}: directory {directory} is not writable")


class _Unclocked:
    """What these devices share: no stream to start or stop, and a count of frames."""

    def __init__(self, sample_rate: int) -> None:
        self.sample_rate = sample_rate
        self._frames = 0

    def start(self) -> None:
        pass

    def close(self) -> None:
        pass

    def stats(self) -> dict[str, int]:
        return {"frames": self._frames}


class WavSource(_Unclocked):
    """A WAV file played in a loop, as mono frames at ``sample_rate``."""

    def __init__(self, path: str, sample_rate: int) -> None:
        super().__init__(sample_rate)
        self.path = path
        audio = read_wav(path, sample_rate)
        self._size = SAMPLE_BYTES * frame_samples(sample_rate)
        self._total = len(audio)
        # The audio followed by its own start (repeated for a file shorter than a frame), so
        # that a frame starting anywhere in the file is one slice, even across the loop.
        self._looped = audio + (audio * -(-self._size // self._total))[: self._size]
        self._position = 0  # bytes into the file
        self._loops = 0
        logger.info(
            "audio input: %s looped, %.2f s at %d Hz",
            path,
            self._total / SAMPLE_BYTES / sample_rate,
            sample_rate,
        )

    def read_frame(self) -> Pcm | None:
        start = self._position
        end = start + self._size
        self._loops += end // self._total
        self._position = end % self._total
        self._frames += 1
        return self._looped[start:end]

    def stats(self) -> dict[str, int]:
        return {"frames": self._frames, "loops": self._loops}


HEADER_EVERY = 50
"""Frames between rewrites of a recording's WAV header (a second of 20 ms frames)."""


class WavSink(_Unclocked):
    """Records mono 16-bit frames at ``sample_rate`` into a WAV file."""

    def __init__(self, path: str, sample_rate: int) -> None:
        super().__init__(sample_rate)
        self.path = path
        # Opened here rather than by wave.open(), whose half-built writer complains when it
        # cannot create the file. Both stay open across write_frame() calls until close().
        try:
            self._file = open(path, "wb")  # noqa: SIM115
        except OSError as error:
            raise AudioDeviceError(f"audio output wav:{path}: cannot create: {error}") from None
        self._wav: wave.Wave_write | None = wave.open(self._file, "wb")  # noqa: SIM115
        self._wav.setnchannels(1)
        self._wav.setsampwidth(2)
        self._wav.setframerate(sample_rate)
        self._dropped = 0
        logger.info("audio output: recording to %s at %d Hz", path, sample_rate)

    def write_frame(self, frame: Pcm) -> None:
        if self._wav is None:
            self._dropped += 1
            return
        # writeframes seeks back and rewrites the header: on every frame that was a fifth of a
        # call's CPU in a profile. Once a second keeps the file readable while it records.
        self._frames += 1
        if self._frames % HEADER_EVERY:
            self._wav.writeframesraw(to_little_endian(frame))
        else:
            self._wav.writeframes(to_little_endian(frame))

    def close(self) -> None:
        wav, self._wav = self._wav, None
        if wav is not None:
            try:
                wav.close()
            finally:
                self._file.close()

    def stats(self) -> dict[str, int]:
        return {"frames": self._frames, "dropped": self._dropped}


class _LoopedFrames(_Unclocked):
    """The same read-only frames over and over, one per call."""

    def __init__(self, sample_rate: int, frames: list[Pcm]) -> None:
        super().__init__(sample_rate)
        self._loop = frames

    def read_frame(self) -> Pcm | None:
        frame = self._loop[self._frames % len(self._loop)]
        self._frames += 1
        return frame


class ToneSource(_LoopedFrames):
    """A sine at ``frequency`` Hz and -12 dBFS.

    One second of it is computed once and played in a loop, frame by frame, so a frame costs
    no arithmetic; an integer frequency has whole cycles in a second and loops seamlessly.
    """

    def __init__(self, frequency: float, sample_rate: int) -> None:
        if not 0 < frequency < sample_rate / 2:
            raise AudioDeviceError(
                f"audio input tone:{frequency:g}: the frequency must be between 0 and "
                f"{sample_rate // 2} Hz at a sample rate of {sample_rate} Hz"
            )
        self.frequency = frequency
        size = SAMPLE_BYTES * frame_samples(sample_rate)
        step = 2 * math.pi * frequency / sample_rate
        second = from_samples(
            round(TONE_AMPLITUDE * math.sin(k * step)) for k in range(sample_rate)
        )
        super().__init__(sample_rate, [second[i : i + size] for i in range(0, len(second), size)])


class NullSource(_LoopedFrames):
    """Digital silence, one frame per call."""

    def __init__(self, sample_rate: int) -> None:
        super().__init__(sample_rate, [silence(sample_rate)])


class NullSink(_Unclocked):
    """Accepts and discards every frame."""

    def write_frame(self, frame: Pcm) -> None:
        self._frames += 1
