"""The media side of every call: SDP offer/answer, RTP sockets and the audio bridge per Call-ID.

The user agent reports what happens on the signalling side as events; this class follows them:

* an outgoing call gets its sockets and SDP offer before the INVITE leaves (:meth:`new_offer`,
  then :meth:`attach` once the Call-ID is known);
* the first SDP answer, early (183) or final (2xx), starts the audio; a later one (another
  branch of a fork answering, RFC 3261 §13.2.2.4) updates it;
* re-INVITE and UPDATE offers reach :meth:`answer_offer`, the user agent's media hook
  (RFC 3264 §8); one that removes the audio (port 0, §8.2) gets a port-0 answer and the
  call's media goes inactive until an offer brings audio back; the answer to an offer of ours
  in a 2xx (an offerless INVITE or re-INVITE) arrives with the ACK as ``MediaUpdated``;
* each stream hears only its call's peer: the SDP's ``c=`` address and the signalling peer
  (``peer_host``: where the INVITE went for an outgoing call, where it came from for an
  incoming one), see :mod:`intercom.media.stream`;
* DTMF from SIP INFO bodies and from RFC 4733 packets goes to ``on_digit``;
* the end of the call, however it ends, closes sockets and devices and keeps the figures.
"""

from __future__ import annotations

import asyncio
import logging
import random
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from intercom.app.settings import Settings
from intercom.feedback import Tone
from intercom.hw.audio import AudioDeviceError, AudioSink, AudioSource, open_sink, open_source
from intercom.media.dtmf import DtmfDigit, check_digits, parse_info_dtmf
from intercom.media.offer_answer import (
    LocalMedia,
    NegotiatedMedia,
    NotAcceptable,
    OfferAnswer,
    SrtpRefused,
)
from intercom.media.stream import MediaStream, StreamStats
from intercom.media.tones import TONES
from intercom.sip.events import (
    CallAnswered,
    CallEnded,
    CallFailed,
    CallProgressed,
    Event,
    IncomingCallCancelled,
    InfoReceived,
    MediaUpdated,
)

from .call_media import CallMedia, OpenAudio
from .rtp_socket import RtpSockets

logger = logging.getLogger(__name__)


@dataclass(slots=True)
class CallAudio:
    """One call's media state."""

    sockets: RtpSockets
    negotiation: OfferAnswer
    local_sdp: bytes = b""
    media: CallMedia | None = None
    pending_dtmf: list[str] = field(default_factory=list)
    peer_host: str | None = None  # the signalling peer's IP: media may come from it too


class MediaCalls:
    """Media for every call of a user agent."""

    def __init__(
        self,
        settings: Settings,
        address: str,
        *,
        rng: random.Random | None = None,
        open_audio: OpenAudio | None = None,
        on_digit: Callable[[str, DtmfDigit], None] = lambda call_id, digit: None,
        on_timeout: Callable[[str], None] = lambda call_id: None,
        on_refused: Callable[[str, str], None] = lambda call_id, reason: None,
        key_source: Callable[[int], bytes] = secrets.token_bytes,
    ) -> None:
        """``settings``: the RTP ports (bound on ``sip_bind``'s host: RTP listens where SIP
        does), codecs, SRTP mode, audio devices and media timeout. ``address``: ours in SDP
        (the one the SIP Contact names). ``on_refused(call_id, reason)``: the answer to our
        offer lacks the SRTP the settings require; the call must end. ``key_source``: SDES key
        material, the OS CSPRNG."""
        self.settings = settings
        self.address = address
        self._on_refused = on_refused
        self._key_source = key_source
        self._rng = rng or random.SystemRandom()  # SSRCs, ports, SDP ids: unpredictable
        self._open_audio = open_audio or self._open_configured_audio
        self._on_digit = on_digit
        self._on_timeout = on_timeout
        self._calls: dict[str, CallAudio] = {}
        self.last_stats: StreamStats | None = None

    # -- setting calls up -----------------------------------------------------------------

    def new_offer(self) -> tuple[CallAudio, bytes]:
        """Sockets and an SDP offer for a call we are about to place (PortRangeError)."""
        audio = self._new_call_audio()
        audio.local_sdp = audio.negotiation.offer()
        return audio, audio.local_sdp

    def attach(self, call_id: str, audio: CallAudio, *, peer_host: str | None = None) -> None:
        """The INVITE carrying ``audio``'s offer left as ``call_id``, to ``peer_host`` (the
        server, outbound proxy or target it was sent to; None: only the SDP's address)."""
        audio.peer_host = peer_host
        self._calls[call_id] = audio

    def answer_incoming(
        self, call_id: str, offer: bytes | None, *, peer_host: str | None = None
    ) -> bytes | None:
        """Sockets and our answer for an incoming INVITE's offer; None: answer 488. An INVITE
        without an offer gets ours in the 200; its answer comes with the ACK (RFC 3261 §13.2.1)
        as ``MediaUpdated``, which :meth:`handle` takes. ``peer_host``: the IP the INVITE came
        from, from which media is heard as well as from the SDP's address."""
        if offer is None:
            audio, our_offer = self.new_offer()
            self.attach(call_id, audio, peer_host=peer_host)
            return our_offer
        audio = self._new_call_audio()
        audio.peer_host = peer_host
        try:
            answer, media = audio.negotiation.answer(offer)
        except NotAcceptable as exc:
            logger.info("x %s: %s", call_id, exc)
            audio.sockets.close()
            return None
        audio.local_sdp = answer
        self._calls[call_id] = audio
        if media is not None:  # None: audio at port 0, a call without media
            self._run(call_id, audio, media)
        return answer

    def _new_call_audio(self) -> CallAudio:
        settings = self.settings
        sockets = RtpSockets(settings.sip_bind.host, settings.rtp_ports, self._rng)
        local = LocalMedia(self.address, sockets.port, settings.codecs, srtp=settings.srtp)
        session_id = self._rng.getrandbits(31)
        return CallAudio(sockets, OfferAnswer(local, session_id, self._key_source))

    def answer_offer(self, call_id: str, offer: bytes) -> bytes | None:
        """The user agent's hook for offers inside a call (re-INVITE, UPDATE); None -> 488."""
        audio = self._calls.get(call_id)
        if audio is None:
            return None
        try:
            answer, media = audio.negotiation.answer(offer)
        except NotAcceptable as exc:
            logger.info("x %s: new offer refused: %s", call_id, exc)
            return None
        audio.local_sdp = answer
        if media is not None:
            self._run(call_id, audio, media)
        elif audio.media is not None:  # the audio stream removed (RFC 3264 §8.2): media stops
            audio.media.update(replace(audio.media.stream.media, direction="inactive"))
        return answer

    # -- following the call ---------------------------------------------------------------

    def handle(self, event: Event) -> None:
        """Follow one user-agent event (the caller passes every event here)."""
        if isinstance(event, CallProgressed | CallAnswered):
            if event.sdp:
                self._remote_answer(event.call_id, event.sdp)
        elif isinstance(event, MediaUpdated):
            audio = self._calls.get(event.call_id)
            if audio is not None and event.offer == audio.local_sdp:  # our offer, answer in ACK
                self._remote_answer(event.call_id, event.answer)
        elif isinstance(event, InfoReceived):
            digit = parse_info_dtmf(event.content_type or "", event.body)
            if digit is not None and event.call_id in self._calls:
                self._on_digit(event.call_id, digit)
        elif isinstance(event, CallEnded | CallFailed | IncomingCallCancelled):
            self.close(event.call_id)

    def _remote_answer(self, call_id: str, sdp: bytes) -> None:
        audio = self._calls.get(call_id)
        if audio is None:
            return
        try:
            media = audio.negotiation.receive_answer(sdp)
        except SrtpRefused as exc:  # one line; the call ends as failed, nothing sent in clear
            logger.warning("x %s: %s (INTERCOM_SRTP=%s): ending the call", call_id, exc,
                           self.settings.srtp)  # fmt: skip
            self._on_refused(call_id, str(exc))
            return
        except NotAcceptable as exc:
            logger.warning("x %s: unusable SDP answer: %s", call_id, exc)
            return
        self._run(call_id, audio, media)

    def _run(self, call_id: str, audio: CallAudio, media: NegotiatedMedia) -> None:
        if media.srtp is None and self.settings.srtp == "mandatory":  # offer/answer prevents it
            logger.error("x %s: media without SRTP under INTERCOM_SRTP=mandatory: not started",
                         call_id)  # fmt: skip
            return
        if audio.media is not None:
            audio.media.update(media)
            return
        stream = MediaStream(
            media,
            rng=self._rng,
            cname=f"{self._rng.getrandbits(64):016x}@intercom",
            media_timeout=self.settings.media_timeout,
            peer_host=audio.peer_host,
        )
        audio.media = CallMedia(
            audio.sockets,
            stream,
            self._open_audio,
            on_digit=lambda digit: self._on_digit(call_id, digit),
            on_timeout=lambda: self._timed_out(call_id),
        )
        audio.media.start(asyncio.get_running_loop())
        for digits in audio.pending_dtmf:
            audio.media.send_dtmf(digits)
        audio.pending_dtmf.clear()

    def _timed_out(self, call_id: str) -> None:
        logger.warning("x %s: no RTP or RTCP for %.0f s: media timeout", call_id,
                       self.settings.media_timeout)  # fmt: skip
        self._on_timeout(call_id)

    # -- commands and figures -------------------------------------------------------------

    def send_dtmf(self, call_id: str, digits: str) -> None:
        """Send digits as RFC 4733 events (ValueError for a character that is no DTMF digit)."""
        audio = self._calls.get(call_id)
        if audio is None:
            return
        if audio.media is None:
            check_digits(digits)  # refused now, not later inside handle() when media starts
            audio.pending_dtmf.append(digits)
        else:
            audio.media.send_dtmf(digits)

    def play_tone(self, name: Tone | None) -> bool:
        """Lay tone ``name`` (None: stop) over the audio of the call whose media runs; False
        when no call's media runs, so the caller plays it on the idle speaker."""
        running = [audio.media for audio in self._calls.values() if audio.media is not None]
        for media in running:
            media.play_cue(None if name is None else TONES[name])
        return bool(running) and name is not None

    def stats(self, call_id: str) -> StreamStats | None:
        audio = self._calls.get(call_id)
        if audio is None or audio.media is None:
            return None
        return audio.media.stats()

    def close(self, call_id: str) -> StreamStats | None:
        """End the media of a call; returns its figures when media ran."""
        audio = self._calls.pop(call_id, None)
        if audio is None:
            return None
        if audio.media is None:
            audio.sockets.close()
            return None
        stats = audio.media.close()
        self.last_stats = stats
        return stats

    def close_all(self) -> None:
        for call_id in list(self._calls):
            self.close(call_id)

    @property
    def call_ids(self) -> list[str]:
        return list(self._calls)

    def _open_configured_audio(self, rate: int) -> tuple[AudioSource, AudioSink]:
        """The configured devices; a device that fails becomes ``null`` (one log line)."""
        settings = self.settings
        try:
            source = open_source(settings.audio_input, rate)
        except AudioDeviceError as exc:
            logger.error("x audio input %r: %s; the call carries silence", settings.audio_input,
                         exc)  # fmt: skip
            source = open_source("null", rate)
        try:
            sink = open_sink(settings.audio_output, rate)
        except AudioDeviceError as exc:
            logger.error("x audio output %r: %s; received audio is discarded",
                         settings.audio_output, exc)  # fmt: skip
            sink = open_sink("null", rate)
        return source, sink
