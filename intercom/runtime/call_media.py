"""A call's audio on the wire: microphone -> encoder -> RTP, RTP -> jitter buffer -> speaker.

Theory of operation
-------------------
Each call's media runs on its own thread, the media clock: tick *n* is due at ``t0 + n x 20 ms``
of the monotonic clock, and the thread sleeps until that absolute deadline. Lateness of one tick
therefore never shifts the next one, so the stream does not drift (RFC 3550 timestamps advance
160 per frame and leave on time on average). A thread sleeping to a deadline wakes within tens
of microseconds; the event loop's timers wait in epoll, whose timeout has millisecond steps, and
that alone would put the 99th percentile of the packet spacing near a millisecond.

On each tick the thread turns the microphone's next frame into an RTP packet and sends it (first,
so that what follows does not delay it), drains the RTP socket (datagrams keep their kernel
arrival times) into the jitter buffer, and gives the speaker the frame the jitter buffer plays
now: the speaker runs on this clock, not on packet arrival.
Every tenth tick it also drains RTCP, sends a report when one is due and looks at the media
timeout (a deadline compare). One wake-up per 20 ms does all of a call's audio work, and the
event loop does not wake during a call at all; the per-frame path neither logs nor allocates
beyond the packet, its source address and the frames.

A stall (a busy CPU, a suspended process) makes a tick late. Up to ``MAX_CATCH_UP`` missed
frames are sent at once (and played: the speaker keeps up too); beyond that the backlog is
skipped (the RTP timestamp still moves on, so the receiver sees a gap of the right length
instead of a burst). The thread asks for a higher scheduling priority first
(``runtime/priority.py``).

A cue (the "door opened" beeps) is laid over the speaker's frames while it lasts: during a
call the speaker is the call's, and a second stream on it would fail on a card without mixing.

The event loop thread only commands: update, DTMF, cue, figures, close, each under the lock the
media thread holds while it ticks. DTMF digits and the media timeout go back to the loop with
``call_soon_threadsafe``.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable

from intercom.hw.audio import AudioSink, AudioSource
from intercom.media.dtmf import DtmfDigit
from intercom.media.offer_answer import NegotiatedMedia
from intercom.media.pcm import FRAME_MS, silence
from intercom.media.stream import MediaStream, StreamStats
from intercom.media.tones import Cadence, TonePlayer, mix

from .priority import raise_thread_priority
from .rtp_socket import Address, RtpSockets

logger = logging.getLogger(__name__)

FRAME = FRAME_MS / 1000
MAX_CATCH_UP = 10
"""Frames sent and played at once after a stall (200 ms: a CPU quota's whole 100 ms period, a
slow board's busy moment); older ones are skipped."""
RTCP_EVERY = 10
"""Ticks between looks at the RTCP socket (RTCP comes every few seconds)."""

OpenAudio = Callable[[int], tuple[AudioSource, AudioSink]]
"""Opens the microphone and speaker at a sample rate (8000 or 16000)."""


class CallMedia:
    """Runs one :class:`MediaStream` on its sockets and audio devices until closed."""

    def __init__(
        self,
        sockets: RtpSockets,
        stream: MediaStream,
        open_audio: OpenAudio,
        *,
        on_digit: Callable[[DtmfDigit], None],
        on_timeout: Callable[[], None],
        wallclock: Callable[[], float] = time.time,
    ) -> None:
        self.stream = stream
        self._sockets = sockets
        self._open_audio = open_audio
        self._on_digit = on_digit
        self._on_timeout = on_timeout
        self._wallclock = wallclock
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._running = False
        self._t0 = 0.0
        self._ticks = 0  # frames handled since t0
        self._next_slow_tick = 0  # the tick that next looks at RTCP and the media timeout
        self._rtp_receiver = self._on_rtp  # bound once, not on every tick
        self._rtcp_receiver = self._on_rtcp
        self._source: AudioSource | None = None
        self._sink: AudioSink | None = None
        self._rate = 0
        self._silence = silence(8000)
        self._cue: TonePlayer | None = None  # a tone laid over what the speaker plays
        self.closed = False

    # -- commands (event loop thread) -----------------------------------------------------

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        """Open the audio devices and start the media clock."""
        self._loop = loop
        self._open_devices()
        now = time.monotonic()
        self.stream.start(now)
        self._t0 = now
        self._ticks = self._next_slow_tick = 0
        self._running = True
        self._thread = threading.Thread(target=self._run, name="intercom-media", daemon=True)
        self._thread.start()
        media = self.stream.media
        logger.info(
            "- media %s pt %d to %s:%d, %s, %s", media.codec, media.payload_type,
            media.remote_address, media.remote_port, media.direction,
            "RTP in clear" if media.srtp is None else f"SRTP {media.srtp.suite.name}",
        )  # fmt: skip

    def update(self, media: NegotiatedMedia) -> None:
        """The session changed (re-INVITE/UPDATE)."""
        with self._lock:
            self.stream.update(media)
            if self._running and self.stream.sample_rate != self._rate:
                self._open_devices()  # G.722 <-> G.711: the devices change rate with the codec
        logger.info("- media now %s to %s:%d, %s", media.codec, media.remote_address,
                    media.remote_port, media.direction)  # fmt: skip

    def send_dtmf(self, digits: str) -> None:
        """Queue RFC 4733 digits (ValueError for a character that is not a DTMF digit)."""
        with self._lock:
            self.stream.send_dtmf(digits)

    def play_cue(self, tone: Cadence | None) -> None:
        """Lay ``tone`` over the call's audio at the speaker (the visitor hears both); None
        stops a cue that is playing. The speaker is the call's, so a tone cannot open it."""
        with self._lock:
            self._cue = None if tone is None or not self._rate else TonePlayer(tone, self._rate)

    def stats(self) -> StreamStats:
        with self._lock:
            return self.stream.stats()

    def close(self) -> StreamStats:
        """Stop the clock, say RTCP BYE, close sockets and devices (idempotent)."""
        if self.closed:
            return self.stream.stats()
        self.closed = True
        with self._lock:
            was_running, self._running = self._running, False
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=1.0)
        if was_running:
            self._sockets.send_rtcp(
                self.stream.bye(time.monotonic(), self._wallclock()), self.stream.rtcp_destination
            )
        self._sockets.close()
        self._close_devices()
        stats = self.stream.stats()
        logger.info(
            "- media stats: %s, sent %d, received %d, lost %d, late %d, concealed %d, "
            "jitter %.1f ms", stats.codec, stats.packets_sent, stats.packets_received,
            stats.packets_lost, stats.late, stats.concealed, stats.jitter_ms,
        )  # fmt: skip
        if stats.srtp_failures:  # one line per call, never one per packet
            logger.warning("x media: %d SRTP/SRTCP packets of the peer's address refused "
                           "(authentication or replay)", stats.srtp_failures)  # fmt: skip
        if stats.strangers:  # one line per call, never one per packet
            logger.warning("x media: %d RTP/RTCP packets from sources other than the call's "
                           "peer dropped", stats.strangers)  # fmt: skip
        return stats

    def _open_devices(self) -> None:
        self._close_devices()
        self._cue = None  # rendered for the old rate
        self._rate = self.stream.sample_rate
        self._silence = silence(self._rate)
        self._source, self._sink = self._open_audio(self._rate)
        self._source.start()
        self._sink.start()

    def _close_devices(self) -> None:
        for device in (self._source, self._sink):
            if device is not None:
                try:
                    device.close()
                except Exception as exc:  # a device that fails to close must not stop the call
                    logger.warning("x closing audio device: %s", exc)
        self._source = self._sink = None

    # -- the media clock (media thread) ---------------------------------------------------

    def _run(self) -> None:
        logger.info("- media thread: %s", raise_thread_priority())
        lock, tick, monotonic, sleep = self._lock, self._tick, time.monotonic, time.sleep
        try:
            while True:
                with lock:
                    if not self._running:
                        return
                    if not tick(monotonic()):
                        self._running = False
                        self._call_loop(self._on_timeout)
                        return
                delay = self._t0 + self._ticks * FRAME - monotonic()
                if delay > 0:
                    sleep(delay)  # one wake-up per tick: to the next frame's deadline
        except Exception:  # a bug must end this call's audio, not hang it silently
            logger.exception("x media thread failed")
            self._running = False
            self._call_loop(self._on_timeout)

    def _tick(self, now: float) -> bool:
        """One tick of the clock; False when the media timed out. The frame leaves first, so
        its send time is the wake-up plus one encode, whatever the drain and playout cost."""
        stream = self.stream
        ticks = self._ticks
        due = int((now - self._t0) / FRAME) + 1  # frames that should have been handled by now
        behind = due - ticks
        if behind > MAX_CATCH_UP:
            stream.skip_frames(behind - 1)
            behind = 1
        send_frame = self._send_frame
        for _ in range(behind):
            send_frame()
        slow = ticks >= self._next_slow_tick  # RTCP and the media timeout: every RTCP_EVERY
        self._sockets.drain(self._rtp_receiver, self._rtcp_receiver if slow else None, now)
        play_frame = self._play_frame
        for _ in range(behind):
            play_frame(now)
        self._ticks = due
        if not slow:
            return True
        self._next_slow_tick = ticks + RTCP_EVERY
        report = stream.rtcp_due(now, self._wallclock())
        if report is not None:
            self._sockets.send_rtcp(report, stream.rtcp_destination)
        return not stream.timed_out(now)

    def _send_frame(self) -> None:
        source = self._source
        assert source is not None
        stream = self.stream
        frame = source.read_frame()
        packet = stream.send_frame(self._silence if frame is None else frame)
        if packet is not None:
            self._sockets.send_rtp(packet, stream.rtp_destination)

    def _play_frame(self, now: float) -> None:
        sink = self._sink
        assert sink is not None
        heard = self.stream.playout(now)
        cue = self._cue
        if cue is not None:
            over = cue.next_frame()
            if over is None:
                self._cue = None
            else:
                heard = over if heard is None else mix(heard, over)
        if heard is not None:
            sink.write_frame(heard)

    def _on_rtp(self, data: bytes, source: Address, arrival: float) -> None:
        digit = self.stream.receive_rtp(data, source, arrival)
        if digit is not None:
            self._call_loop(self._on_digit, digit)

    def _on_rtcp(self, data: bytes, source: Address, arrival: float) -> None:
        self.stream.receive_rtcp(data, source, arrival)

    def _call_loop(self, callback: Callable[..., None], *args: object) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(callback, *args)
