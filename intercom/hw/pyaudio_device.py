"""Microphone and speaker through PyAudio (PortAudio), in callback mode.

Theory of operation
===================

PortAudio calls a stream's callback on its own real-time thread once per device period (we
ask for 20 ms); :mod:`intercom.hw.audio_bridge` holds what that thread and the media thread
share, and says how the callback stays out of trouble.

Choosing the stream format (:func:`choose_format`): the codec rate in mono when the device
accepts it, so no conversion happens at all; else the codec rate in stereo; else the device's
default rate (mono, stereo, then all its channels). A capture stream with several channels is
averaged to mono; a playback stream gets the mono frame on every channel. A rate other than
the codec's goes through :class:`soxr.ResampleStream`, which keeps its filter state from frame
to frame, so the stream is resampled without clicks at frame edges. Its quality is
:data:`RESAMPLE_QUALITY`, chosen for latency: soxr works in blocks, so frames come out of it
in small bursts, which the rings absorb.

Trouble, counted in ``stats()`` and logged once each (the first time):

* ``overflows``: the capture ring was full (the media thread fell behind) and a block from the
  device was dropped; or the playback ring was full and a frame was dropped.
* ``underflows``: the playback ring ran dry; the rest of the period is silence and playback
  waits until ``prebuffer_ms`` of audio is queued again (40 ms, two frames, by default).
* ``xruns``: PortAudio itself reported an overrun or underrun (its status flags).
* ``callback_errors``: the callback caught an exception.

The rings hold 200 ms by default. A full capture ring refuses new blocks rather than dropping
old ones: both keep the latency at the ring's size, and this way the consumer's data is never
touched by the callback.

Device specs (:func:`find_device`): ``default`` (PortAudio's default device), a device index
(``intercom devices`` lists them), or a case-insensitive fragment of the device name; an exact
name wins over fragments, and a fragment matching several devices is refused. Constructing
``PyAudio()`` makes ALSA and JACK print about a hundred harmless lines on stderr; they are
suppressed (file descriptor 2 points at /dev/null for that moment) unless debug logging is on.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from intercom.hw.audio_base import AudioDeviceError, Kind
from intercom.hw.audio_bridge import (
    DEFAULT_BUFFER_MS,
    DEFAULT_PREBUFFER_MS,
    CaptureBridge,
    PlaybackBridge,
    StreamFormat,
)
from intercom.media.pcm import FRAME_MS, Pcm, frame_samples

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class DeviceInfo:
    """One PortAudio device as ``intercom devices`` shows it."""

    index: int
    name: str
    max_input_channels: int
    max_output_channels: int
    default_sample_rate: float

    def channels(self, kind: Kind) -> int:
        return self.max_input_channels if kind == "input" else self.max_output_channels

    def describe(self) -> str:
        return (
            f"{self.index}: {self.name} ({self.max_input_channels} in, "
            f"{self.max_output_channels} out, {self.default_sample_rate:g} Hz)"
        )


def list_devices() -> list[DeviceInfo]:
    """Every device PortAudio sees. :class:`AudioDeviceError` if PyAudio is missing."""
    with _portaudio() as (_, pa):
        return _devices(pa)


def find_device(spec: str, kind: Kind) -> DeviceInfo:
    """The ``kind`` device named by ``spec``; :class:`AudioDeviceError` listing the choices."""
    with _portaudio() as (_, pa):
        return select_device(spec, kind, _devices(pa), _default_index(pa, kind))


def select_device(
    spec: str, kind: Kind, devices: Sequence[DeviceInfo], default_index: int | None
) -> DeviceInfo:
    """Pick the device ``spec`` names among ``devices`` (see the module docstring)."""
    usable = [device for device in devices if device.channels(kind) > 0]
    wanted = spec.strip()
    lowered = wanted.lower()
    if lowered == "default":
        for device in usable:
            if device.index == default_index:
                return device
        for device in usable:
            if device.name.lower() == "default":
                return device
        problem = f"audio {kind} 'default': there is no default {kind} device"
        raise AudioDeviceError(_not_found(problem, kind, usable))
    if wanted.isdigit():
        for device in usable:
            if device.index == int(wanted):
                return device
        raise AudioDeviceError(
            _not_found(f"audio {kind} {wanted!r}: no {kind} device has this index", kind, usable)
        )
    exact = [device for device in usable if device.name.lower() == lowered]
    if exact:
        return exact[0]
    matches = [device for device in usable if lowered in device.name.lower()]
    if len(matches) == 1:
        return matches[0]
    if matches:
        raise AudioDeviceError(
            _not_found(
                f"audio {kind} {wanted!r} matches several devices; use an index or a longer name",
                kind,
                matches,
            )
        )
    raise AudioDeviceError(
        _not_found(f"audio {kind} {wanted!r}: no {kind} device has this name", kind, usable)
    )


def _not_found(problem: str, kind: Kind, devices: Sequence[DeviceInfo]) -> str:
    if not devices:
        return (
            f"{problem}. No {kind} devices found: is the sound card connected, "
            "and may this user open it (group 'audio')?"
        )
    listing = "\n".join(f"  {device.describe()}" for device in devices)
    return f"{problem}. Available {kind} devices:\n{listing}"


def choose_format(
    device: DeviceInfo, kind: Kind, sample_rate: int, supported: Callable[[int, int], bool]
) -> StreamFormat:
    """The first format in order of preference that ``supported(rate, channels)`` accepts."""
    default_rate = round(device.default_sample_rate)
    most = device.channels(kind)
    candidates: list[StreamFormat] = []
    for rate, channels in (
        (sample_rate, 1),
        (sample_rate, 2),
        (default_rate, 1),
        (default_rate, 2),
        (default_rate, most),
    ):
        candidate = StreamFormat(rate, channels)
        if 0 < channels <= most and rate > 0 and candidate not in candidates:
            candidates.append(candidate)
    for candidate in candidates:
        if supported(candidate.rate, candidate.channels):
            return candidate
    tried = ", ".join(f"{c.rate} Hz x{c.channels}" for c in candidates)
    raise AudioDeviceError(
        f"audio {kind} {device.name!r} accepts none of the formats tried ({tried}, 16-bit)"
    )


class _PyAudioStream:
    """What a capture and a playback stream share: PortAudio, device choice, close()."""

    kind: Kind

    def __init__(
        self,
        spec: str,
        sample_rate: int,
        device_rate: int | None,
        device_channels: int | None,
    ) -> None:
        self.sample_rate = sample_rate
        self._pyaudio = _import_pyaudio()
        self._pa: Any = _new_portaudio(self._pyaudio)
        self._stream: Any = None
        try:
            self.device = select_device(
                spec, self.kind, _devices(self._pa), _default_index(self._pa, self.kind)
            )
            if device_rate is None and device_channels is None:
                self.format = choose_format(self.device, self.kind, sample_rate, self._is_supported)
            else:
                self.format = StreamFormat(device_rate or sample_rate, device_channels or 1)
        except BaseException:
            self._pa.terminate()
            raise

    def _is_supported(self, rate: int, channels: int) -> bool:
        prefix = "input" if self.kind == "input" else "output"
        try:
            return bool(
                self._pa.is_format_supported(
                    rate,
                    **{
                        f"{prefix}_device": self.device.index,
                        f"{prefix}_channels": channels,
                        f"{prefix}_format": self._pyaudio.paInt16,
                    },
                )
            )
        except ValueError:
            return False

    def _open(self, callback: Callable[..., tuple[bytes | None, int]]) -> None:
        rate, channels = self.format.rate, self.format.channels
        try:
            self._stream = self._pa.open(
                rate=rate,
                channels=channels,
                format=self._pyaudio.paInt16,
                input=self.kind == "input",
                output=self.kind == "output",
                input_device_index=self.device.index if self.kind == "input" else None,
                output_device_index=self.device.index if self.kind == "output" else None,
                frames_per_buffer=frame_samples(rate),
                stream_callback=callback,
                start=False,
            )
        except (OSError, ValueError) as error:
            self._pa.terminate()
            self._pa = None
            raise AudioDeviceError(
                f"audio {self.kind} {self.device.name!r}: cannot open at {rate} Hz "
                f"x{channels}: {error}"
            ) from None
        conversion = (
            "no conversion"
            if (rate, channels) == (self.sample_rate, 1)
            else f"converted to {self.sample_rate} Hz mono"
        )
        logger.info(
            "audio %s: %s at %d Hz x%d, %d ms periods, %s",
            self.kind,
            self.device.name,
            rate,
            channels,
            FRAME_MS,
            conversion,
        )

    def start(self) -> None:
        if self._stream is None:
            return
        try:
            self._stream.start_stream()
        except OSError as error:
            raise AudioDeviceError(
                f"audio {self.kind} {self.device.name!r}: cannot start: {error}"
            ) from None

    def close(self) -> None:
        stream, self._stream = self._stream, None
        if stream is not None:
            try:
                stream.stop_stream()
                stream.close()
            except OSError as error:
                logger.debug("audio %s: closing the stream failed: %s", self.kind, error)
        pa, self._pa = self._pa, None
        if pa is not None:
            pa.terminate()


class PyAudioSource(_PyAudioStream):
    """A microphone: 20 ms mono frames at ``sample_rate`` from a PortAudio input device.

    ``device_rate`` / ``device_channels`` force the stream format instead of
    :func:`choose_format` (for a device that claims a rate it handles badly, and for tests).
    """

    kind: Kind = "input"

    def __init__(
        self,
        spec: str,
        sample_rate: int,
        *,
        device_rate: int | None = None,
        device_channels: int | None = None,
        buffer_ms: int = DEFAULT_BUFFER_MS,
    ) -> None:
        super().__init__(spec, sample_rate, device_rate, device_channels)
        self.bridge = CaptureBridge(sample_rate, self.format, buffer_ms)
        self._open(self.bridge.callback)

    def read_frame(self) -> Pcm | None:
        return self.bridge.read_frame()

    def stats(self) -> dict[str, int]:
        return self.bridge.stats()


class PyAudioSink(_PyAudioStream):
    """A speaker: plays 20 ms mono frames at ``sample_rate`` on a PortAudio output device.

    Frames written before ``start()`` are played first (they count towards the prebuffer).
    """

    kind: Kind = "output"

    def __init__(
        self,
        spec: str,
        sample_rate: int,
        *,
        device_rate: int | None = None,
        device_channels: int | None = None,
        buffer_ms: int = DEFAULT_BUFFER_MS,
        prebuffer_ms: int = DEFAULT_PREBUFFER_MS,
    ) -> None:
        super().__init__(spec, sample_rate, device_rate, device_channels)
        self.bridge = PlaybackBridge(sample_rate, self.format, buffer_ms, prebuffer_ms)
        self._open(self.bridge.callback)

    def write_frame(self, frame: Pcm) -> None:
        self.bridge.write_frame(frame)

    def stats(self) -> dict[str, int]:
        return self.bridge.stats()


def _import_pyaudio() -> Any:
    try:
        import pyaudio
    except ImportError as error:
        raise AudioDeviceError(
            f"PyAudio cannot be imported ({error}): install it (pip install PyAudio; building "
            "it needs portaudio19-dev), or use wav:PATH, tone:HZ or null"
        ) from None
    return pyaudio


def _new_portaudio(pyaudio: Any) -> Any:
    with _stderr_silenced():
        return pyaudio.PyAudio()


@contextlib.contextmanager
def _portaudio() -> Iterator[tuple[Any, Any]]:
    pyaudio = _import_pyaudio()
    pa = _new_portaudio(pyaudio)
    try:
        yield pyaudio, pa
    finally:
        pa.terminate()


def _devices(pa: Any) -> list[DeviceInfo]:
    devices = []
    for index in range(pa.get_device_count()):
        info = pa.get_device_info_by_index(index)
        devices.append(
            DeviceInfo(
                index=int(info["index"]),
                name=str(info["name"]),
                max_input_channels=int(info["maxInputChannels"]),
                max_output_channels=int(info["maxOutputChannels"]),
                default_sample_rate=float(info["defaultSampleRate"]),
            )
        )
    return devices


def _default_index(pa: Any, kind: Kind) -> int | None:
    try:
        if kind == "input":
            return int(pa.get_default_input_device_info()["index"])
        return int(pa.get_default_output_device_info()["index"])
    except OSError:
        return None


@contextlib.contextmanager
def _stderr_silenced() -> Iterator[None]:
    """Point file descriptor 2 at /dev/null meanwhile (PortAudio's C code writes there)."""
    if logger.isEnabledFor(logging.DEBUG):
        yield
        return
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):
        yield
        return
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, 2)
        finally:
            os.close(devnull)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
