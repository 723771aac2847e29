"""A G.711 call imports no numpy: a PCMU call wired as the daemon wires one, in a process of its
own (``g711_call_child``), with ``wav:``/``null`` audio at the codec's rate.

numpy costs a Pi 13 to 18 MB of memory; frames are bytes and G.711 is table lookups on them, so
numpy, soxr and the G.722 extension must stay out of such a call's process altogether. The test
also checks that the call carried the door's audio, so that a call that silently did nothing
cannot pass.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import wave
from pathlib import Path

import numpy as np
import pytest

import intercom

ROOT = Path(intercom.__file__).resolve().parent.parent


@pytest.mark.timeout(60)
def test_a_pcmu_call_with_wav_and_null_audio_never_imports_numpy(tmp_path: Path) -> None:
    env = dict(os.environ, PYTHONPATH=str(ROOT))  # the intercom under test, not an installed one
    result = subprocess.run(
        [sys.executable, "-m", "tests.runtime.g711_call_child", str(tmp_path)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=45,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.splitlines()[-1])
    assert report["modules"] == [], report["first_import"]
    assert report["first_import"] is None

    door, phone = report["door"], report["phone"]
    for stats in (door, phone):
        assert stats["codec"] == "PCMU"
        assert stats["packets_sent"] >= 30 and stats["packets_received"] >= 30, stats
    with wave.open(str(tmp_path / "heard.wav"), "rb") as wav:
        assert (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) == (8000, 1, 2)
        heard = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2").astype(np.float64)
    assert len(heard) >= 8000 * 0.6
    spectrum = np.abs(np.fft.rfft(heard * np.hanning(len(heard))))
    peak = float(np.fft.rfftfreq(len(heard), 1 / 8000)[np.argmax(spectrum)])
    assert peak == pytest.approx(700, abs=10)  # the door's voice, through mu-law both ways
