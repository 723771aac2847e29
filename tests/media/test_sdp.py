"""Tests for intercom.media.sdp: parsing, encoding and rejecting session descriptions (RFC 4566).

The vectors in tests/vectors/sdp/ are described in tests/media/test_offer_answer.py.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from intercom.media.sdp import (
    MAX_SDP_BYTES,
    Attribute,
    Connection,
    MediaDescription,
    Origin,
    RtpMap,
    SdpError,
    SessionDescription,
    parse_sdp,
)

VECTORS = Path(__file__).parent.parent / "vectors" / "sdp"
ALL_VECTORS = sorted(p.name for p in VECTORS.glob("*.sdp"))
CRLF_VECTORS = [name for name in ALL_VECTORS if b"\r\n" in (VECTORS / name).read_bytes()]


def vector(name: str) -> bytes:
    return (VECTORS / name).read_bytes()


def sdp(*lines: str) -> bytes:
    return ("\r\n".join(lines) + "\r\n").encode()


MINIMAL = ("v=0", "o=- 1 1 IN IP4 192.0.2.1", "s=-", "c=IN IP4 192.0.2.1", "t=0 0")


# -- the vectors ------------------------------------------------------------------------------


def test_there_are_vectors_with_both_line_ends():
    assert len(ALL_VECTORS) >= 20
    assert "lf_only.sdp" in ALL_VECTORS
    assert "lf_only.sdp" not in CRLF_VECTORS
    assert b"\r" not in vector("lf_only.sdp")


@pytest.mark.parametrize("name", CRLF_VECTORS)
def test_vector_round_trips_byte_for_byte(name):
    data = vector(name)
    assert parse_sdp(data).encode() == data


def test_lf_only_vector_encodes_with_crlf():
    data = vector("lf_only.sdp")
    encoded = parse_sdp(data).encode()
    assert encoded == data.replace(b"\n", b"\r\n")
    assert parse_sdp(encoded) == parse_sdp(data)


def test_baresip_capture_known_values():
    description = parse_sdp(vector("baresip_offer.sdp"))
    assert description.origin == Origin("-", "3953329839", "1437086030", "IN", "IP4", "127.0.0.1")
    assert description.name == "-"
    assert description.connection == Connection("IP4", "127.0.0.1")
    assert description.times == ["0 0"]
    assert description.attribute("tool") == "baresip 1.0.0"
    assert len(description.media) == 1
    audio = description.media[0]
    assert (audio.media, audio.port, audio.proto) == ("audio", 8654, "RTP/AVP")
    assert audio.formats == ["0", "8", "9", "96", "101"]
    assert audio.connection is None
    maps = audio.rtpmaps()
    assert maps[96] == RtpMap(96, "opus", 48000, 2)
    assert maps[9] == RtpMap(9, "G722", 8000, None)
    assert audio.fmtp(96) == "stereo=1;sprop-stereo=1;maxaveragebitrate=28000"
    assert audio.fmtp(101) == "0-15"
    assert audio.fmtp(0) is None
    assert audio.attribute("ptime") == "20"
    assert audio.attribute("sendrecv") == ""
    assert audio.attribute("sendonly") is None
    assert audio.attribute_values("ssrc") == ["536324340 cname:sip:phone@127.0.0.1"]


def test_ipv6_capture_known_values():
    description = parse_sdp(vector("baresip_offer_ipv6.sdp"))
    assert description.origin.address_type == "IP6"
    assert description.connection == Connection("IP6", "::1")


def test_media_level_connection_and_bandwidth_stay_with_their_section():
    description = parse_sdp(vector("pjsip_media_level_c.sdp"))
    assert description.connection is None
    assert description.bandwidths == ["AS:117"]
    assert description.attribute("X-nat") == "0"
    audio = description.media[0]
    assert audio.connection == Connection("IP4", "192.168.99.105")
    assert audio.bandwidths == ["TIAS:96000"]
    assert audio.attribute("rtcp") == "4018 IN IP4 192.168.99.105"


def test_session_and_media_connection_both_kept():
    description = parse_sdp(vector("rtpengine_media_c_overrides.sdp"))
    assert description.connection == Connection("IP4", "10.20.30.40")
    assert description.media[0].connection == Connection("IP4", "203.0.113.80")


def test_video_section_attributes_do_not_leak_into_audio():
    description = parse_sdp(vector("linphone_offer_video.sdp"))
    audio, video = description.media
    assert video.media == "video" and video.port == 9078
    assert video.rtpmaps()[96].encoding == "VP8"
    assert audio.rtpmaps()[96].encoding == "opus"
    assert description.attribute("rtcp-xr") is not None
    assert audio.attribute("rtcp-xr") is None
    assert description.bandwidths == ["AS:8000"]


def test_static_payload_type_without_rtpmap_has_no_entry():
    audio = parse_sdp(vector("linphone_offer_video.sdp")).media[0]
    assert 0 not in audio.rtpmaps()
    assert audio.fmtp(18) == "annexb=yes"


# -- tolerance --------------------------------------------------------------------------------


def test_unknown_lines_and_attributes_are_kept_in_rfc_order():
    data = sdp(
        "v=0",
        "o=alice 2890844526 2890844527 IN IP4 192.0.2.5",
        "s=Seminar",
        "i=About SDP",
        "u=http://www.example.com/seminars/sdp.pdf",
        "e=j.doe@example.com (Jane Doe)",
        "c=IN IP4 192.0.2.5",
        "b=CT:128",
        "t=2873397496 2873404696",
        "r=7d 1h 0 25h",
        "z=2882844526 -1h",
        "a=x-unknown:42",
        "a=recvonly",
        "m=audio 49170 RTP/AVP 0",
        "i=main audio",
        "b=AS:64",
        "k=prompt",
        "y=custom line",
        "a=x-vendor-flag",
    )
    description = parse_sdp(data)
    assert description.information == "About SDP"
    assert description.other == [
        ("u", "http://www.example.com/seminars/sdp.pdf"),
        ("e", "j.doe@example.com (Jane Doe)"),
        ("r", "7d 1h 0 25h"),
        ("z", "2882844526 -1h"),
    ]
    assert description.attributes == [Attribute("x-unknown", "42"), Attribute("recvonly")]
    audio = description.media[0]
    assert audio.title == "main audio"
    assert audio.other == [("k", "prompt"), ("y", "custom line")]
    assert audio.attributes == [Attribute("x-vendor-flag")]
    assert description.encode() == data


def test_blank_lines_trailing_space_and_lf_are_tolerated():
    data = b"v=0\n\no=- 1 1 IN IP4 192.0.2.1 \r\ns=-\nc=IN IP4 192.0.2.1\r\nt=0 0\n" + (
        b"m=video 0 RTP/AVP 19 \n\n"
    )
    description = parse_sdp(data)
    assert description.origin.address == "192.0.2.1"
    assert description.media[0].formats == ["19"]
    assert description.encode() == sdp(*MINIMAL, "m=video 0 RTP/AVP 19")


def test_missing_session_name_and_time_get_defaults():
    description = parse_sdp(sdp("v=0", "o=- 1 1 IN IP4 192.0.2.1", "m=audio 4000 RTP/AVP 0"))
    assert description.name == "-"
    assert description.times == ["0 0"]
    assert description.encode().splitlines()[2:4] == [b"s=-", b"t=0 0"]


def test_empty_session_name_is_kept():
    description = parse_sdp(sdp("v=0", "o=- 1 1 IN IP4 192.0.2.1", "s=", "t=0 0"))
    assert description.name == ""


def test_media_without_formats_and_with_port_count():
    description = parse_sdp(sdp(*MINIMAL, "m=audio 0 RTP/AVP", "m=video 49170/2 RTP/AVP 31"))
    assert description.media[0].formats == []
    assert description.media[1].port == 49170
    assert description.media[1].port_count == 2
    assert b"m=video 49170/2 RTP/AVP 31\r\n" in description.encode()


def test_malformed_rtpmaps_are_skipped():
    description = parse_sdp(
        sdp(
            *MINIMAL,
            "m=audio 4000 RTP/AVP 0 96 97 98",
            "a=rtpmap:96 opus",
            "a=rtpmap:x PCMU/8000",
            "a=rtpmap:97 L16/fast",
            "a=rtpmap:98 L16/16000/2",
            "a=rtpmap:98 PCMA/8000",
        )
    )
    assert description.media[0].rtpmaps() == {98: RtpMap(98, "L16", 16000, 2)}


def test_any_octet_survives_a_round_trip():
    data = sdp(*MINIMAL).replace(b"s=-", b"s=T\xfcr \xff")
    description = parse_sdp(data)
    assert description.encode() == data


# -- rejection ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "must begin with a v= line"),
        (b"\r\n\r\n", "must begin with a v= line"),
        (b"<html><body>hello</body></html>", "line 1: expected '<type>=<value>'"),
        (sdp("o=- 1 1 IN IP4 192.0.2.1", "s=-", "t=0 0"), "must begin with a v= line"),
        (sdp("v=1", "o=- 1 1 IN IP4 192.0.2.1"), "unsupported SDP version"),
        (sdp("v=0", "s=-", "t=0 0", "m=audio 4000 RTP/AVP 0"), "no o= line"),
        (sdp("v=0", "o=- 1 1 IN IP4"), "o= needs 6 fields, got 5"),
        (sdp(*MINIMAL, "o=- 2 2 IN IP4 192.0.2.1"), "a second o= line"),
        (sdp(*MINIMAL, "v=0"), "a second v= line"),
        (sdp(*MINIMAL, "m=audio abc RTP/AVP 0"), "line 6: m= port must be a number"),
        (sdp(*MINIMAL, "m=audio -1 RTP/AVP 0"), "m= port must be a number"),
        (sdp(*MINIMAL, "m=audio 70000 RTP/AVP 0"), "m= port must be a number 0-65535"),
        (sdp(*MINIMAL, "m=audio 4000/0 RTP/AVP 0"), "port count must be a positive number"),
        (sdp(*MINIMAL, "m=audio 4000"), "m= needs media, port and transport"),
        (sdp(*MINIMAL[:3], "c=IN IP4", "t=0 0"), "line 4: c= needs 3 fields"),
        (sdp(*MINIMAL, "m=audio 4000 RTP/AVP 0", "c=192.0.2.1"), "c= needs 3 fields"),
        (sdp(*MINIMAL, "a=:value"), "a= without a name"),
        (sdp(*MINIMAL, "m=audio 4000 RTP/AVP 0", "rtpmap 0 PCMU"), "line 7: expected"),
        (sdp(*MINIMAL, " =x"), "expected '<type>=<value>'"),
    ],
)
def test_garbage_is_rejected_with_a_precise_message(data, message):
    with pytest.raises(SdpError, match=message):
        parse_sdp(data)


def test_sdp_error_is_a_value_error():
    assert issubclass(SdpError, ValueError)


def test_oversized_description_is_rejected():
    data = sdp(*MINIMAL) + b"a=x:" + b"y" * MAX_SDP_BYTES + b"\r\n"
    with pytest.raises(SdpError, match="exceeds"):
        parse_sdp(data)


@given(st.binary(max_size=400))
def test_random_bytes_raise_only_sdp_error(data):
    with contextlib.suppress(SdpError):
        parse_sdp(data)


_LINE = st.one_of(
    st.sampled_from(
        [
            "v=0",
            "o=- 1 1 IN IP4 192.0.2.1",
            "s=-",
            "c=IN IP4 192.0.2.1",
            "t=0 0",
            "m=audio 4000 RTP/AVP 0 101",
            "a=rtpmap:101 telephone-event/8000",
            "a=fmtp:101 0-16",
            "a=rtcp:4001",
            "a=sendonly",
        ]
    ),
    st.text(alphabet="vosctmabi=:/ 0123456789IPN-", max_size=30),
)


@given(st.lists(_LINE, max_size=15), st.sampled_from(["\r\n", "\n"]))
def test_sdp_shaped_text_parses_or_raises_sdp_error_and_round_trips(lines, end):
    data = end.join(["v=0", *lines]).encode()
    try:
        description = parse_sdp(data)
    except SdpError:
        return
    for media in description.media:
        media.rtpmaps()
    assert parse_sdp(description.encode()) == description


# -- encoding ---------------------------------------------------------------------------------


def test_encode_builds_minimal_description_in_order():
    description = SessionDescription(
        origin=Origin("-", "42", "7", "IN", "IP6", "2001:db8::5"),
        connection=Connection("IP6", "2001:db8::5"),
        media=[
            MediaDescription(
                "audio",
                5004,
                "RTP/AVP",
                ["0"],
                attributes=[Attribute("rtpmap", "0 PCMU/8000"), Attribute("inactive")],
            )
        ],
    )
    expected = sdp(
        "v=0",
        "o=- 42 7 IN IP6 2001:db8::5",
        "s=-",
        "c=IN IP6 2001:db8::5",
        "t=0 0",
        "m=audio 5004 RTP/AVP 0",
        "a=rtpmap:0 PCMU/8000",
        "a=inactive",
    )
    assert description.encode() == expected
    assert description.encode() == expected  # deterministic
    assert parse_sdp(expected) == description
