"""Call-progress tones: cadence, frequency, level, and no clicks at the edges."""

from __future__ import annotations

import numpy as np
import pytest

from intercom.feedback import Tone
from intercom.media.tones import AMPLITUDE, TONES, TonePlayer, mix
from tests.pcm_arrays import pcm, samples


def _play(name: str, rate: int, frames: int) -> list[np.ndarray]:
    player = TonePlayer(TONES[name], rate)
    out = []
    for _ in range(frames):
        frame = player.next_frame()
        if frame is None:
            break
        assert type(frame) is bytes
        out.append(samples(frame))
    return out


def _peak_hz(samples: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(samples.astype(float)))
    return float(np.fft.rfftfreq(len(samples), 1 / rate)[np.argmax(spectrum)])


def test_every_tone_has_its_cadence() -> None:
    assert set(TONES) == set(Tone)
    for cadence in TONES.values():
        assert cadence.steps and all(ms > 0 and ms % 20 == 0 for _, ms in cadence.steps)


@pytest.mark.parametrize("rate", [8000, 16000])
def test_ringback_is_425_hz_one_second_on_four_off_and_repeats(rate: int) -> None:
    frames = _play("ringback", rate, 500)  # 10 s
    assert len(frames) == 500 and all(len(f) == rate // 50 for f in frames)
    loud = [bool(np.abs(f).max() > AMPLITUDE / 2) for f in frames]
    assert loud[:50] == [True] * 50 and not any(loud[50:250])  # 1 s on, 4 s off
    assert loud[250:300] == [True] * 50  # and again
    assert _peak_hz(np.concatenate(frames[5:45]), rate) == pytest.approx(425, abs=2)


def test_busy_ends_after_three_cadences_and_error_is_the_e180_sequence() -> None:
    busy = _play("busy", 8000, 1000)
    assert len(busy) == 150  # 3 x (0.5 s + 0.5 s)
    error = _play("error", 8000, 1000)
    bursts = [np.concatenate(error[i : i + 17]) for i in (0, 17, 34)]
    assert [round(_peak_hz(b, 8000), -1) for b in bursts] == [950, 1400, 1800]


def test_edges_are_ramped_and_level_is_minus_12_dbfs() -> None:
    frames = _play("opened", 16000, 100)
    first = frames[0]
    assert abs(int(first[0])) < 50  # starts from silence, no click
    assert np.abs(np.concatenate(frames)).max() <= AMPLITUDE + 1
    assert TonePlayer(TONES["opened"], 16000).finished is False


def test_mix_adds_a_cue_to_a_frame_and_clips_at_16_bits() -> None:
    frame = pcm([1000, -1000, 30000, -30000])
    cue = pcm([500, 500, 5000, -5000])
    mixed = mix(frame, cue)
    assert type(mixed) is bytes
    assert samples(mixed).tolist() == [1500, -500, 32767, -32768]
    assert samples(frame).tolist() == [1000, -1000, 30000, -30000]  # the inputs are left alone


def test_a_rendered_step_is_the_numpy_rendering_within_one_step() -> None:
    # The sine and ramps the numpy version computed, against the per-sample Python rendering.
    rate, hz, count = 8000, 1500, 800
    t = np.arange(count) / rate
    envelope = np.ones(count)
    ramp = rate * 5 // 1000
    envelope[:ramp] = np.linspace(0.0, 1.0, ramp)
    envelope[count - ramp :] = np.linspace(1.0, 0.0, ramp)
    expected = np.rint(AMPLITUDE * np.sin(2 * np.pi * hz * t) * envelope).astype(np.int16)
    frames = _play("opened", rate, 5)  # the first 100 ms step: 1500 Hz
    assert np.max(np.abs(np.concatenate(frames).astype(np.int32) - expected)) <= 1


def test_mix_refuses_a_cue_of_another_length() -> None:
    with pytest.raises(ValueError, match="a cue of 4 bytes cannot lie over a frame of 6"):
        mix(pcm([1, 2, 3]), pcm([1, 2]))
