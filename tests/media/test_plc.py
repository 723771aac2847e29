"""Loss concealment: repeat, fade to exact silence, reset on a good frame."""

from __future__ import annotations

import numpy as np

from intercom.media.plc import FADE_FRAMES, LossConcealer


def constant(value: int, samples: int = 160) -> np.ndarray:
    return np.full(samples, value, dtype=np.int16)


def test_nothing_received_yet_gives_silence_of_one_frame():
    concealer = LossConcealer(16000)
    frame = concealer.conceal()
    assert frame.dtype == np.int16 and frame.shape == (320,) and not frame.any()
    assert concealer.concealed == 1


def test_fade_is_monotonic_and_reaches_exact_zero():
    concealer = LossConcealer(8000)
    concealer.good(constant(20000))
    faded = np.concatenate([concealer.conceal() for _ in range(FADE_FRAMES)])
    assert faded[0] >= 19000  # starts near full level: no click at the gap
    assert np.all(np.diff(faded.astype(np.int32)) <= 0)
    assert faded[-1] == 0
    assert np.all(faded[:-1] > 0)  # a smooth ramp, not a step to silence
    for _ in range(3):
        assert np.array_equal(concealer.conceal(), constant(0))
    assert concealer.concealed == FADE_FRAMES + 3


def test_negative_samples_fade_symmetrically():
    concealer = LossConcealer(8000)
    concealer.good(constant(-20000))
    faded = np.concatenate([concealer.conceal() for _ in range(FADE_FRAMES)])
    assert np.all(np.diff(faded.astype(np.int32)) >= 0) and faded[-1] == 0


def test_first_concealed_frame_repeats_the_last_good_frame_with_gain():
    concealer = LossConcealer(8000)
    speech = (np.sin(np.arange(160) / 5) * 10000).astype(np.int16)
    concealer.good(speech)
    repeated = concealer.conceal().astype(np.float64)
    gain = 1 - np.arange(1, 161) / (FADE_FRAMES * 160)
    assert np.all(np.abs(repeated - speech * gain) < 1.001)  # truncated toward zero


def test_good_frame_resets_the_fade():
    concealer = LossConcealer(8000)
    concealer.good(constant(10000))
    before = concealer.conceal()
    for _ in range(FADE_FRAMES + 2):
        concealer.conceal()
    concealer.good(constant(10000))
    assert np.array_equal(concealer.conceal(), before)
    assert concealer.concealed == FADE_FRAMES + 4  # the counter is for the whole call


def test_good_keeps_a_copy_and_conceal_returns_new_arrays():
    concealer = LossConcealer(8000)
    frame = constant(10000)
    concealer.good(frame)
    frame[:] = 0  # the caller reuses its buffer
    first = concealer.conceal()
    assert first[0] > 9000
    first[:] = 0
    concealer.good(constant(10000))
    assert concealer.conceal()[0] > 9000


def test_frame_length_follows_the_last_good_frame():
    concealer = LossConcealer(16000)
    concealer.good(constant(1000, 320))
    assert [len(concealer.conceal()) for _ in range(FADE_FRAMES + 1)] == [320] * (FADE_FRAMES + 1)
