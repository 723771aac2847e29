"""The local correlation of audio_compare passes an adaptive playout and fails broken audio.

No peer is involved: the reference is sent through a simulated receive path (our own G.711
codecs, 20 ms frames, our loss concealer, a fixed network delay), and the recording is what the
speaker would have played. The call tests assert a local correlation of at least
:data:`BOUND`; here that bound must hold for what an adaptive jitter buffer legitimately does
(one frame skipped or inserted, a few inserted in a row) and must fail for missing, garbled,
wrong-codec, silent, noisy, unrelated or time-stretched audio, and for lag changes every few
frames.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

import numpy as np
import pytest
import soxr

from intercom.media.codecs import make_decoder, make_encoder
from intercom.media.plc import LossConcealer
from tests.integration.audio_compare import (
    LOCAL_WINDOW_SECONDS,
    Signal,
    compare_signals,
    local_alignment,
    make_signal,
)

pytestmark = pytest.mark.timeout(60)

RATE = 8000
FRAME = 160
BOUND = 0.9
"""What tests/integration/test_call_baresip.py asserts."""
SKIP = 1.0
DELAY = 400
"""Network and jitter buffer delay of the simulated path, in samples (50 ms)."""
SECONDS = 5.0

Event = Literal["drop", "insert", "lose"]

REFERENCE = make_signal(RATE, 8.0, "bursts", seed=11)


def _receive(
    reference: Signal,
    events: Mapping[int, Event] | None = None,
    *,
    encoder: str = "PCMA",
    decoder: str = "PCMA",
) -> Signal:
    """What the speaker plays, frame by frame, when ``reference`` is sent through a call.

    ``events`` maps a played frame's index to what the jitter buffer does there: ``drop``
    skips the next frame sent (shrink), ``insert`` plays a concealed frame without consuming
    one (grow), ``lose`` conceals a frame that never arrived.
    """
    events = events or {}
    encode, decode = make_encoder(encoder).encode, make_decoder(decoder).decode
    concealer = LossConcealer(RATE)
    pcm = np.round(reference * 32767).astype(np.int16).tobytes()  # frames are bytes
    played = [bytes(2 * DELAY)]
    sent = 0  # index of the next frame sent
    for index in range(round(SECONDS * 50)):
        event = events.get(index)
        if event == "insert":
            played.append(concealer.conceal())
            continue
        if event == "lose":
            played.append(concealer.conceal())
            sent += 1
            continue
        if event == "drop":
            sent += 1
        frame = decode(encode(pcm[2 * sent * FRAME : 2 * (sent + 1) * FRAME]))
        concealer.good(frame)
        played.append(frame)
        sent += 1
    return np.frombuffer(b"".join(played), dtype=np.int16).astype(np.float64) / 32768.0


def _frame_at(seconds: float) -> int:
    return round(seconds * 50)


# -- an adaptive playout passes --------------------------------------------------------------


def test_a_clean_path_has_one_lag_and_correlates_fully() -> None:
    result = compare_signals(REFERENCE, _receive(REFERENCE), RATE, skip_seconds=SKIP)
    assert result.local_correlation > 0.999, str(result)
    assert result.lag_track == ((SKIP, DELAY / RATE),)
    # Judged from the skip to one window before the end; that window is context only.
    judged = SECONDS + DELAY / RATE - SKIP - LOCAL_WINDOW_SECONDS
    assert result.compared_seconds == pytest.approx(judged)


@pytest.mark.parametrize(
    ("event", "step"), [("drop", -FRAME), ("insert", FRAME)], ids=["shrink", "grow"]
)
@pytest.mark.parametrize(
    "at", [SKIP + 0.3, 3.0, SECONDS - LOCAL_WINDOW_SECONDS - 0.1], ids=["early", "middle", "late"]
)
def test_one_frame_dropped_or_inserted_passes(event: Event, step: int, at: float) -> None:
    """The incident: a shrink 0.3 s after the skip cost the global correlation its 0.9."""
    recording = _receive(REFERENCE, {_frame_at(at): event})
    result = compare_signals(REFERENCE, recording, RATE, skip_seconds=SKIP)
    assert result.local_correlation > 0.99, str(result)
    (first, before), (changed_at, after) = result.lag_track
    assert (first, before, after) == (SKIP, DELAY / RATE, (DELAY + step) / RATE)
    assert changed_at == pytest.approx(at + DELAY / RATE, abs=0.006)


def test_the_global_correlation_alone_would_have_failed_a_shrink() -> None:
    recording = _receive(REFERENCE, {_frame_at(3.0): "drop"})
    result = compare_signals(REFERENCE, recording, RATE, skip_seconds=SKIP)
    assert result.correlation < BOUND <= result.local_correlation, str(result)


def test_a_grow_by_three_frames_at_once_passes() -> None:
    frame = _frame_at(2.5)
    events: dict[int, Event] = {frame: "insert", frame + 1: "insert", frame + 2: "insert"}
    result = compare_signals(REFERENCE, _receive(REFERENCE, events), RATE, skip_seconds=SKIP)
    assert result.local_correlation > 0.95, str(result)
    assert [lag for _, lag in result.lag_track] == [DELAY / RATE, (DELAY + 3 * FRAME) / RATE]


def test_adjustments_a_second_apart_pass() -> None:
    events: dict[int, Event] = {_frame_at(1.5): "insert", _frame_at(2.5): "drop"}
    events[_frame_at(3.5)] = "drop"
    result = compare_signals(REFERENCE, _receive(REFERENCE, events), RATE, skip_seconds=SKIP)
    assert result.local_correlation > 0.99, str(result)
    assert len(result.lag_track) == 4


def test_a_single_lost_frame_passes() -> None:
    recording = _receive(REFERENCE, {_frame_at(3.0): "lose"})
    result = compare_signals(REFERENCE, recording, RATE, skip_seconds=SKIP)
    assert result.local_correlation > 0.95, str(result)


# -- broken audio fails ----------------------------------------------------------------------


def _local(recording: Signal) -> float:
    return compare_signals(REFERENCE, recording, RATE, skip_seconds=SKIP).local_correlation


def test_pure_noise_fails() -> None:
    noise = 0.1 * np.random.default_rng(3).standard_normal(round(SECONDS * RATE))
    assert abs(_local(noise)) < 0.3


def test_silence_fails() -> None:
    assert _local(np.zeros(round(SECONDS * RATE))) == 0.0


def test_a_wrong_signal_fails() -> None:
    other = make_signal(RATE, 8.0, "bursts", seed=12)
    assert abs(_local(_receive(other))) < 0.3


@pytest.mark.parametrize(("encoder", "decoder"), [("PCMA", "PCMU"), ("PCMU", "PCMA")])
def test_the_wrong_codec_fails(encoder: str, decoder: str) -> None:
    assert _local(_receive(REFERENCE, encoder=encoder, decoder=decoder)) < BOUND


def test_missing_audio_fails() -> None:
    """300 ms of speech concealed: the global correlation still passes it, the local one not."""
    frames = 15
    energy = np.convolve(REFERENCE[: round(4.0 * RATE)] ** 2, np.ones(frames * FRAME), "valid")
    loudest = int(np.argmax(energy[round(1.5 * RATE) :])) + round(1.5 * RATE)
    first = loudest // FRAME
    events: dict[int, Event] = {first + k: "lose" for k in range(frames)}
    result = compare_signals(REFERENCE, _receive(REFERENCE, events), RATE, skip_seconds=SKIP)
    assert result.local_correlation < BOUND <= result.correlation, str(result)


def test_garbled_audio_fails() -> None:
    recording = _receive(REFERENCE)
    start, stop = round(3.0 * RATE), round(3.3 * RATE)
    recording[start:stop] = np.random.default_rng(4).permutation(recording[start:stop])
    assert _local(recording) < BOUND


def test_lag_changes_every_100_ms_fail() -> None:
    """Alternating shrink and grow: the lag stays within the window but never settles."""
    events: dict[int, Event] = {
        frame: "drop" if (frame // 5) % 2 else "insert" for frame in range(50, 250, 5)
    }
    assert _local(_receive(REFERENCE, events)) < BOUND


def test_a_frame_dropped_every_100_ms_fails() -> None:
    events: dict[int, Event] = {frame: "drop" for frame in range(50, 250, 5)}
    assert _local(_receive(REFERENCE, events)) < BOUND


@pytest.mark.parametrize("percent", [1.0, 0.1])
def test_time_stretched_audio_fails(percent: float) -> None:
    stretched = soxr.resample(REFERENCE, RATE, RATE * (1 + percent / 100), quality="VHQ")
    recording = _receive(np.asarray(stretched, dtype=np.float64))
    result = compare_signals(REFERENCE, recording, RATE, skip_seconds=SKIP)
    assert result.local_correlation < BOUND, str(result)


# -- edges -----------------------------------------------------------------------------------


def test_less_than_one_window_after_the_skip_is_refused() -> None:
    recording = _receive(REFERENCE)[: round((SKIP + LOCAL_WINDOW_SECONDS) * RATE) - 1]
    with pytest.raises(ValueError, match="recording too short"):
        local_alignment(REFERENCE, recording, RATE, DELAY, skip_seconds=SKIP)


def test_broken_audio_just_before_the_last_window_fails() -> None:
    """Every sample judged counts, up to the last: silence from there to the end fails."""
    recording = _receive(REFERENCE)
    width = round(LOCAL_WINDOW_SECONDS * RATE)
    recording[len(recording) - width - round(0.2 * RATE) :] = 0.0
    result = local_alignment(REFERENCE, recording, RATE, DELAY, skip_seconds=SKIP)
    assert (result.start, result.stop) == (round(SKIP * RATE), len(recording) - width)
    assert result.correlation < BOUND
