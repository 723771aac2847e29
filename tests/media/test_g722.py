"""G.722 through the reference codec: frame sizes, fidelity, independent state."""

from __future__ import annotations

import numpy as np
import pytest

from intercom.media.g722 import G722Decoder, G722Encoder

RATE = 16000
CODEC_DELAY = 22  # samples: the QMF analysis plus synthesis filters


def sine(hz: float, samples: int, amplitude: float = 8000.0) -> np.ndarray:
    return (amplitude * np.sin(2 * np.pi * hz * np.arange(samples) / RATE)).astype(np.int16)


def through_codec(signal: np.ndarray, frame: int = 320) -> np.ndarray:
    encoder, decoder = G722Encoder(), G722Decoder()
    frames = [
        decoder.decode(encoder.encode(signal[i : i + frame])) for i in range(0, len(signal), frame)
    ]
    return np.concatenate(frames)


def correlation(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.astype(np.float64), b.astype(np.float64)
    return float(np.dot(a, b) / np.sqrt(np.dot(a, a) * np.dot(b, b)))


def test_frame_sizes():
    encoder, decoder = G722Encoder(), G722Decoder()
    payload = encoder.encode(sine(1000, 320))
    assert len(payload) == 160
    samples = decoder.decode(payload)
    assert samples.dtype == np.int16 and samples.shape == (320,)
    assert samples.flags.c_contiguous and samples.flags.writeable


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
    signal = sine(1000, 640)
    first, second = G722Encoder(), G722Encoder()
    assert first.encode(signal[:320]) == second.encode(signal[:320])
    # The same frame again codes differently: the ADPCM state carried over.
    assert first.encode(signal[:320]) != G722Encoder().encode(signal[:320])


def test_decoder_state_is_independent_of_encoder_state():
    source = G722Encoder()
    payloads = [source.encode(frame) for frame in np.split(sine(1000, 3200), 10)]
    alone = G722Decoder()
    reference = [alone.decode(payload) for payload in payloads]
    # As in a call: each 20 ms we encode our microphone and decode the peer, interleaved.
    encoder, decoder = G722Encoder(), G722Decoder()
    for payload, expected in zip(payloads, reference, strict=True):
        encoder.encode(sine(440, 320, 20000))
        assert np.array_equal(decoder.decode(payload), expected)


def test_any_even_length_is_encoded_and_decoder_gives_two_samples_per_byte():
    encoder, decoder = G722Encoder(), G722Decoder()
    assert encoder.encode(np.zeros(0, dtype=np.int16)) == b""
    assert len(encoder.encode(sine(1000, 2))) == 1
    assert len(encoder.encode(sine(1000, 480))) == 240
    assert len(encoder.encode(sine(1000, 640)[::2])) == 160  # strided view
    assert decoder.decode(b"").shape == (0,)
    assert decoder.decode(b"\x55").shape == (2,)
    assert decoder.decode(b"\x55" * 7).shape == (14,)


def test_odd_length_and_wrong_type_are_rejected():
    encoder = G722Encoder()
    with pytest.raises(ValueError, match="sample pairs, got 321 samples"):
        encoder.encode(np.zeros(321, dtype=np.int16))
    with pytest.raises(ValueError, match="int16 samples, not float32"):
        encoder.encode(np.zeros(320, dtype=np.float32))
