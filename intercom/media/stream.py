"""One call's audio stream, sans-IO: RTP and RTCP bytes in and out, PCM frames in and out.

Theory of operation
-------------------
The runtime owns the sockets and the 20 ms clock; this class owns every decision. On each tick the
runtime hands a microphone frame to :meth:`MediaStream.send_frame` and sends the packet it
returns, then asks :meth:`playout` for the frame the speaker plays now. Packets that arrive go to
:meth:`receive_rtp` / :meth:`receive_rtcp` with their source address.

* Sending (RFC 3550 §5.1): one SSRC for the call, sequence +1 per packet, timestamp +160 per
  20 ms frame whatever the codec (G.722's RTP clock is 8000, RFC 3551 §4.5.2), marker on the
  first packet of the stream. A frame the runtime could not send in time (a stall) still moves the
  timestamp (:meth:`skip_frames`), so the receiver sees the gap at its true length.
* DTMF (RFC 4733 §2.5): while a queued digit is being sent, its telephone-event packets replace
  the audio packets; they carry the event's start timestamp, the end packet three times.
* Symmetric RTP (RFC 4961): we send to the address the SDP names until RTP of the negotiated
  payload type arrives, then to where it actually comes from, which gets media through NAT. The
  latch moves to a new source only after the latched one has been silent for a while, so a stray
  packet cannot divert the stream.
* Receiving: audio goes to the adaptive jitter buffer, telephone-events to the DTMF receiver,
  anything else is counted and dropped. The speaker side pulls a frame per tick on its own clock:
  a decoded frame, or a concealed one when the frame is missing.
* RTCP (RFC 3550 §6): a compound SR or RR plus SDES CNAME about every 5 s (randomised, §6.3.1),
  with loss and interarrival jitter; a BYE at the end.
* Media timeout: when we expect media and none arrived for ``media_timeout`` seconds,
  :meth:`timed_out` says so and the call is ended as "media timeout".
"""

from __future__ import annotations

import logging
import random
from collections import deque
from dataclasses import dataclass

from intercom.media.codecs import CODECS, Decoder, Encoder, make_decoder, make_encoder
from intercom.media.dtmf import DtmfDigit, DtmfReceiver, DtmfSender, check_digits
from intercom.media.jitter import JitterBuffer
from intercom.media.offer_answer import NegotiatedMedia
from intercom.media.pcm import Pcm
from intercom.media.plc import LossConcealer
from intercom.media.rtcp import (
    RtcpError,
    SenderReport,
    build_bye,
    build_compound,
    build_receiver_report,
    build_sdes,
    build_sender_report,
    ntp_from_unix,
    parse_rtcp,
    rtcp_interval,
)
from intercom.media.rtp import RtpHeaderError, RtpSender, parse_rtp
from intercom.media.stats import ReceiveStats

logger = logging.getLogger(__name__)

RELATCH_SILENCE = 1.0
"""Seconds the latched RTP source must be silent before another source may take its place."""

Address = tuple[str, int]


@dataclass(frozen=True, slots=True)
class StreamStats:
    """The figures of one call's media, for ``status`` and the call log."""

    codec: str
    packets_sent: int
    packets_received: int
    packets_lost: int
    late: int
    concealed: int
    jitter_ms: float
    dropped: int  # packets we could not use: unknown payload type, malformed, wrong source
    skipped: int  # frames not sent after a stall (the timestamp moved on)


class MediaStream:
    """The RTP session of one call (one audio stream)."""

    def __init__(
        self,
        media: NegotiatedMedia,
        *,
        rng: random.Random,
        cname: str,
        media_timeout: float = 30.0,
    ) -> None:
        self._rng = rng
        self._cname = cname
        self.media_timeout = media_timeout
        self._sender = RtpSender(
            ssrc=rng.getrandbits(32),
            payload_type=media.payload_type,
            sequence=rng.getrandbits(16),
            timestamp=rng.getrandbits(32),
        )
        self._first_packet = True
        self._dtmf_out: deque[str] = deque()
        self._dtmf_packets: list[tuple[bytes, bool]] = []
        self._dtmf_timestamp = 0
        self._latched: Address | None = None
        self._latched_rtcp: Address | None = None
        self._last_rtp_at: float | None = None
        self._timeout_from: float | None = None  # None: from the next timed_out call
        self._next_rtcp: float | None = None
        self._last_sr_ntp_middle = 0
        self._last_sr_arrival: float | None = None
        self._remote_ssrc: int | None = None
        self._earlier_received = 0  # figures of the peer's previous SSRCs
        self._earlier_lost = 0
        self._earlier_late = 0  # figures of the jitter buffers and concealers of earlier codecs
        self._earlier_concealed = 0
        self.dropped = 0
        self.skipped = 0
        self.media = media
        self._use_codec(media)
        self._stats = ReceiveStats(CODECS[media.codec].clock_rate)

    # -- negotiation ----------------------------------------------------------------------

    def update(self, media: NegotiatedMedia) -> None:
        """A re-INVITE or UPDATE changed the session: new codec, address or direction."""
        moved = (media.remote_address, media.remote_port) != (
            self.media.remote_address,
            self.media.remote_port,
        )
        codec_changed = media.codec != self.media.codec
        dtmf_clock_changed = media.dtmf_clock_rate != self.media.dtmf_clock_rate
        if media.receives and not self.media.receives:
            self._timeout_from = None  # media resumes (hold ended): the timeout starts anew
        self.media = media
        if codec_changed:
            self._earlier_late += self._jitter.late  # the call's figures go on
            self._earlier_concealed += self._concealer.concealed
            self._use_codec(media)
            self._restart_stats()
        elif dtmf_clock_changed:  # a session refresh must not forget the digits reported
            self._dtmf_in = DtmfReceiver(media.dtmf_clock_rate)
            self._dtmf_sender = DtmfSender(media.dtmf_clock_rate, media.dtmf_clock_rate // 50)
        if media.dtmf_payload_type is None:
            self._dtmf_packets = []  # no telephone-event PT to finish the digit with
        self._sender.payload_type = media.payload_type
        if moved:  # an explicit new address beats what we latched
            self._latched = self._latched_rtcp = None

    def _use_codec(self, media: NegotiatedMedia) -> None:
        info = CODECS[media.codec]
        self._encoder: Encoder = make_encoder(media.codec)
        self._decoder: Decoder = make_decoder(media.codec)
        self._jitter = JitterBuffer(clock_rate=info.clock_rate, frame_ticks=info.timestamp_step)
        self._concealer = LossConcealer(info.sample_rate)
        self._dtmf_in = DtmfReceiver(media.dtmf_clock_rate)
        self._dtmf_sender = DtmfSender(media.dtmf_clock_rate, media.dtmf_clock_rate // 50)

    def _restart_stats(self) -> None:
        """The peer's SSRC or the codec changed: keep the figures so far, count anew."""
        self._earlier_received += self._stats.received
        self._earlier_lost += max(0, self._stats.lost)
        self._stats = ReceiveStats(CODECS[self.media.codec].clock_rate)

    @property
    def sample_rate(self) -> int:
        """The rate of the PCM frames this stream takes and gives (8000 or 16000)."""
        return CODECS[self.media.codec].sample_rate

    # -- addresses ------------------------------------------------------------------------

    @property
    def rtp_destination(self) -> Address:
        """Where our RTP goes: the latched source, else the SDP's address."""
        return self._latched or (self.media.remote_address, self.media.remote_port)

    @property
    def rtcp_destination(self) -> Address:
        if self._latched_rtcp is not None:
            return self._latched_rtcp
        if self._latched is not None:
            return (self._latched[0], self.media.remote_rtcp_port)
        return (self.media.remote_address, self.media.remote_rtcp_port)

    # -- sending --------------------------------------------------------------------------

    def start(self, now: float) -> None:
        """Media begins now (answer or early media): the clock of timeouts and RTCP starts."""
        self._timeout_from = now
        self._next_rtcp = now + rtcp_interval(self._rng.random())

    def send_dtmf(self, digits: str) -> None:
        """Queue digits to send as RFC 4733 events (ValueError for a non-DTMF character)."""
        check_digits(digits)  # before anything is queued
        self._dtmf_out.extend(digits)

    def send_frame(self, frame: Pcm) -> bytes | None:
        """The packet for this 20 ms tick, or None when we do not send (hold, recvonly)."""
        sender = self._sender
        step = CODECS[self.media.codec].timestamp_step
        if not self.media.sends:
            sender.advance(step)
            return None
        if not self._dtmf_packets and self._dtmf_out and self.media.dtmf_payload_type is not None:
            self._dtmf_packets = self._dtmf_sender.packets(self._dtmf_out.popleft())
            self._dtmf_packets.reverse()
            self._dtmf_timestamp = sender.timestamp
        if self._dtmf_packets:
            payload, marker = self._dtmf_packets.pop()
            packet = sender.packet(
                payload, marker, self.media.dtmf_payload_type, self._dtmf_timestamp
            )
        else:
            packet = sender.packet(self._encoder.encode(frame), self._first_packet)
            self._first_packet = False
        sender.advance(step)
        return packet

    def skip_frames(self, count: int) -> None:
        """Frames the runtime could not send in time: the timestamp still moves on."""
        self.skipped += count
        self._sender.advance(count * CODECS[self.media.codec].timestamp_step)

    # -- receiving ------------------------------------------------------------------------

    def receive_rtp(self, data: bytes, source: Address, now: float) -> DtmfDigit | None:
        """One datagram from the RTP socket; returns a DTMF digit when one completed."""
        try:
            packet = parse_rtp(data)
        except RtpHeaderError:
            self.dropped += 1
            return None
        media = self.media
        if packet.payload_type == media.payload_type:
            if not self._accept_source(source, now):
                return None
            if packet.ssrc != self._remote_ssrc:
                if self._remote_ssrc is not None:
                    self._restart_stats()
                self._remote_ssrc = packet.ssrc
            if self._stats.update(packet.sequence, packet.timestamp, now):
                self._jitter.put(
                    packet.sequence, packet.timestamp, packet.ssrc, packet.marker,
                    packet.payload, now,
                )  # fmt: skip
            return None
        if packet.payload_type == media.dtmf_payload_type:
            if not self._accept_source(source, now):
                return None
            self._stats.update(packet.sequence, None, now)  # one sequence space with the audio
            try:
                return self._dtmf_in.feed(packet.timestamp, packet.payload)
            except ValueError:  # a telephone-event payload shorter than 4 bytes
                self.dropped += 1
                return None
        self.dropped += 1
        return None

    def _accept_source(self, source: Address, now: float) -> bool:
        latched = self._latched
        if latched != source:
            last = self._last_rtp_at
            if latched is not None and last is not None and now - last < RELATCH_SILENCE:
                self.dropped += 1
                return False
            logger.info("- RTP from %s:%d: sending there (symmetric RTP)", *source)
            self._latched = source
            self._latched_rtcp = None  # the old source's RTCP address is not the new one's
        self._last_rtp_at = now
        return True

    def playout(self, now: float) -> Pcm | None:
        """The frame the speaker plays now; None when we do not receive (hold, sendonly)."""
        if not self.media.receives:
            return None
        payload = self._jitter.get(now)
        if payload is None:
            return self._concealer.conceal()
        frame = self._decoder.decode(payload)
        self._concealer.good(frame)
        return frame

    def timed_out(self, now: float) -> bool:
        """True when media is expected and none arrived for ``media_timeout`` seconds."""
        if not self.media.receives or self.media_timeout <= 0:
            return False
        if self._timeout_from is None:
            self._timeout_from = now
        last = self._timeout_from
        if self._last_rtp_at is not None:
            last = max(last, self._last_rtp_at)
        return now - last >= self.media_timeout

    # -- RTCP -----------------------------------------------------------------------------

    def receive_rtcp(self, data: bytes, source: Address, now: float) -> None:
        """A datagram on the RTCP socket: note the last SR for our reports' LSR/DLSR."""
        try:
            packets = parse_rtcp(data)
        except RtcpError:
            self.dropped += 1
            return
        if self._latched is not None and source[0] == self._latched[0]:
            self._latched_rtcp = source
        for packet in packets:
            if isinstance(packet, SenderReport):  # receiver reports need no action from us
                self._last_sr_ntp_middle = (packet.ntp_timestamp >> 16) & 0xFFFFFFFF
                self._last_sr_arrival = now

    def rtcp_due(self, now: float, wallclock: float) -> bytes | None:
        """A compound report when one is due (about every 5 s), else None."""
        if self._next_rtcp is None or now < self._next_rtcp:
            return None
        self._next_rtcp = now + rtcp_interval(self._rng.random())
        return self._report(now, wallclock)

    def _report(self, now: float, wallclock: float) -> bytes:
        blocks = []
        if self._remote_ssrc is not None and self._stats.received:
            blocks.append(
                self._stats.report_block(
                    self._remote_ssrc, now, self._last_sr_ntp_middle, self._last_sr_arrival
                )
            )
        sender = self._sender
        if sender.packets_sent:
            report = build_sender_report(
                sender.ssrc, ntp_from_unix(wallclock), sender.timestamp, sender.packets_sent,
                sender.octets_sent, blocks,
            )  # fmt: skip
        else:
            report = build_receiver_report(sender.ssrc, blocks)
        return build_compound(report, build_sdes(sender.ssrc, self._cname))

    def bye(self, now: float, wallclock: float) -> bytes:
        """The last RTCP compound of the call: a report and a BYE (RFC 3550 §6.6)."""
        self._next_rtcp = None
        return build_compound(self._report(now, wallclock), build_bye([self._sender.ssrc]))

    # -- figures --------------------------------------------------------------------------

    def stats(self) -> StreamStats:
        jitter = self._jitter
        return StreamStats(
            codec=self.media.codec,
            packets_sent=self._sender.packets_sent,
            packets_received=self._earlier_received + self._stats.received,
            packets_lost=self._earlier_lost + max(0, self._stats.lost),
            late=self._earlier_late + jitter.late,
            concealed=self._earlier_concealed + self._concealer.concealed,
            jitter_ms=round(self._stats.jitter_ms, 2),
            dropped=self.dropped,
            skipped=self.skipped,
        )
