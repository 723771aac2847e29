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

Backends are imported when first used, so a machine without PortAudio can still run with
``wav:``, ``tone:`` and ``null``; :func:`validate_spec` reports the missing module instead.
"""

from __future__ import annotations

from typing import Literal, Protocol

from intercom.errors import IntercomError
from intercom.media.pcm import Pcm

Kind = Literal["input", "output"]


class AudioDeviceError(IntercomError):
    """An audio device or file cannot be opened or used; the message says what to change."""


class AudioSource(Protocol):
    """Delivers 20 ms mono frames at ``sample_rate``."""

    sample_rate: int

    def start(self) -> None:
        """Begin capturing (a device starts its stream)."""

    def read_frame(self) -> Pcm | None:
        """One frame, or None when a whole frame is not available yet. Never blocks."""

    def close(self) -> None:
        """Release the device or file. Idempotent."""

    def stats(self) -> dict[str, int]:
        """Counters: frames delivered, overflows and the like."""


class AudioSink(Protocol):
    """Accepts 20 ms mono frames at ``sample_rate``."""

    sample_rate: int

    def start(self) -> None:
        """Begin playing (a device starts its stream)."""

    def write_frame(self, frame: Pcm) -> None:
        """Queue one frame. Never blocks; a frame that does not fit is dropped and counted."""

    def close(self) -> None:
        """Release the device; flush and close a file. Idempotent."""

    def stats(self) -> dict[str, int]:
        """Counters: frames accepted, overflows, underflows and the like."""


TONE_PREFIX = "tone:"
WAV_PREFIX = "wav:"
NULL_SPEC = "null"


def open_source(spec: str, sample_rate: int) -> AudioSource:
    """Open the input named by ``spec`` delivering frames at ``sample_rate``.

    Raises :class:`AudioDeviceError` with a message naming the spec and what is wrong.
    """
    spec = _check_not_empty(spec, "input")
    if spec.lower() == NULL_SPEC:
        from intercom.hw.audio_files import NullSource

        return NullSource(sample_rate)
    if spec.lower().startswith(TONE_PREFIX):
        from intercom.hw.audio_files import ToneSource

        return ToneSource(parse_tone(spec), sample_rate)
    if spec.lower().startswith(WAV_PREFIX):
        from intercom.hw.audio_files import WavSource

        return WavSource(_wav_path(spec), sample_rate)
    from intercom.hw.pyaudio_device import PyAudioSource

    return PyAudioSource(spec, sample_rate)


def open_sink(spec: str, sample_rate: int) -> AudioSink:
    """Open the output named by ``spec`` accepting frames at ``sample_rate``.

    Raises :class:`AudioDeviceError` with a message naming the spec and what is wrong.
    """
    spec = _check_not_empty(spec, "output")
    if spec.lower() == NULL_SPEC:
        from intercom.hw.audio_files import NullSink

        return NullSink(sample_rate)
    if spec.lower().startswith(TONE_PREFIX):
        raise AudioDeviceError(_tone_output_problem(spec))
    if spec.lower().startswith(WAV_PREFIX):
        from intercom.hw.audio_files import WavSink

        return WavSink(_wav_path(spec), sample_rate)
    from intercom.hw.pyaudio_device import PyAudioSink

    return PyAudioSink(spec, sample_rate)


def validate_spec(spec: str, kind: Kind) -> str | None:
    """What is wrong with ``spec`` as an audio ``kind``, or None if it can be opened.

    For ``intercom check``: nothing is opened for long (a WAV input is read once, a PyAudio
    device is looked up but no stream is started), and every problem comes back as text.
    """
    try:
        spec = _check_not_empty(spec, kind)
        lowered = spec.lower()
        if lowered == NULL_SPEC:
            return None
        if lowered.startswith(TONE_PREFIX):
            if kind == "output":
                return _tone_output_problem(spec)
            parse_tone(spec)
            return None
        if lowered.startswith(WAV_PREFIX):
            from intercom.hw.audio_files import check_wav_input, check_wav_output

            path = _wav_path(spec)
            if kind == "input":
                check_wav_input(path)
            else:
                check_wav_output(path)
            return None
        from intercom.hw.pyaudio_device import find_device

        find_device(spec, kind)
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


def _tone_output_problem(spec: str) -> str:
    return f"audio spec {spec!r}: tone: is an input only; use wav:PATH or null as output"


def _check_not_empty(spec: str, kind: Kind) -> str:
    spec = spec.strip()
    if not spec:
        raise AudioDeviceError(
            f"audio {kind} is empty: use default, a device index or name, wav:PATH, "
            f"{'tone:HZ, ' if kind == 'input' else ''}or null"
        )
    return spec
