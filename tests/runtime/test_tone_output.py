"""ToneOutput: tones reach the speaker frame by frame, stop on demand, survive a dead device."""

from __future__ import annotations

import time

import pytest

from intercom.feedback import Tone
from intercom.hw.audio import AudioDeviceError
from intercom.media.tones import TONES, TonePlayer
from intercom.runtime.tone_output import TONE_RATE, ToneOutput

pytestmark = pytest.mark.timeout(10)


class RecordingSink:
    def __init__(self) -> None:
        self.frames: list[bytes] = []
        self.started = self.closed = False
        self.sample_rate = TONE_RATE

    def start(self) -> None:
        self.started = True

    def write_frame(self, frame: bytes) -> None:
        self.frames.append(frame)

    def close(self) -> None:
        self.closed = True

    def stats(self) -> dict[str, int]:
        return {}


def _wait(condition, seconds: float = 3.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.01)


def test_a_finite_tone_plays_whole_then_releases_the_speaker() -> None:
    sinks: list[RecordingSink] = []

    def open_sink(rate: int) -> RecordingSink:
        assert rate == TONE_RATE
        sinks.append(RecordingSink())
        return sinks[-1]

    output = ToneOutput(open_sink)
    output.play(Tone.OPENED)  # 260 ms
    _wait(lambda: sinks and sinks[0].closed)
    expected = TonePlayer(TONES[Tone.OPENED], TONE_RATE)
    wanted = []
    while (frame := expected.next_frame()) is not None:
        wanted.append(frame)
    assert sinks[0].started and sinks[0].closed
    assert len(sinks[0].frames) == len(wanted)
    assert sinks[0].frames == wanted


def test_ringback_runs_until_stopped_and_a_new_tone_replaces_it() -> None:
    sinks: list[RecordingSink] = []
    output = ToneOutput(lambda rate: sinks.append(RecordingSink()) or sinks[-1])
    output.play(Tone.RINGBACK)
    time.sleep(0.15)
    assert output.playing is Tone.RINGBACK and not sinks[0].closed
    output.play(Tone.BUSY)
    assert sinks[0].closed  # released before the next tone opens the speaker
    assert 4 <= len(sinks[0].frames) <= 12  # paced at 20 ms, not burst
    output.stop()
    assert sinks[1].closed and output.playing is None


def test_a_speaker_that_does_not_open_is_logged_not_raised(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def broken(rate: int) -> RecordingSink:
        raise AudioDeviceError("audio output 'USB': no such device")

    output = ToneOutput(broken)
    output.play(Tone.BUSY)
    assert output.playing is None
    assert "the speaker does not open" in caplog.text
