"""Audio sources and sinks: the Protocols the runtime codes against, and the factory behind them.

Theory of operation
===================

The media path works in 20 ms frames of mono 16-bit PCM at the codec's sample rate
(:mod:`intercom.media.pcm`). Whatever captures or plays audio hides behind two small
Protocols:

* :class:`AudioSource`: ``read_frame()`` returns one frame, or None when the device has not
  captured a whole frame yet. It never blocks.
* :class:`AudioSink`: ``write_frame(frame)`` queues one frame for playback. It never blocks and
  never raises for a full buffer: the frame is dropped and counted in ``stats()``.

Both are opened from the ``INTERCOM_AUDIO_INPUT`` / ``INTERCOM_AUDIO_OUTPUT`` text (a *spec*):

============  ======================================  ==================================
spec          as input (:func:`open_source`)          as output (:func:`open_sink`)
============  ======================================  ==================================
``null``      silence                                 discards everything
``tone:HZ``   a sine at HZ, -12 dBFS                  refused: a tone is an input only
``wav:PATH``  the file in a loop, any rate/channels   records mono 16-bit at the codec rate
other         a PyAudio device: ``default``, an index or a name fragment (case-insensitive)
============  ======================================  ==================================

The file, tone and null sources are not clocked: they return a frame on every call, so the
caller's 20 ms clock paces them. A PyAudio source is clocked by its sound card and returns None
until the card has delivered a frame.

Each spec prefix names a :class:`Backend` in :data:`BACKENDS`; anything else is a PyAudio
device. :mod:`intercom.hw.pyaudio_device` (and PyAudio itself, the resampler and numpy with it)
is imported when a device is first used, so a door with ``wav:``, ``tone:`` or ``null`` audio
never loads it and a machine without PortAudio can still run; :func:`validate_spec` reports the
missing module instead. The Protocols live in :mod:`intercom.hw.audio_base`, which the backends
import.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import NoReturn

# Re-exported: callers open devices and name their types through this module.
from intercom.hw.audio_base import AudioDeviceError as AudioDeviceError
from intercom.hw.audio_base import AudioSink as AudioSink
from intercom.hw.audio_base import AudioSource as AudioSource
from intercom.hw.audio_base import Kind as Kind
from intercom.hw.audio_files import (
    NullSink,
    NullSource,
    ToneSource,
    WavSink,
    WavSource,
    check_wav_input,
    check_wav_output,
)

TONE_PREFIX = "tone:"
WAV_PREFIX = "wav:"


@dataclass(frozen=True, slots=True)
class Backend:
    """How one kind of spec opens a source or a sink, and checks it (each is given the spec)."""

    source: Callable[[str, int], AudioSource]
    sink: Callable[[str, int], AudioSink]
    check: Callable[[str, Kind], object]


def _no_tone_sink(spec: str, sample_rate: int = 0) -> NoReturn:
    raise AudioDeviceError(
        f"audio spec {spec!r}: tone: is an input only; use wav:PATH or null as output"
    )


def _check_tone(spec: str, kind: Kind) -> None:
    if kind == "output":
        _no_tone_sink(spec)
    parse_tone(spec)


def _check_wav(spec: str, kind: Kind) -> None:
    (check_wav_input if kind == "input" else check_wav_output)(_wav_path(spec))


BACKENDS: dict[str, Backend] = {
    "null": Backend(
        lambda spec, rate: NullSource(rate), lambda spec, rate: NullSink(rate), lambda *_: None
    ),
    TONE_PREFIX: Backend(
        lambda spec, rate: ToneSource(parse_tone(spec), rate), _no_tone_sink, _check_tone
    ),
    WAV_PREFIX: Backend(
        lambda spec, rate: WavSource(_wav_path(spec), rate),
        lambda spec, rate: WavSink(_wav_path(spec), rate),
        _check_wav,
    ),
}
"""Keyed by the exact spec (``null``) or by its prefix up to and with the colon (``wav:``)."""


def _pyaudio_source(spec: str, sample_rate: int) -> AudioSource:
    from intercom.hw.pyaudio_device import PyAudioSource

    return PyAudioSource(spec, sample_rate)


def _pyaudio_sink(spec: str, sample_rate: int) -> AudioSink:
    from intercom.hw.pyaudio_device import PyAudioSink

    return PyAudioSink(spec, sample_rate)


def _pyaudio_check(spec: str, kind: Kind) -> object:
    from intercom.hw.pyaudio_device import find_device

    return find_device(spec, kind)


PYAUDIO = Backend(_pyaudio_source, _pyaudio_sink, _pyaudio_check)
"""Every other spec: ``default``, a device index or a name fragment (imported on first use)."""


def _backend(spec: str) -> Backend:
    scheme, colon, _ = spec.partition(":")
    return BACKENDS.get(scheme.lower() + colon, PYAUDIO)


def open_source(spec: str, sample_rate: int) -> AudioSource:
    """Open the input named by ``spec`` delivering frames at ``sample_rate``.

    Raises :class:`AudioDeviceError` with a message naming the spec and what is wrong.
    """
    spec = _check_not_empty(spec, "input")
    return _backend(spec).source(spec, sample_rate)


def open_sink(spec: str, sample_rate: int) -> AudioSink:
    """Open the output named by ``spec`` accepting frames at ``sample_rate``.

    Raises :class:`AudioDeviceError` with a message naming the spec and what is wrong.
    """
    spec = _check_not_empty(spec, "output")
    return _backend(spec).sink(spec, sample_rate)


def validate_spec(spec: str, kind: Kind) -> str | None:
    """What is wrong with ``spec`` as an audio ``kind``, or None if it can be opened.

    For ``intercom check``: nothing is opened for long (a WAV input is read once, a PyAudio
    device is looked up but no stream is started), and every problem comes back as text.
    """
    try:
        spec = _check_not_empty(spec, kind)
        _backend(spec).check(spec, kind)
    except AudioDeviceError as error:
        return str(error)
    return None


def parse_tone(spec: str) -> float:
    """The frequency in Hz of a ``tone:HZ`` spec; :class:`AudioDeviceError` if it is not one."""
    text = spec[len(TONE_PREFIX) :].strip()
    try:
        frequency = float(text)
    except ValueError:
        raise AudioDeviceError(
            f"audio spec {spec!r}: the frequency must be a number of Hz, e.g. tone:440"
        ) from None
    if not 0 < frequency <= 20000:
        raise AudioDeviceError(
            f"audio spec {spec!r}: the frequency must be above 0 and at most 20000 Hz"
        )
    return frequency


def _wav_path(spec: str) -> str:
    path = spec[len(WAV_PREFIX) :].strip()
    if not path:
        raise AudioDeviceError(f"audio spec {spec!r}: a file path must follow 'wav:'")
    return path


def _check_not_empty(spec: str, kind: Kind) -> str:
    spec = spec.strip()
    if not spec:
        raise AudioDeviceError(
            f"audio {kind} is empty: use default, a device index or name, wav:PATH, "
            f"{'tone:HZ, ' if kind == 'input' else ''}or null"
        )
    return spec
