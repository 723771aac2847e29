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
* Media belongs to the call's peer (design.md, Security). The stream is told at construction
  which IPs the peer's media may come from: the ``c=`` address of the negotiated media and the
  signalling peer (``peer_host``: where our INVITE went, or where the INVITE came from), v4 or
  v6, an IPv4-mapped v6 address taken as the v4 one. The set is kept in the exact text forms a
  socket reports a source in (``1.2.3.4``, ``::ffff:1.2.3.4``, RFC 5952 v6), so the per-packet
  check is a set lookup, never a parse. The rule, with no learning window and no timer that
  reopens it (what Asterisk's strictrtp probation, rtpproxy's and rtpengine's learning modes
  left open to RTP Bleed, CVE-2017-14099, CVE-2017-14114):

  1. RTP or RTCP from an IP outside that set is dropped before it is parsed and counted as
     ``strangers``; nothing is logged per packet (one summary line at the call's end).
  2. Latching (RFC 4961 symmetric RTP, NAT): the first packet of the negotiated audio or
     telephone-event payload type (the numbers of our own SDP, RFC 3264 §5.1) from an allowed
     IP fixes the peer's source (IP and port), and our RTP goes there. From then on RTP is
     taken from exactly that address; packets of the peer's IP with another payload type are
     not a latch and are counted as ``dropped``.
  3. The latch never moves to another IP during the call, however long the peer is silent. It
     moves to another port of the same IP (a NAT rebinding) only once the latched source has
     been silent for :data:`RELATCH_SILENCE`.
  4. Telephone-events (RFC 4733) count only from the latched source (or from an allowed IP,
     which then latches): a stranger's events never reach the DTMF receiver and the door lock.
  5. RTCP is taken from the latched IP only (before a latch: from an allowed IP); our RTCP
     goes to the port the latched IP's RTCP comes from, else the SDP's RTCP port.
  6. The media timeout is fed by accepted packets only, RTP and RTCP (a peer on hold without
     music or with VAD sends no RTP but goes on with RTCP, RFC 3550 §6.3.5, RFC 3264 §8.4): a
     stranger cannot keep a call alive.
  7. A re-INVITE or UPDATE (:meth:`update`) computes the allowed set anew from its ``c=``; one
     that names another address or port also drops the latch (the same one keeps it).

  What this costs: a peer whose media comes from an IP that neither its SDP nor the signalling
  names (a phone behind NAT talking to the door directly through a server that does not anchor
  media) is not heard. The SIP server (or an SBC that rewrites the SDP) is the remedy, not a
  learning window a stranger can race.
* Receiving: audio goes to the adaptive jitter buffer, telephone-events to the DTMF receiver,
  anything else is counted and dropped. The speaker side pulls a frame per tick on its own clock:
  a decoded frame, or a concealed one when the frame is missing.
* RTCP (RFC 3550 §6): a compound SR or RR plus SDES CNAME about every 5 s (randomised, §6.3.1),
  with loss and interarrival jitter; a BYE at the end.
* Media timeout: when we expect media and neither RTP nor RTCP was accepted for
  ``media_timeout`` seconds, :meth:`timed_out` says so and the call is ended as "media timeout".
* SRTP (RFC 3711, keys by SDES in :attr:`NegotiatedMedia.srtp`): every RTP and RTCP packet we
  send is protected with our key, every one we receive is checked and decrypted with the peer's
  *after* the source rules above (a stranger's packet costs a set lookup, never a MAC). A packet
  that fails (tag, replay) is dropped and counted in ``srtp_failures``, never logged per packet;
  it neither latches nor feeds the media timeout. :mod:`intercom.media.srtp` (and with it the
  ``cryptography`` package) is imported only by a stream that negotiated SRTP.
"""

from __future__ import annotations

import ipaddress
import logging
import math
import random
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING

from intercom.ip import parse_ip
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
from intercom.media.rtp import RTP_HEADER, RTP_HEADER_SIZE, RtpHeaderError, RtpSender, parse_rtp
from intercom.media.sdes import SdesKey
from intercom.media.stats import ReceiveStats

if TYPE_CHECKING:
    from intercom.media.srtp import SrtpContext

logger = logging.getLogger(__name__)

RELATCH_SILENCE = 1.0
"""Seconds the latched RTP source must be silent before another port of the same IP may take
its place (a NAT rebinding); another IP never does."""

Address = tuple[str, int]
_unpack_rtp_header = RTP_HEADER.unpack_from


def source_forms(*hosts: str | None) -> frozenset[str]:
    """The text forms in which a UDP socket reports a datagram from any of ``hosts`` (IP
    literals; None, names, unspecified and malformed ones are left out).

    An IPv4 address arrives as ``1.2.3.4`` on an IPv4 socket and as ``::ffff:1.2.3.4`` on a
    dual-stack IPv6 one; an IPv4-mapped IPv6 host counts as its IPv4 address. IPv6 is in the
    RFC 5952 form ``inet_ntop`` writes (lower case, longest zero run compressed)."""
    forms: set[str] = set()
    for host in hosts:
        if not host:
            continue
        zoned, _, zone = host.partition("%")  # a zone index names our interface, not the peer
        ip = parse_ip(zoned + "]" if zone.endswith("]") else zoned)
        if ip is None:
            continue
        if ip.is_unspecified:  # c=0.0.0.0: a hold (RFC 3264 §8.4), nobody sends from there
            continue
        if isinstance(ip, ipaddress.IPv4Address):
            forms.update((str(ip), f"::ffff:{ip}"))
        else:
            forms.add(ip.compressed)
    return frozenset(forms)


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
    dropped: int  # the peer's packets we could not use: unknown payload type, malformed
    skipped: int  # frames not sent after a stall (the timestamp moved on)
    strangers: int = 0  # RTP/RTCP not from the call's peer (another IP, or a port not latched)
    srtp: str = ""  # the SRTP suite, "" for RTP in clear
    srtp_failures: int = 0  # SRTP/SRTCP packets of the peer's address refused: tag, replay


class MediaStream:
    """The RTP session of one call (one audio stream)."""

    def __init__(
        self,
        media: NegotiatedMedia,
        *,
        rng: random.Random,
        cname: str,
        media_timeout: float = 30.0,
        peer_host: str | None = None,
    ) -> None:
        """``peer_host``: the signalling peer's IP (where our INVITE went, or where the INVITE
        came from); media may come from it as well as from the SDP's ``c=`` address."""
        self._rng = rng
        self._cname = cname
        self._media_timeout = media_timeout
        self._check_timeout_at = -math.inf  # timed_out() looks closer from then on
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
        self._last_rtcp_at: float | None = None
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
        self.strangers = 0
        self.peer_host = peer_host
        self._allowed = source_forms(media.remote_address, peer_host)
        self.media = media
        self.rtp_destination: Address = (media.remote_address, media.remote_port)
        """Where our RTP goes: the latched source, else the SDP's address."""
        self._srtp_out: SrtpContext | None = None
        self._srtp_in: SrtpContext | None = None
        self._srtp_keys_out: SdesKey | None = None
        self._srtp_keys_in: SdesKey | None = None
        self._earlier_srtp_failures = 0
        self._use_srtp(media)
        self._use_codec(media)
        self._use_direction(media)
        self._stats = ReceiveStats(CODECS[media.codec].clock_rate)

    @property
    def media_timeout(self) -> float:
        """Seconds without RTP or RTCP from the peer that end the call; 0 or less: never."""
        return self._media_timeout

    @media_timeout.setter
    def media_timeout(self, seconds: float) -> None:
        self._media_timeout = seconds
        self._check_timeout_at = -math.inf

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
        self._use_srtp(media)
        self._allowed = source_forms(media.remote_address, self.peer_host)
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
        self._use_direction(media)
        if moved:  # an explicit new address beats what we latched
            self._latched = self._latched_rtcp = None
        if self._latched is None:
            self.rtp_destination = (media.remote_address, media.remote_port)

    def _use_srtp(self, media: NegotiatedMedia) -> None:
        """SRTP contexts for the negotiated keys; a key that did not change keeps its context
        (and with it the rollover counter and the replay window)."""
        keys = media.srtp
        if keys is None:  # the offer/answer never drops SRTP once it ran (no downgrade)
            self._srtp_out = self._srtp_in = None
            return
        from intercom.media.srtp import SrtpContext  # only a call with SRTP loads cryptography

        out, into = self._srtp_out, self._srtp_in
        if out is None or self._srtp_keys_out != keys.local:
            self._srtp_out = SrtpContext(keys.suite, keys.local.master_key, keys.local.master_salt)
        if into is None or self._srtp_keys_in != keys.remote:
            if into is not None:
                self._earlier_srtp_failures += into.failures
            remote = keys.remote
            self._srtp_in = SrtpContext(remote.suite, remote.master_key, remote.master_salt)
        self._srtp_keys_out, self._srtp_keys_in = keys.local, keys.remote

    def _use_direction(self, media: NegotiatedMedia) -> None:
        """What the per-frame path asks of ``media``, looked up once per negotiation."""
        self._sends = media.sends
        self._receives = media.receives
        self._receive_pt = media.receive_payload_type
        self._step = CODECS[media.codec].timestamp_step
        self._check_timeout_at = -math.inf  # the timeout's terms changed: look at it anew

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
        self._check_timeout_at = -math.inf
        self._next_rtcp = now + rtcp_interval(self._rng.random())

    def send_dtmf(self, digits: str) -> None:
        """Queue digits to send as RFC 4733 events (ValueError for a non-DTMF character)."""
        check_digits(digits)  # before anything is queued
        self._dtmf_out.extend(digits)

    def send_frame(self, frame: Pcm) -> bytes | None:
        """The packet for this 20 ms tick, or None when we do not send (hold, recvonly)."""
        sender = self._sender
        if not self._sends:
            sender.advance(self._step)
            return None
        if self._dtmf_packets or self._dtmf_out:
            return self._send_dtmf_or_frame(frame)
        packet = sender.next_packet(self._encoder.encode(frame), self._first_packet, self._step)
        self._first_packet = False
        srtp = self._srtp_out
        return packet if srtp is None else srtp.protect_rtp(packet)

    def _send_dtmf_or_frame(self, frame: Pcm) -> bytes:
        """A tick while digits are queued: the next telephone-event packet, or the audio frame
        when the peer took no telephone-event payload type."""
        sender = self._sender
        dtmf_payload_type = self.media.dtmf_payload_type
        if not self._dtmf_packets and dtmf_payload_type is not None:
            self._dtmf_packets = self._dtmf_sender.packets(self._dtmf_out.popleft())
            self._dtmf_packets.reverse()
            self._dtmf_timestamp = sender.timestamp
        if self._dtmf_packets:
            payload, marker = self._dtmf_packets.pop()
            packet = sender.packet(payload, marker, dtmf_payload_type, self._dtmf_timestamp)
        else:
            packet = sender.packet(self._encoder.encode(frame), self._first_packet)
            self._first_packet = False
        sender.advance(self._step)
        srtp = self._srtp_out
        return packet if srtp is None else srtp.protect_rtp(packet)

    def skip_frames(self, count: int) -> None:
        """Frames the runtime could not send in time: the timestamp still moves on."""
        self.skipped += count
        self._sender.advance(count * self._step)

    # -- receiving ------------------------------------------------------------------------

    def receive_rtp(self, data: bytes, source: Address, now: float) -> DtmfDigit | None:
        """One datagram from the RTP socket; returns a DTMF digit when one completed. Only the
        call's peer is heard (the rules atop this module)."""
        latched = self._latched
        if source != latched and not self._may_latch(source, latched, now):
            self.strangers += 1
            return None
        srtp = self._srtp_in
        if srtp is not None:
            clear = srtp.unprotect_rtp(data)  # counted in the context when it fails
            if clear is None:
                return None
            data = clear
        if len(data) > RTP_HEADER_SIZE and data[0] == 0x80:  # V=2, no padding, extension, CSRCs
            _, second, sequence, timestamp, ssrc = _unpack_rtp_header(data)
            payload = data[RTP_HEADER_SIZE:]
        else:  # the rest of RFC 3550 §5.1, or a datagram that is no RTP
            try:
                packet = parse_rtp(data)
            except RtpHeaderError:
                self.dropped += 1
                return None
            second = packet.payload_type | (0x80 if packet.marker else 0)
            sequence, timestamp, ssrc, payload = packet[2:]
        payload_type = second & 0x7F
        if payload_type == self._receive_pt:
            if source != latched:
                self._latch(source)
            self._last_rtp_at = now
            if ssrc != self._remote_ssrc:
                if self._remote_ssrc is not None:
                    self._restart_stats()
                self._remote_ssrc = ssrc
            if self._stats.update(sequence, timestamp, now):
                self._jitter.put(sequence, timestamp, ssrc, second > 0x7F, payload, now)
            return None
        if payload_type == self.media.receive_dtmf_payload_type:
            if source != latched:
                self._latch(source)
            self._last_rtp_at = now
            self._stats.update(sequence, None, now)  # one sequence space with the audio
            try:
                return self._dtmf_in.feed(timestamp, payload)
            except ValueError:  # a telephone-event payload shorter than 4 bytes
                self.dropped += 1
                return None
        self.dropped += 1
        return None

    def _may_latch(self, source: Address, latched: Address | None, now: float) -> bool:
        """Whether a packet from ``source``, which is not the latched address, may become the
        latch if it carries the negotiated payload: before a latch, any allowed IP; after it,
        another port of the latched IP once the latched source has been silent long enough."""
        if latched is None:
            return self._is_allowed(source[0])
        if source[0] != latched[0]:
            return False  # the latch never moves to another IP
        last = self._last_rtp_at
        return last is None or now - last >= RELATCH_SILENCE

    def _is_allowed(self, ip: str) -> bool:
        allowed = self._allowed
        return ip in allowed or ("%" in ip and ip.partition("%")[0] in allowed)

    def _latch(self, source: Address) -> None:
        """Our RTP goes to ``source`` from now on (once per call, or after a NAT rebinding)."""
        logger.info("- RTP from %s:%d: sending there (symmetric RTP)", *source)
        self._latched = self.rtp_destination = source
        self._latched_rtcp = None  # the old source's RTCP address is not the new one's

    def playout(self, now: float) -> Pcm | None:
        """The frame the speaker plays now; None when we do not receive (hold, sendonly)."""
        if not self._receives:
            return None
        payload = self._jitter.get(now)
        if payload is None:
            return self._concealer.conceal()
        frame = self._decoder.decode(payload)
        self._concealer.good(frame)
        return frame

    def timed_out(self, now: float) -> bool:
        """True when media is expected and neither RTP nor RTCP came from the peer for
        ``media_timeout`` seconds."""
        if now < self._check_timeout_at:  # the usual answer: one compare
            return False
        if not self._receives or self._media_timeout <= 0:
            self._check_timeout_at = math.inf  # until update() or a new timeout changes that
            return False  # (the _last_*_at move only on packets accepted from the peer)
        if self._timeout_from is None:
            self._timeout_from = now
        heard = (self._timeout_from, self._last_rtp_at, self._last_rtcp_at)
        deadline = max(t for t in heard if t is not None) + self._media_timeout
        if now < deadline:
            self._check_timeout_at = deadline  # heard only moves on: no timeout before then
            return False
        return True

    # -- RTCP -----------------------------------------------------------------------------

    def receive_rtcp(self, data: bytes, source: Address, now: float) -> None:
        """A datagram on the RTCP socket: note the last SR for our reports' LSR/DLSR. Only
        the latched IP is heard (before a latch: an allowed IP)."""
        latched = self._latched
        if latched is None:
            if not self._is_allowed(source[0]):
                self.strangers += 1
                return
        elif source[0] != latched[0]:
            self.strangers += 1
            return
        srtp = self._srtp_in
        if srtp is not None:
            clear = srtp.unprotect_rtcp(data)
            if clear is None:
                return
            data = clear
        try:
            packets = parse_rtcp(data)
        except RtcpError:
            self.dropped += 1
            return
        if latched is not None:
            self._latched_rtcp = source
        self._last_rtcp_at = now
        for packet in packets:
            if isinstance(packet, SenderReport):  # receiver reports need no action from us
                self._last_sr_ntp_middle = (packet.ntp_timestamp >> 16) & 0xFFFFFFFF
                self._last_sr_arrival = now

    def rtcp_due(self, now: float, wallclock: float) -> bytes | None:
        """A compound report when one is due (about every 5 s), else None."""
        if self._next_rtcp is None or now < self._next_rtcp:
            return None
        self._next_rtcp = now + rtcp_interval(self._rng.random())
        return self._protect_rtcp(self._report(now, wallclock))

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
        bye = build_bye([self._sender.ssrc])
        return self._protect_rtcp(build_compound(self._report(now, wallclock), bye))

    def _protect_rtcp(self, compound: bytes) -> bytes:
        srtp = self._srtp_out
        return compound if srtp is None else srtp.protect_rtcp(compound)

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
            strangers=self.strangers,
            srtp="" if self.media.srtp is None else self.media.srtp.suite.name,
            srtp_failures=self._earlier_srtp_failures
            + (0 if self._srtp_in is None else self._srtp_in.failures),
        )
