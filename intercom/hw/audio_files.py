"""Sources and sinks without a sound card: WAV files, a test tone, and null.

They stand in for a microphone and a speaker in tests, in ``intercom demo`` and on a door
station that should only record. None of them has a clock: a source returns a frame on every
``read_frame()`` call (the caller's 20 ms clock paces it) and a sink accepts every frame at
once.

* :class:`WavSource` reads the whole file when opened, converts it to mono 16-bit at the codec
  rate (channels averaged, 8/24/32-bit samples scaled, rate converted with soxr) and plays it in
  a loop. Only integer PCM WAV files are read (what Python's :mod:`wave` understands).
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

import numpy as np

from intercom.hw.audio_base import AudioDeviceError
from intercom.media.pcm import Pcm, frame_samples, silence

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
    frames = len(samples) // channels
    if frames == 0:
        raise AudioDeviceError(f"audio input wav:{path}: the file holds no audio")
    mono = downmix(samples[: frames * channels], channels)
    if rate != sample_rate:
        import soxr  # only for a file at another rate than the codec's

        mono = np.asarray(soxr.resample(mono, rate, sample_rate), dtype=np.int16)
    if len(mono) == 0:
        raise AudioDeviceError(f"audio input wav:{path}: the file is too short")
    return mono


def downmix(samples: Pcm, channels: int) -> Pcm:
    """Average interleaved ``channels`` into mono (no overflow: summed in 32 bits)."""
    if channels == 1:
        return samples
    summed = samples.reshape(-1, channels).sum(axis=1, dtype=np.int32)
    mono: Pcm = (summed // channels).astype(np.int16)
    return mono


def _to_int16(raw: bytes, width: int) -> Pcm:
    """Little-endian PCM samples of ``width`` (1 to 4) bytes as int16 (the top 16 bits)."""
    if width == 2:
        return np.frombuffer(raw, dtype="<i2").astype(np.int16)
    if width == 1:
        # 8-bit WAV is unsigned, centred on 128.
        return ((np.frombuffer(raw, dtype=np.uint8).astype(np.int16) - 128) << 8).astype(np.int16)
    if width == 3:
        triples = np.frombuffer(raw, dtype=np.uint8).reshape(-1, 3)
        # The top two bytes of a 24-bit little-endian sample are its 16 most significant bits.
        return (triples[:, 1].astype(np.uint16) | (triples[:, 2].astype(np.uint16) << 8)).view(
            np.int16
        )
    return (np.frombuffer(raw, dtype="<i4") >> 16).astype(np.int16)


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
        self._samples = read_wav(path, sample_rate)
        self._frame = frame_samples(sample_rate)
        self._position = 0
        self._loops = 0
        logger.info(
            "audio input: %s looped, %.2f s at %d Hz",
            path,
            len(self._samples) / sample_rate,
            sample_rate,
        )

    def read_frame(self) -> Pcm | None:
        total = len(self._samples)
        end = self._position + self._frame
        if end <= total:
            frame = self._samples[self._position : end].copy()
        else:
            frame = np.take(self._samples, np.arange(self._position, end) % total)
        self._loops += end // total
        self._position = end % total
        self._frames += 1
        return frame

    def stats(self) -> dict[str, int]:
        return {"frames": self._frames, "loops": self._loops}


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
        self._wav.writeframes(frame.astype("<i2", copy=False).tobytes())
        self._frames += 1

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
        for frame in frames:
            frame.flags.writeable = False
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
        size = frame_samples(sample_rate)
        second = np.arange(sample_rate) * (2 * math.pi * frequency / sample_rate)
        table = np.rint(TONE_AMPLITUDE * np.sin(second)).astype(np.int16)
        super().__init__(sample_rate, [table[i : i + size] for i in range(0, sample_rate, size)])


class NullSource(_LoopedFrames):
    """Digital silence, one frame per call."""

    def __init__(self, sample_rate: int) -> None:
        super().__init__(sample_rate, [silence(sample_rate)])


class NullSink(_Unclocked):
    """Accepts and discards every frame."""

    def write_frame(self, frame: Pcm) -> None:
        self._frames += 1
