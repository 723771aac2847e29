"""Loss concealment: repeat, fade to exact silence, reset on a good frame."""

from __future__ import annotations

import numpy as np

from intercom.media.plc import FADE_FRAMES, LossConcealer
from tests.pcm_arrays import pcm, samples


def constant(value: int, count: int = 160) -> bytes:
    return pcm(np.full(count, value, dtype=np.int16))


def test_nothing_received_yet_gives_silence_of_one_frame():
    concealer = LossConcealer(16000)
    frame = concealer.conceal()
    assert frame == bytes(640)
    assert concealer.concealed == 1


def test_fade_is_monotonic_and_reaches_exact_zero():
    concealer = LossConcealer(8000)
    concealer.good(constant(20000))
    faded = samples(b"".join(concealer.conceal() for _ in range(FADE_FRAMES)))
    assert faded[0] >= 19000  # starts near full level: no click at the gap
    assert np.all(np.diff(faded.astype(np.int32)) <= 0)
    assert faded[-1] == 0
    assert np.all(faded[:-1] > 0)  # a smooth ramp, not a step to silence
    for _ in range(3):
        assert concealer.conceal() == constant(0)
    assert concealer.concealed == FADE_FRAMES + 3


def test_negative_samples_fade_symmetrically():
    concealer = LossConcealer(8000)
    concealer.good(constant(-20000))
    faded = samples(b"".join(concealer.conceal() for _ in range(FADE_FRAMES)))
    assert np.all(np.diff(faded.astype(np.int32)) >= 0) and faded[-1] == 0
    positive = LossConcealer(8000)
    positive.good(constant(20000))
    mirrored = samples(b"".join(positive.conceal() for _ in range(FADE_FRAMES)))
    assert np.array_equal(faded, -mirrored)


def test_first_concealed_frame_repeats_the_last_good_frame_with_gain():
    concealer = LossConcealer(8000)
    speech = (np.sin(np.arange(160) / 5) * 10000).astype(np.int16)
    concealer.good(pcm(speech))
    repeated = samples(concealer.conceal()).astype(np.float64)
    gain = 1 - np.arange(1, 161) / (FADE_FRAMES * 160)
    assert np.all(np.abs(repeated - speech * gain) < 1.001)  # truncated toward zero


def test_the_fade_is_the_float32_ramp_of_the_numpy_version_within_one_step():
    # The numpy concealer multiplied by a float32 ramp and truncated; the bytes one works in
    # float64, so a sample may differ by at most one quantisation step, never more.
    rng = np.random.default_rng(3)
    speech = rng.integers(-32768, 32768, 320).astype(np.int16)
    concealer = LossConcealer(16000)
    concealer.good(pcm(speech))
    total = FADE_FRAMES * 320
    ramp = 1.0 - np.arange(1, total + 1, dtype=np.float32) / np.float32(total)
    for run in range(FADE_FRAMES):
        old = (speech * ramp[run * 320 : (run + 1) * 320]).astype(np.int16)
        new = samples(concealer.conceal())
        assert np.max(np.abs(new.astype(np.int32) - old)) <= 1


def test_good_frame_resets_the_fade():
    concealer = LossConcealer(8000)
    concealer.good(constant(10000))
    before = concealer.conceal()
    for _ in range(FADE_FRAMES + 2):
        concealer.conceal()
    concealer.good(constant(10000))
    assert concealer.conceal() == before
    assert concealer.concealed == FADE_FRAMES + 4  # the counter is for the whole call


def test_frames_are_bytes_kept_without_a_copy():
    concealer = LossConcealer(8000)
    frame = constant(10000)
    concealer.good(frame)
    first = concealer.conceal()
    assert type(first) is bytes and samples(first)[0] > 9000
    assert frame == constant(10000)  # the good frame is left as it was


def test_frame_length_follows_the_last_good_frame():
    concealer = LossConcealer(16000)
    concealer.good(constant(1000, 320))
    assert [len(concealer.conceal()) for _ in range(FADE_FRAMES + 1)] == [640] * (FADE_FRAMES + 1)
    concealer.good(constant(1000, 160))
    assert [len(concealer.conceal()) for _ in range(FADE_FRAMES + 1)] == [320] * (FADE_FRAMES + 1)
