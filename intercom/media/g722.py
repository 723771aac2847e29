"""G.722 wideband audio at 64 kbit/s, through the ``G722`` package (ITU-T reference code in C).

Theory of operation
===================

ITU-T G.722 splits 16 kHz audio with a quadrature mirror filter into a low and a high sub-band
and codes each with ADPCM (6 + 2 bits), so every pair of input samples becomes one byte: a
20 ms frame of 320 samples is 160 bytes. Encoder and decoder each carry adaptive predictor and
filter state from frame to frame, so a call needs one encoder for what we send and a separate
decoder for what we receive; mixing the two directions in one state would corrupt both. The
filters delay the decoded signal by 22 samples (about 1.4 ms).

RTP quirk (RFC 3551 §4.5.2): the RTP clock of G.722 is 8000 Hz although the audio is sampled at
16 kHz, an error in the original RFC 1890 kept for compatibility; the timestamp still advances
by 160 per 20 ms frame. That bookkeeping is in :mod:`intercom.media.codecs`, not here.
"""

from __future__ import annotations

import numpy as np

from intercom.media.pcm import Pcm

__all__ = ["G722_BITRATE", "G722_SAMPLE_RATE", "G722Decoder", "G722Encoder"]

G722_SAMPLE_RATE = 16000
G722_BITRATE = 64000


class G722Encoder:
    """Stateful encoder: 2 int16 samples in, 1 byte out."""

    __slots__ = ("_codec",)

    def __init__(self) -> None:
        from G722 import G722  # on the first G.722 call: a PCMU/PCMA door never loads it

        self._codec = G722(G722_SAMPLE_RATE, G722_BITRATE)

    def encode(self, pcm: Pcm) -> bytes:
        """Code ``pcm`` (int16, an even number of samples) into ``len(pcm) // 2`` bytes."""
        if pcm.dtype != np.int16:
            raise ValueError(f"G.722 encodes int16 samples, not {pcm.dtype}")
        if len(pcm) % 2:
            raise ValueError(f"G.722 encodes sample pairs, got {len(pcm)} samples")
        data: bytes = self._codec.encode(pcm)
        return data


class G722Decoder:
    """Stateful decoder: 1 byte in, 2 int16 samples out."""

    __slots__ = ("_codec",)

    def __init__(self) -> None:
        from G722 import G722  # on the first G.722 call: a PCMU/PCMA door never loads it

        self._codec = G722(G722_SAMPLE_RATE, G722_BITRATE)

    def decode(self, payload: bytes) -> Pcm:
        """A new int16 array of ``2 * len(payload)`` samples."""
        if not payload:
            return np.zeros(0, dtype=np.int16)
        return np.frombuffer(self._codec.decode(payload), dtype=np.int16)
