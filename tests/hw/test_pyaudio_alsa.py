"""PyAudio devices: the real PyAudio -> PortAudio -> ALSA path, and the callback logic alone.

The first part runs :class:`PyAudioSource` / :class:`PyAudioSink` in a child process whose ALSA
is a sound card made of files (``tests/hw/alsa_file_plugin.py``): what is played lands in a raw
file and what is captured comes from one, so samples can be compared bit for bit. It needs
PortAudio (libportaudio2, portaudio19-dev to build PyAudio) and libasound2, nothing more.

The second part calls the ring and the stream callbacks directly, without PortAudio, to pin
down overflow, underflow, priming and error handling exactly.
"""

from __future__ import annotations

import json
import logging
import threading
from pathlib import Path

import numpy as np
import pytest

from intercom.hw.audio import AudioDeviceError
from intercom.hw.audio_bridge import PA_CONTINUE, CaptureBridge, PlaybackBridge, StreamFormat
from intercom.hw.pyaudio_device import DeviceInfo, choose_format, select_device
from intercom.hw.ring import SampleRing
from tests.hw.alsa_file_plugin import STEREO_48K_DEVICE, AlsaSandbox, alsa_sandbox, run_python
from tests.pcm_arrays import pcm, samples


@pytest.fixture
def alsa(tmp_path: Path) -> AlsaSandbox:
    return alsa_sandbox(tmp_path)


def peak_frequency(samples: np.ndarray, rate: int) -> float:
    windowed = samples.astype(np.float64) * np.hanning(len(samples))
    spectrum = np.abs(np.fft.rfft(windowed))
    return float(np.fft.rfftfreq(len(samples), 1 / rate)[np.argmax(spectrum)])


def find_run(haystack: np.ndarray, needle: np.ndarray) -> list[int]:
    """Every offset at which ``needle`` occurs in ``haystack``."""
    key = int(np.flatnonzero(needle)[0])  # anchor on a non-zero sample: silence is everywhere
    starts = np.flatnonzero(haystack == needle[key]) - key
    return [
        int(s)
        for s in starts
        if s >= 0
        and s + len(needle) <= len(haystack)
        and np.array_equal(haystack[s : s + len(needle)], needle)
    ]


# --- through PortAudio and ALSA, in a child process -------------------------------------------

CAPTURE = """
import json, sys, time
import numpy as np
from intercom.hw.pyaudio_device import PyAudioSource
spec, rate, count, out, options = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], \
    json.loads(sys.argv[5])
source = PyAudioSource(spec, rate, **options)
source.start()
frames = []
deadline = time.monotonic() + 10
while len(frames) < count and time.monotonic() < deadline:
    frame = source.read_frame()
    if frame is None:
        time.sleep(0.0005)
    else:
        frames.append(frame)
stats = source.stats()
source.close()
source.close()
np.save(out, np.frombuffer(b"".join(frames), dtype=np.int16))
print(json.dumps({"format": [source.format.rate, source.format.channels], "stats": stats,
                  "lengths": [len(f) // 2 for f in frames]}))
"""

PLAYBACK = """
import json, sys, time
import numpy as np
from intercom.hw.audio_files import ToneSource
from intercom.hw.pyaudio_device import PyAudioSink
spec, rate, count, out, options = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], \
    json.loads(sys.argv[5])
sink = PyAudioSink(spec, rate, **options)
tone = ToneSource(1000.0, rate)
frames = [tone.read_frame() for _ in range(count)]
for frame in frames:
    sink.write_frame(frame)
sink.start()
deadline = time.monotonic() + 10
while sink.stats()["buffered_ms"] > 0 and time.monotonic() < deadline:
    time.sleep(0.001)
stats = sink.stats()
sink.close()
sink.close()
np.save(out, np.frombuffer(b"".join(frames), dtype=np.int16))
print(json.dumps({"format": [sink.format.rate, sink.format.channels], "stats": stats}))
"""


def test_tone_played_at_16000_mono_lands_bit_exact_in_the_alsa_file(alsa: AlsaSandbox) -> None:
    written_path = alsa.directory / "written.npy"
    result = run_python(alsa, PLAYBACK, "default", "16000", "8", str(written_path), "{}")
    report = json.loads(result.stdout)
    assert report["format"] == [16000, 1]  # the codec rate in mono: no conversion anywhere
    assert report["stats"]["frames"] == 8
    assert report["stats"]["overflows"] == 0
    written = np.load(written_path)
    assert len(written) == 8 * 320
    played = np.fromfile(alsa.playback, dtype="<i2")
    assert len(played) > len(written)
    assert len(find_run(played, written)) == 1


def test_capture_at_16000_mono_returns_the_input_file_bit_exact(alsa: AlsaSandbox) -> None:
    pattern = np.random.default_rng(7).integers(-32768, 32768, 16000 * 10, dtype=np.int16)
    pattern.astype("<i2").tofile(alsa.capture)
    frames_path = alsa.directory / "frames.npy"
    result = run_python(alsa, CAPTURE, "default", "16000", "25", str(frames_path), "{}")
    report = json.loads(result.stdout)
    assert report["format"] == [16000, 1]
    assert report["lengths"] == [320] * 25
    frames = np.load(frames_path).reshape(25, 320)
    offsets = find_run(pattern, frames[0])
    assert len(offsets) == 1
    start = offsets[0]
    run = 0
    while run < 25 and np.array_equal(
        frames[run], pattern[start + run * 320 : start + (run + 1) * 320]
    ):
        run += 1
    # The ring holds 200 ms (10 frames); an unpaced null device fills it at once, so at least
    # those 10 frames are one contiguous stretch of the file.
    assert run >= 10
    # ...and the device, hundreds of times faster than real time, overflowed it: counted.
    assert report["stats"]["overflows"] > 0
    assert report["stats"]["callback_errors"] == 0


def test_capture_from_48k_stereo_device_is_downmixed_and_resampled_to_8000(
    alsa: AlsaSandbox,
) -> None:
    t = np.arange(48000 * 10) / 48000
    left = np.rint(12000 * np.sin(2 * np.pi * 1000 * t))
    right = np.rint(4000 * np.sin(2 * np.pi * 1000 * t))
    np.stack([left, right], axis=1).astype("<i2").tofile(alsa.capture_48k)
    frames_path = alsa.directory / "frames.npy"
    options = json.dumps({"device_rate": 48000, "device_channels": 2})
    result = run_python(alsa, CAPTURE, STEREO_48K_DEVICE, "8000", "10", str(frames_path), options)
    report = json.loads(result.stdout)
    assert report["format"] == [48000, 2]
    assert report["lengths"] == [160] * 10  # 20 ms frames at 8 kHz
    mono = np.load(frames_path)
    # The first 200 ms ring-full is one contiguous stretch of the file; after the resampler's
    # ~35 ms latency it yields the first ~8 frames. Look at 100 ms within them, past the
    # filter's start-up transient.
    steady = mono[400:1200]
    assert peak_frequency(steady, 8000) == pytest.approx(1000, abs=10)
    # Down-mixing averages the channels: (12000 + 4000) / 2.
    assert np.max(np.abs(steady)) == pytest.approx(8000, rel=0.03)


def test_playback_at_8000_on_48k_stereo_device_is_resampled_and_duplicated(
    alsa: AlsaSandbox,
) -> None:
    written_path = alsa.directory / "written.npy"
    options = json.dumps({"device_rate": 48000, "device_channels": 2})
    result = run_python(alsa, PLAYBACK, STEREO_48K_DEVICE, "8000", "8", str(written_path), options)
    report = json.loads(result.stdout)
    assert report["format"] == [48000, 2]
    assert report["stats"]["overflows"] == 0
    played = np.fromfile(alsa.playback_48k, dtype="<i2").reshape(-1, 2)
    assert np.array_equal(played[:, 0], played[:, 1])
    loud = np.flatnonzero(np.abs(played[:, 0]) > 1000)
    tone = played[loud[0] : loud[0] + 4800, 0]  # 100 ms of the tone at 48 kHz
    assert peak_frequency(tone, 48000) == pytest.approx(1000, abs=10)
    assert np.max(np.abs(tone)) == pytest.approx(8231, rel=0.03)


DEVICES = """
import json
from intercom.hw.audio import AudioDeviceError, validate_spec
from intercom.hw.pyaudio_device import PyAudioSink, PyAudioSource, find_device, list_devices
report = {"devices": [[d.index, d.name, d.max_input_channels, d.max_output_channels]
                      for d in list_devices()],
          "default_input": find_device("default", "input").name,
          "fragment": find_device("STEREO48", "output").name,
          "errors": []}
for make in (lambda: PyAudioSource("no-such-microphone", 8000),
             lambda: PyAudioSink("7777", 8000)):
    try:
        make()
    except AudioDeviceError as error:
        report["errors"].append(str(error))
report["check"] = validate_spec("no-such-microphone", "input")
report["check_ok"] = validate_spec("default", "output")
print(json.dumps(report))
"""


def test_device_lookup_and_unknown_device_errors_list_the_available_devices(
    alsa: AlsaSandbox,
) -> None:
    report = json.loads(run_python(alsa, DEVICES).stdout)
    names = sorted(name for _, name, _, _ in report["devices"])
    assert names == sorted(["default", STEREO_48K_DEVICE])
    assert report["default_input"] == "default"
    assert report["fragment"] == STEREO_48K_DEVICE
    missing, bad_index = report["errors"]
    assert "'no-such-microphone'" in missing
    assert "Available input devices:" in missing
    assert ": default (" in missing and f": {STEREO_48K_DEVICE} (" in missing
    assert "'7777'" in bad_index and "Available output devices:" in bad_index
    assert report["check"] == missing
    assert report["check_ok"] is None


# --- the ring and the callbacks, without PortAudio ---------------------------------------------


def block(values: np.ndarray) -> bytes:
    return values.astype(np.int16).tobytes()


def test_ring_keeps_order_across_wraparound() -> None:
    ring = SampleRing(7)
    expected: list[int] = []
    produced = 0
    rng = np.random.default_rng(3)
    for _ in range(500):
        count = int(rng.integers(0, 5))
        data = np.arange(produced, produced + count, dtype=np.int16)
        if ring.write(pcm(data)):
            expected.extend(data.tolist())
            produced += count
        else:
            assert count > ring.free
        taken = samples(ring.read_up_to(int(rng.integers(0, 5))))
        assert taken.tolist() == expected[: len(taken)]
        del expected[: len(taken)]
        assert ring.available == len(expected)
    assert ring.read(len(expected) + 1) is None
    assert ring.available == len(expected)


def test_ring_between_threads_loses_only_whole_blocks_and_keeps_order() -> None:
    ring = SampleRing(64)
    blocks = 20000

    def produce() -> None:
        for number in range(blocks):
            ring.write(pcm(np.full(8, number % 30000)))

    producer = threading.Thread(target=produce)
    producer.start()
    received: list[bytes] = []
    while producer.is_alive() or ring.available:
        received.append(ring.read_up_to(32))
    producer.join()
    values = samples(b"".join(received))
    assert len(values) % 8 == 0
    blocks_seen = values.reshape(-1, 8)
    assert (blocks_seen == blocks_seen[:, :1]).all()  # no block was torn
    assert (np.diff(blocks_seen[:, 0].astype(np.int32)) > 0).all()  # in order, none twice


def test_capture_callback_counts_overflow_logs_once_and_never_raises(caplog) -> None:
    bridge = CaptureBridge(16000, StreamFormat(16000, 1))  # 200 ms ring: 10 frames
    blocks = [np.arange(320) + 1000 * n for n in range(12)]
    for values in blocks:
        assert bridge.callback(block(values), 320, {}, 0) == (None, PA_CONTINUE)
    assert bridge.overflows == 2
    with caplog.at_level(logging.WARNING, logger="intercom.hw.pyaudio_device"):
        first = bridge.read_frame()
        assert bridge.callback(block(blocks[0]), 320, {}, 0) == (None, PA_CONTINUE)
        bridge.callback(block(blocks[0]), 320, {}, 0)
        bridge.read_frame()
    assert first == block(blocks[0])
    assert bridge.overflows == 3
    warnings = [r for r in caplog.records if "capture buffer full" in r.getMessage()]
    assert len(warnings) == 1
    assert bridge.stats()["overflows"] == 3


def test_capture_callback_swallows_errors_and_counts_xruns(caplog) -> None:
    bridge = CaptureBridge(8000, StreamFormat(8000, 1))
    # An odd number of bytes cannot be int16 samples: the ring raises inside the callback.
    assert bridge.callback(b"\x00\x01\x02", 1, {}, 0) == (None, PA_CONTINUE)
    assert bridge.callback(b"\x00\x01\x02", 1, {}, 0) == (None, PA_CONTINUE)
    assert bridge.callback(block(np.zeros(160)), 160, {}, 2) == (None, PA_CONTINUE)  # overflow
    with caplog.at_level(logging.WARNING, logger="intercom.hw.pyaudio_device"):
        assert bridge.read_frame() is not None
        bridge.read_frame()
    assert bridge.callback_errors == 2
    assert bridge.xruns == 1
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and "ValueError" in errors[0].getMessage()


def test_capture_frames_only_when_a_whole_frame_is_there() -> None:
    bridge = CaptureBridge(8000, StreamFormat(8000, 1))
    assert bridge.read_frame() is None
    bridge.callback(block(np.arange(100)), 100, {}, 0)
    assert bridge.read_frame() is None
    bridge.callback(block(np.arange(100, 200)), 100, {}, 0)
    frame = bridge.read_frame()
    assert frame is not None and samples(frame).tolist() == list(range(160))
    assert bridge.read_frame() is None
    assert bridge.stats()["frames"] == 1


def test_capture_bridge_downmixes_and_resamples_48k_stereo() -> None:
    bridge = CaptureBridge(8000, StreamFormat(48000, 2))
    t = np.arange(48000) / 48000
    stereo = np.stack(
        [np.rint(10000 * np.sin(2 * np.pi * 440 * t)), np.zeros_like(t)], axis=1
    ).astype(np.int16)
    frames = []
    for start in range(0, 48000, 960):
        bridge.callback(stereo[start : start + 960].tobytes(), 960, {}, 0)
        while (frame := bridge.read_frame()) is not None:
            frames.append(frame)
    assert all(len(f) == 320 for f in frames)
    assert len(frames) >= 47  # 50 frames of input, minus the resampler's ~35 ms latency
    mono = samples(b"".join(frames))[800:]
    assert peak_frequency(mono, 8000) == pytest.approx(440, abs=5)
    assert np.max(np.abs(mono)) == pytest.approx(5000, rel=0.03)
    assert bridge.overflows == 0


def test_playback_prebuffers_then_plays_exact_frames_then_underflows_once(caplog) -> None:
    bridge = PlaybackBridge(16000, StreamFormat(16000, 1))  # prebuffer 40 ms = 640 samples
    silence = bytes(640)
    one, two, three = (np.arange(320, dtype=np.int16) + 1000 * n for n in (1, 2, 3))
    bridge.write_frame(pcm(one))
    assert bridge.callback(None, 320, {}, 0) == (silence, PA_CONTINUE)
    bridge.write_frame(pcm(two))
    assert bridge.callback(None, 320, {}, 0) == (one.tobytes(), PA_CONTINUE)
    assert bridge.callback(None, 320, {}, 0) == (two.tobytes(), PA_CONTINUE)
    assert bridge.underflows == 0
    assert bridge.callback(None, 320, {}, 0) == (silence, PA_CONTINUE)
    assert bridge.underflows == 1
    # Dry again: waits for 40 ms before playing, without counting every silent period.
    with caplog.at_level(logging.WARNING, logger="intercom.hw.pyaudio_device"):
        bridge.write_frame(pcm(three))
        assert bridge.callback(None, 320, {}, 0) == (silence, PA_CONTINUE)
        bridge.write_frame(pcm(three))
    assert bridge.underflows == 1
    assert bridge.callback(None, 320, {}, 0) == (three.tobytes(), PA_CONTINUE)
    warnings = [r for r in caplog.records if "ran out of audio" in r.getMessage()]
    assert len(warnings) == 1


def test_playback_underflow_mid_period_plays_what_is_left_then_silence() -> None:
    bridge = PlaybackBridge(16000, StreamFormat(16000, 1))
    frames = np.arange(640, dtype=np.int16) + 1
    bridge.write_frame(pcm(frames[:320]))
    bridge.write_frame(pcm(frames[320:]))
    first, _ = bridge.callback(None, 480, {}, 0)
    second, _ = bridge.callback(None, 480, {}, 0)
    assert np.frombuffer(first, np.int16).tolist() == frames[:480].tolist()
    assert np.frombuffer(second, np.int16).tolist() == frames[480:].tolist() + [0] * 320
    assert bridge.underflows == 1


def test_playback_overflow_drops_frame_counts_and_logs_once(caplog) -> None:
    bridge = PlaybackBridge(8000, StreamFormat(8000, 1))  # 200 ms: 10 frames
    with caplog.at_level(logging.WARNING, logger="intercom.hw.pyaudio_device"):
        for n in range(13):
            bridge.write_frame(pcm(np.full(160, n)))
    assert bridge.overflows == 3
    assert bridge.frames == 10
    warnings = [r for r in caplog.records if "playback buffer full" in r.getMessage()]
    assert len(warnings) == 1
    played = [np.frombuffer(bridge.callback(None, 160, {}, 0)[0], np.int16)[0] for _ in range(10)]
    assert played == list(range(10))  # the newest frames were the ones dropped


def test_playback_callback_error_returns_silence_of_the_right_length() -> None:
    bridge = PlaybackBridge(8000, StreamFormat(8000, 2))

    def broken(count: int) -> None:
        raise RuntimeError("boom")

    bridge.ring.read = broken  # type: ignore[method-assign]
    bridge.write_frame(pcm(np.ones(160)))
    bridge.write_frame(pcm(np.ones(160)))
    assert bridge.callback(None, 160, {}, 0) == (bytes(640), PA_CONTINUE)
    assert bridge.callback_errors == 1
    assert bridge.first_error == "RuntimeError('boom')"


def test_playback_bridge_resamples_and_duplicates_for_48k_stereo() -> None:
    bridge = PlaybackBridge(8000, StreamFormat(48000, 2), buffer_ms=1000)
    t = np.arange(8000) / 8000
    tone = np.rint(8000 * np.sin(2 * np.pi * 600 * t)).astype(np.int16)
    for start in range(0, 4000, 160):
        bridge.write_frame(pcm(tone[start : start + 160]))
    out = []
    while bridge.ring.available >= 960 * 2:
        out.append(np.frombuffer(bridge.callback(None, 960, {}, 0)[0], np.int16))
    stereo = np.concatenate(out).reshape(-1, 2)
    assert np.array_equal(stereo[:, 0], stereo[:, 1])
    assert peak_frequency(stereo[2400:, 0], 48000) == pytest.approx(600, abs=5)
    assert bridge.overflows == 0 and bridge.underflows == 0


def test_a_mono_device_at_the_codec_rate_passes_blocks_through_without_numpy() -> None:
    # Capture and playback at the codec rate in mono: the bytes PortAudio hands over are the
    # frames, and the frames are what it gets back; no resampler is made.
    capture = CaptureBridge(8000, StreamFormat(8000, 1))
    playback = PlaybackBridge(8000, StreamFormat(8000, 1), prebuffer_ms=20)
    assert capture._resampler is None and playback._resampler is None
    data = pcm(np.arange(-800, 800, 10))
    capture.callback(data, 160, {}, 0)
    frame = capture.read_frame()
    assert frame == data and type(frame) is bytes
    playback.write_frame(frame)
    assert playback.callback(None, 160, {}, 0) == (data, PA_CONTINUE)


def test_playback_on_a_stereo_device_at_the_codec_rate_duplicates_each_sample() -> None:
    bridge = PlaybackBridge(8000, StreamFormat(8000, 2), prebuffer_ms=20)
    values = np.arange(-8000, 8000, 100)
    bridge.write_frame(pcm(values))
    played = samples(bridge.callback(None, 160, {}, 0)[0]).reshape(-1, 2)
    assert played[:, 0].tolist() == played[:, 1].tolist() == values.tolist()


# --- device choice, without PortAudio -----------------------------------------------------------

DEVICE_LIST = [
    DeviceInfo(0, "HDA Intel PCH: ALC887 Analog (hw:0,0)", 2, 8, 44100.0),
    DeviceInfo(1, "USB PnP Sound Device: Audio (hw:1,0)", 1, 2, 48000.0),
    DeviceInfo(2, "dmix", 0, 2, 48000.0),
    DeviceInfo(3, "default", 32, 32, 44100.0),
]


def test_select_device_by_default_index_name_and_fragment() -> None:
    assert select_device("default", "input", DEVICE_LIST, 1).index == 1
    assert select_device("Default", "input", DEVICE_LIST, None).index == 3
    assert select_device("2", "output", DEVICE_LIST, None).name == "dmix"
    assert select_device("usb", "input", DEVICE_LIST, None).index == 1
    assert select_device("DEFAULT", "output", DEVICE_LIST, 0).index == 0


def test_select_device_errors_say_what_exists() -> None:
    with pytest.raises(AudioDeviceError) as missing:
        select_device("2", "input", DEVICE_LIST, None)  # dmix has no input
    text = str(missing.value)
    assert "Available input devices:" in text
    assert "1: USB PnP Sound Device: Audio (hw:1,0) (1 in, 2 out, 48000 Hz)" in text
    assert "dmix" not in text
    with pytest.raises(AudioDeviceError, match="matches several devices"):
        select_device("hw:", "output", DEVICE_LIST, None)
    with pytest.raises(AudioDeviceError, match="No input devices found"):
        select_device("default", "input", [], None)


def test_choose_format_prefers_codec_rate_mono_then_stereo_then_device_rate() -> None:
    usb = DEVICE_LIST[1]
    assert choose_format(usb, "output", 16000, lambda r, c: True) == StreamFormat(16000, 1)
    assert choose_format(usb, "output", 16000, lambda r, c: c == 2) == StreamFormat(16000, 2)
    assert choose_format(usb, "output", 8000, lambda r, c: r == 48000) == StreamFormat(48000, 1)
    tried: list[tuple[int, int]] = []

    def nothing(rate: int, channels: int) -> bool:
        tried.append((rate, channels))
        return False

    with pytest.raises(AudioDeviceError, match="accepts none"):
        choose_format(usb, "input", 8000, nothing)
    assert tried == [(8000, 1), (48000, 1)]  # the USB microphone has one channel
