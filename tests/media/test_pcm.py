"""PCM frames as bytes: samples in and out, silence, and the byte order of WAV files and G.711.

The code runs on little-endian machines (ARM, x86); big-endian ones must still be right. The
byte-order switches are module constants, patched here to walk the big-endian branches.
"""

from __future__ import annotations

import sys
from array import array

import pytest

from intercom.media import g711, pcm


def test_samples_and_from_samples_round_trip_in_native_order() -> None:
    values = [0, 1, -1, 32767, -32768, 1234]
    frame = pcm.from_samples(values)
    assert type(frame) is bytes and len(frame) == 2 * len(values)
    assert pcm.samples(frame).tolist() == values
    assert frame == b"".join(v.to_bytes(2, sys.byteorder, signed=True) for v in values)
    with pytest.raises(OverflowError):
        pcm.from_samples([32768])


def test_silence_is_one_frame_of_zero_samples() -> None:
    assert pcm.silence(8000) == bytes(320)
    assert pcm.silence(16000) == bytes(640)


def test_wav_byte_order_is_little_endian_on_either_kind_of_machine(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    little = b"".join(v.to_bytes(2, "little", signed=True) for v in (0x1234, -2))
    monkeypatch.setattr(pcm, "LITTLE_ENDIAN", True)
    assert pcm.to_little_endian(little) == little and pcm.from_little_endian(little) == little
    monkeypatch.setattr(pcm, "LITTLE_ENDIAN", False)  # as on a big-endian machine
    swapped = array("h", little)
    swapped.byteswap()
    assert pcm.to_little_endian(swapped.tobytes()) == little
    assert pcm.from_little_endian(little) == swapped.tobytes()


def test_g711_decode_tables_put_the_high_byte_first_on_a_big_endian_machine(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    values = [0x1234, -32124, 8]
    monkeypatch.setattr(g711, "LITTLE_ENDIAN", True)
    first, second = g711._decode_tables(values)
    assert (list(first), list(second)) == ([0x34, 0x84, 0x08], [0x12, 0x82, 0x00])
    monkeypatch.setattr(g711, "LITTLE_ENDIAN", False)
    assert g711._decode_tables(values) == (second, first)
