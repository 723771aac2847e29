"""Plays call-progress tones at the door speaker while no call audio uses it.

The speaker belongs to the call's media once audio flows (an answer or early media); before
that, and after a failed call, this class has it: ``play(Tone.RINGBACK)`` opens the configured
output, and a thread writes one 20 ms frame per absolute deadline (t0 + n x 20 ms, as the media
clock does) until the tone ends or :meth:`stop` is called, which closes the device again so the
call's media can open it. A device that fails to open is logged once per attempt, never raised:
a door without a speaker still rings the house.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from intercom.feedback import Tone
from intercom.hw.audio import AudioSink
from intercom.media.pcm import FRAME_MS
from intercom.media.tones import TONES, TonePlayer

logger = logging.getLogger(__name__)

TONE_RATE = 16000
FRAME = FRAME_MS / 1000

OpenSink = Callable[[int], AudioSink]


class ToneOutput:
    """One tone at a time on the door speaker."""

    def __init__(self, open_sink: OpenSink) -> None:
        self._open_sink = open_sink
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self.playing: Tone | None = None

    def play(self, name: Tone) -> None:
        """Start ``name``, replacing any tone."""
        self.stop()
        tone = TONES[name]
        try:
            sink = self._open_sink(TONE_RATE)
            sink.start()
        except Exception as exc:  # a missing speaker must not stop the doorbell
            logger.warning("x %s tone: the speaker does not open: %s", name, exc)
            return
        self._stop = threading.Event()
        self.playing = name
        self._thread = threading.Thread(
            target=self._run, args=(TonePlayer(tone, TONE_RATE), sink, self._stop),
            name="intercom-tone", daemon=True,
        )  # fmt: skip
        self._thread.start()

    def stop(self) -> None:
        """Stop the tone and release the speaker (returns once it is closed)."""
        thread, self._thread = self._thread, None
        self.playing = None
        if thread is not None:
            self._stop.set()
            thread.join(timeout=1.0)

    @staticmethod
    def _run(player: TonePlayer, sink: AudioSink, stop: threading.Event) -> None:
        t0 = time.monotonic()
        frames = 0
        try:
            while not stop.is_set():
                frame = player.next_frame()
                if frame is None:
                    break
                sink.write_frame(frame)
                frames += 1
                delay = t0 + frames * FRAME - time.monotonic()
                if delay > 0 and stop.wait(delay):
                    break
        except Exception as exc:
            logger.warning("x tone playback failed: %s", exc)
        finally:
            try:
                sink.close()
            except Exception as exc:
                logger.warning("x closing the speaker after a tone: %s", exc)
