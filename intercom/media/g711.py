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

Frames are bytes (:mod:`intercom.media.pcm`), and both directions are table lookups that run
in C, with no per-sample Python and no numpy:

* Decoding: two 256-byte tables hold the low and the high byte of each code's sample;
  ``bytes.translate`` maps a payload through each, and slice assignment interleaves the two
  results into the frame (which byte goes first follows the machine's byte order).
* Encoding: a 65536-byte table holds the code of every sample, indexed by the sample's bits
  read as an unsigned 16-bit number (``memoryview.cast("H")``, native order); ``map`` of the
  table's ``__getitem__`` over the samples gives the codes.

The tables are worked out at import from the segment arithmetic above, a run of equal codes at
a time (well under a millisecond), and tested against the G.191 reference sample by sample.
"""

from __future__ import annotations

from intercom.media.pcm import LITTLE_ENDIAN, Pcm

__all__ = ["alaw_decode", "alaw_encode", "ulaw_decode", "ulaw_encode"]


def _expand(codes: bytes, times: int) -> bytes:
    """Each code of ``codes`` repeated ``times`` times in place: the codes of every folded
    magnitude when ``codes`` holds them for the magnitude's top bits only."""
    out = bytearray(len(codes) * times)
    for k in range(times):
        out[k::times] = codes
    return bytes(out)


def _encode_table(magnitude_codes: bytes, positive: bytes, negative: bytes) -> bytes:
    """The code of every sample at the index of its uint16 bit pattern.

    ``magnitude_codes[y]`` is the 7-bit segment and step of the folded magnitude ``y``
    (0..32767); ``positive`` and ``negative`` translate them into the codes on the line. Index
    i < 32768 is the sample i; index i >= 32768 is the sample i - 65536, whose one's-complement
    fold is 65535 - i, so that half reads the magnitudes backwards.
    """
    return magnitude_codes.translate(positive) + magnitude_codes[::-1].translate(negative)


def _runs(starts: list[int], total: int) -> bytes:
    """Code k (0..127, segment and step) for every value from ``starts[k]`` to the next start."""
    ends = [*starts[1:], total]
    runs = zip(starts, ends, strict=True)
    return b"".join(bytes([code]) * (end - start) for code, (start, end) in enumerate(runs))


def _ulaw_magnitudes() -> bytes:
    """Segment and step of every folded sample's top 14 bits (G.191 ulaw_compress): the biased
    value top + 33 (at most 0x1FFF) of segment e and step m lies in [16 + m, 17 + m) << (e + 1).
    """
    starts = [max(((16 + (k & 15)) << ((k >> 4) + 1)) - 33, 0) for k in range(128)]
    return _runs(starts, 1 << 13)


def _alaw_magnitudes() -> bytes:
    """Segment and step of every folded sample's top 12 bits (G.191 alaw_compress): segments 0
    and 1 step by 1 (values 0..31), segment e > 1 holds [16 + m, 17 + m) << (e - 1)."""
    starts = [k if k < 32 else (16 + (k & 15)) << ((k >> 4) - 1) for k in range(128)]
    return _runs(starts, 1 << 11)


def _ulaw_value(code: int) -> int:
    plain = ~code & 0xFF
    exponent, mantissa = (plain >> 4) & 0x07, plain & 0x0F
    level = (((33 + 2 * mantissa) << exponent) - 33) << 2  # interval middle, 14 -> 16 bits
    return -level if plain & 0x80 else level


def _alaw_value(code: int) -> int:
    plain = code ^ 0x55
    exponent, mantissa = (plain >> 4) & 0x07, plain & 0x0F
    step = 2 * mantissa + 1 if exponent == 0 else (33 + 2 * mantissa) << (exponent - 1)
    return step << 3 if plain & 0x80 else -(step << 3)


def _decode_tables(values: list[int]) -> tuple[bytes, bytes]:
    """Translation tables for the byte that comes first and the one that comes second."""
    low = bytes(value & 0xFF for value in values)
    high = bytes((value >> 8) & 0xFF for value in values)
    return (low, high) if LITTLE_ENDIAN else (high, low)


_ULAW_ENCODE = _encode_table(
    _expand(_ulaw_magnitudes(), 4),
    bytes(0xFF ^ m if m < 0x80 else 0 for m in range(256)),  # every bit inverted on the line
    bytes(0x7F ^ m if m < 0x80 else 0 for m in range(256)),
)
_ALAW_ENCODE = _encode_table(
    _expand(_alaw_magnitudes(), 16),
    bytes((0x80 | m) ^ 0x55 if m < 0x80 else 0 for m in range(256)),  # even bits inverted
    bytes(m ^ 0x55 if m < 0x80 else 0 for m in range(256)),
)
_ULAW_FIRST, _ULAW_SECOND = _decode_tables([_ulaw_value(code) for code in range(256)])
_ALAW_FIRST, _ALAW_SECOND = _decode_tables([_alaw_value(code) for code in range(256)])

_ULAW_CODE = _ULAW_ENCODE.__getitem__
_ALAW_CODE = _ALAW_ENCODE.__getitem__


def _unsigned(pcm: Pcm) -> memoryview:
    """The samples' bit patterns as unsigned 16-bit numbers (a view, no copy)."""
    if len(pcm) % 2:
        raise ValueError(f"G.711 encodes 16-bit samples, got {len(pcm)} bytes")
    return memoryview(pcm).cast("H")


def ulaw_encode(pcm: Pcm) -> bytes:
    """Mu-law codes (one byte per sample) for a frame of 16-bit samples."""
    return bytes(map(_ULAW_CODE, _unsigned(pcm)))


def ulaw_decode(data: bytes) -> Pcm:
    """A frame with one sample per mu-law byte."""
    out = bytearray(2 * len(data))
    out[0::2] = data.translate(_ULAW_FIRST)
    out[1::2] = data.translate(_ULAW_SECOND)
    return bytes(out)


def alaw_encode(pcm: Pcm) -> bytes:
    """A-law codes (one byte per sample) for a frame of 16-bit samples."""
    return bytes(map(_ALAW_CODE, _unsigned(pcm)))


def alaw_decode(data: bytes) -> Pcm:
    """A frame with one sample per A-law byte."""
    out = bytearray(2 * len(data))
    out[0::2] = data.translate(_ALAW_FIRST)
    out[1::2] = data.translate(_ALAW_SECOND)
    return bytes(out)
