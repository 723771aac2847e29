"""G.711 mu-law (PCMU) and A-law (PCMA), bit-exact with ITU-T G.711 and its G.191 reference.

Theory of operation
===================

G.711 maps each linear sample to an 8-bit code: a sign bit, a 3-bit segment (exponent) and a
4-bit step within the segment (mantissa), the segments doubling in width (ITU-T G.711 Tables
1a/2a). Mu-law works on 14-bit magnitudes with a bias of 33 and sends every bit inverted; A-law
works on 13-bit values, its first two segments share one step size, and the even bits are
inverted (XOR 0x55). RTP carries one code per sample at 8000 Hz (RFC 3551 §4.5.14).

Our samples are 16 bits; as the G.191 software tools do, mu-law uses the top 14 bits and A-law
the top 13, and negative values are folded with the one's complement (``~x``), so -1 encodes
like 0 with the sign bit clear. Decoding returns the middle of the quantisation interval
scaled back to 16 bits (mu-law 0x80 -> 32124, A-law 0xAA -> 32256). Mu-law has two codes for
zero (0xFF "+0" and 0x7F "-0"); the encoder only produces 0xFF for 0.

Instead of per-sample arithmetic, every possible input is worked out once at import: a
65536-entry encode table indexed by the samples viewed as ``uint16`` and a 256-entry decode
table. A frame is then one numpy fancy-index in each direction.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from intercom.media.pcm import Pcm

__all__ = ["alaw_decode", "alaw_encode", "ulaw_decode", "ulaw_encode"]

_U8 = npt.NDArray[np.uint8]


def _all_samples() -> npt.NDArray[np.int32]:
    """Every int16 value, at the index of its uint16 bit pattern (0, 1, ..., -32768, ..., -1)."""
    return np.arange(65536, dtype=np.uint16).view(np.int16).astype(np.int32)


def _segment(value: npt.NDArray[np.int32], first_boundary: int) -> npt.NDArray[np.int32]:
    """Segment 0..7 of each value: how many of the boundaries first_boundary * 2**k it reaches."""
    boundaries = first_boundary << np.arange(7, dtype=np.int32)
    return np.searchsorted(boundaries, value, side="right").astype(np.int32)


def _ulaw_tables() -> tuple[_U8, Pcm]:
    x = _all_samples()
    magnitude = np.minimum((np.where(x < 0, ~x, x) >> 2) + 33, 0x1FFF)  # biased 14-bit, 33..8191
    exponent = _segment(magnitude, 64)  # e > 0: biased magnitude in [32 << e, 64 << e)
    mantissa = (magnitude >> (exponent + 1)) & 0x0F
    code = (exponent << 4) | mantissa | np.where(x < 0, 0x80, 0)
    encode = (~code & 0xFF).astype(np.uint8)  # every bit inverted on the line

    plain = ~np.arange(256, dtype=np.int32) & 0xFF
    exp, mant = (plain >> 4) & 0x07, plain & 0x0F
    level = (((33 + 2 * mant) << exp) - 33) << 2  # interval middle, 14 -> 16 bits
    decode = np.where(plain & 0x80, -level, level).astype(np.int16)
    return encode, decode


def _alaw_tables() -> tuple[_U8, Pcm]:
    x = _all_samples()
    magnitude = np.where(x < 0, ~x, x) >> 4  # 0..2047: segments 0 and 1 both have step 1
    exponent = _segment(magnitude, 16)  # e > 0: magnitude in [8 << e, 16 << e)
    mantissa = (magnitude >> np.maximum(exponent - 1, 0)) & 0x0F
    code = (exponent << 4) | mantissa | np.where(x < 0, 0, 0x80)
    encode = (code ^ 0x55).astype(np.uint8)

    plain = np.arange(256, dtype=np.int32) ^ 0x55
    exp, mant = (plain >> 4) & 0x07, plain & 0x0F
    level = np.where(exp == 0, 2 * mant + 1, (33 + 2 * mant) << np.maximum(exp - 1, 0)) << 3
    decode = np.where(plain & 0x80, level, -level).astype(np.int16)
    return encode, decode


_ULAW_ENCODE, _ULAW_DECODE = _ulaw_tables()
_ALAW_ENCODE, _ALAW_DECODE = _alaw_tables()


def _codes(pcm: Pcm) -> npt.NDArray[np.uint16]:
    if pcm.dtype != np.int16:
        raise ValueError(f"G.711 encodes int16 samples, not {pcm.dtype}")
    return pcm.view(np.uint16)


def ulaw_encode(pcm: Pcm) -> bytes:
    """Mu-law codes (one byte per sample) for int16 samples."""
    return _ULAW_ENCODE[_codes(pcm)].tobytes()


def ulaw_decode(data: bytes) -> Pcm:
    """A new int16 array with one sample per mu-law byte."""
    return _ULAW_DECODE[np.frombuffer(data, dtype=np.uint8)]


def alaw_encode(pcm: Pcm) -> bytes:
    """A-law codes (one byte per sample) for int16 samples."""
    return _ALAW_ENCODE[_codes(pcm)].tobytes()


def alaw_decode(data: bytes) -> Pcm:
    """A new int16 array with one sample per A-law byte."""
    return _ALAW_DECODE[np.frombuffer(data, dtype=np.uint8)]
