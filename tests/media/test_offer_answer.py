"""Tests for intercom.media.offer_answer: offers and answers with real-shaped peers (RFC 3264).

Vectors in tests/vectors/sdp/ (bytes exactly as sent; .gitattributes keeps them):

* ``baresip_*``: captured from baresip 1.0.0 on loopback (g711, g722, opus modules):
  its offer (``/dial``), its hold re-INVITE (``hold`` over ctrl_tcp: ``a=sendonly``), its offer
  over IPv6 (``-n ::1``), and its 200 OK answer to an INVITE carrying exactly our offer.
* ``asterisk_pjsip_*``: chan_pjsip's shape (``o=-``, ``s=Asterisk``, ``a=maxptime:150``), as in
  published traces; ``asterisk_g729_gsm_only``: a trunk with ``allow=g729,gsm`` (no codec for us).
* ``freeswitch_*``: mod_sofia's shape (``o=FreeSWITCH``, opus with ``telephone-event/48000``,
  video from the default codec list H264, VP8); the answer as FreeSWITCH sends it.
* ``fritzbox_*``: AVM FRITZ!Box shape from a published FRITZ!Box 6490 200 OK (``o=user``, RTP on
  7078 with ``a=rtcp:7079``, ``telephone-event`` 0-15 as PT 100); the offer lists G.722 first.
* ``linphone_*``: liblinphone's shape (``s=Talk``, session ``a=rtcp-xr``, static types without
  rtpmap, three telephone-events, video VP8/H264); the pause re-INVITE as ``a=inactive``.
* ``zoiper_*``: Zoiper 5's shape (``o=Z``, ``s=Z``, opus 106, ``a=rtcp-mux``); the answer as
  published in an rtpengine report (PCMA, PCMU, telephone-event renumbered to 97).
* ``pjsip_media_level_c``: a pjsua-based phone (``s=pjmedia``): ``c=`` only at media level,
  ``a=rtcp`` on a port that is not RTP + 1, ICE candidates, four telephone-event clocks.
* ``rtpengine_media_c_overrides``: session ``c=`` private, media ``c=`` rewritten by rtpengine.
* ``legacy_hold_c0``: RFC 2543 hold (``c=IN IP4 0.0.0.0``) in an old chan_sip-shaped body.
* ``dynamic_pt_lowercase``: RestComm media server shape: lower-case encoding names, G.722 and
  PCMU on dynamic payload types, G.729 first.
* ``te16000_only``: a Yealink-shaped offer whose only telephone-event is ``/16000``.
* ``lf_only``: sipp's default UAC body with LF line ends.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from intercom.media.offer_answer import (
    LocalMedia,
    NegotiatedMedia,
    NotAcceptable,
    OfferAnswer,
)
from intercom.media.sdp import SdpError, parse_sdp

VECTORS = Path(__file__).parent.parent / "vectors" / "sdp"
V4 = LocalMedia("192.0.2.50", 40000)
V6 = LocalMedia("2001:db8::50", 40000)
SESSION_ID = 4242


def vector(name: str) -> bytes:
    return (VECTORS / name).read_bytes()


def sdp(*lines: str) -> bytes:
    return ("\r\n".join(lines) + "\r\n").encode()


def offer_with(*media_lines: str, connection: str = "c=IN IP4 198.51.100.7") -> bytes:
    return sdp("v=0", "o=- 9 9 IN IP4 198.51.100.7", "s=-", connection, "t=0 0", *media_lines)


def negotiated(
    codec: str,
    pt: int,
    address: str,
    port: int,
    rtcp: int,
    dtmf: int | None,
    dtmf_clock: int = 8000,
    direction: str = "sendrecv",
    receive_dtmf: int | None = None,
) -> NegotiatedMedia:
    """Sent and received with the same numbers, but for ``receive_dtmf`` when given."""
    receive = dtmf if receive_dtmf is None else receive_dtmf
    return NegotiatedMedia(
        codec, pt, address, port, rtcp, dtmf, dtmf_clock, direction, 20, pt, receive
    )


# (vector, local, expected negotiation, answer formats)
OFFERS = [
    ("asterisk_pjsip_offer.sdp", V4,
     negotiated("G722", 9, "192.168.1.10", 14962, 14963, 101), ["9", "101"]),
    ("baresip_offer.sdp", V4,
     negotiated("PCMU", 0, "127.0.0.1", 8654, 8655, 101), ["0", "101"]),
    ("baresip_offer_ipv6.sdp", V6,
     negotiated("PCMU", 0, "::1", 8476, 8477, 101), ["0", "101"]),
    ("baresip_hold_sendonly.sdp", V4,
     negotiated("PCMU", 0, "127.0.0.1", 8654, 8655, None, direction="recvonly"), ["0"]),
    ("dynamic_pt_lowercase.sdp", V4,
     negotiated("G722", 97, "192.168.1.1", 37402, 37403, 101), ["97", "101"]),
    ("freeswitch_offer_video.sdp", V4,
     negotiated("G722", 9, "198.51.100.23", 20638, 20639, 101), ["9", "101"]),
    ("fritzbox_offer.sdp", V4,
     negotiated("G722", 9, "192.168.178.1", 7078, 7079, 101), ["9", "101"]),
    ("legacy_hold_c0.sdp", V4,
     negotiated("PCMU", 0, "0.0.0.0", 17836, 17837, 101, direction="recvonly"), ["0", "101"]),
    ("lf_only.sdp", V4,
     negotiated("PCMU", 0, "127.0.0.1", 6000, 6001, None), ["0"]),
    ("linphone_offer_video.sdp", V4,
     negotiated("PCMU", 0, "192.168.3.117", 7076, 7077, 100), ["0", "100"]),
    ("linphone_pause_inactive.sdp", V4,
     negotiated("PCMU", 0, "192.168.3.117", 7076, 7077, 101, direction="inactive"), ["0", "101"]),
    ("pjsip_media_level_c.sdp", V4,
     negotiated("PCMU", 0, "192.168.99.105", 4027, 4018, 121), ["0", "121"]),
    ("rtpengine_media_c_overrides.sdp", V4,
     negotiated("PCMA", 8, "203.0.113.80", 30352, 30353, 101), ["8", "101"]),
    ("te16000_only.sdp", V4,
     negotiated("G722", 9, "192.168.1.77", 11800, 11801, 96, dtmf_clock=16000), ["9", "96"]),
    ("zoiper_offer.sdp", V4,
     negotiated("G722", 9, "192.168.0.23", 52816, 52817, 101), ["9", "101"]),
]  # fmt: skip

ANSWERS = [
    ("asterisk_pjsip_answer.sdp", V4, negotiated("PCMU", 0, "192.168.1.10", 17202, 17203, 101)),
    ("asterisk_pjsip_answer_ipv6.sdp", V6,
     negotiated("G722", 9, "2001:db8::10", 10040, 10041, 101)),
    ("baresip_answer.sdp", V4, negotiated("G722", 9, "127.0.0.1", 41594, 41595, 101)),
    ("freeswitch_answer.sdp", V4, negotiated("G722", 9, "198.51.100.23", 26006, 26007, 101)),
    ("fritzbox_answer.sdp", V4,
     negotiated("PCMU", 0, "192.168.178.1", 7078, 7079, 100, receive_dtmf=101)),
    ("linphone_answer.sdp", V4, negotiated("PCMU", 0, "192.168.3.117", 7078, 7079, 101)),
    ("zoiper_answer.sdp", V4,
     negotiated("PCMA", 8, "192.168.0.23", 58085, 58086, 97, receive_dtmf=101)),
]  # fmt: skip


def test_every_vector_is_used():
    used = {name for name, *_ in OFFERS} | {name for name, *_ in ANSWERS}
    used.add("asterisk_g729_gsm_only.sdp")
    assert used == {p.name for p in VECTORS.glob("*.sdp")}


# -- answering real offers --------------------------------------------------------------------


@pytest.mark.parametrize(("name", "local", "expected", "formats"), OFFERS)
def test_answer_to_vector(name, local, expected, formats):
    offer = parse_sdp(vector(name))
    body, media = OfferAnswer(local, SESSION_ID).answer(vector(name))
    assert media == expected

    answer = parse_sdp(body)  # our answer re-parses
    kind = "IP6" if ":" in local.address else "IP4"
    assert answer.origin.encode() == f"- {SESSION_ID} 1 IN {kind} {local.address}"
    assert answer.name == "-"
    assert answer.times == ["0 0"]
    assert answer.connection is not None
    assert answer.connection.encode() == f"IN {kind} {local.address}"
    assert len(answer.media) == len(offer.media)

    ours = answer.media[0]
    assert (ours.media, ours.port, ours.proto) == ("audio", local.port, "RTP/AVP")
    assert ours.formats == formats
    maps = ours.rtpmaps()
    assert maps[expected.payload_type].encoding == expected.codec
    assert maps[expected.payload_type].clock_rate == 8000
    if expected.dtmf_payload_type is not None:
        assert maps[expected.dtmf_payload_type].encoding == "telephone-event"
        assert maps[expected.dtmf_payload_type].clock_rate == expected.dtmf_clock_rate
        assert ours.fmtp(expected.dtmf_payload_type) == "0-16"
    assert ours.attribute("ptime") == "20"
    assert ours.attributes[-1].name == expected.direction
    assert ours.attributes[-1].value is None

    for offered, rejected in zip(offer.media[1:], answer.media[1:], strict=True):
        assert (rejected.media, rejected.port, rejected.proto) == (offered.media, 0, offered.proto)
        assert rejected.formats == offered.formats
        assert rejected.attributes == []


def test_answer_exact_bytes_for_asterisk():
    body, _ = OfferAnswer(V4, SESSION_ID).answer(vector("asterisk_pjsip_offer.sdp"))
    assert body == sdp(
        "v=0",
        "o=- 4242 1 IN IP4 192.0.2.50",
        "s=-",
        "c=IN IP4 192.0.2.50",
        "t=0 0",
        "m=audio 40000 RTP/AVP 9 101",
        "a=rtpmap:9 G722/8000",
        "a=rtpmap:101 telephone-event/8000",
        "a=fmtp:101 0-16",
        "a=ptime:20",
        "a=sendrecv",
    )


def test_answer_keeps_the_offerers_dynamic_numbers():
    body, _ = OfferAnswer(V4, SESSION_ID).answer(vector("dynamic_pt_lowercase.sdp"))
    assert b"m=audio 40000 RTP/AVP 97 101\r\na=rtpmap:97 G722/8000\r\n" in body


def test_rejected_video_lines_in_exact_form():
    body, _ = OfferAnswer(V4, SESSION_ID).answer(vector("freeswitch_offer_video.sdp"))
    assert body.endswith(b"a=sendrecv\r\nm=video 0 RTP/AVP 103 104\r\n")


def test_local_codec_list_limits_the_choice():
    local = replace(V4, codecs=("PCMA",))
    _, media = OfferAnswer(local, SESSION_ID).answer(vector("zoiper_offer.sdp"))
    assert (media.codec, media.payload_type) == ("PCMA", 8)


def test_no_common_codec_is_not_acceptable():
    with pytest.raises(NotAcceptable, match=r"no common codec \(they have G729/8000, GSM/8000"):
        OfferAnswer(V4, SESSION_ID).answer(vector("asterisk_g729_gsm_only.sdp"))


def test_address_family_mismatch_is_not_acceptable():
    with pytest.raises(NotAcceptable, match=r"media on IPv6 \(::1\), ours is IPv4"):
        OfferAnswer(V4, SESSION_ID).answer(vector("baresip_offer_ipv6.sdp"))
    with pytest.raises(NotAcceptable, match="media on IPv4"):
        OfferAnswer(V6, SESSION_ID).answer(vector("baresip_offer.sdp"))


@pytest.mark.parametrize(
    ("offer", "message"),
    [
        (b"INVITE me", "malformed SDP offer: line 1"),
        (offer_with("m=audio x RTP/AVP 0"), "malformed SDP offer: line 6: m= port"),
        (offer_with(), "the offer has no m= line"),
        (offer_with("m=video 5000 RTP/AVP 31"), "no usable audio stream: m=video"),
        (offer_with("m=audio 0 RTP/AVP 0", "m=audio 5000 RTP/SAVP 0"),
         r"audio stream 1: disabled \(port 0\); audio stream 2: RTP/SAVP asks for SRTP, "
         "which is off"),
        (offer_with("m=audio 5000 RTP/SAVP 0"), "RTP/SAVP asks for SRTP, which is off"),
        (offer_with("m=audio 5000 RTP/AVP 0", connection="c=IN IP4 pbx.example.com"),
         "c= address 'pbx.example.com' is not an IP address"),
        (sdp("v=0", "o=- 1 1 IN IP4 192.0.2.1", "s=-", "t=0 0", "m=audio 5000 RTP/AVP 0"),
         "no c= line"),
        (offer_with("m=audio 5000 RTP/AVP 96", "a=rtpmap:96 G722/16000"),
         r"no common codec \(they have G722/16000"),
        (offer_with("m=audio 5000 RTP/AVP 96", "a=rtpmap:96 PCMU/8000/2"), "no common codec"),
        (offer_with("m=audio 5000 RTP/AVP 100"), r"they have PT 100;"),
    ],
)  # fmt: skip
def test_unusable_offers(offer, message):
    with pytest.raises(NotAcceptable, match=message):
        OfferAnswer(V4, SESSION_ID).answer(offer)


def test_an_offer_with_audio_at_port_0_is_answered_at_port_0():
    """RFC 3264 §8.2: a removed stream is answered at port 0, not refused; no media follows."""
    oa = OfferAnswer(V4, SESSION_ID)
    assert oa.answer(offer_with("m=audio 5000 RTP/AVP 0"))[1] is not None
    body, media = oa.answer(offer_with("m=audio 0 RTP/AVP 0 101", "m=video 0 RTP/AVP 31"))
    assert media is None
    lines = [(m.media, m.port, m.formats) for m in parse_sdp(body).media]
    assert lines == [("audio", 0, ["0", "101"]), ("video", 0, ["31"])]
    _, media = oa.answer(offer_with("m=audio 5002 RTP/AVP 8", "m=video 0 RTP/AVP 31"))
    assert media is not None and (media.codec, media.remote_port) == ("PCMA", 5002)
    body, media = OfferAnswer(V4, SESSION_ID).answer(offer_with("m=audio 0 RTP/AVP 0"))
    assert media is None and b"m=audio 0 RTP/AVP 0\r\n" in body  # a first offer alike


def test_malformed_offer_chains_the_sdp_error():
    with pytest.raises(NotAcceptable) as info:
        OfferAnswer(V4, SESSION_ID).answer(b"garbage")
    assert isinstance(info.value.__cause__, SdpError)
    assert isinstance(info.value, ValueError)


def test_first_usable_audio_stream_wins_and_others_are_rejected():
    offer = offer_with(
        "m=audio 5000 RTP/SAVP 0",
        "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:AAAA",
        "m=audio 5002 RTP/AVP 8",
        "m=audio 5004 RTP/AVP 0",
    )
    body, media = OfferAnswer(V4, SESSION_ID).answer(offer)
    assert (media.codec, media.remote_port) == ("PCMA", 5002)
    ports = [(m.port, m.proto) for m in parse_sdp(body).media]
    assert ports == [(0, "RTP/SAVP"), (40000, "RTP/AVP"), (0, "RTP/AVP")]


def test_first_format_they_prefer_wins_over_our_order():
    local = replace(V4, codecs=("PCMU", "PCMA", "G722"))
    _, media = OfferAnswer(local, SESSION_ID).answer(vector("asterisk_pjsip_offer.sdp"))
    assert media.codec == "G722"


def test_static_rtpmap_naming_another_codec_is_taken_at_its_word():
    offer = offer_with("m=audio 5000 RTP/AVP 0 8", "a=rtpmap:0 G726-32/8000")
    _, media = OfferAnswer(V4, SESSION_ID).answer(offer)
    assert (media.codec, media.payload_type) == ("PCMA", 8)


def test_avpf_profile_is_answered_in_kind():
    body, _ = OfferAnswer(V4, SESSION_ID).answer(offer_with("m=audio 5000 RTP/AVPF 0"))
    assert b"m=audio 40000 RTP/AVPF 0\r\n" in body


def test_first_telephone_event_when_none_matches_the_codec_clock():
    offer = offer_with(
        "m=audio 5000 RTP/AVP 0 97 98",
        "a=rtpmap:97 telephone-event/48000",
        "a=rtpmap:98 telephone-event/16000",
    )
    _, media = OfferAnswer(V4, SESSION_ID).answer(offer)
    assert (media.dtmf_payload_type, media.dtmf_clock_rate) == (97, 48000)


def test_malformed_rtcp_attribute_falls_back_to_port_plus_one():
    offer = offer_with("m=audio 5000 RTP/AVP 0", "a=rtcp:abc")
    _, media = OfferAnswer(V4, SESSION_ID).answer(offer)
    assert media.remote_rtcp_port == 5001


# -- directions --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("theirs", "local", "ours"),
    [
        ("sendrecv", "sendrecv", "sendrecv"),
        ("sendonly", "sendrecv", "recvonly"),
        ("recvonly", "sendrecv", "sendonly"),
        ("inactive", "sendrecv", "inactive"),
        ("sendrecv", "sendonly", "sendonly"),
        ("sendonly", "sendonly", "inactive"),
        ("recvonly", "recvonly", "inactive"),
        ("sendrecv", "inactive", "inactive"),
    ],
)
def test_answer_direction(theirs, local, ours):
    oa = OfferAnswer(replace(V4, direction=local), SESSION_ID)
    body, media = oa.answer(offer_with("m=audio 5000 RTP/AVP 0", f"a={theirs}"))
    assert media.direction == ours
    assert body.endswith(f"a={ours}\r\n".encode())


def test_session_level_direction_applies_and_media_level_overrides_it():
    session_only = sdp(
        "v=0", "o=- 1 1 IN IP4 192.0.2.1", "s=-", "c=IN IP4 192.0.2.1", "t=0 0",
        "a=sendonly", "m=audio 5000 RTP/AVP 0",
    )  # fmt: skip
    _, media = OfferAnswer(V4, SESSION_ID).answer(session_only)
    assert media.direction == "recvonly"
    both = session_only.replace(b"RTP/AVP 0\r\n", b"RTP/AVP 0\r\na=sendrecv\r\n")
    _, media = OfferAnswer(V4, SESSION_ID).answer(both)
    assert media.direction == "sendrecv"


def test_rfc2543_hold_means_we_do_not_send_even_when_they_only_receive():
    offer = offer_with("m=audio 5000 RTP/AVP 0", "a=recvonly", connection="c=IN IP4 0.0.0.0")
    _, media = OfferAnswer(V4, SESSION_ID).answer(offer)
    assert media.direction == "inactive"


def test_negotiated_media_sends_and_receives():
    flags = {
        d: (replace(negotiated("PCMU", 0, "192.0.2.9", 5000, 5001, None), direction=d))
        for d in ("sendrecv", "sendonly", "recvonly", "inactive")
    }
    assert [(m.sends, m.receives) for m in flags.values()] == [
        (True, True),
        (True, False),
        (False, True),
        (False, False),
    ]


# -- our offer ---------------------------------------------------------------------------------


def test_offer_exact_bytes():
    assert OfferAnswer(V4, SESSION_ID).offer() == sdp(
        "v=0",
        "o=- 4242 1 IN IP4 192.0.2.50",
        "s=-",
        "c=IN IP4 192.0.2.50",
        "t=0 0",
        "m=audio 40000 RTP/AVP 9 0 8 101 102",
        "a=rtpmap:9 G722/8000",
        "a=rtpmap:0 PCMU/8000",
        "a=rtpmap:8 PCMA/8000",
        "a=rtpmap:101 telephone-event/8000",
        "a=fmtp:101 0-16",
        "a=rtpmap:102 telephone-event/16000",
        "a=fmtp:102 0-16",
        "a=ptime:20",
        "a=sendrecv",
    )


def test_offer_without_g722_has_no_16k_events_and_follows_our_order():
    local = LocalMedia("192.0.2.50", 40000, codecs=("PCMA", "PCMU"), direction="sendonly")
    audio = parse_sdp(OfferAnswer(local, 1).offer()).media[0]
    assert audio.formats == ["8", "0", "101"]
    assert audio.attributes[-1].name == "sendonly"


def test_ipv6_offer_parses_back():
    description = parse_sdp(OfferAnswer(V6, 77).offer())
    assert description.origin.encode() == "- 77 1 IN IP6 2001:db8::50"
    assert description.connection is not None
    assert description.connection.encode() == "IN IP6 2001:db8::50"


def test_our_offer_answered_by_ourselves():
    caller = OfferAnswer(V4, 1)
    callee = OfferAnswer(LocalMedia("192.0.2.60", 50000, codecs=("PCMU", "G722")), 2)
    answer, callee_media = callee.answer(caller.offer())
    caller_media = caller.receive_answer(answer)
    assert callee_media == negotiated("G722", 9, "192.0.2.50", 40000, 40001, 101)
    assert caller_media == negotiated("G722", 9, "192.0.2.60", 50000, 50001, 101)


# -- answers to our offer ----------------------------------------------------------------------


@pytest.mark.parametrize(("name", "local", "expected"), ANSWERS)
def test_receive_answer_vector(name, local, expected):
    oa = OfferAnswer(local, SESSION_ID)
    oa.offer()
    assert oa.receive_answer(vector(name)) == expected


def test_an_answer_that_renumbers_is_sent_with_its_numbers_and_received_with_ours():
    """RFC 3264 §5.1: the offer's numbers are what the offerer receives, the answer's what the
    answerer receives."""
    oa = OfferAnswer(V4, SESSION_ID)
    oa.offer()  # G722 9, PCMU 0, PCMA 8, telephone-event 101 (8000) and 102 (16000)
    media = oa.receive_answer(
        offer_with("m=audio 5004 RTP/AVP 9 96", "a=rtpmap:96 telephone-event/8000")
    )
    assert (media.payload_type, media.receive_payload_type) == (9, 9)
    assert (media.dtmf_payload_type, media.receive_dtmf_payload_type) == (96, 101)
    media = oa.receive_answer(
        offer_with(
            "m=audio 5004 RTP/AVP 97 98",
            "a=rtpmap:97 G722/8000",
            "a=rtpmap:98 telephone-event/16000",
        )
    )
    assert (media.payload_type, media.receive_payload_type) == (97, 9)
    assert (media.dtmf_payload_type, media.receive_dtmf_payload_type) == (98, 102)
    assert media.dtmf_clock_rate == 16000


def test_answering_we_receive_with_the_offerers_numbers_that_our_answer_repeats():
    answer, media = OfferAnswer(V4, SESSION_ID).answer(
        offer_with("m=audio 5004 RTP/AVP 0 96", "a=rtpmap:96 telephone-event/8000")
    )
    assert parse_sdp(answer).media[0].formats == ["0", "96"]
    assert (media.payload_type, media.receive_payload_type) == (0, 0)
    assert (media.dtmf_payload_type, media.receive_dtmf_payload_type) == (96, 96)


def test_receive_answer_twice_gives_the_same_result():
    oa = OfferAnswer(V4, SESSION_ID)
    oa.offer()
    first = oa.receive_answer(vector("fritzbox_answer.sdp"))  # 183 early media
    assert oa.receive_answer(vector("fritzbox_answer.sdp")) == first  # then the 200


def test_receive_answer_only_accepts_codecs_we_offered():
    oa = OfferAnswer(replace(V4, codecs=("G722",)), SESSION_ID)
    oa.offer()
    with pytest.raises(NotAcceptable, match=r"no common codec \(they have PCMU/8000, PCMA/8000"):
        oa.receive_answer(vector("fritzbox_answer.sdp"))
    _, media = oa.answer(vector("baresip_offer.sdp"))
    assert media.codec == "G722"


def test_receive_answer_skips_codecs_we_do_not_have():
    oa = OfferAnswer(replace(V4, codecs=("PCMA",)), SESSION_ID)
    oa.offer()
    assert oa.receive_answer(vector("fritzbox_answer.sdp")).codec == "PCMA"


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (b"v=0\r\n", "malformed SDP answer: SDP has no o= line"),
        (offer_with(), "the answer has 0 m= lines"),
        (offer_with("m=video 5000 RTP/AVP 31"), "m=video where we offered audio"),
        (offer_with("m=audio 0 RTP/AVP 0"), r"unusable answer: audio disabled \(port 0\)"),
    ],
)
def test_unusable_answers(answer, message):
    oa = OfferAnswer(V4, SESSION_ID)
    oa.offer()
    with pytest.raises(NotAcceptable, match=message):
        oa.receive_answer(answer)


@pytest.mark.parametrize(
    ("line", "connection", "ours"),
    [
        ("a=sendonly", "c=IN IP4 198.51.100.7", "recvonly"),
        ("a=recvonly", "c=IN IP4 198.51.100.7", "sendonly"),
        ("a=inactive", "c=IN IP4 198.51.100.7", "inactive"),
        ("a=sendrecv", "c=IN IP4 0.0.0.0", "recvonly"),
    ],
)
def test_receive_answer_direction(line, connection, ours):
    oa = OfferAnswer(V4, SESSION_ID)
    oa.offer()
    answer = offer_with("m=audio 5000 RTP/AVP 0", line, connection=connection)
    assert oa.receive_answer(answer).direction == ours


# -- versions and re-offers (RFC 3264 §8) ----------------------------------------------------


def origin(body: bytes) -> tuple[str, str]:
    o = parse_sdp(body).origin
    return o.session_id, o.version


def test_version_grows_only_when_what_we_send_changes():
    oa = OfferAnswer(V4, SESSION_ID)
    assert origin(oa.offer()) == ("4242", "1")
    assert origin(oa.offer()) == ("4242", "1")
    oa.local = replace(V4, direction="sendonly")  # hold
    held = oa.offer()
    assert origin(held) == ("4242", "2")
    assert held.endswith(b"a=sendonly\r\n")
    oa.local = V4  # resume
    assert origin(oa.offer()) == ("4242", "3")
    assert oa.local == V4


def test_same_reinvite_gets_the_same_answer_and_version():
    oa = OfferAnswer(V4, SESSION_ID)
    first, _ = oa.answer(vector("baresip_offer.sdp"))
    again, _ = oa.answer(vector("baresip_offer.sdp"))
    assert again == first
    held, media = oa.answer(vector("baresip_hold_sendonly.sdp"))
    assert origin(held) == ("4242", "2")
    assert media.direction == "recvonly"
    resumed, _ = oa.answer(vector("baresip_offer.sdp"))
    assert origin(resumed) == ("4242", "3")


def test_reoffer_keeps_the_rejected_lines_of_the_previous_answer():
    oa = OfferAnswer(V4, SESSION_ID)
    oa.answer(vector("linphone_offer_video.sdp"))
    oa.local = replace(V4, direction="sendonly")
    reoffer = parse_sdp(oa.offer())
    assert [(m.media, m.port) for m in reoffer.media] == [("audio", 40000), ("video", 0)]
    assert reoffer.media[0].formats == ["9", "0", "8", "101", "102"]
    answer = offer_with(
        "m=audio 7076 RTP/AVP 0 100",
        "a=rtpmap:100 telephone-event/8000",
        "a=recvonly",
        "m=video 0 RTP/AVP 96",
    )
    media = oa.receive_answer(answer)
    assert (media.codec, media.dtmf_payload_type, media.direction) == ("PCMU", 100, "sendonly")


def test_reoffer_uses_the_audio_position_of_the_previous_exchange():
    oa = OfferAnswer(V4, SESSION_ID)
    oa.answer(offer_with("m=video 5000 RTP/AVP 31", "m=audio 5002 RTP/AVP 0"))
    reoffer = parse_sdp(oa.offer())
    assert [(m.media, m.port) for m in reoffer.media] == [("video", 0), ("audio", 40000)]
    media = oa.receive_answer(offer_with("m=video 0 RTP/AVP 31", "m=audio 5002 RTP/AVP 0"))
    assert media.remote_port == 5002


# -- local parameters --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"address": "door.local"}, "must be an IP address"),
        ({"port": 0}, "port must be 1-65534"),
        ({"port": 65535}, "port must be 1-65534"),
        ({"codecs": ()}, "codecs must be some of PCMU, PCMA, G722"),
        ({"codecs": ("G729",)}, "codecs must be some of"),
        ({"codecs": ("PCMU", "PCMU")}, "repeat a codec"),
        ({"ptime": 0}, "ptime must be positive"),
        ({"direction": "hold"}, "direction must be one of sendrecv"),
    ],
)
def test_local_media_rejects_bad_values(kwargs, message):
    values = {"address": "192.0.2.50", "port": 40000, **kwargs}
    with pytest.raises(ValueError, match=message):
        LocalMedia(**values)


def test_local_media_address_type():
    assert V4.address_type == "IP4"
    assert V6.address_type == "IP6"


def test_negative_session_id_is_rejected():
    with pytest.raises(ValueError, match="session_id"):
        OfferAnswer(V4, -1)
