"""Prove the baresip harness and the audio comparison, independently of the project's code.

The comparison tools are checked on synthetic signals with known answers (a delayed, noisy
copy must align at its delay; an unrelated signal must not correlate). Then baresip calls
baresip over loopback, each playing its own test signal: what each side decodes must be the
other side's signal, for every codec the media tests use, and DTMF sent by one side must be
reported by the other. When these pass, a failure of the media tests against baresip is
about our stack, not about the harness.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import numpy as np
import pytest

from tests.integration.audio_compare import (
    SignalKind,
    best_alignment,
    compare_wavs,
    make_signal,
    make_test_wav,
    normalised_correlation,
    read_wav_mono,
    resample,
    write_wav_mono,
)
from tests.integration.baresip_harness import (
    BaresipFailure,
    BaresipPeer,
    CallRecording,
    require_baresip,
)

pytestmark = pytest.mark.timeout(30)

RATE = 8000


# -- audio_compare on known answers ---------------------------------------------------------


@pytest.mark.parametrize("kind", ["bursts", "noise", "chirp"])
def test_delayed_noisy_copy_aligns_at_its_delay(kind: SignalKind) -> None:
    reference = make_signal(RATE, 6.0, kind, seed=1)
    rng = np.random.default_rng(7)
    delay = 1234
    copy = 0.7 * np.concatenate((np.zeros(delay), reference))[: 5 * RATE]
    copy += 0.005 * rng.standard_normal(len(copy))
    lag, corr = best_alignment(reference, copy, RATE)
    assert lag == delay
    assert 0.9 < corr < 0.9999  # the noise costs something: the value is computed, not 1


def test_recording_that_starts_inside_the_reference_has_a_negative_lag() -> None:
    reference = make_signal(RATE, 6.0, seed=2)
    lag, corr = best_alignment(reference, reference[3000:20000], RATE)
    assert (lag, round(corr, 6)) == (-3000, 1.0)


def test_unrelated_signals_do_not_correlate() -> None:
    a = make_signal(RATE, 6.0, "bursts", seed=1)
    b = make_signal(RATE, 6.0, "bursts", seed=2)
    _, corr = best_alignment(a, b, RATE)
    assert abs(corr) < 0.3
    assert abs(normalised_correlation(a, b)) < 0.3


def test_normalised_correlation_known_values() -> None:
    x = make_signal(RATE, 1.0, "noise", seed=3)
    assert normalised_correlation(x, 0.25 * x + 0.1) == pytest.approx(1.0)
    assert normalised_correlation(x, -x) == pytest.approx(-1.0)
    assert normalised_correlation(x, np.zeros_like(x)) == 0.0
    with pytest.raises(ValueError, match="equal length"):
        normalised_correlation(x, x[:-1])


def test_signals_are_moderate_and_band_limited() -> None:
    for kind in ("bursts", "noise", "chirp"):
        x = make_signal(16000, 4.0, kind, seed=4)
        assert np.max(np.abs(x)) == pytest.approx(0.5)
        spectrum = np.abs(np.fft.rfft(x)) ** 2
        freqs = np.fft.rfftfreq(len(x), 1 / 16000)
        outside = spectrum[(freqs < 250) | (freqs > 3500)].sum()
        assert outside < 1e-3 * spectrum.sum(), kind


def test_wav_round_trip_and_rate_conversion(tmp_path: Path) -> None:
    written = make_test_wav(tmp_path / "ref.wav", 16000, 3.0, seed=5)
    rate, read = read_wav_mono(tmp_path / "ref.wav")
    assert rate == 16000
    np.testing.assert_array_equal(read, written)
    # An 8 kHz "recording" of the same signal, 40 ms late, compares at 16 kHz.
    late = np.concatenate((np.zeros(320), resample(written, 16000, 8000)))
    write_wav_mono(tmp_path / "rec.wav", 8000, late)
    result = compare_wavs(tmp_path / "ref.wav", tmp_path / "rec.wav")
    assert result.rate == 16000
    assert abs(result.lag_samples - 640) <= 1
    assert result.correlation > 0.99, str(result)
    assert min(result.segments) > 0.95, str(result)


def test_too_short_recording_is_refused() -> None:
    x = make_signal(RATE, 2.0)
    with pytest.raises(ValueError, match="recording too short"):
        best_alignment(x, x[:4000], RATE)


# -- baresip calls baresip ------------------------------------------------------------------

TALK_SECONDS = 3.5
DTMF = "159#"


async def _call(
    codec: str, a_wav: Path, b_wav: Path, tmp_path: Path
) -> tuple[BaresipPeer, BaresipPeer, CallRecording, CallRecording]:
    alice = BaresipPeer(a_wav, user="alice", codecs=[codec], workdir=tmp_path / "alice")
    bob = BaresipPeer(b_wav, user="bob", codecs=[codec], workdir=tmp_path / "bob")
    async with alice, bob:
        await alice.dial(bob.sip_uri)
        established = time.monotonic()
        await alice.wait_event("CALL_ESTABLISHED", 5)
        incoming = await bob.wait_event("CALL_ESTABLISHED", 5)
        assert incoming.direction == "incoming"
        assert incoming.peer_uri == alice.sip_uri
        await bob.wait_event("CALL_RTPESTAB", 5)
        await asyncio.sleep(1.0)
        await alice.send_dtmf(DTMF)
        digits = await bob.wait_dtmf(len(DTMF), 5)
        assert digits == DTMF, bob.explain()
        await asyncio.sleep(max(0.0, TALK_SECONDS - (time.monotonic() - established)))
        await alice.hangup()
        await alice.wait_event("CALL_CLOSED", 5)
        closed = await bob.wait_event("CALL_CLOSED", 5)
        assert closed.param == "Connection reset by peer"
        (a_rec,) = await alice.recordings()
        (b_rec,) = await bob.recordings()
        for peer in (alice, bob):
            decoder = {"PCMU": "PCMU 8000Hz", "PCMA": "PCMA 8000Hz", "G722": "G722 16000Hz"}
            assert f"Set audio decoder: {decoder[codec]}" in peer.output(), peer.explain()
    return alice, bob, a_rec, b_rec


@pytest.mark.integration
@pytest.mark.parametrize(
    ("codec", "wav_rate"),
    [("PCMU", 8000), ("PCMA", 8000), ("G722", 16000), ("G722", 8000)],
    ids=["PCMU", "PCMA", "G722", "G722-8k-source"],
)
def test_baresip_calls_baresip(codec: str, wav_rate: int, tmp_path: Path) -> None:
    require_baresip()
    a_wav, b_wav = tmp_path / "alice.wav", tmp_path / "bob.wav"
    make_test_wav(a_wav, wav_rate, 20.0, "bursts", seed=11)
    make_test_wav(b_wav, wav_rate, 20.0, "bursts", seed=22)
    alice, bob, a_rec, b_rec = asyncio.run(_call(codec, a_wav, b_wav, tmp_path))

    codec_rate = 16000 if codec == "G722" else 8000
    for rec in (a_rec, b_rec):
        for path in (rec.received, rec.sent):
            rate, samples = read_wav_mono(path)
            assert rate == codec_rate, path
            assert TALK_SECONDS - 0.5 < len(samples) / rate < TALK_SECONDS + 2, path

    # What each side decoded is the other side's signal (delayed by the codec, if at all).
    to_bob = compare_wavs(a_wav, b_rec.received)
    to_alice = compare_wavs(b_wav, a_rec.received)
    assert to_bob.correlation >= 0.9, f"alice -> bob: {to_bob}\n{bob.explain()}"
    assert to_alice.correlation >= 0.9, f"bob -> alice: {to_alice}\n{alice.explain()}"
    # G.711 is sample-exact; G.722 (and baresip's own 8 -> 16 kHz resampler) delay a little.
    for result in (to_bob, to_alice):
        assert result.correlation > 0.99, str(result)
        assert 0 <= result.lag_samples < 0.01 * result.rate, str(result)
    # The comparison can fail: a side's own signal is not what it received.
    assert compare_wavs(b_wav, b_rec.received).correlation < 0.3
    # The send dumps are the sources themselves, from their start.
    sent = compare_wavs(a_wav, a_rec.sent)
    assert sent.correlation > 0.99 and abs(sent.lag_samples) < 0.01 * sent.rate, str(sent)


@pytest.mark.integration
def test_manual_answer_rejection_and_failure_messages(tmp_path: Path) -> None:
    require_baresip()
    wav = tmp_path / "src.wav"
    make_test_wav(wav, 8000, 20.0, seed=3)

    async def scenario() -> None:
        alice = BaresipPeer(wav, user="alice", workdir=tmp_path / "alice")
        bob = BaresipPeer(wav, user="bob", answer_mode="manual", workdir=tmp_path / "bob")
        async with alice, bob:
            await alice.dial(bob.sip_uri)
            await alice.wait_event("CALL_RINGING", 5)
            await bob.wait_event("CALL_INCOMING", 5)
            with pytest.raises(BaresipFailure) as failure:
                await bob.wait_event("CALL_ESTABLISHED", 0.5)
            message = str(failure.value)
            assert "event CALL_ESTABLISHED: nothing within 0.5 s" in message
            assert "CALL_INCOMING" in message  # the events seen
            assert "INVITE sip:bob@127.0.0.1" in message  # the output tail (SIP trace)
            await bob.hangup()  # a ringing call is rejected
            closed = await alice.wait_event("CALL_CLOSED", 5)
            assert closed.param is not None and "486" in closed.param, alice.explain()
        assert not alice.running and not bob.running
        assert alice.returncode is not None

    asyncio.run(scenario())
