"""G.711 against the standard: full decode tables, all 65536 encodings, round trips, and the
numpy implementation it replaced, as a second reference."""

from __future__ import annotations

import sys

import numpy as np
import numpy.typing as npt
import pytest

from intercom.media.g711 import alaw_decode, alaw_encode, ulaw_decode, ulaw_encode
from tests.pcm_arrays import pcm, samples

# ITU-T G.711 decoder output for every code, scaled to 16 bits (mu-law values x4, A-law x8, as
# the G.191 software tools do). Index = the code on the line; comments give the first code of
# each row. Generated once from the segment tables (see test_literal_tables_follow_g711_segments).
ULAW_DECODED = (
    -32124,
    -31100,
    -30076,
    -29052,
    -28028,
    -27004,
    -25980,
    -24956,  # 0x00
    -23932,
    -22908,
    -21884,
    -20860,
    -19836,
    -18812,
    -17788,
    -16764,  # 0x08
    -15996,
    -15484,
    -14972,
    -14460,
    -13948,
    -13436,
    -12924,
    -12412,  # 0x10
    -11900,
    -11388,
    -10876,
    -10364,
    -9852,
    -9340,
    -8828,
    -8316,  # 0x18
    -7932,
    -7676,
    -7420,
    -7164,
    -6908,
    -6652,
    -6396,
    -6140,  # 0x20
    -5884,
    -5628,
    -5372,
    -5116,
    -4860,
    -4604,
    -4348,
    -4092,  # 0x28
    -3900,
    -3772,
    -3644,
    -3516,
    -3388,
    -3260,
    -3132,
    -3004,  # 0x30
    -2876,
    -2748,
    -2620,
    -2492,
    -2364,
    -2236,
    -2108,
    -1980,  # 0x38
    -1884,
    -1820,
    -1756,
    -1692,
    -1628,
    -1564,
    -1500,
    -1436,  # 0x40
    -1372,
    -1308,
    -1244,
    -1180,
    -1116,
    -1052,
    -988,
    -924,  # 0x48
    -876,
    -844,
    -812,
    -780,
    -748,
    -716,
    -684,
    -652,  # 0x50
    -620,
    -588,
    -556,
    -524,
    -492,
    -460,
    -428,
    -396,  # 0x58
    -372,
    -356,
    -340,
    -324,
    -308,
    -292,
    -276,
    -260,  # 0x60
    -244,
    -228,
    -212,
    -196,
    -180,
    -164,
    -148,
    -132,  # 0x68
    -120,
    -112,
    -104,
    -96,
    -88,
    -80,
    -72,
    -64,  # 0x70
    -56,
    -48,
    -40,
    -32,
    -24,
    -16,
    -8,
    0,  # 0x78
    32124,
    31100,
    30076,
    29052,
    28028,
    27004,
    25980,
    24956,  # 0x80
    23932,
    22908,
    21884,
    20860,
    19836,
    18812,
    17788,
    16764,  # 0x88
    15996,
    15484,
    14972,
    14460,
    13948,
    13436,
    12924,
    12412,  # 0x90
    11900,
    11388,
    10876,
    10364,
    9852,
    9340,
    8828,
    8316,  # 0x98
    7932,
    7676,
    7420,
    7164,
    6908,
    6652,
    6396,
    6140,  # 0xA0
    5884,
    5628,
    5372,
    5116,
    4860,
    4604,
    4348,
    4092,  # 0xA8
    3900,
    3772,
    3644,
    3516,
    3388,
    3260,
    3132,
    3004,  # 0xB0
    2876,
    2748,
    2620,
    2492,
    2364,
    2236,
    2108,
    1980,  # 0xB8
    1884,
    1820,
    1756,
    1692,
    1628,
    1564,
    1500,
    1436,  # 0xC0
    1372,
    1308,
    1244,
    1180,
    1116,
    1052,
    988,
    924,  # 0xC8
    876,
    844,
    812,
    780,
    748,
    716,
    684,
    652,  # 0xD0
    620,
    588,
    556,
    524,
    492,
    460,
    428,
    396,  # 0xD8
    372,
    356,
    340,
    324,
    308,
    292,
    276,
    260,  # 0xE0
    244,
    228,
    212,
    196,
    180,
    164,
    148,
    132,  # 0xE8
    120,
    112,
    104,
    96,
    88,
    80,
    72,
    64,  # 0xF0
    56,
    48,
    40,
    32,
    24,
    16,
    8,
    0,  # 0xF8
)
ALAW_DECODED = (
    -5504,
    -5248,
    -6016,
    -5760,
    -4480,
    -4224,
    -4992,
    -4736,  # 0x00
    -7552,
    -7296,
    -8064,
    -7808,
    -6528,
    -6272,
    -7040,
    -6784,  # 0x08
    -2752,
    -2624,
    -3008,
    -2880,
    -2240,
    -2112,
    -2496,
    -2368,  # 0x10
    -3776,
    -3648,
    -4032,
    -3904,
    -3264,
    -3136,
    -3520,
    -3392,  # 0x18
    -22016,
    -20992,
    -24064,
    -23040,
    -17920,
    -16896,
    -19968,
    -18944,  # 0x20
    -30208,
    -29184,
    -32256,
    -31232,
    -26112,
    -25088,
    -28160,
    -27136,  # 0x28
    -11008,
    -10496,
    -12032,
    -11520,
    -8960,
    -8448,
    -9984,
    -9472,  # 0x30
    -15104,
    -14592,
    -16128,
    -15616,
    -13056,
    -12544,
    -14080,
    -13568,  # 0x38
    -344,
    -328,
    -376,
    -360,
    -280,
    -264,
    -312,
    -296,  # 0x40
    -472,
    -456,
    -504,
    -488,
    -408,
    -392,
    -440,
    -424,  # 0x48
    -88,
    -72,
    -120,
    -104,
    -24,
    -8,
    -56,
    -40,  # 0x50
    -216,
    -200,
    -248,
    -232,
    -152,
    -136,
    -184,
    -168,  # 0x58
    -1376,
    -1312,
    -1504,
    -1440,
    -1120,
    -1056,
    -1248,
    -1184,  # 0x60
    -1888,
    -1824,
    -2016,
    -1952,
    -1632,
    -1568,
    -1760,
    -1696,  # 0x68
    -688,
    -656,
    -752,
    -720,
    -560,
    -528,
    -624,
    -592,  # 0x70
    -944,
    -912,
    -1008,
    -976,
    -816,
    -784,
    -880,
    -848,  # 0x78
    5504,
    5248,
    6016,
    5760,
    4480,
    4224,
    4992,
    4736,  # 0x80
    7552,
    7296,
    8064,
    7808,
    6528,
    6272,
    7040,
    6784,  # 0x88
    2752,
    2624,
    3008,
    2880,
    2240,
    2112,
    2496,
    2368,  # 0x90
    3776,
    3648,
    4032,
    3904,
    3264,
    3136,
    3520,
    3392,  # 0x98
    22016,
    20992,
    24064,
    23040,
    17920,
    16896,
    19968,
    18944,  # 0xA0
    30208,
    29184,
    32256,
    31232,
    26112,
    25088,
    28160,
    27136,  # 0xA8
    11008,
    10496,
    12032,
    11520,
    8960,
    8448,
    9984,
    9472,  # 0xB0
    15104,
    14592,
    16128,
    15616,
    13056,
    12544,
    14080,
    13568,  # 0xB8
    344,
    328,
    376,
    360,
    280,
    264,
    312,
    296,  # 0xC0
    472,
    456,
    504,
    488,
    408,
    392,
    440,
    424,  # 0xC8
    88,
    72,
    120,
    104,
    24,
    8,
    56,
    40,  # 0xD0
    216,
    200,
    248,
    232,
    152,
    136,
    184,
    168,  # 0xD8
    1376,
    1312,
    1504,
    1440,
    1120,
    1056,
    1248,
    1184,  # 0xE0
    1888,
    1824,
    2016,
    1952,
    1632,
    1568,
    1760,
    1696,  # 0xE8
    688,
    656,
    752,
    720,
    560,
    528,
    624,
    592,  # 0xF0
    944,
    912,
    1008,
    976,
    816,
    784,
    880,
    848,  # 0xF8
)

ALL_CODES = bytes(range(256))
ALL_VALUES = np.arange(-32768, 32768, dtype=np.int16)
ALL_SAMPLES = pcm(ALL_VALUES)


# ---- independent scalar definitions --------------------------------------------------------


def g711_table_value(code: int, law: str) -> int:
    """Decoder output from G.711 Tables 1a/2a: first output value and step of each segment."""
    if law == "ulaw":
        plain, first, scale = code ^ 0xFF, (0, 33, 99, 231, 495, 1023, 2079, 4191), 4
        steps, positive = (2, 4, 8, 16, 32, 64, 128, 256), not plain & 0x80
    else:
        plain, first, scale = code ^ 0x55, (1, 33, 66, 132, 264, 528, 1056, 2112), 8
        steps, positive = (2, 2, 4, 8, 16, 32, 64, 128), bool(plain & 0x80)
    segment, step = (plain >> 4) & 7, plain & 15
    magnitude = (first[segment] + steps[segment] * step) * scale
    return magnitude if positive else -magnitude


def reference_ulaw_encode(sample: int) -> int:
    """G.191 ulaw_compress for one sample, written out step by step."""
    folded = ~sample if sample < 0 else sample  # one's complement folding of negatives
    biased = min((folded >> 2) + 33, 0x1FFF)  # 14-bit magnitude plus the mu-law bias
    segment = 1
    rest = biased >> 6
    while rest:
        segment += 1
        rest >>= 1
    code = ((8 - segment) << 4) | (15 - ((biased >> segment) & 15))
    return code | 0x80 if sample >= 0 else code


def reference_alaw_encode(sample: int) -> int:
    """G.191 alaw_compress for one sample, written out step by step."""
    value = (~sample if sample < 0 else sample) >> 4  # 12 bits: 11 of magnitude
    if value > 15:
        exponent = 1
        while value > 31:
            value >>= 1
            exponent += 1
        value = (exponent << 4) + value - 16
    if sample >= 0:
        value |= 0x80
    return value ^ 0x55


# ---- decoding ------------------------------------------------------------------------------


def test_literal_tables_follow_g711_segments():
    assert [g711_table_value(c, "ulaw") for c in range(256)] == list(ULAW_DECODED)
    assert [g711_table_value(c, "alaw") for c in range(256)] == list(ALAW_DECODED)


def test_ulaw_decode_table():
    assert samples(ulaw_decode(ALL_CODES)).tolist() == list(ULAW_DECODED)


def test_alaw_decode_table():
    assert samples(alaw_decode(ALL_CODES)).tolist() == list(ALAW_DECODED)


@pytest.mark.parametrize(
    ("code", "value"),
    [(0x00, -32124), (0x80, 32124), (0xFF, 0), (0x7F, 0), (0xFE, 8), (0x7E, -8), (0xEF, 132)],
)
def test_ulaw_well_known_values(code, value):
    assert samples(ulaw_decode(bytes([code])))[0] == value


@pytest.mark.parametrize(
    ("code", "value"),
    [(0xD5, 8), (0x55, -8), (0xAA, 32256), (0x2A, -32256), (0xD4, 24), (0xC5, 264)],
)
def test_alaw_well_known_values(code, value):
    assert samples(alaw_decode(bytes([code])))[0] == value


@pytest.mark.parametrize("decode", [ulaw_decode, alaw_decode])
def test_decode_gives_a_frame_of_native_int16(decode):
    frame = decode(b"\x00\x80\xff")
    assert type(frame) is bytes and len(frame) == 6
    assert [int.from_bytes(frame[i : i + 2], sys.byteorder, signed=True) for i in (0, 2, 4)] == (
        samples(frame).tolist()
    )
    assert decode(b"") == b""


# ---- encoding ------------------------------------------------------------------------------


def test_ulaw_encode_every_sample_matches_g191():
    expected = bytes(reference_ulaw_encode(int(s)) for s in ALL_VALUES)
    assert ulaw_encode(ALL_SAMPLES) == expected


def test_alaw_encode_every_sample_matches_g191():
    expected = bytes(reference_alaw_encode(int(s)) for s in ALL_VALUES)
    assert alaw_encode(ALL_SAMPLES) == expected


def test_silence_and_extremes():
    frame = pcm([0, -1, 32767, -32768])
    assert ulaw_encode(frame) == b"\xff\x7f\x80\x00"
    assert alaw_encode(frame) == b"\xd5\x55\xaa\x2a"


@pytest.mark.parametrize(
    ("encode", "decode"), [(ulaw_encode, ulaw_decode), (alaw_encode, alaw_decode)]
)
def test_quantisation_is_monotonic(encode, decode):
    decoded = samples(decode(encode(ALL_SAMPLES))).astype(np.int32)
    assert np.all(np.diff(decoded) >= 0)
    assert len(np.unique(decoded)) == (255 if encode is ulaw_encode else 256)


def test_ulaw_round_trip_every_code():
    codes = ulaw_encode(ulaw_decode(ALL_CODES))
    expected = bytearray(ALL_CODES)
    expected[0x7F] = 0xFF  # "negative zero" decodes to 0, which encodes as the positive zero
    assert codes == bytes(expected)


def test_alaw_round_trip_every_code():
    assert alaw_encode(alaw_decode(ALL_CODES)) == ALL_CODES


@pytest.mark.parametrize("encode", [ulaw_encode, alaw_encode])
def test_encode_takes_any_whole_number_of_samples(encode):
    values = np.arange(-1600, 1600, 10, dtype=np.int16)
    assert encode(pcm(values[::2])) == bytes(encode(pcm([v]))[0] for v in values[::2])
    assert encode(b"") == b""


@pytest.mark.parametrize("encode", [ulaw_encode, alaw_encode])
def test_encode_rejects_half_a_sample(encode):
    with pytest.raises(ValueError, match="16-bit samples, got 321 bytes"):
        encode(bytes(321))


# ---- the numpy implementation this one replaced, as a reference ---------------------------
# Tables worked out with numpy from the same segment arithmetic, each frame one fancy-index
# (intercom's G.711 before frames became bytes); the bytes version must agree bit for bit.


def _numpy_segment(value: npt.NDArray[np.int32], first_boundary: int) -> npt.NDArray[np.int32]:
    boundaries = first_boundary << np.arange(7, dtype=np.int32)
    return np.searchsorted(boundaries, value, side="right").astype(np.int32)


def _numpy_tables(law: str) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.int16]]:
    x = np.arange(65536, dtype=np.uint16).view(np.int16).astype(np.int32)
    plain = np.arange(256, dtype=np.int32)
    if law == "ulaw":
        magnitude = np.minimum((np.where(x < 0, ~x, x) >> 2) + 33, 0x1FFF)
        exponent = _numpy_segment(magnitude, 64)
        mantissa = (magnitude >> (exponent + 1)) & 0x0F
        code = (exponent << 4) | mantissa | np.where(x < 0, 0x80, 0)
        encode = (~code & 0xFF).astype(np.uint8)
        plain = ~plain & 0xFF
        exp, mant = (plain >> 4) & 0x07, plain & 0x0F
        level = (((33 + 2 * mant) << exp) - 33) << 2
        return encode, np.where(plain & 0x80, -level, level).astype(np.int16)
    magnitude = np.where(x < 0, ~x, x) >> 4
    exponent = _numpy_segment(magnitude, 16)
    mantissa = (magnitude >> np.maximum(exponent - 1, 0)) & 0x0F
    code = (exponent << 4) | mantissa | np.where(x < 0, 0, 0x80)
    encode = (code ^ 0x55).astype(np.uint8)
    plain = plain ^ 0x55
    exp, mant = (plain >> 4) & 0x07, plain & 0x0F
    level = np.where(exp == 0, 2 * mant + 1, (33 + 2 * mant) << np.maximum(exp - 1, 0)) << 3
    return encode, np.where(plain & 0x80, level, -level).astype(np.int16)


LAWS = [("ulaw", ulaw_encode, ulaw_decode), ("alaw", alaw_encode, alaw_decode)]


@pytest.mark.parametrize(("law", "encode", "decode"), LAWS)
def test_every_sample_and_code_agree_with_the_numpy_tables(law, encode, decode):
    encode_table, decode_table = _numpy_tables(law)
    assert encode(ALL_SAMPLES) == encode_table[ALL_VALUES.view(np.uint16)].tobytes()
    assert decode(ALL_CODES) == decode_table[np.frombuffer(ALL_CODES, np.uint8)].tobytes()


@pytest.mark.parametrize(("law", "encode", "decode"), LAWS)
def test_speech_like_frames_round_trip_as_through_numpy(law, encode, decode):
    encode_table, decode_table = _numpy_tables(law)
    rng = np.random.default_rng(11)
    for level in (30, 300, 3000, 30000):  # every segment, clipped at the top
        values = np.clip(rng.standard_normal(160) * level, -32768, 32767).astype(np.int16)
        codes = encode(pcm(values))
        assert codes == encode_table[values.view(np.uint16)].tobytes()
        decoded = decode_table[np.frombuffer(codes, np.uint8)]
        assert samples(decode(codes)).tolist() == decoded.tolist()
