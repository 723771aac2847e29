"""SDES in offer/answer (RFC 4568 with RFC 3264): INTERCOM_SRTP off, optional and mandatory."""

from __future__ import annotations

import base64
import itertools

import pytest

from intercom.media.offer_answer import LocalMedia, NotAcceptable, OfferAnswer, SrtpRefused
from intercom.media.sdes import SUITES, SdesKey, format_crypto, parse_crypto
from intercom.media.sdp import parse_sdp

PEER_KEY = base64.b64encode(bytes(range(30))).decode()
PEER_KEY_256 = base64.b64encode(bytes(range(46))).decode()


def counting_keys() -> object:
    """Deterministic key material: 0x01 * n, then 0x02 * n, ..."""
    counter = itertools.count(1)
    return lambda n: bytes([next(counter)]) * n


def negotiation(srtp: str) -> OfferAnswer:
    return OfferAnswer(LocalMedia("192.0.2.50", 40000, srtp=srtp), 7, counting_keys())  # type: ignore[arg-type]


def sdp(proto: str, *attributes: str) -> bytes:
    session = ["v=0", "o=- 9 9 IN IP4 198.51.100.7", "s=-", "c=IN IP4 198.51.100.7", "t=0 0"]
    lines = [*session, f"m=audio 5000 {proto} 0 101", "a=rtpmap:101 telephone-event/8000"]
    lines.extend(attributes)
    return ("\r\n".join(lines) + "\r\n").encode()


def audio_of(data: bytes):  # type: ignore[no-untyped-def]
    return parse_sdp(data).media[0]


# -- a=crypto ---------------------------------------------------------------------------------


def test_parse_crypto_lines() -> None:
    key = parse_crypto(f"1 AES_CM_128_HMAC_SHA1_80 inline:{PEER_KEY}|2^20")
    assert isinstance(key, SdesKey)
    assert (key.tag, key.suite.name, key.master_key, key.master_salt) == (
        1, "AES_CM_128_HMAC_SHA1_80", bytes(range(16)), bytes(range(16, 30)),
    )  # fmt: skip
    assert format_crypto(key) == f"1 AES_CM_128_HMAC_SHA1_80 inline:{PEER_KEY}"
    assert PEER_KEY not in repr(key)  # a key never reaches a log through a repr
    unpadded = parse_crypto(f"3 AES_256_CM_HMAC_SHA1_32 inline:{PEER_KEY_256.rstrip('=')} WSH=64")
    assert isinstance(unpadded, SdesKey) and unpadded.material == bytes(range(46))


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("1 AES_CM_128_HMAC_SHA1_80", "needs a tag, a suite and a key"),
        ("x AES_CM_128_HMAC_SHA1_80 inline:AAAA", "tag 'x' is not a number"),
        ("1 F8_128_HMAC_SHA1_80 inline:AAAA", "not one we speak"),
        (f"1 AES_CM_128_HMAC_SHA1_80 inline:{PEER_KEY}|2^20|1:4", "an MKI is not supported"),
        (f"1 AES_CM_128_HMAC_SHA1_80 inline:{PEER_KEY};inline:{PEER_KEY}", "more than one key"),
        (f"1 AES_CM_128_HMAC_SHA1_80 inline:{PEER_KEY} UNENCRYPTED_SRTP", "UNENCRYPTED_SRTP"),
        (f"1 AES_CM_128_HMAC_SHA1_80 inline:{PEER_KEY} KDR=24", "KDR=24"),
        ("1 AES_CM_128_HMAC_SHA1_80 inline:@@@@", "not base64"),
        ("1 AES_CM_128_HMAC_SHA1_80 inline:AAAA", "must be 30 octets, got 3"),
        (f"1 AES_CM_128_HMAC_SHA1_80 uri:{PEER_KEY}", "not inline"),
    ],
)
def test_unusable_crypto_lines(value: str, reason: str) -> None:
    result = parse_crypto(value)
    assert isinstance(result, str) and reason in result


# -- our offers -------------------------------------------------------------------------------


def test_off_offers_rtp_in_clear() -> None:
    audio = audio_of(negotiation("off").offer())
    assert audio.proto == "RTP/AVP" and audio.attribute_values("crypto") == []


@pytest.mark.parametrize(("mode", "proto"), [("optional", "RTP/AVP"), ("mandatory", "RTP/SAVP")])
def test_offers_with_keys(mode: str, proto: str) -> None:
    oa = negotiation(mode)
    audio = audio_of(oa.offer())
    assert audio.proto == proto
    lines = [parse_crypto(v) for v in audio.attribute_values("crypto")]
    assert [(k.tag, k.suite.name) for k in lines] == [  # type: ignore[union-attr]
        (1, "AES_CM_128_HMAC_SHA1_80"), (2, "AES_CM_128_HMAC_SHA1_32"),
    ]  # fmt: skip
    assert lines[0].material != lines[1].material  # type: ignore[union-attr]
    assert oa.offer() == oa.offer()  # the same keys for the dialog: no new version


@pytest.mark.parametrize("mode", ["optional", "mandatory"])
def test_answer_with_keys_takes_srtp(mode: str) -> None:
    oa = negotiation(mode)
    ours = parse_crypto(audio_of(oa.offer()).attribute_values("crypto")[1])
    answer = sdp("RTP/SAVP", f"a=crypto:2 AES_CM_128_HMAC_SHA1_32 inline:{PEER_KEY}")
    media = oa.receive_answer(answer)
    assert media.srtp is not None
    assert media.srtp.local == ours and media.srtp.remote.material == bytes(range(30))
    assert media.srtp.suite.name == "AES_CM_128_HMAC_SHA1_32"
    assert PEER_KEY not in repr(media)


def test_optional_falls_back_to_rtp_when_the_answer_has_no_keys() -> None:
    oa = negotiation("optional")
    oa.offer()
    assert oa.receive_answer(sdp("RTP/AVP")).srtp is None


def test_mandatory_refuses_an_answer_without_keys() -> None:
    oa = negotiation("mandatory")
    oa.offer()
    with pytest.raises(SrtpRefused, match="SRTP refused: the answer has no a=crypto line"):
        oa.receive_answer(sdp("RTP/AVP"))


@pytest.mark.parametrize(
    "line",
    [
        f"a=crypto:9 AES_CM_128_HMAC_SHA1_80 inline:{PEER_KEY}",  # a tag we did not offer
        f"a=crypto:1 AES_CM_128_HMAC_SHA1_32 inline:{PEER_KEY}",  # tag 1 was _80
        "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:AAAA",
    ],
)
def test_an_answer_must_pick_an_offered_crypto_line(line: str) -> None:
    oa = negotiation("optional")
    oa.offer()
    with pytest.raises(SrtpRefused):
        oa.receive_answer(sdp("RTP/AVP", line))


def test_off_refuses_a_secure_answer_and_ignores_unoffered_keys() -> None:
    oa = negotiation("off")
    oa.offer()
    with pytest.raises(NotAcceptable, match="we offered RTP in clear"):
        oa.receive_answer(sdp("RTP/SAVP", f"a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{PEER_KEY}"))
    oa.offer()
    media = oa.receive_answer(
        sdp("RTP/AVP", f"a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{PEER_KEY}")
    )
    assert media.srtp is None


# -- their offers -----------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["optional", "mandatory"])
def test_a_savp_offer_is_answered_with_our_key(mode: str) -> None:
    oa = negotiation(mode)
    offer = sdp(
        "RTP/SAVP",
        "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:AAAA|1:4",  # an MKI: skipped
        f"a=crypto:2 AES_256_CM_HMAC_SHA1_80 inline:{PEER_KEY_256}",
        f"a=crypto:3 AES_CM_128_HMAC_SHA1_80 inline:{PEER_KEY}",
    )
    answer, media = oa.answer(offer)
    audio = audio_of(answer)
    assert audio.proto == "RTP/SAVP"
    (line,) = audio.attribute_values("crypto")
    ours = parse_crypto(line)
    assert isinstance(ours, SdesKey)
    assert (ours.tag, ours.suite) == (2, SUITES["AES_256_CM_HMAC_SHA1_80"])
    assert ours.material == b"\x01" * 46
    assert media is not None and media.srtp is not None
    assert media.srtp.local == ours and media.srtp.remote.material == bytes(range(46))


def test_optional_answers_keys_offered_on_rtp_avp() -> None:
    answer, media = negotiation("optional").answer(
        sdp("RTP/AVP", f"a=crypto:5 AES_CM_128_HMAC_SHA1_80 inline:{PEER_KEY}")
    )
    assert audio_of(answer).proto == "RTP/AVP"
    assert audio_of(answer).attribute_values("crypto")[0].startswith("5 AES_CM_128_HMAC_SHA1_80")
    assert media is not None and media.srtp is not None


def test_off_answers_in_clear_and_refuses_savp() -> None:
    answer, media = negotiation("off").answer(
        sdp("RTP/AVP", f"a=crypto:5 AES_CM_128_HMAC_SHA1_80 inline:{PEER_KEY}")
    )
    assert audio_of(answer).attribute_values("crypto") == [] and media is not None
    assert media.srtp is None
    with pytest.raises(NotAcceptable, match="SRTP, which is off"):
        negotiation("off").answer(
            sdp("RTP/SAVP", f"a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{PEER_KEY}")
        )


def test_mandatory_refuses_an_offer_in_clear() -> None:
    with pytest.raises(NotAcceptable, match="SRTP refused: RTP/AVP with no a=crypto line"):
        negotiation("mandatory").answer(sdp("RTP/AVP"))


def test_a_savp_offer_without_sdes_is_refused() -> None:
    with pytest.raises(NotAcceptable, match="DTLS-SRTP is not supported"):
        negotiation("optional").answer(sdp("RTP/SAVP", "a=fingerprint:sha-256 00:11"))


def test_once_srtp_ran_a_reoffer_in_clear_is_refused() -> None:
    oa = negotiation("optional")
    _, media = oa.answer(sdp("RTP/AVP", f"a=crypto:5 AES_CM_128_HMAC_SHA1_80 inline:{PEER_KEY}"))
    assert media is not None and media.srtp is not None
    with pytest.raises(NotAcceptable, match="SRTP refused"):
        oa.answer(sdp("RTP/AVP"))
    _, again = oa.answer(sdp("RTP/AVP", f"a=crypto:5 AES_CM_128_HMAC_SHA1_80 inline:{PEER_KEY}"))
    assert again is not None and again.srtp == media.srtp  # the same keys: the stream goes on


def test_srtp_needs_a_key_source() -> None:
    with pytest.raises(ValueError, match="key_source"):
        OfferAnswer(LocalMedia("192.0.2.50", 40000, srtp="optional"), 7)
    with pytest.raises(ValueError, match="srtp must be one of"):
        LocalMedia("192.0.2.50", 40000, srtp="yes")
