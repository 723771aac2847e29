"""Make test signals and judge recorded audio against them (tests only).

The media tests play a known WAV on each side of a call, record what the other side decodes,
and ask: is the recording the reference, delayed and slightly distorted by the codec? The
answer is a normalised cross-correlation (Pearson: mean removed, divided by both norms):

1. Both signals are brought to one sample rate (the higher of the two, with soxr), so a
   recording decoded at 8 kHz compares with a 16 kHz reference and alignment keeps the finer
   resolution.
2. The first ``skip_seconds`` of the recording are not judged: the receiver's jitter buffer
   and the first packets make that start unreliable (the windows of step 4 may reach into it).
3. The global lag is where the FFT cross-correlation of the rest of the recording against the
   reference peaks (a full linear correlation, zero-padded to a power of two, so any offset is
   found, negative or positive, including the codec's own delay: a few samples for G.722).
   The global correlation is computed over all the samples both signals have at that lag.
4. The local correlation allows for an adaptive playout. A receiver's jitter buffer grows its
   delay by inserting a frame (a concealed gap) and shrinks it by skipping one, whenever the
   network's jitter says so, at any time of the call: each adjustment legitimately moves the
   lag by one 20 ms frame, and the global correlation drops by the share of the recording
   played at another lag. So the recording is also cut into windows of
   :data:`LOCAL_WINDOW_SECONDS` starting every :data:`LOCAL_HOP_SECONDS`; each window finds
   its own lag within :data:`MAX_DRIFT_SECONDS` of the global lag and its correlation there.
   The local correlation is the worst, over every sample judged, of the best window that
   contains the sample. It is high only if every part of the recording lies in a half-second
   that is the reference at a single lag: a few frames inserted or skipped half a second or
   more apart pass; missing or garbled audio, noise, silence, another signal, lag changes
   every few frames or a time stretch (1 % moves the lag 5 ms across one window) all fail.
   The samples judged run from the skip to one window before the end; the windows reach one
   window further on either side, so a lag change right after the skip or just before the end
   has a clean window on each side like any other.

G.711 and G.722 keep both figures above 0.99 on the signals made here when the playout delay
never changes; an unrelated signal stays near 0.

Lag convention: ``recording[n] ~ reference[n - lag]`` at the compared rate, i.e. a positive
lag means the recording is late by ``lag`` samples.

The test signals are speech-like but never periodic, so the correlation has a single clear
peak: band-limited noise (300-3400 Hz by default, what G.711 carries) shaped into
syllable-like bursts of random length with smooth attack and release, or a frequency sweep
with a slow amplitude envelope. Levels are moderate (peak about -6 dBFS, no clipping), far
from both the G.711 quantiser's coarse low end and its overload.
"""

from __future__ import annotations

import wave
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import numpy.typing as npt
import soxr

__all__ = [
    "LOCAL_HOP_SECONDS",
    "LOCAL_WINDOW_SECONDS",
    "MAX_DRIFT_SECONDS",
    "Comparison",
    "LocalAlignment",
    "SignalKind",
    "best_alignment",
    "compare_signals",
    "compare_wavs",
    "local_alignment",
    "make_signal",
    "make_test_wav",
    "normalised_correlation",
    "read_wav_mono",
    "resample",
    "write_wav_mono",
]

Signal = npt.NDArray[np.float64]
SignalKind = Literal["bursts", "chirp", "noise"]

#: Peak level of the generated signals (about -6 dBFS).
PEAK = 0.5
#: Length of the windows of the local alignment: one window of speech, many frames long.
LOCAL_WINDOW_SECONDS = 0.5
#: Step between two windows of the local alignment: half a 20 ms frame, so one window ends
#: within 5 ms of any lag change.
LOCAL_HOP_SECONDS = 0.01
#: How far a window's own lag may be from the global lag: three 20 ms frames either way.
MAX_DRIFT_SECONDS = 0.06


# -- WAV files ------------------------------------------------------------------------------


def read_wav_mono(path: str | Path) -> tuple[int, Signal]:
    """``(rate, samples)`` of a PCM WAV file as float64 in [-1, 1), channels averaged."""
    with wave.open(str(path), "rb") as wav:
        rate = wav.getframerate()
        channels = wav.getnchannels()
        width = wav.getsampwidth()
        raw = wav.readframes(wav.getnframes())
    if width == 1:
        data = (np.frombuffer(raw, np.uint8).astype(np.float64) - 128.0) / 128.0
    elif width == 2:
        data = np.frombuffer(raw, "<i2").astype(np.float64) / 32768.0
    elif width == 3:
        b = np.frombuffer(raw, np.uint8).reshape(-1, 3).astype(np.int32)
        ints = b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)
        ints = np.where(ints >= 1 << 23, ints - (1 << 24), ints)
        data = ints.astype(np.float64) / float(1 << 23)
    elif width == 4:
        data = np.frombuffer(raw, "<i4").astype(np.float64) / float(1 << 31)
    else:
        raise ValueError(f"{path}: unsupported sample width {width} bytes")
    if channels > 1:
        usable = len(data) - len(data) % channels
        data = data[:usable].reshape(-1, channels).mean(axis=1)
    return rate, data


def write_wav_mono(path: str | Path, rate: int, samples: npt.ArrayLike) -> None:
    """Write float samples in [-1, 1) as a mono 16-bit PCM WAV (x 32768, rounded, clipped).

    The inverse of :func:`read_wav_mono` for 16-bit files: a read-write round trip is exact.
    """
    x = np.asarray(samples, dtype=np.float64)
    pcm = np.clip(np.round(x * 32768.0), -32768, 32767).astype("<i2")
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(pcm.tobytes())


# -- test signals ---------------------------------------------------------------------------


def _band_noise(
    rng: np.random.Generator, count: int, rate: int, band: tuple[float, float]
) -> Signal:
    """White noise with everything outside ``band`` (Hz) removed, unit RMS."""
    spectrum = np.fft.rfft(rng.standard_normal(count))
    freqs = np.fft.rfftfreq(count, 1.0 / rate)
    low, high = band
    high = min(high, 0.45 * rate)
    spectrum[(freqs < low) | (freqs > high)] = 0.0
    noise = np.fft.irfft(spectrum, count)
    rms = float(np.sqrt(np.mean(noise**2)))
    return noise / rms if rms > 0 else noise


def _burst_envelope(rng: np.random.Generator, count: int, rate: int) -> Signal:
    """Syllable-like on/off envelope: bursts of 80-350 ms, gaps of 30-200 ms, random levels.

    Attack and release are raised-cosine ramps of 15 ms, so there are no clicks.
    """
    env = np.zeros(count)
    ramp = max(1, int(0.015 * rate))
    rise = 0.5 - 0.5 * np.cos(np.linspace(0.0, np.pi, ramp))
    pos = int(rng.uniform(0.0, 0.05) * rate)
    while pos < count:
        length = int(rng.uniform(0.08, 0.35) * rate)
        level = rng.uniform(0.35, 1.0)
        end = min(count, pos + length)
        shape = np.full(end - pos, level)
        n = min(ramp, len(shape) // 2)
        if n:
            shape[:n] *= rise[:n]
            shape[len(shape) - n :] *= rise[:n][::-1]
        env[pos:end] = shape
        pos = end + int(rng.uniform(0.03, 0.2) * rate)
    return env


def make_signal(
    rate: int,
    seconds: float,
    kind: SignalKind = "bursts",
    *,
    seed: int = 0,
    band: tuple[float, float] = (300.0, 3400.0),
) -> Signal:
    """A non-periodic, speech-like test signal as float64, peak :data:`PEAK`.

    ``bursts``: band-limited noise in syllable-like bursts (the default);
    ``noise``: continuous band-limited noise with a slow random amplitude envelope;
    ``chirp``: a logarithmic sweep across ``band`` with a slow amplitude envelope.
    ``seed`` picks the noise, so two seeds give two unrelated ``bursts`` or ``noise`` signals
    (correlation near 0); two chirps differ only in phase and still correlate about 0.5, so
    use ``bursts`` when the two sides of a call must be told apart.
    """
    if rate <= 0 or seconds <= 0:
        raise ValueError(f"rate and seconds must be positive, got {rate} Hz, {seconds} s")
    count = round(rate * seconds)
    rng = np.random.default_rng(seed)
    t = np.arange(count) / rate
    if kind == "bursts":
        x = _band_noise(rng, count, rate, band) * _burst_envelope(rng, count, rate)
    elif kind == "noise":
        slow = _band_noise(rng, count, rate, (0.5, 4.0))
        x = _band_noise(rng, count, rate, band) * (0.65 + 0.3 * np.tanh(slow))
    elif kind == "chirp":
        low, high = band[0], min(band[1], 0.45 * rate)
        k = np.log(high / low) / seconds
        phase = 2.0 * np.pi * low * (np.exp(k * t) - 1.0) / k
        x = np.sin(phase + rng.uniform(0.0, 2.0 * np.pi))
        x *= 0.6 + 0.35 * np.sin(2.0 * np.pi * 1.7 * t + rng.uniform(0.0, 2.0 * np.pi))
    else:
        raise ValueError(f"unknown signal kind {kind!r}: expected bursts, noise or chirp")
    peak = float(np.max(np.abs(x)))
    return x * (PEAK / peak) if peak > 0 else x


def make_test_wav(
    path: str | Path,
    rate: int = 8000,
    seconds: float = 20.0,
    kind: SignalKind = "bursts",
    *,
    seed: int = 0,
    band: tuple[float, float] = (300.0, 3400.0),
) -> Signal:
    """Write :func:`make_signal` to ``path`` (mono 16-bit) and return the samples written.

    The returned array is what the file holds (quantised to 16 bits), ready to be used as
    the reference of :func:`best_alignment`.
    """
    x = make_signal(rate, seconds, kind, seed=seed, band=band)
    write_wav_mono(path, rate, x)
    return np.round(x * 32768.0) / 32768.0


# -- comparison -----------------------------------------------------------------------------


def resample(samples: npt.ArrayLike, from_rate: int, to_rate: int) -> Signal:
    """Resample with soxr (very high quality); the same array back if the rates match."""
    x = np.asarray(samples, dtype=np.float64)
    if from_rate == to_rate:
        return x
    return np.asarray(soxr.resample(x, from_rate, to_rate, quality="VHQ"), dtype=np.float64)


def normalised_correlation(a: npt.ArrayLike, b: npt.ArrayLike) -> float:
    """Pearson correlation of two equally long signals: 1 same shape, 0 unrelated.

    Means are removed first, so a DC offset does not count; gain does not count either.
    A silent (constant) input gives 0.0.
    """
    x = np.asarray(a, dtype=np.float64)
    y = np.asarray(b, dtype=np.float64)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError(f"need two 1-D signals of equal length, got {x.shape} and {y.shape}")
    x = x - x.mean()
    y = y - y.mean()
    energy = float(np.sqrt(np.dot(x, x) * np.dot(y, y)))
    if energy == 0.0:
        return 0.0
    return float(np.dot(x, y) / energy)


def _cross_correlation(reference: Signal, probe: Signal) -> tuple[Signal, int]:
    """``c[k] = sum_i reference[i + k] * probe[i]`` for k from ``-(len(probe) - 1)``.

    Returns the array and the offset of k = 0 in it.
    """
    size = len(reference) + len(probe) - 1
    n = 1 << (size - 1).bit_length()
    spectrum = np.fft.rfft(reference, n) * np.conj(np.fft.rfft(probe, n))
    circular = np.fft.irfft(spectrum, n)
    # Non-negative k sit at the start, negative k wrap around to the end.
    linear = np.concatenate((circular[n - (len(probe) - 1) :], circular[: len(reference)]))
    return linear, len(probe) - 1


def best_alignment(
    reference: npt.ArrayLike,
    recording: npt.ArrayLike,
    rate: int,
    *,
    skip_seconds: float = 0.5,
    window_seconds: float | None = None,
) -> tuple[int, float]:
    """``(lag_samples, correlation)`` of ``recording`` against ``reference`` (same ``rate``).

    ``recording[n] ~ reference[n - lag]``. The first ``skip_seconds`` of the recording are
    ignored; ``window_seconds`` (default: all the rest) limits the part of the recording used
    to find the lag. The correlation is :func:`normalised_correlation` over every sample the
    two have in common at that lag (after the skip), so a slip later in the recording shows.
    A silent recording gives ``(0, 0.0)``. ValueError when the recording is too short or
    nothing overlaps.
    """
    ref = np.asarray(reference, dtype=np.float64)
    rec = np.asarray(recording, dtype=np.float64)
    skip = round(skip_seconds * rate)
    if len(rec) - skip < rate // 10:
        raise ValueError(
            f"recording too short: {len(rec) / rate:.3f} s, need more than "
            f"{skip_seconds + 0.1:.1f} s (skip {skip_seconds} s + 0.1 s)"
        )
    if len(ref) < rate // 10:
        raise ValueError(f"reference too short: {len(ref) / rate:.3f} s")
    tail = rec[skip:]
    if not np.any(tail):
        return 0, 0.0  # silence: nothing to align, nothing in common
    probe = tail
    if window_seconds is not None:
        probe = tail[: max(1, round(window_seconds * rate))]
    corr, zero = _cross_correlation(ref, probe)
    k = int(np.argmax(corr)) - zero  # probe[i] ~ ref[i + k]
    lag = skip - k
    # Overlap of tail[i] with ref[i + k]: i >= max(0, -k), i + k < len(ref).
    start = max(0, -k)
    stop = min(len(tail), len(ref) - k)
    if stop - start < 2:
        raise ValueError("recording and reference do not overlap at the best lag")
    value = normalised_correlation(tail[start:stop], ref[start + k : stop + k])
    return lag, value


@dataclass(frozen=True, slots=True)
class LocalAlignment:
    """The verdict of :func:`local_alignment`."""

    #: Worst, over the samples judged, of the best window containing the sample.
    correlation: float
    #: ``(first sample, lag)`` of each run of samples whose best window has that lag, in order:
    #: one run when the playout delay never changed.
    lag_track: tuple[tuple[int, int], ...]
    #: The samples of the recording judged: ``start`` to ``stop`` (exclusive).
    start: int
    stop: int


def local_alignment(
    reference: npt.ArrayLike,
    recording: npt.ArrayLike,
    rate: int,
    lag: int,
    *,
    skip_seconds: float = 0.5,
    window_seconds: float = LOCAL_WINDOW_SECONDS,
    hop_seconds: float = LOCAL_HOP_SECONDS,
    max_drift_seconds: float = MAX_DRIFT_SECONDS,
) -> LocalAlignment:
    """Align ``recording`` against ``reference`` window by window, around the global ``lag``.

    Windows of ``window_seconds`` start every ``hop_seconds``; each takes the lag within
    ``max_drift_seconds`` of ``lag`` where its correlation with the reference, divided by the
    reference's norm there, peaks, and its :func:`normalised_correlation` at that lag. Every
    sample judged gets the best value of the windows that contain it, and the verdict is the
    worst sample's (see the module docstring for what that proves).

    The samples judged run from ``skip_seconds`` to one window before the end of the recording
    (or of the reference), and windows reach up to one window beyond them on either side: a lag
    change anywhere in them, even right after the skip or just before the end, then has a clean
    window on each side. ValueError when less than one window is left to judge.
    """
    ref = np.asarray(reference, dtype=np.float64)
    rec = np.asarray(recording, dtype=np.float64)
    drift = round(max_drift_seconds * rate)
    width = round(window_seconds * rate)
    hop = max(1, round(hop_seconds * rate))
    # Every window must find reference samples at every lag allowed: rec[n] ~ ref[n - lag].
    lowest = max(0, lag + drift)
    highest = min(len(rec), len(ref) + lag - drift)
    start = max(round(skip_seconds * rate), lowest)
    stop = highest - width
    if width < 2 or stop - start < width:
        raise ValueError(
            f"recording too short: {max(0, stop - start) / rate:.3f} s of it to judge after the "
            f"skip and before the last window, need {window_seconds} s"
        )
    earlier = min(width // hop, (start - lowest) // hop)  # windows reaching back before start
    origin = start - earlier * hop
    starts = range(origin, stop, hop)  # the last ones reach ``highest``, never beyond

    span = width + 2 * drift  # the reference samples one window can meet
    size = 1 << (span - 1).bit_length()  # no wrap-around for the lags searched
    energy = np.concatenate(([0.0], np.cumsum(ref * ref)))
    best = np.full(highest - origin, -np.inf)
    best_lag = np.zeros(highest - origin, dtype=np.int64)
    for first in starts:
        probe = rec[first : first + width]
        base = first - lag - drift  # reference index of the window at lag + drift
        spectrum = np.fft.rfft(ref[base : base + span], size) * np.conj(np.fft.rfft(probe, size))
        # scores[k] = sum_i ref[base + k + i] * probe[i]: the window at lag + drift - k.
        scores = np.fft.irfft(spectrum, size)[: 2 * drift + 1]
        ref_energy = energy[base + width : base + span + 1] - energy[base : base + 2 * drift + 1]
        k = int(np.argmax(scores / np.sqrt(np.maximum(ref_energy, 1e-30))))
        window_lag = lag + drift - k
        value = normalised_correlation(probe, ref[first - window_lag : first - window_lag + width])
        view = slice(first - origin, first - origin + width)
        better = value > best[view]
        best[view][better] = value
        best_lag[view][better] = window_lag

    best, best_lag = best[start - origin : stop - origin], best_lag[start - origin : stop - origin]
    changes = np.flatnonzero(np.diff(best_lag)) + 1
    track = [(start, int(best_lag[0]))]
    track.extend((start + int(i), int(best_lag[i])) for i in changes)
    return LocalAlignment(float(best.min()), tuple(track), start, stop)


@dataclass(frozen=True, slots=True)
class Comparison:
    """The verdict of :func:`compare_wavs`; ``str()`` reads well in an assertion message."""

    rate: int
    #: The global lag, and the correlation over the whole compared recording at that one lag.
    lag_samples: int
    correlation: float
    reference_seconds: float
    recording_seconds: float
    #: Correlation of each consecutive 0.5 s piece (after the skip) at the global lag;
    #: a dropped or inserted frame shows as a dip from there on.
    segments: tuple[float, ...]
    #: :attr:`LocalAlignment.correlation`: what a test with an adaptive playout asserts.
    local_correlation: float
    #: :attr:`LocalAlignment.lag_track` in seconds: ``(recording time, lag)`` of each run.
    lag_track: tuple[tuple[float, float], ...]
    #: Seconds of the recording the local correlation judges.
    compared_seconds: float

    @property
    def lag_seconds(self) -> float:
        return self.lag_samples / self.rate

    def __str__(self) -> str:
        pieces = " ".join(f"{s:.2f}" for s in self.segments)
        track = ", ".join(f"{lag * 1000:.1f} ms from {t:.2f} s" for t, lag in self.lag_track)
        return (
            f"local correlation {self.local_correlation:.4f} over {self.compared_seconds:.2f} s "
            f"(lag {track}); global correlation {self.correlation:.4f} at lag "
            f"{self.lag_samples} samples ({self.lag_seconds * 1000:.1f} ms) at {self.rate} Hz; "
            f"reference {self.reference_seconds:.2f} s, recording {self.recording_seconds:.2f} s; "
            f"per 0.5 s at the global lag: {pieces}"
        )


def compare_signals(
    reference: npt.ArrayLike, recording: npt.ArrayLike, rate: int, *, skip_seconds: float = 0.5
) -> Comparison:
    """Align two signals at the same ``rate``, globally and window by window."""
    ref = np.asarray(reference, dtype=np.float64)
    rec = np.asarray(recording, dtype=np.float64)
    lag, value = best_alignment(ref, rec, rate, skip_seconds=skip_seconds)
    local = local_alignment(ref, rec, rate, lag, skip_seconds=skip_seconds)
    segments: list[float] = []
    piece = rate // 2
    first = max(round(skip_seconds * rate), lag)
    for start in range(first, len(rec) - piece + 1, piece):
        if start - lag + piece > len(ref):
            break
        segments.append(
            normalised_correlation(
                rec[start : start + piece], ref[start - lag : start - lag + piece]
            )
        )
    return Comparison(
        rate=rate,
        lag_samples=lag,
        correlation=value,
        reference_seconds=len(ref) / rate,
        recording_seconds=len(rec) / rate,
        segments=tuple(segments),
        local_correlation=local.correlation,
        lag_track=tuple((at / rate, run_lag / rate) for at, run_lag in local.lag_track),
        compared_seconds=(local.stop - local.start) / rate,
    )


def compare_wavs(
    reference: str | Path, recording: str | Path, *, skip_seconds: float = 0.5
) -> Comparison:
    """Read two WAV files, bring them to the higher rate, and :func:`compare_signals`."""
    ref_rate, ref = read_wav_mono(reference)
    rec_rate, rec = read_wav_mono(recording)
    rate = max(ref_rate, rec_rate)
    ref, rec = resample(ref, ref_rate, rate), resample(rec, rec_rate, rate)
    return compare_signals(ref, rec, rate, skip_seconds=skip_seconds)
