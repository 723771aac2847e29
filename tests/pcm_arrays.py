"""Frames to and from numpy arrays, for tests that analyse audio (the code under test carries
frames as bytes of native int16 samples and imports no numpy on a G.711 call's path)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt


def pcm(values: npt.ArrayLike | Sequence[int]) -> bytes:
    """A frame of ``values`` (which must fit in 16 bits: no silent wrap-around)."""
    array = np.asarray(values)
    if array.size and (array.min() < -32768 or array.max() > 32767):
        raise ValueError("samples beyond 16 bits")
    return array.astype(np.int16).tobytes()


def samples(frame: bytes) -> npt.NDArray[np.int16]:
    """The samples of ``frame`` as a read-only int16 array (no copy)."""
    return np.frombuffer(frame, dtype=np.int16)
