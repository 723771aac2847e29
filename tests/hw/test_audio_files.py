"""WAV, tone and null sources and sinks, and the spec dispatch in intercom.hw.audio."""

from __future__ import annotations

import math
import wave
from pathlib import Path

import numpy as np
import pytest

from intercom.hw.audio import (
    AudioDeviceError,
    AudioSource,
    open_sink,
    open_source,
    validate_spec,
)
from intercom.hw.audio_files import (
    HEADER_EVERY,
    TONE_AMPLITUDE,
    NullSink,
    NullSource,
    ToneSource,
    WavSink,
    WavSource,
    read_wav,
)
from tests.pcm_arrays import pcm, samples


def write_wav(path: Path, samples: np.ndarray, rate: int, channels: int = 1, width: int = 2):
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(channels)
        wav.setsampwidth(width)
        wav.setframerate(rate)
        wav.writeframes(samples.tobytes())


def read_frames(source: AudioSource, count: int) -> list[np.ndarray]:
    frames = [source.read_frame() for _ in range(count)]
    assert all(type(frame) is bytes for frame in frames)  # file sources always have a frame
    return [samples(frame) for frame in frames if frame is not None]


def peak_frequency(samples: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(samples.astype(np.float64) * np.hanning(len(samples))))
    return float(np.fft.rfftfreq(len(samples), 1 / rate)[np.argmax(spectrum)])


def test_wav_source_loops_and_delivers_exact_frames(tmp_path: Path) -> None:
    data = (np.arange(400) * 37 - 7000).astype("<i2")  # 2.5 frames at 8 kHz
    write_wav(tmp_path / "short.wav", data, 8000)
    source = open_source(f"wav:{tmp_path / 'short.wav'}", 8000)
    assert isinstance(source, WavSource)
    source.start()
    frames = read_frames(source, 6)
    assert all(len(f) == 160 for f in frames)
    assert np.array_equal(np.concatenate(frames), np.tile(data, 3)[:960])
    assert source.stats() == {"frames": 6, "loops": 2}
    source.close()
    source.close()


def test_wav_source_downmixes_and_resamples_44100_stereo_to_8000(tmp_path: Path) -> None:
    t = np.arange(44100) / 44100
    left = np.rint(12000 * np.sin(2 * np.pi * 700 * t))
    right = np.rint(4000 * np.sin(2 * np.pi * 700 * t))
    stereo = np.stack([left, right], axis=1).astype("<i2")
    write_wav(tmp_path / "cd.wav", stereo, 44100, channels=2)
    source = open_source(f"wav:{tmp_path / 'cd.wav'}", 8000)
    mono = np.concatenate(read_frames(source, 50))  # 1 s
    assert len(mono) == 8000
    assert peak_frequency(mono, 8000) == pytest.approx(700, abs=5)
    assert np.max(np.abs(mono[400:-400])) == pytest.approx(8000, rel=0.02)  # (12000 + 4000) / 2


@pytest.mark.parametrize(
    ("width", "raw", "expected"),
    [
        (1, bytes([0, 128, 255]), [-32768, 0, 32512]),
        (3, bytes([0x56, 0x34, 0x12, 0xFF, 0xFF, 0xFF, 0x00, 0x00, 0x80]), [0x1234, -1, -32768]),
        (4, np.array([0x12345678, -65536], dtype="<i4").tobytes(), [0x1234, -1]),
    ],
)
def test_wav_sample_widths_become_the_top_16_bits(tmp_path, width, raw, expected) -> None:
    path = tmp_path / f"w{width}.wav"
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(width)
        wav.setframerate(8000)
        wav.writeframes(raw)
    assert samples(read_wav(str(path), 8000)).tolist() == expected


def test_a_mono_16_bit_file_at_the_codec_rate_is_its_own_bytes(tmp_path: Path) -> None:
    data = (np.arange(-4000, 4000, 3)).astype("<i2")
    write_wav(tmp_path / "voice.wav", data, 8000)
    assert read_wav(str(tmp_path / "voice.wav"), 8000) == data.astype(np.int16).tobytes()


def test_wav_conversions_agree_with_the_numpy_ones(tmp_path: Path) -> None:
    # 8, 24 and 32-bit stereo files at the codec rate, against the numpy arithmetic that
    # converted them before frames became bytes: the top 16 bits of each sample, then the
    # channels' mean rounded down.
    rng = np.random.default_rng(2)
    wide = rng.integers(-(2**31), 2**31, (500, 2), dtype=np.int64)
    for width in (1, 3, 4):
        if width == 1:
            raw_values = rng.integers(0, 256, (500, 2)).astype(np.uint8)
            raw = raw_values.tobytes()
            top = (raw_values.astype(np.int32) - 128) << 8
        else:
            as_int = wide >> (8 * (4 - width))  # a sample of this width, as an integer
            full = as_int.astype("<i4").view(np.uint8).reshape(500, 2, 4)
            raw = full[:, :, :width].tobytes()  # its little-endian bytes
            top = as_int >> (8 * (width - 2))
        path = tmp_path / f"w{width}.wav"
        with wave.open(str(path), "wb") as wav:
            wav.setnchannels(2)
            wav.setsampwidth(width)
            wav.setframerate(8000)
            wav.writeframes(raw)
        expected = (top.astype(np.int32).sum(axis=1) // 2).astype(np.int16)
        assert samples(read_wav(str(path), 8000)).tolist() == expected.tolist(), width


def test_wav_sink_writes_the_exact_frames_and_survives_double_close(tmp_path: Path) -> None:
    path = tmp_path / "rec.wav"
    sink = open_sink(f"wav:{path}", 16000)
    assert isinstance(sink, WavSink)
    sink.start()
    frames = [np.arange(320, dtype=np.int16) * n for n in range(-3, 4)]
    for frame in frames * HEADER_EVERY:
        sink.write_frame(pcm(frame))
    with wave.open(str(path), "rb") as early:  # the header is brought up to date every second
        assert early.getnframes() == 7 * HEADER_EVERY * 320
    sink.close()
    sink.close()
    sink.write_frame(pcm(frames[0]))
    assert sink.stats() == {"frames": 7 * HEADER_EVERY, "dropped": 1}
    with wave.open(str(path), "rb") as wav:
        assert (wav.getnchannels(), wav.getsampwidth(), wav.getframerate()) == (1, 2, 16000)
        recorded = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2")
    assert np.array_equal(recorded, np.concatenate(frames * HEADER_EVERY))


def test_tone_source_frequency_level_and_phase_continuity() -> None:
    source = open_source("tone:440", 8000)
    assert isinstance(source, ToneSource)
    frames = read_frames(source, 50)
    assert all(len(f) == 160 for f in frames)
    signal = np.concatenate(frames).astype(np.float64)
    assert peak_frequency(signal, 8000) == pytest.approx(440, abs=5)
    ideal = TONE_AMPLITUDE * np.sin(2 * np.pi * 440 * np.arange(8000) / 8000)
    assert np.max(np.abs(signal - ideal)) <= 1  # continuous across frame edges
    assert 20 * math.log10(np.max(np.abs(signal)) / 32767) == pytest.approx(-12, abs=0.05)


def test_tone_at_16000_has_320_sample_frames() -> None:
    frame = open_source("Tone: 1000.5", 16000).read_frame()
    assert frame is not None and len(frame) == 640


def test_null_source_gives_silence_and_null_sink_discards() -> None:
    source = open_source("null", 16000)
    assert isinstance(source, NullSource)
    assert source.read_frame() == bytes(640)
    sink = open_sink("NULL", 8000)
    assert isinstance(sink, NullSink)
    sink.write_frame(pcm(np.ones(160)))
    assert sink.stats() == {"frames": 1}
    sink.close()
    sink.close()


@pytest.mark.parametrize(
    ("opener", "spec", "message"),
    [
        (open_source, "wav:/nonexistent/door.wav", "wav:/nonexistent/door.wav: file not found"),
        (open_source, "wav:", "a file path must follow 'wav:'"),
        (open_source, "tone:abc", "'tone:abc': the frequency must be a number of Hz"),
        (open_source, "tone:-5", "must be above 0"),
        (open_source, "tone:5000", "between 0 and 4000 Hz at a sample rate of 8000 Hz"),
        (open_sink, "tone:440", "tone: is an input only"),
        (open_sink, "wav:/nonexistent/dir/out.wav", "cannot create"),
        (open_source, "  ", "audio input is empty"),
    ],
)
def test_open_errors_name_the_spec_and_the_problem(opener, spec, message) -> None:
    with pytest.raises(AudioDeviceError) as error:
        opener(spec, 8000)
    assert message in str(error.value)


def test_wav_source_rejects_a_file_that_is_not_pcm_wav(tmp_path: Path) -> None:
    (tmp_path / "notes.wav").write_text("not audio")
    with pytest.raises(AudioDeviceError, match="not a PCM WAV file"):
        open_source(f"wav:{tmp_path / 'notes.wav'}", 8000)
    write_wav(tmp_path / "empty.wav", np.zeros(0, dtype="<i2"), 8000)
    with pytest.raises(AudioDeviceError, match="holds no audio"):
        open_source(f"wav:{tmp_path / 'empty.wav'}", 8000)


def test_validate_spec(tmp_path: Path) -> None:
    good = tmp_path / "good.wav"
    write_wav(good, np.zeros(800, dtype="<i2"), 8000)
    assert validate_spec("null", "input") is None
    assert validate_spec("null", "output") is None
    assert validate_spec("tone:440", "input") is None
    assert validate_spec(f"wav:{good}", "input") is None
    assert validate_spec(f"wav:{tmp_path / 'new.wav'}", "output") is None
    assert not (tmp_path / "new.wav").exists()  # checking creates nothing
    problems = {
        ("tone:440", "output"): "tone: is an input only",
        ("tone:abc", "input"): "must be a number of Hz",
        (f"wav:{tmp_path / 'missing.wav'}", "input"): "file not found",
        (f"wav:{tmp_path / 'no' / 'out.wav'}", "output"): "does not exist",
        (f"wav:{tmp_path}", "output"): "is a directory",
        ("", "output"): "audio output is empty",
    }
    for (spec, kind), expected in problems.items():
        problem = validate_spec(spec, kind)  # type: ignore[arg-type]
        assert problem is not None and expected in problem, (spec, kind, problem)
