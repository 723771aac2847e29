"""The audio codecs we speak, their RTP parameters, and encoder/decoder factories.

Theory of operation
===================

Three codecs, all with static RTP payload types from RFC 3551 Table 4 and 20 ms frames:

========  ==  =========  ===========  =============  ==============
name      PT  RTP clock  sample rate  frame samples  timestamp step
========  ==  =========  ===========  =============  ==============
PCMU       0       8000         8000            160             160
PCMA       8       8000         8000            160             160
G722       9       8000        16000            320             160
========  ==  =========  ===========  =============  ==============

G.722 samples at 16 kHz but its RTP clock rate is 8000 (RFC 3551 §4.5.2), so its timestamp
advances by 160 per frame like the others; the ``sample_rate`` is what audio devices and the
codec itself see, ``clock_rate`` is what RTP timestamps, the jitter buffer, RTCP jitter and SDP
rtpmap use. PCMU and PCMA are G.711 (RFC 3551 §4.5.14). Each :func:`make_encoder` /
:func:`make_decoder` call returns fresh state (G.722 is adaptive; G.711 is stateless but the
same interface keeps callers uniform).

G.722 comes from a C extension that a G.711 call never needs: it is imported when the first
G.722 encoder or decoder is made, not with this module.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from intercom.media.g711 import alaw_decode, alaw_encode, ulaw_decode, ulaw_encode
from intercom.media.pcm import Pcm

__all__ = [
    "CODECS",
    "CodecInfo",
    "Decoder",
    "Encoder",
    "make_decoder",
    "make_encoder",
    "parse_codec_list",
]


@dataclass(frozen=True, slots=True)
class CodecInfo:
    """RTP and audio parameters of one codec."""

    name: str
    payload_type: int
    clock_rate: int
    sample_rate: int
    frame_samples: int
    timestamp_step: int


CODECS: dict[str, CodecInfo] = {
    "PCMU": CodecInfo("PCMU", 0, 8000, 8000, 160, 160),
    "PCMA": CodecInfo("PCMA", 8, 8000, 8000, 160, 160),
    "G722": CodecInfo("G722", 9, 8000, 16000, 320, 160),
}


class Encoder(Protocol):
    """Turns one frame of ``info.sample_rate`` samples into an RTP payload."""

    info: CodecInfo

    def encode(self, pcm: Pcm) -> bytes: ...


class Decoder(Protocol):
    """Turns one RTP payload into samples at ``info.sample_rate``."""

    info: CodecInfo

    def decode(self, payload: bytes) -> Pcm: ...


@dataclass(slots=True)
class _Encoder:
    info: CodecInfo
    encode: Callable[[Pcm], bytes]


@dataclass(slots=True)
class _Decoder:
    info: CodecInfo
    decode: Callable[[bytes], Pcm]


def _g722_encode() -> Callable[[Pcm], bytes]:
    from intercom.media.g722 import G722Encoder

    return G722Encoder().encode


def _g722_decode() -> Callable[[bytes], Pcm]:
    from intercom.media.g722 import G722Decoder

    return G722Decoder().decode


_NEW_ENCODE: dict[str, Callable[[], Callable[[Pcm], bytes]]] = {
    "PCMU": lambda: ulaw_encode,
    "PCMA": lambda: alaw_encode,
    "G722": _g722_encode,
}
_NEW_DECODE: dict[str, Callable[[], Callable[[bytes], Pcm]]] = {
    "PCMU": lambda: ulaw_decode,
    "PCMA": lambda: alaw_decode,
    "G722": _g722_decode,
}
"""Per codec in :data:`CODECS`, a factory of fresh coding state."""


def _info(name: str) -> CodecInfo:
    info = CODECS.get(name.upper())
    if info is None:
        raise ValueError(f"unknown codec {name!r} (known: {', '.join(CODECS)})")
    return info


def make_encoder(name: str) -> Encoder:
    """A new encoder for the codec called ``name`` (case-insensitive)."""
    info = _info(name)
    return _Encoder(info, _NEW_ENCODE[info.name]())


def make_decoder(name: str) -> Decoder:
    """A new decoder for the codec called ``name`` (case-insensitive)."""
    info = _info(name)
    return _Decoder(info, _NEW_DECODE[info.name]())


def parse_codec_list(text: str) -> tuple[str, ...]:
    """Codec names from a comma list such as ``INTERCOM_CODECS`` ("g722, PCMU"), in order.

    Names are case-insensitive and come back in their canonical spelling; a repeated name keeps
    its first place. An unknown name or an empty list is a ``ValueError``.
    """
    names: list[str] = []
    for item in text.split(","):
        if item.strip():
            name = _info(item.strip()).name
            if name not in names:
                names.append(name)
    if not names:
        raise ValueError(f"no codec named in {text!r} (known: {', '.join(CODECS)})")
    return tuple(names)
