"""G.722 through the reference codec: frame sizes, fidelity, independent state."""

from __future__ import annotations

import numpy as np
import pytest

from intercom.media.g722 import G722Decoder, G722Encoder
from tests.pcm_arrays import pcm, samples

RATE = 16000
CODEC_DELAY = 22  # samples: the QMF analysis plus synthesis filters


def sine(hz: float, count: int, amplitude: float = 8000.0) -> np.ndarray:
    return (amplitude * np.sin(2 * np.pi * hz * np.arange(count) / RATE)).astype(np.int16)


def through_codec(signal: np.ndarray, frame: int = 320) -> np.ndarray:
    encoder, decoder = G722Encoder(), G722Decoder()
    frames = [
        decoder.decode(encoder.encode(pcm(signal[i : i + frame])))
        for i in range(0, len(signal), frame)
    ]
    return samples(b"".join(frames))


def correlation(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.astype(np.float64), b.astype(np.float64)
    return float(np.dot(a, b) / np.sqrt(np.dot(a, a) * np.dot(b, b)))


def test_frame_sizes():
    encoder, decoder = G722Encoder(), G722Decoder()
    payload = encoder.encode(pcm(sine(1000, 320)))
    assert len(payload) == 160
    frame = decoder.decode(payload)
    assert type(frame) is bytes and len(frame) == 640


def test_sine_survives_the_round_trip():
    signal = sine(1000, RATE)  # one second, 50 frames
    decoded = through_codec(signal)
    assert len(decoded) == len(signal)
    skip = 320  # the adaptive quantisers settle during the first frame
    assert correlation(signal[skip:-CODEC_DELAY], decoded[skip + CODEC_DELAY :]) > 0.95
    level_in = np.sqrt(np.mean(signal[skip:].astype(np.float64) ** 2))
    level_out = np.sqrt(np.mean(decoded[skip:].astype(np.float64) ** 2))
    assert level_out == pytest.approx(level_in, rel=0.05)


def test_delay_is_the_known_codec_delay():
    # Broadband noise has one correlation peak (a sine would have one per period).
    noise = (np.random.default_rng(7).standard_normal(8000) * 3000).astype(np.int16)
    decoded = through_codec(noise)
    scores = [correlation(noise[: len(noise) - lag], decoded[lag:]) for lag in range(40)]
    assert int(np.argmax(scores)) == CODEC_DELAY
    assert max(scores) > 0.9


def test_a_fresh_encoder_is_deterministic_and_stateful():
    frame = pcm(sine(1000, 320))
    first, second = G722Encoder(), G722Encoder()
    assert first.encode(frame) == second.encode(frame)
    # The same frame again codes differently: the ADPCM state carried over.
    assert first.encode(frame) != G722Encoder().encode(frame)


def test_decoder_state_is_independent_of_encoder_state():
    source = G722Encoder()
    payloads = [source.encode(pcm(frame)) for frame in np.split(sine(1000, 3200), 10)]
    alone = G722Decoder()
    reference = [alone.decode(payload) for payload in payloads]
    # As in a call: each 20 ms we encode our microphone and decode the peer, interleaved.
    encoder, decoder = G722Encoder(), G722Decoder()
    for payload, expected in zip(payloads, reference, strict=True):
        encoder.encode(pcm(sine(440, 320, 20000)))
        assert decoder.decode(payload) == expected


def test_any_even_length_is_encoded_and_decoder_gives_two_samples_per_byte():
    encoder, decoder = G722Encoder(), G722Decoder()
    assert encoder.encode(b"") == b""
    assert len(encoder.encode(pcm(sine(1000, 2)))) == 1
    assert len(encoder.encode(pcm(sine(1000, 480)))) == 240
    assert decoder.decode(b"") == b""
    assert len(decoder.decode(b"\x55")) == 4
    assert len(decoder.decode(b"\x55" * 7)) == 28


def test_frames_as_bytes_code_as_the_numpy_arrays_did():
    # The package reads any int16 buffer: a memoryview of the bytes codes like the array.
    signal = sine(700, 3200)
    from_array, from_bytes = G722Encoder(), G722Encoder()
    for start in range(0, 3200, 320):
        chunk = signal[start : start + 320]
        assert from_bytes.encode(pcm(chunk)) == from_array._codec.encode(chunk)
    assert (
        G722Decoder().decode(b"\x12" * 160)
        == np.asarray(G722Decoder()._codec.decode(b"\x12" * 160), dtype=np.int16).tobytes()
    )


def test_odd_length_and_wrong_type_are_rejected():
    encoder = G722Encoder()
    with pytest.raises(ValueError, match="pairs of 16-bit samples, got 642 bytes"):
        encoder.encode(bytes(642))
    with pytest.raises(ValueError, match="pairs of 16-bit samples, got 641 bytes"):
        encoder.encode(bytes(641))
