"""What one 20 ms frame costs on a call's audio path: microseconds per frame, bytes against numpy.

Frames are bytes of native int16 samples (:mod:`intercom.media.pcm`). For every step a call
takes per frame (G.711 and G.722 each way, the WAV source, the ring between PortAudio and the
media thread) and the rarer ones (a concealed frame, a cue mixed over the call's audio), this
prints the median over repeated ``timeit`` runs of the step as intercom does it, next to the
same step done with numpy arrays as intercom did before frames became bytes (a numpy
fancy-index through the same tables, ``astype``, ``np.clip`` and the like). A call runs each
per-frame step 50 times a second each way: 10 microseconds a frame is 30 ms of CPU per
call-minute.

    python -m benchmarks.frames [--repeat 7]

numpy is imported here for the comparison only; a G.711 call itself never imports it.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import timeit
import wave
from collections.abc import Callable
from pathlib import Path

import numpy as np

from intercom.hw.audio_files import WavSource
from intercom.hw.ring import SampleRing
from intercom.media import g711
from intercom.media.g722 import G722Decoder, G722Encoder
from intercom.media.plc import LossConcealer
from intercom.media.tones import mix

Step = Callable[[], object]


def _per_frame_us(step: Step, repeat: int) -> float:
    """Median microseconds of one call of ``step``, over ``repeat`` runs of about 0.2 s."""
    number = max(1, int(0.2 / max(timeit.timeit(step, number=20) / 20, 1e-9)))
    return statistics.median(timeit.repeat(step, number=number, repeat=repeat)) / number * 1e6


def _steps(directory: Path) -> list[tuple[str, Step, Step | None]]:
    rng = np.random.default_rng(1)
    speech = np.clip(rng.standard_normal(320) * 3000, -32768, 32767).astype(np.int16)
    frame8, frame16 = speech[:160].copy(), speech
    bytes8, bytes16 = frame8.tobytes(), frame16.tobytes()

    ulaw_table = np.frombuffer(
        g711.ulaw_encode(np.arange(65536, dtype=np.uint16).tobytes()), np.uint8
    )
    ulaw_values = np.frombuffer(g711.ulaw_decode(bytes(range(256))), np.int16)
    codes = g711.ulaw_encode(bytes8)

    g722_payload = G722Encoder().encode(bytes16)
    encoder, decoder = G722Encoder(), G722Decoder()
    np_encoder, np_decoder = G722Encoder(), G722Decoder()

    wav_path = directory / "voice.wav"
    with wave.open(str(wav_path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(8000)
        wav.writeframes(np.tile(frame8, 500).astype("<i2").tobytes())  # 10 s
    source = WavSource(str(wav_path), 8000)
    np_samples = np.tile(frame8, 500)
    np_position = [0]

    def np_wav_read() -> object:
        start = np_position[0]
        np_position[0] = (start + 160) % len(np_samples)
        return np_samples[start : start + 160].copy()

    concealer = LossConcealer(8000)
    np_ramp = 1.0 - np.arange(1, 481, dtype=np.float32) / np.float32(480)

    def conceal() -> object:
        concealer.good(bytes8)
        return concealer.conceal()

    def np_conceal() -> object:
        last = frame8.copy()
        return (last * np_ramp[:160]).astype(np.int16)

    def np_mix() -> object:
        total = frame8.astype(np.int32)
        total += frame8
        np.clip(total, -32768, 32767, out=total)
        return total.astype(np.int16)

    ring = SampleRing(1600)
    np_ring = np.zeros(1600, dtype=np.int16)

    def ring_round() -> object:
        ring.write(bytes8)
        return ring.read(160)

    def np_ring_round() -> object:
        np_ring[:160] = np.frombuffer(bytes8, dtype=np.int16)
        out = np.empty(160, dtype=np.int16)
        out[:] = np_ring[:160]
        return out.tobytes()

    return [
        ("G.711 mu-law encode", lambda: g711.ulaw_encode(bytes8),
         lambda: ulaw_table[frame8.view(np.uint16)].tobytes()),
        ("G.711 mu-law decode", lambda: g711.ulaw_decode(codes),
         lambda: ulaw_values[np.frombuffer(codes, dtype=np.uint8)]),
        ("G.711 A-law encode", lambda: g711.alaw_encode(bytes8), None),
        ("G.711 A-law decode", lambda: g711.alaw_decode(codes), None),
        ("G.722 encode (16 kHz)", lambda: encoder.encode(bytes16),
         lambda: np_encoder._codec.encode(frame16)),
        ("G.722 decode (16 kHz)", lambda: decoder.decode(g722_payload),
         lambda: np.frombuffer(np_decoder._codec.decode(g722_payload), dtype=np.int16)),
        ("WAV source frame (8 kHz)", source.read_frame, np_wav_read),
        ("ring write + read (PyAudio)", ring_round, np_ring_round),
        ("concealed frame (loss only)", conceal, np_conceal),
        ("cue mixed over a frame", lambda: mix(bytes8, bytes8), np_mix),
    ]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        steps = _steps(Path(directory))
        print(f"{'step, one 20 ms frame':32} {'bytes':>9} {'numpy':>9}  (median us)")
        for name, step, reference in steps:
            ours = _per_frame_us(step, args.repeat)
            theirs = "" if reference is None else f"{_per_frame_us(reference, args.repeat):9.2f}"
            print(f"{name:32} {ours:9.2f} {theirs:>9}")


if __name__ == "__main__":
    main()
