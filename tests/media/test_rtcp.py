"""Tests for intercom.media.rtcp: SR, RR, SDES, BYE, compounds, NTP time (RFC 3550 §6).

The hand-built vectors follow the layouts of RFC 3550 §6.4.1 (SR), §6.4.2 (RR), §6.5 (SDES) and
§6.6 (BYE) field by field. The baresip vectors in tests/vectors/rtp/ were captured from baresip
1.0.0 in a PCMU call over loopback:

* baresip_sr_sdes.rtcp: its periodic compound, SR with one report block about our stream
  (we sent from sequence 1000 with SSRC 0x11223344), then SDES CNAME;
* baresip_bye_sdes.rtcp: the compound it sent when its call failed, BYE "Adjo" *before* SDES;
* baresip_app_pingpong.rtcp: the APP "PING"/"PONG" keepalive it sends first.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from intercom.media.rtcp import (
    NTP_UNIX_OFFSET,
    Bye,
    ReceiverReport,
    ReportBlock,
    RtcpError,
    SdesChunk,
    SenderReport,
    SourceDescription,
    build_bye,
    build_compound,
    build_receiver_report,
    build_sdes,
    build_sender_report,
    ntp_from_unix,
    ntp_middle,
    parse_rtcp,
    round_trip_time,
    rtcp_interval,
)

VECTORS = Path(__file__).parent.parent / "vectors" / "rtp"

BLOCK = ReportBlock(ssrc=0x0A0B0C0D, fraction_lost=0x40, packets_lost=-2,
                    highest_sequence=0x0001000A, jitter=80, lsr=0x12345678,
                    dlsr=0x00018000)  # fmt: skip
SR_BYTES = bytes.fromhex(
    "81c8000c"  # V=2 P=0 RC=1, PT=200, length 12 words (+1)
    "01020304"  # SSRC of sender
    "e9a1b2c380000000"  # NTP timestamp
    "00001f40"  # RTP timestamp
    "00000032"  # sender's packet count
    "00001f40"  # sender's octet count
    "0a0b0c0d"  # report block: SSRC of source
    "40fffffe"  # fraction lost 64/256, cumulative lost -2 (24-bit two's complement)
    "0001000a"  # extended highest sequence number: 1 cycle, seq 10
    "00000050"  # interarrival jitter
    "12345678"  # LSR
    "00018000"  # DLSR: 1.5 s
)
SR = SenderReport(ssrc=0x01020304, ntp_timestamp=0xE9A1B2C380000000, rtp_timestamp=8000,
                  packet_count=50, octet_count=8000, reports=(BLOCK,))  # fmt: skip
RR_BYTES = bytes.fromhex(
    "81c90007"  # RC=1, PT=201, length 7
    "01020304"  # SSRC of packet sender
    "0a0b0c0d" "00000003" "0000ffff" "0000000a" "00000000" "00000000"
)  # fmt: skip
RR = ReceiverReport(0x01020304, (ReportBlock(0x0A0B0C0D, 0, 3, 0xFFFF, 10, 0, 0),))
SDES_BYTES = bytes.fromhex("81ca0004 01020304 0106" + b"door@x".hex() + "00000000")
BYE_BYTES = bytes.fromhex("81cb0003 01020304 05" + b"leave".hex() + "0000")


# --- known answers ---------------------------------------------------------------------------


def test_sender_report_encodes_to_the_rfc_layout():
    assert SR.encode() == SR_BYTES


def test_sender_report_parses_from_the_rfc_layout():
    assert parse_rtcp(SR_BYTES) == [SR]


def test_receiver_report_vector_both_ways():
    assert RR.encode() == RR_BYTES
    assert parse_rtcp(RR_BYTES) == [RR]


def test_receiver_report_without_blocks():
    data = bytes.fromhex("80c9000101020304")
    assert build_receiver_report(0x01020304) == data
    assert parse_rtcp(data) == [ReceiverReport(0x01020304, ())]


def test_sdes_cname_vector_both_ways():
    assert build_sdes(0x01020304, "door@x") == SDES_BYTES
    assert parse_rtcp(SDES_BYTES) == [SourceDescription((SdesChunk(0x01020304, "door@x"),))]


@pytest.mark.parametrize("length", [0, 1, 2, 3, 4, 5])
def test_sdes_always_ends_with_a_null_and_word_alignment(length):
    data = build_sdes(7, "x" * length)
    assert len(data) % 4 == 0
    assert data[8 + 2 + length] == 0  # the terminating null item
    assert parse_rtcp(data)[0] == SourceDescription((SdesChunk(7, "x" * length),))


def test_sdes_parse_skips_other_items_and_reads_several_chunks():
    data = bytes.fromhex(
        "82ca0007"
        "01020304 0203" + b"Bob".hex() + "0104" + b"a@b.".hex() + "00"  # NAME, CNAME, end
        "05060708 0702" + b"hi".hex() + "00 000000"  # NOTE only, end, pad to 32 bits
    )
    assert parse_rtcp(data) == [
        SourceDescription((SdesChunk(0x01020304, "a@b."), SdesChunk(0x05060708, None)))
    ]


def test_bye_with_reason_vector_both_ways():
    assert build_bye([0x01020304], "leave") == BYE_BYTES
    assert parse_rtcp(BYE_BYTES) == [Bye((0x01020304,), "leave")]


def test_bye_without_reason():
    data = bytes.fromhex("81cb000101020304")
    assert build_bye([0x01020304]) == data
    assert parse_rtcp(data) == [Bye((0x01020304,), None)]


def test_bye_with_several_sources():
    bye = Bye((1, 2, 3), "x" * 7)
    data = bye.encode()
    assert data[0] & 0x1F == 3
    assert len(data) == 4 + 12 + 8
    assert parse_rtcp(data) == [bye]


def test_negative_and_huge_cumulative_loss_are_clamped_to_24_bits():
    low = ReportBlock(1, 0, -(1 << 30), 0, 0, 0, 0).encode()
    high = ReportBlock(1, 0, 1 << 30, 0, 0, 0, 0).encode()
    assert low[4:8] == bytes.fromhex("00800000")
    assert high[4:8] == bytes.fromhex("007fffff")


def test_sender_report_counts_wrap_mod_2_32():
    data = SenderReport(1, 0, 0, (1 << 32) + 5, (1 << 33) + 7).encode()
    parsed = parse_rtcp(data)[0]
    assert isinstance(parsed, SenderReport)
    assert (parsed.packet_count, parsed.octet_count) == (5, 7)


def test_build_sender_report_with_ntp_from_unix_time():
    data = build_sender_report(0x01020304, ntp_from_unix(1.5), 8000, 50, 8000, [BLOCK])
    expected = SenderReport(0x01020304, (NTP_UNIX_OFFSET + 1) << 32 | 0x80000000, 8000, 50,
                            8000, (BLOCK,))  # fmt: skip
    assert data == expected.encode()
    assert data[8:16] == bytes.fromhex("83aa7e8180000000")


# --- captured from baresip -------------------------------------------------------------------


def test_baresip_sender_report_with_sdes():
    data = (VECTORS / "baresip_sr_sdes.rtcp").read_bytes()
    sr, sdes = parse_rtcp(data)
    assert sr == SenderReport(
        ssrc=0x7B4AE4F7,
        ntp_timestamp=0xEEB0B299D7A40D90,
        rtp_timestamp=0x00016345,
        packet_count=251,
        octet_count=40160,
        reports=(ReportBlock(0x11223344, 0, 0, 1077, 361, 0, 0),),
    )
    assert sdes == SourceDescription((SdesChunk(0x7B4AE4F7, "sip:door@127.0.0.1"),))
    assert build_compound(sr.encode(), sdes.encode()) == data


def test_baresip_bye_before_sdes():
    data = (VECTORS / "baresip_bye_sdes.rtcp").read_bytes()
    assert parse_rtcp(data) == [
        Bye((0xA357C937,), "Adjo"),
        SourceDescription((SdesChunk(0xA357C937, "sip:door@127.0.0.1"),)),
    ]
    assert build_bye([0xA357C937], "Adjo") == data[:16]


def test_baresip_app_packet_is_skipped():
    data = (VECTORS / "baresip_app_pingpong.rtcp").read_bytes()
    assert data[1] == 204
    assert parse_rtcp(data) == []


def test_unknown_packet_between_known_ones_is_skipped():
    app = bytes.fromhex("80cc0002 01020304") + b"NAME"
    data = RR_BYTES + app + SDES_BYTES
    assert parse_rtcp(data) == parse_rtcp(RR_BYTES) + parse_rtcp(SDES_BYTES)


# --- padding ---------------------------------------------------------------------------------


def test_padding_on_the_last_packet_is_removed():
    padded_bye = bytes.fromhex("a1cb0002 01020304 00000004")
    assert parse_rtcp(RR_BYTES + padded_bye) == [RR, Bye((0x01020304,), None)]


def test_padding_does_not_hide_a_reason():
    padded = bytes.fromhex("a1cb0003 01020304 01610000 00000004")
    assert parse_rtcp(padded) == [Bye((0x01020304,), "a")]


# --- rejections ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty RTCP datagram"),
        (bytes.fromhex("80c9"), "RTCP packet at offset 0 is shorter than its 4-byte header"),
        (RR_BYTES + b"\x80", "RTCP packet at offset 32 is shorter than its 4-byte header"),
        (bytes.fromhex("40c9000101020304"), "RTCP version 1 is not 2 (packet at offset 0)"),
        (RR_BYTES + bytes.fromhex("c0c9000101020304"),
         "RTCP version 3 is not 2 (packet at offset 32)"),
        (bytes.fromhex("80c9000201020304"),
         "RTCP packet type 201 at offset 0: length field says 12 bytes, only 8 left"),
        (bytes.fromhex("a0c9000101020300"),
         "RTCP packet type 201: padding count 0 does not fit in its 4-byte body"),
        (bytes.fromhex("a0c9000101020309"),
         "RTCP packet type 201: padding count 9 does not fit in its 4-byte body"),
        (bytes.fromhex("a0c9000000000000")[:4],
         "RTCP packet type 201: padding count 0 does not fit in its 0-byte body"),
        (bytes.fromhex("81c8000601020304") + bytes(20),
         "RTCP SR with 1 report blocks needs 48 bytes of body, got 24"),
        (bytes.fromhex("80c80002") + bytes(8),
         "RTCP SR body of 8 bytes is shorter than the 24-byte sender info"),
        (bytes.fromhex("80c90000"), "RTCP RR body of 0 bytes has no room for the reporter SSRC"),
        (bytes.fromhex("82c9000101020304"),
         "RTCP RR with 2 report blocks needs 52 bytes of body, got 4"),
        (bytes.fromhex("81ca0000"), "RTCP SDES chunk 1 of 1 is missing its SSRC"),
        (bytes.fromhex("81ca0002 01020304 0105ab00"),  # CNAME of 5 octets, 2 left
         "RTCP SDES item type 1 in chunk 1 is truncated"),
        (bytes.fromhex("81ca0002 01020304 0102abcd"),  # the item fills the chunk, no null
         "RTCP SDES chunk 1 is not terminated by a null item"),
        (bytes.fromhex("82ca0002 01020304 00000000"),
         "RTCP SDES chunk 2 of 2 is missing its SSRC"),
        (bytes.fromhex("82cb000101020304"), "RTCP BYE with 2 sources needs 8 bytes of body, got 4"),
        (bytes.fromhex("81cb0002 01020304 08616263"),
         "RTCP BYE reason of 8 bytes runs past the packet end"),
    ],
)  # fmt: skip
def test_parse_rejects(data, message):
    with pytest.raises(RtcpError) as info:
        parse_rtcp(data)
    assert str(info.value) == message


def test_rtcp_error_is_a_value_error():
    assert issubclass(RtcpError, ValueError)


@given(st.binary(max_size=80))
def test_parse_arbitrary_bytes_raises_only_rtcp_error(data):
    with contextlib.suppress(RtcpError):
        parse_rtcp(data)


@given(st.lists(st.sampled_from([SR_BYTES, RR_BYTES, SDES_BYTES, BYE_BYTES]), min_size=1,
                max_size=4), st.data())  # fmt: skip
def test_parse_damaged_compounds_raises_only_rtcp_error(parts, data):
    packet = bytearray(b"".join(parts))
    index = data.draw(st.integers(0, len(packet) - 1))
    packet[index] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(packet)))
    with contextlib.suppress(RtcpError):
        parse_rtcp(bytes(packet[:cut]))


# --- encoding checks -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("packet", "message"),
    [
        (ReportBlock(1 << 32, 0, 0, 0, 0, 0, 0),
         "RTCP report block SSRC 4294967296 is outside 0..4294967295"),
        (ReportBlock(1, 256, 0, 0, 0, 0, 0), "RTCP fraction lost 256 is outside 0..255"),
        (ReportBlock(1, 0, 0, 0, -1, 0, 0), "RTCP jitter -1 is outside 0..4294967295"),
        (SenderReport(1, 1 << 64, 0, 0, 0),
         "RTCP NTP timestamp 18446744073709551616 is outside 0..18446744073709551615"),
        (ReceiverReport(1, (BLOCK,) * 32), "32 report blocks: at most 31 fit in one packet"),
        (Bye(tuple(range(32))), "BYE with 32 sources: at most 31 fit"),
        (Bye((1,), "é" * 128), "BYE reason of 256 bytes: at most 255 fit (RFC 3550 §6.5)"),
        (SourceDescription((SdesChunk(1, "x" * 256),)),
         "CNAME of 256 bytes: at most 255 fit (RFC 3550 §6.5)"),
    ],
)  # fmt: skip
def test_encode_rejects_out_of_range_fields(packet, message):
    with pytest.raises(ValueError) as info:
        packet.encode()
    assert str(info.value) == message


report_blocks = st.builds(
    ReportBlock,
    ssrc=st.integers(0, 2**32 - 1),
    fraction_lost=st.integers(0, 255),
    packets_lost=st.integers(-0x800000, 0x7FFFFF),
    highest_sequence=st.integers(0, 2**32 - 1),
    jitter=st.integers(0, 2**32 - 1),
    lsr=st.integers(0, 2**32 - 1),
    dlsr=st.integers(0, 2**32 - 1),
)
packets = st.one_of(
    st.builds(SenderReport, st.integers(0, 2**32 - 1), st.integers(0, 2**64 - 1),
              st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1),
              st.lists(report_blocks, max_size=3).map(tuple)),
    st.builds(ReceiverReport, st.integers(0, 2**32 - 1),
              st.lists(report_blocks, max_size=3).map(tuple)),
    st.builds(SourceDescription, st.lists(
        st.builds(SdesChunk, st.integers(0, 2**32 - 1),
                  st.none() | st.text(max_size=40)), max_size=3).map(tuple)),
    st.builds(Bye, st.lists(st.integers(0, 2**32 - 1), max_size=3).map(tuple),
              st.none() | st.text(max_size=40)),
)  # fmt: skip


@given(st.lists(packets, min_size=1, max_size=4))
def test_compound_round_trip(items):
    data = b"".join(item.encode() for item in items)
    assert len(data) % 4 == 0
    assert parse_rtcp(data) == items


# --- compounds -------------------------------------------------------------------------------


def test_build_compound_concatenates_report_sdes_bye():
    data = build_compound(RR_BYTES, SDES_BYTES, BYE_BYTES)
    assert data == RR_BYTES + SDES_BYTES + BYE_BYTES
    assert [type(p) for p in parse_rtcp(data)] == [ReceiverReport, SourceDescription, Bye]


@pytest.mark.parametrize(
    ("parts", "message"),
    [
        ((), "an RTCP compound packet needs at least one packet"),
        ((RR_BYTES, b""), "an RTCP compound packet cannot hold a part shorter than 4 bytes"),
        ((SDES_BYTES, RR_BYTES), "an RTCP compound packet starts with an SR or RR, not type 202"),
        ((SR_BYTES, BYE_BYTES, SDES_BYTES),
         "BYE must be the last packet of an RTCP compound packet"),
    ],
)  # fmt: skip
def test_build_compound_enforces_rfc_order(parts, message):
    with pytest.raises(ValueError) as info:
        build_compound(*parts)
    assert str(info.value) == message


# --- time ------------------------------------------------------------------------------------


def test_ntp_from_unix_known_answers():
    assert ntp_from_unix(0.0) == NTP_UNIX_OFFSET << 32
    assert ntp_from_unix(1.25) == (NTP_UNIX_OFFSET + 1) << 32 | 0x40000000
    # 2004-01-10 13:37:04.5 UTC: 2^30 UNIX seconds, NTP seconds 2^30 + 2208988800
    assert ntp_from_unix(1073741824.5) == 0xC3AA7E80_80000000


def test_ntp_from_unix_matches_the_epoch_offset_exactly():
    t = 1_700_000_000.75
    assert ntp_from_unix(t) >> 32 == 1_700_000_000 + 2_208_988_800
    assert ntp_from_unix(t) & 0xFFFFFFFF == 0xC0000000


def test_ntp_from_unix_wraps_into_era_1():
    era_end = (1 << 32) - NTP_UNIX_OFFSET  # 2036-02-07 06:28:16 UTC
    assert ntp_from_unix(float(era_end)) == 0
    assert ntp_from_unix(era_end + 1.5) == 1 << 32 | 0x80000000


def test_ntp_middle():
    assert ntp_middle(0xE9A1B2C380000000) == 0xB2C38000
    assert ntp_middle(0x1234_5678_9ABC_DEF0) == 0x5678_9ABC


def test_round_trip_time_rfc_example():
    # RFC 3550 §6.4.1 figure 2: A = 0xb710:8000, LSR = 0xb705:2000, DLSR = 0x0005:4000 -> 6.125 s
    block = ReportBlock(1, 0, 0, 0, 0, lsr=0xB7052000, dlsr=0x00054000)
    assert round_trip_time(block, 0xB7108000) == 6.125


def test_round_trip_time_without_sender_report_or_negative():
    assert round_trip_time(ReportBlock(1, 0, 0, 0, 0, 0, 0), 0xB7108000) is None
    block = ReportBlock(1, 0, 0, 0, 0, lsr=0xB7052000, dlsr=0x00100000)
    assert round_trip_time(block, 0xB7108000) is None


def test_round_trip_time_across_middle_wrap():
    block = ReportBlock(1, 0, 0, 0, 0, lsr=0xFFFF8000, dlsr=0x00008000)
    assert round_trip_time(block, 0x00008000) == 0.5


@pytest.mark.parametrize(
    ("factor", "base", "expected"),
    [(0.0, 5.0, 2.5), (0.5, 5.0, 5.0), (0.75, 5.0, 6.25), (0.25, 1.0, 0.75)],
)
def test_rtcp_interval(factor, base, expected):
    assert rtcp_interval(factor, base) == expected


def test_rtcp_interval_default_base_and_upper_bound():
    assert rtcp_interval(0.2) == 3.5
    assert 7.49 < rtcp_interval(0.9999) < 7.5


@pytest.mark.parametrize("factor", [-0.1, 1.0, 2.0])
def test_rtcp_interval_rejects_factor_outside_unit_interval(factor):
    with pytest.raises(ValueError, match=r"RTCP random factor .* is outside \[0, 1\)"):
        rtcp_interval(factor)
