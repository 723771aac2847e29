"""SDP offer/answer for our one audio stream (RFC 3264), with DTMF events (RFC 4733).

Theory of operation
===================

:class:`OfferAnswer` holds one call's side of the exchange: what we have (:class:`LocalMedia`), the
``o=`` line we keep for the whole dialog, and the last description we sent. It turns bytes into a
:class:`NegotiatedMedia` (what the RTP stream needs) and builds the bytes we send.

Our offer (§5): one ``m=audio`` listing our codecs in our order with their static payload types
(RFC 3551 Table 4: PCMU 0, PCMA 8, G722 9), ``telephone-event/8000`` as 101 and, when G.722 is
offered, ``telephone-event/16000`` as 102 for peers that pair events with G.722's 16 kHz sampling
rate (RFC 4733 §2.1: the event clock is the audio stream's RTP clock, which for G.722 is 8000,
RFC 3551 §4.5.2, so 101 is the right one and 102 only a courtesy).

Answering an offer (§6, §6.1):

* The answer has as many ``m=`` lines as the offer, in order. The first usable audio stream gets
  our audio section; every other stream (video, a second audio, SRTP profiles we cannot speak) is
  rejected with port 0 and its formats copied.
* An offer whose every audio stream is at port 0 (a stream removed, §8.2) is answered with every
  line at port 0 and no negotiated media: the call goes on without audio, not with a 488.
* The codec is the offerer's: the first format of their ``m=`` line that we support. A dynamic
  payload type is recognised by its rtpmap encoding name (case-insensitive, RFC 4566 §6.6), a
  static 0/8/9 also without rtpmap. The clock rate must be the codec's RTP clock (8000).
* ``telephone-event``: the one whose clock equals the chosen codec's RTP clock, else the first
  offered (a peer with only ``telephone-event/16000`` still gets its DTMF through).
* Payload types in the answer are the offerer's numbers (§6.1), so one number serves both ways.
* Direction (§6.1, §8.4): their ``sendonly`` makes us ``recvonly``, ``recvonly`` makes us
  ``sendonly``, ``inactive`` stays ``inactive``; our own :attr:`LocalMedia.direction` (a hold of
  ours) narrows it further. ``c=0.0.0.0`` (RFC 2543 hold, §8.4) means they receive nothing: we do
  not send. Attributes at media level override session level, as do media-level ``c=`` lines
  (RFC 4566 §5.7).
* RTCP goes to ``a=rtcp`` (RFC 3605) when given, else to the RTP port + 1 (RFC 3550 §11). We do
  not answer ``a=rtcp-mux`` (RFC 5761 §5.1.1), so separate ports apply.

Receiving an answer: the first format of their audio section that we offered is the codec (the
answerer lists its preference first), sent with the payload type the answer gives it. Each side
receives with the numbers of its own SDP (§5.1): what arrives is recognised by our offer's
numbers, so an answer naming telephone-event 96 against our 101 gets 96 from us and sends 101.

The ``o=`` line keeps one session id for the dialog; its version grows by one exactly when the
description we send differs from the previous one (§8), so a re-INVITE answered the same way
carries the same version. A new offer keeps the ``m=`` lines of the previous exchange (§8: never
fewer), rejected ones still at port 0.

Errors: anything we cannot use raises :class:`NotAcceptable` (a :class:`ValueError`; the caller
answers 488), including malformed SDP, whose :class:`~intercom.media.sdp.SdpError` is chained.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Callable
from dataclasses import dataclass

from intercom.media.codecs import CODECS
from intercom.media.sdes import (
    OFFER_SUITES,
    SUITES,
    CryptoSuite,
    SdesKey,
    SrtpKeys,
    format_crypto,
    parse_crypto,
)
from intercom.media.sdp import (
    Attribute,
    Connection,
    MediaDescription,
    Origin,
    SdpError,
    SessionDescription,
    parse_sdp,
)

__all__ = [
    "DIRECTIONS",
    "SRTP_MODES",
    "LocalMedia",
    "NegotiatedMedia",
    "NotAcceptable",
    "OfferAnswer",
    "SrtpRefused",
]

logger = logging.getLogger(__name__)

DIRECTIONS = ("sendrecv", "sendonly", "recvonly", "inactive")
TELEPHONE_EVENT = "telephone-event"
DTMF_EVENTS = "0-16"
"""The ``a=fmtp`` of our telephone-events: DTMF 0-15 and flash (16), RFC 4733 §3.2."""
OFFER_DTMF = ((101, 8000), (102, 16000))
"""Payload types and clock rates of the telephone-events we offer (102 only with G.722)."""
RTP_PROFILES = ("RTP/AVP", "RTP/AVPF", "RTP/SAVP", "RTP/SAVPF")
"""Transports we answer: RTP (RFC 3551), its feedback profile (RFC 4585), and both secure
(RFC 3711, keys by SDES, RFC 4568); not DTLS-SRTP (UDP/TLS/RTP/SAVP)."""
SECURE_PROFILES = ("RTP/SAVP", "RTP/SAVPF")
SRTP_MODES = ("off", "optional", "mandatory")
"""INTERCOM_SRTP: no SRTP; SDES keys offered on RTP/AVP and used when the answer has them;
RTP/SAVP only, a peer without SRTP refused."""
_STATIC_NAMES = {0: "PCMU", 3: "GSM", 4: "G723", 8: "PCMA", 9: "G722", 13: "CN", 18: "G729"}
"""RFC 3551 Table 4 audio payload types, to name formats offered without an rtpmap."""


class NotAcceptable(ValueError):
    """The other side's SDP leaves us nothing to send or receive: answer 488."""


class SrtpRefused(NotAcceptable):
    """An answer without the SRTP our offer required (or a downgrade to clear RTP): the call
    must end, never go on in clear."""


def _flags(direction: str) -> tuple[bool, bool]:
    return direction in ("sendrecv", "sendonly"), direction in ("sendrecv", "recvonly")


def _direction(sends: bool, receives: bool) -> str:
    if sends:
        return "sendrecv" if receives else "sendonly"
    return "recvonly" if receives else "inactive"


def _ours(local: str, their_sends: bool, their_receives: bool) -> str:
    """Our direction: we send what they receive and receive what they send, within ``local``."""
    sends, receives = _flags(local)
    return _direction(sends and their_receives, receives and their_sends)


@dataclass(frozen=True, slots=True)
class LocalMedia:
    """What we bring to a call: our RTP address and port, codecs in preference order."""

    address: str  #: our IP (v4 or v6); goes in ``c=`` and ``o=``
    port: int  #: RTP port; RTCP is port + 1
    codecs: tuple[str, ...] = ("G722", "PCMU", "PCMA")
    ptime: int = 20
    direction: str = "sendrecv"
    srtp: str = "off"  #: one of :data:`SRTP_MODES`

    def __post_init__(self) -> None:
        try:
            ipaddress.ip_address(self.address)
        except ValueError:
            raise ValueError(
                f"LocalMedia address must be an IP address, got {self.address!r}"
            ) from None
        if not 1 <= self.port <= 65534:
            raise ValueError(f"LocalMedia port must be 1-65534 (RTCP uses port + 1): {self.port}")
        unknown = [c for c in self.codecs if c not in CODECS]
        if not self.codecs or unknown:
            raise ValueError(
                f"LocalMedia codecs must be some of {', '.join(CODECS)}, got {self.codecs!r}"
            )
        if len(set(self.codecs)) != len(self.codecs):
            raise ValueError(f"LocalMedia codecs repeat a codec: {self.codecs!r}")
        if self.ptime <= 0:
            raise ValueError(f"LocalMedia ptime must be positive, got {self.ptime}")
        if self.direction not in DIRECTIONS:
            raise ValueError(
                f"LocalMedia direction must be one of {', '.join(DIRECTIONS)}, "
                f"got {self.direction!r}"
            )
        if self.srtp not in SRTP_MODES:
            raise ValueError(
                f"LocalMedia srtp must be one of {', '.join(SRTP_MODES)}, got {self.srtp!r}"
            )

    @property
    def address_type(self) -> str:
        """``IP4`` or ``IP6``, as ``c=`` and ``o=`` write it."""
        return f"IP{ipaddress.ip_address(self.address).version}"


@dataclass(frozen=True, slots=True)
class NegotiatedMedia:
    """The outcome of one offer/answer exchange: everything the RTP stream needs."""

    codec: str  #: a name in :data:`~intercom.media.codecs.CODECS`
    payload_type: int  #: the peer's SDP's PT for the codec: we send with it
    remote_address: str
    remote_port: int
    remote_rtcp_port: int  #: ``a=rtcp`` or RTP port + 1
    dtmf_payload_type: int | None  #: the peer's telephone-event PT (we send), None: no DTMF
    dtmf_clock_rate: int  #: clock of the telephone-events (the codec's RTP clock without them)
    direction: str  #: OUR direction: sendrecv, sendonly, recvonly or inactive
    ptime: int  #: our packetisation, milliseconds
    receive_payload_type: int  #: our SDP's PT for the codec: the peer sends with it
    receive_dtmf_payload_type: int | None  #: our SDP's telephone-event PT (what we recognise)
    srtp: SrtpKeys | None = None  #: the SDES keys both ways; None: RTP in clear

    @property
    def sends(self) -> bool:
        """True when we send RTP (sendrecv, sendonly)."""
        return self.direction in ("sendrecv", "sendonly")

    @property
    def receives(self) -> bool:
        """True when we expect RTP (sendrecv, recvonly)."""
        return self.direction in ("sendrecv", "recvonly")


@dataclass(frozen=True, slots=True)
class _Format:
    """One entry of an ``m=`` format list, resolved through rtpmap or the static table."""

    payload_type: int
    name: str  #: encoding name as written ("" when unknown)
    clock_rate: int
    channels: int | None

    def describe(self) -> str:
        return f"{self.name}/{self.clock_rate}" if self.name else f"PT {self.payload_type}"


@dataclass(frozen=True, slots=True)
class _Choice:
    codec: str
    payload_type: int
    dtmf: _Format | None
    address: str
    port: int
    rtcp_port: int
    their_sends: bool
    their_receives: bool


def _formats(media: MediaDescription) -> list[_Format]:
    rtpmaps = media.rtpmaps()
    formats: list[_Format] = []
    for text in media.formats:
        if not text.isdigit():
            continue
        pt = int(text)
        rtpmap = rtpmaps.get(pt)
        if rtpmap is not None:
            formats.append(_Format(pt, rtpmap.encoding, rtpmap.clock_rate, rtpmap.channels))
        elif pt in _STATIC_NAMES:
            formats.append(_Format(pt, _STATIC_NAMES[pt], 8000, None))
        else:
            formats.append(_Format(pt, "", 0, None))
    return formats


def _codec_of(fmt: _Format, allowed: tuple[str, ...]) -> str | None:
    name = fmt.name.upper()
    if name not in allowed or fmt.channels not in (None, 1):
        return None
    return name if fmt.clock_rate == CODECS[name].clock_rate else None


def _pick_dtmf(formats: list[_Format], clock_rate: int) -> _Format | None:
    events = [f for f in formats if f.name.lower() == TELEPHONE_EVENT and f.clock_rate > 0]
    same_clock = [f for f in events if f.clock_rate == clock_rate]
    candidates = same_clock or events
    return candidates[0] if candidates else None


def _direction_of(session: SessionDescription, media: MediaDescription) -> str:
    for attributes in (media.attributes, session.attributes):
        for attribute in attributes:
            if attribute.name in DIRECTIONS and attribute.value is None:
                return attribute.name
    return "sendrecv"


def _rtcp_port(media: MediaDescription) -> int:
    value = media.attribute("rtcp")
    if value:
        port = value.split()[0]
        if port.isdigit() and 0 < int(port) <= 65535:
            return int(port)
        logger.debug("x SDP: ignoring malformed a=rtcp:%s", value)
    return media.port + 1


def _choose(
    session: SessionDescription,
    media: MediaDescription,
    allowed: tuple[str, ...],
    local: LocalMedia,
) -> _Choice | str:
    """What we would use of one audio section, or why we cannot use it."""
    if media.port == 0:
        return "disabled (port 0)"
    if media.proto.upper() not in RTP_PROFILES:
        return f"transport {media.proto} is not RTP or SRTP with SDES keys"
    connection = media.connection or session.connection
    if connection is None:
        return "no c= line at session or media level"
    try:
        ip = ipaddress.ip_address(connection.address)
    except ValueError:
        return f"c= address {connection.address!r} is not an IP address"
    ours = ipaddress.ip_address(local.address)
    if ip.version != ours.version and not ip.is_unspecified:
        return f"media on IPv{ip.version} ({ip}), ours is IPv{ours.version}"
    formats = _formats(media)
    for fmt in formats:
        codec = _codec_of(fmt, allowed)
        if codec is not None:
            break
    else:
        offered = ", ".join(f.describe() for f in formats) or "nothing"
        return f"no common codec (they have {offered}; we have {', '.join(allowed)})"
    their_sends, their_receives = _flags(_direction_of(session, media))
    return _Choice(
        codec=codec,
        payload_type=fmt.payload_type,
        dtmf=_pick_dtmf(formats, CODECS[codec].clock_rate),
        address=str(ip),
        port=media.port,
        rtcp_port=_rtcp_port(media),
        their_sends=their_sends,
        their_receives=their_receives and not ip.is_unspecified,
    )


def _parse(data: bytes, what: str) -> SessionDescription:
    try:
        return parse_sdp(data)
    except SdpError as exc:
        raise NotAcceptable(f"malformed SDP {what}: {exc}") from exc


def _rejected(media: MediaDescription) -> MediaDescription:
    """An answer's (or re-offer's) port-0 line for a stream we do not use (RFC 3264 §6)."""
    return MediaDescription(media.media, 0, media.proto, list(media.formats) or ["0"])


def _add_format(audio: MediaDescription, payload_type: int, name: str, clock_rate: int) -> None:
    audio.formats.append(str(payload_type))
    audio.attributes.append(Attribute("rtpmap", f"{payload_type} {name}/{clock_rate}"))


def _add_dtmf(audio: MediaDescription, payload_type: int, clock_rate: int) -> None:
    _add_format(audio, payload_type, TELEPHONE_EVENT, clock_rate)
    audio.attributes.append(Attribute("fmtp", f"{payload_type} {DTMF_EVENTS}"))


class OfferAnswer:
    """One call's SDP negotiation: our offers and answers, their offers and answers."""

    def __init__(
        self,
        local: LocalMedia,
        session_id: int,
        key_source: Callable[[int], bytes] | None = None,
    ) -> None:
        """
        Args:
            local: our address, port, codecs, direction and SRTP mode.
            session_id: the ``o=`` session id for the whole dialog (random, handed in).
            key_source: draws SDES key material (the OS CSPRNG, ``secrets.token_bytes``);
                needed unless ``local.srtp`` is "off".
        """
        if session_id < 0:
            raise ValueError(f"session_id must not be negative, got {session_id}")
        if local.srtp != "off" and key_source is None:
            raise ValueError("SRTP needs a key_source")
        self._key_source = key_source
        self._keys: dict[str, bytes] = {}  # suite -> our key material, one per dialog
        self._offered_crypto: dict[int, SdesKey] = {}  # tag -> our key, of the last offer
        self._srtp_in_use = False  # once SRTP ran, the call never goes on in clear
        self.local = local  #: ours; a new value (a hold) applies to the next offer or answer
        self._session_id = session_id
        self._version = 1
        self._sent: SessionDescription | None = None
        self._offered_codecs = local.codecs
        self._offered_dtmf: dict[int, int] = {}  # clock rate -> our telephone-event PT
        self._audio_index = 0

    # -- our offers -----------------------------------------------------------------------

    def offer(self) -> bytes:
        """Our offer: one audio stream with every local codec (keeps earlier rejected lines)."""
        local = self.local
        profile = "RTP/SAVP" if local.srtp == "mandatory" else "RTP/AVP"
        audio = MediaDescription("audio", local.port, profile, [])
        for codec in local.codecs:
            _add_format(audio, CODECS[codec].payload_type, codec, CODECS[codec].clock_rate)
        self._offered_dtmf = {
            clock: pt for pt, clock in OFFER_DTMF if clock == 8000 or "G722" in local.codecs
        }
        for clock, pt in self._offered_dtmf.items():
            _add_dtmf(audio, pt, clock)
        self._offered_crypto = {}
        if local.srtp != "off":  # optional: keys on RTP/AVP, the "best effort" phones accept
            for tag, name in enumerate(OFFER_SUITES, start=1):
                key = SdesKey(tag, SUITES[name], self._key_for(SUITES[name]))
                self._offered_crypto[tag] = key
                audio.attributes.append(Attribute("crypto", format_crypto(key)))
        self._close_audio(audio, local.direction)
        sections = [audio]
        if self._sent is not None and len(self._sent.media) > 1:
            sections = [_rejected(m) for m in self._sent.media]
            sections[self._audio_index] = audio
        else:
            self._audio_index = 0
        self._offered_codecs = local.codecs
        return self._send(sections)

    def receive_answer(self, answer: bytes) -> NegotiatedMedia:
        """The remote answer to our last offer (NotAcceptable if it leaves no common codec)."""
        remote = _parse(answer, "answer")
        if len(remote.media) <= self._audio_index:
            raise NotAcceptable(f"the answer has {len(remote.media)} m= lines, no audio stream")
        media = remote.media[self._audio_index]
        if media.media != "audio":
            raise NotAcceptable(f"the answer has m={media.media} where we offered audio")
        choice = _choose(remote, media, self._offered_codecs, self.local)
        if isinstance(choice, str):
            raise NotAcceptable(f"unusable answer: audio {choice}")
        srtp = self._answered_srtp(media)
        dtmf = self._offered_dtmf.get(choice.dtmf.clock_rate) if choice.dtmf else None
        negotiated = self._negotiated(choice, CODECS[choice.codec].payload_type, dtmf, srtp)
        logger.debug("SDP answer received: %s", negotiated)
        return negotiated

    # -- their offers ---------------------------------------------------------------------

    def answer(self, offer: bytes) -> tuple[bytes, NegotiatedMedia | None]:
        """Our answer to an offer (INVITE, re-INVITE, UPDATE) and what it negotiated (None:
        the offer's audio is at port 0, so is our answer's, and there is no media)."""
        remote = _parse(offer, "offer")
        if not remote.media:
            raise NotAcceptable("the offer has no m= line")
        local = self.local
        chosen: tuple[int, _Choice, SrtpKeys | None] | None = None
        reasons: list[str] = []
        for index, media in enumerate(remote.media):
            if media.media == "audio" and chosen is None:
                choice = _choose(remote, media, local.codecs, local)
                srtp = self._offered_srtp(media) if not isinstance(choice, str) else None
                if isinstance(choice, str) or isinstance(srtp, str):
                    reasons.append(f"audio stream {index + 1}: {choice if srtp is None else srtp}")
                else:
                    chosen = index, choice, srtp
        audio = [i for i, m in enumerate(remote.media) if m.media == "audio"]
        if chosen is None and audio and all(remote.media[i].port == 0 for i in audio):
            self._audio_index = audio[0]  # §8.2: removed; a later offer may use the line again
            logger.debug("SDP offer without audio (port 0) answered in kind")
            return self._send([_rejected(m) for m in remote.media]), None
        if chosen is None:
            found = ", ".join(f"m={m.media}" for m in remote.media)
            raise NotAcceptable("no usable audio stream: " + ("; ".join(reasons) or found))
        index, choice, keys = chosen
        sections = [_rejected(m) for m in remote.media]
        sections[index] = self._answer_section(remote.media[index].proto, choice, keys)
        self._audio_index = index
        dtmf = choice.dtmf.payload_type if choice.dtmf else None
        negotiated = self._negotiated(choice, choice.payload_type, dtmf, keys)
        logger.debug("SDP offer answered: %s", negotiated)
        return self._send(sections), negotiated

    # -- building ---------------------------------------------------------------------------

    def _answer_section(
        self, proto: str, choice: _Choice, keys: SrtpKeys | None
    ) -> MediaDescription:
        audio = MediaDescription("audio", self.local.port, proto, [])
        _add_format(audio, choice.payload_type, choice.codec, CODECS[choice.codec].clock_rate)
        if choice.dtmf is not None:
            _add_dtmf(audio, choice.dtmf.payload_type, choice.dtmf.clock_rate)
        if keys is not None:
            audio.attributes.append(Attribute("crypto", format_crypto(keys.local)))
        self._close_audio(
            audio, _ours(self.local.direction, choice.their_sends, choice.their_receives)
        )
        return audio

    def _close_audio(self, audio: MediaDescription, direction: str) -> None:
        """After the rtpmaps and fmtps: ``a=ptime`` and the direction, always explicit."""
        audio.attributes.append(Attribute("ptime", str(self.local.ptime)))
        audio.attributes.append(Attribute(direction))

    def _negotiated(
        self, choice: _Choice, receive_pt: int, receive_dtmf: int | None, srtp: SrtpKeys | None
    ) -> NegotiatedMedia:
        """What ``choice`` sends with, and what we receive with: our own SDP's numbers."""
        clock = CODECS[choice.codec].clock_rate
        if srtp is not None:
            self._srtp_in_use = True
        return NegotiatedMedia(
            codec=choice.codec,
            payload_type=choice.payload_type,
            remote_address=choice.address,
            remote_port=choice.port,
            remote_rtcp_port=choice.rtcp_port,
            dtmf_payload_type=choice.dtmf.payload_type if choice.dtmf else None,
            dtmf_clock_rate=choice.dtmf.clock_rate if choice.dtmf else clock,
            direction=_ours(self.local.direction, choice.their_sends, choice.their_receives),
            ptime=self.local.ptime,
            receive_payload_type=receive_pt,
            receive_dtmf_payload_type=receive_dtmf,
            srtp=srtp,
        )

    # -- SRTP (SDES, RFC 4568) ------------------------------------------------------------

    def _key_for(self, suite: CryptoSuite) -> bytes:
        """Our key material for ``suite``: drawn once per dialog, so a re-INVITE answered the
        same way keeps the stream's keys (and the SDP's version)."""
        material = self._keys.get(suite.name)
        if material is None:
            assert self._key_source is not None
            material = self._keys[suite.name] = self._key_source(suite.key_material_length)
        return material

    def _srtp_required(self) -> bool:
        return self.local.srtp == "mandatory" or self._srtp_in_use

    def _offered_srtp(self, media: MediaDescription) -> SrtpKeys | str | None:
        """The SRTP of our answer to one offered audio section: keys, None (clear RTP), or
        why it cannot be taken. The first usable a=crypto line of the offer wins (§6.1)."""
        secure = media.proto.upper() in SECURE_PROFILES
        lines = media.attribute_values("crypto")
        if self.local.srtp == "off":
            return f"{media.proto} asks for SRTP, which is off (INTERCOM_SRTP)" if secure else None
        reasons = []
        for value in lines:
            remote = parse_crypto(value)
            if isinstance(remote, str):
                reasons.append(remote)
                continue
            return SrtpKeys(SdesKey(remote.tag, remote.suite, self._key_for(remote.suite)), remote)
        if secure:
            why = "; ".join(reasons) or "no a=crypto line (DTLS-SRTP is not supported)"
            return f"{media.proto} without usable SDES keys: {why}"
        if self._srtp_required():
            why = "; ".join(reasons) or "no a=crypto line"
            return f"SRTP refused: RTP/AVP with {why}, and SRTP is required (INTERCOM_SRTP)"
        return None

    def _answered_srtp(self, media: MediaDescription) -> SrtpKeys | None:
        """The SRTP an answer to our offer takes (SrtpRefused when SRTP was required)."""
        lines = media.attribute_values("crypto")
        if not self._offered_crypto:
            if media.proto.upper() in SECURE_PROFILES:
                raise NotAcceptable(f"the answer has {media.proto}, we offered RTP in clear")
            return None  # crypto lines we never offered are not a key exchange
        if not lines:
            if self._srtp_required() or media.proto.upper() in SECURE_PROFILES:
                raise SrtpRefused("SRTP refused: the answer has no a=crypto line")
            return None  # optional: the peer speaks RTP in clear
        remote = parse_crypto(lines[0])
        if isinstance(remote, str):
            raise SrtpRefused(f"SRTP refused: the answer's a=crypto is unusable: {remote}")
        ours = self._offered_crypto.get(remote.tag)
        if ours is None or ours.suite != remote.suite:
            raise SrtpRefused(
                f"SRTP refused: the answer's a=crypto {remote.tag} {remote.suite.name} "
                "is not one we offered"
            )
        return SrtpKeys(ours, remote)

    def _send(self, sections: list[MediaDescription]) -> bytes:
        """Wrap sections in our session lines; bump the version only if the content changed."""
        local = self.local
        kind = local.address_type
        description = SessionDescription(
            origin=Origin(
                "-", str(self._session_id), str(self._version), "IN", kind, local.address
            ),
            name="-",
            connection=Connection(kind, local.address),
            media=sections,
        )
        if self._sent is not None and description != self._sent:
            self._version += 1
            description.origin.version = str(self._version)
        self._sent = description
        return description.encode()
