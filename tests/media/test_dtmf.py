"""DTMF: RFC 4733 payloads, sender and receiver sequences with loss and reordering, SIP INFO."""

from __future__ import annotations

import logging

import pytest

from intercom.media.dtmf import (
    DIGIT_FOR_EVENT,
    EVENT_FOR_DIGIT,
    DtmfDigit,
    DtmfReceiver,
    DtmfSender,
    encode_event,
    parse_event,
    parse_info_dtmf,
)

# ---- payloads (RFC 4733 §2.3) --------------------------------------------------------------


def test_event_codes():
    assert EVENT_FOR_DIGIT == {
        "0": 0, "1": 1, "2": 2, "3": 3, "4": 4, "5": 5, "6": 6, "7": 7, "8": 8, "9": 9,
        "*": 10, "#": 11, "A": 12, "B": 13, "C": 14, "D": 15,
    }  # fmt: skip
    assert all(EVENT_FOR_DIGIT[DIGIT_FOR_EVENT[code]] == code for code in range(16))


def test_encode_event_known_bytes():
    assert encode_event(5, True, 10, 1280) == b"\x05\x8a\x05\x00"
    assert encode_event(11, False, 63, 160) == b"\x0b\x3f\x00\xa0"
    assert encode_event(0, False, 0, 0xFFFF) == b"\x00\x00\xff\xff"


def test_parse_event_known_bytes():
    assert parse_event(b"\x05\x8a\x05\x00") == (5, True, 10, 1280)
    assert parse_event(b"\x0b\x7f\x00\xa0") == (11, False, 63, 160)  # R bit (0x40) ignored
    assert parse_event(b"\x01\x00\x00\x10extra") == (1, False, 0, 16)


def test_parse_event_rejects_short_payload():
    with pytest.raises(ValueError, match="telephone-event payload has 3 bytes, needs 4"):
        parse_event(b"\x05\x8a\x05")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((256, False, 10, 0), "code 256 is not in 0..255"),
        ((1, False, 64, 0), "volume 64 is not in 0..63"),
        ((1, False, 10, 65536), "duration 65536 is not in 0..65535"),
        ((1, False, 10, -1), "duration -1 is not in 0..65535"),
    ],
)
def test_encode_event_rejects_out_of_range(args, message):
    with pytest.raises(ValueError, match=message):
        encode_event(*args)


# ---- sender (RFC 4733 §2.5.1) --------------------------------------------------------------


def test_sender_default_digit():
    packets = DtmfSender().packets("5")
    assert [marker for _, marker in packets] == [True] + [False] * 9
    assert [parse_event(payload) for payload, _ in packets] == [
        (5, False, 10, ticks) for ticks in range(160, 1280, 160)
    ] + [(5, True, 10, 1280)] * 3


def test_sender_duration_not_a_multiple_of_the_packet_interval():
    packets = DtmfSender().packets("#", duration_ms=250, volume=20)
    durations = [parse_event(payload)[3] for payload, _ in packets]
    assert durations == [*range(160, 2000, 160), 2000, 2000, 2000]
    assert all(parse_event(payload)[:3:2] == (11, 20) for payload, _ in packets)


def test_sender_shorter_than_one_packet_sends_only_end_packets():
    packets = DtmfSender().packets("1", duration_ms=10)
    assert packets == [(b"\x01\x8a\x00\x50", True)] + [(b"\x01\x8a\x00\x50", False)] * 2


def test_sender_wideband_clock_and_lower_case_letters():
    packets = DtmfSender(clock_rate=16000, frame_ticks=320).packets("a", duration_ms=100)
    assert [parse_event(payload) for payload, _ in packets] == [
        (12, False, 10, 320), (12, False, 10, 640), (12, False, 10, 960), (12, False, 10, 1280),
        (12, True, 10, 1600), (12, True, 10, 1600), (12, True, 10, 1600),
    ]  # fmt: skip


@pytest.mark.parametrize("digit", ["E", "", "55", " ", "x"])
def test_sender_rejects_non_digits(digit):
    with pytest.raises(ValueError, match="is not a DTMF digit"):
        DtmfSender().packets(digit)


@pytest.mark.parametrize("duration_ms", [0, -20, 8200])
def test_sender_rejects_durations_one_event_cannot_carry(duration_ms):
    with pytest.raises(ValueError, match=f"duration {duration_ms} ms does not fit"):
        DtmfSender().packets("1", duration_ms=duration_ms)


def test_bad_clock_parameters_are_rejected():
    with pytest.raises(ValueError, match="clock 8000 / interval 0"):
        DtmfSender(8000, 0)
    with pytest.raises(ValueError, match="clock rate 0 is not positive"):
        DtmfReceiver(0)


# ---- receiver ------------------------------------------------------------------------------


def payloads(digit: str, duration_ms: int = 160) -> list[bytes]:
    return [payload for payload, _ in DtmfSender().packets(digit, duration_ms)]


def feed_all(receiver: DtmfReceiver, timestamp: int, items: list[bytes]) -> list[DtmfDigit]:
    reported = [receiver.feed(timestamp, payload) for payload in items]
    return [digit for digit in reported if digit is not None]


def test_digit_reported_once_at_its_first_end_packet():
    receiver = DtmfReceiver()
    packets = payloads("7", 160)
    results = [receiver.feed(1000, payload) for payload in packets]
    assert results[:7] == [None] * 7
    assert results[7] == DtmfDigit("7", 160, "rtp")
    assert results[8:] == [None, None]


def test_duplicated_end_packets_and_late_updates_report_nothing_more():
    receiver = DtmfReceiver()
    packets = payloads("3")
    assert feed_all(receiver, 5000, packets) == [DtmfDigit("3", 160, "rtp")]
    assert feed_all(receiver, 5000, packets[-3:] * 2 + packets[:2]) == []


def test_reordered_start_and_update_packets():
    receiver = DtmfReceiver()
    packets = payloads("9", 200)
    updates = packets[:-3]
    shuffled = [updates[i] for i in (3, 0, 5, 1, 8, 2, 4, 7, 6)]
    assert len(shuffled) == len(updates)
    assert feed_all(receiver, 77, shuffled) == []
    assert feed_all(receiver, 77, packets[-3:]) == [DtmfDigit("9", 200, "rtp")]


def test_reordered_updates_with_lost_ends_report_the_longest_duration():
    receiver = DtmfReceiver()
    updates = payloads("2", 160)[:7]  # 160 .. 1120 ticks
    assert feed_all(receiver, 300, [updates[i] for i in (0, 6, 2, 5, 1)]) == []
    assert receiver.flush() == DtmfDigit("2", 140, "rtp")


def test_end_packet_before_the_updates_still_reports_the_full_duration():
    receiver = DtmfReceiver()
    packets = payloads("0", 120)
    assert receiver.feed(10, packets[-1]) == DtmfDigit("0", 120, "rtp")
    assert feed_all(receiver, 10, packets) == []


def test_lost_end_packets_are_reported_when_the_next_event_starts():
    receiver = DtmfReceiver()
    first, second = payloads("4", 160), payloads("8", 100)
    assert feed_all(receiver, 1000, first[:5]) == []  # updates up to 800 ticks, then loss
    assert receiver.feed(3000, second[0]) == DtmfDigit("4", 100, "rtp")
    assert feed_all(receiver, 3000, second[1:]) == [DtmfDigit("8", 100, "rtp")]
    assert feed_all(receiver, 1000, first[5:]) == []  # stragglers of the reported event


def test_a_lost_end_is_logged_without_its_key(caplog):
    receiver = DtmfReceiver()
    with caplog.at_level(logging.DEBUG, logger="intercom.media.dtmf"):
        feed_all(receiver, 1000, payloads("7", 160)[:3])
        assert receiver.feed(3000, payloads("9", 100)[0]) == DtmfDigit("7", 60, "rtp")
    assert "lost its end packets" in caplog.text and "7" not in caplog.text


def test_new_event_that_starts_with_its_end_packet_after_a_lost_end():
    receiver = DtmfReceiver()
    first, second = payloads("1", 160), payloads("2", 160)
    assert feed_all(receiver, 0, first[:3]) == []
    assert receiver.feed(4000, second[-1]) == DtmfDigit("1", 60, "rtp")
    assert receiver.feed(4000, second[-1]) == DtmfDigit("2", 160, "rtp")  # redundant copy
    assert receiver.feed(4000, second[-1]) is None


def test_same_digit_twice_with_different_timestamps():
    receiver = DtmfReceiver()
    packets = payloads("5")
    assert feed_all(receiver, 8000, packets) == [DtmfDigit("5", 160, "rtp")]
    assert feed_all(receiver, 12000, packets) == [DtmfDigit("5", 160, "rtp")]


def test_same_digit_twice_with_lost_ends():
    receiver = DtmfReceiver()
    packets = payloads("5")
    assert feed_all(receiver, 8000, packets[:7]) == []
    assert feed_all(receiver, 12000, packets[:7]) == [DtmfDigit("5", 140, "rtp")]
    assert receiver.flush() == DtmfDigit("5", 140, "rtp")
    assert receiver.flush() is None


def test_unknown_events_are_ignored():
    receiver = DtmfReceiver()
    packets = payloads("6")
    assert feed_all(receiver, 500, packets[:3]) == []
    assert receiver.feed(900, encode_event(16, True, 10, 800)) is None  # flash, not a digit
    assert receiver.feed(900, encode_event(70, False, 10, 800)) is None
    assert feed_all(receiver, 500, packets[3:]) == [DtmfDigit("6", 160, "rtp")]


def test_flush_reports_an_event_whose_end_never_came():
    receiver = DtmfReceiver()
    assert receiver.flush() is None
    assert feed_all(receiver, 42, payloads("#")[:2]) == []
    assert receiver.flush() == DtmfDigit("#", 40, "rtp")
    assert feed_all(receiver, 42, payloads("#")) == []  # that event is finished


def test_duration_uses_the_event_clock():
    receiver = DtmfReceiver(clock_rate=16000)
    packets = [p for p, _ in DtmfSender(16000, 320).packets("D", 250)]
    assert feed_all(receiver, 0, packets) == [DtmfDigit("D", 250, "rtp")]
    assert DtmfReceiver().feed(0, encode_event(1, True, 10, 1000)) == DtmfDigit("1", 125, "rtp")


def test_receiver_rejects_short_payload():
    with pytest.raises(ValueError, match="needs 4"):
        DtmfReceiver().feed(0, b"\x01")


# ---- SIP INFO ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content_type", "body", "expected"),
    [
        ("application/dtmf-relay", b"Signal=5\r\nDuration=160\r\n", DtmfDigit("5", 160, "info")),
        ("Application/DTMF-Relay; charset=utf-8", b"signal = #\nDURATION= 100", ("#", 100)),
        ("application/dtmf-relay", b"Signal=*\r\nDuration=250\r\n", ("*", 250)),
        ("application/dtmf-relay", b"Signal=10\r\nDuration=90\r\n", ("*", 90)),
        ("application/dtmf-relay", b"Signal=11\r\n", ("#", 250)),
        ("application/dtmf-relay", b"Signal=a\r\nDuration=60", ("A", 60)),
        ("application/dtmf-relay", b"Signal=15\r\n", ("D", 250)),
        ("application/dtmf-relay", b"Duration=200\r\nSignal=0\r\nVolume=10\r\n", ("0", 200)),
        ("application/dtmf-relay", b"\r\n  Signal=  9  \r\n\r\n", ("9", 250)),
        ("application/dtmf", b"5", ("5", 250)),
        ("application/dtmf", b"#\r\n", ("#", 250)),
        ("APPLICATION/DTMF", b" 11 ", ("#", 250)),
        ("application/dtmf", b"c", ("C", 250)),
    ],
)
def test_info_bodies(content_type, body, expected):
    if isinstance(expected, tuple):
        expected = DtmfDigit(expected[0], expected[1], "info")
    assert parse_info_dtmf(content_type, body) == expected


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("application/dtmf-relay", b"Signal=X\r\nDuration=160\r\n"),
        ("application/dtmf-relay", b"Signal=16\r\n"),
        ("application/dtmf-relay", b"Signal=\r\n"),
        ("application/dtmf-relay", b"Duration=160\r\n"),
        ("application/dtmf-relay", b"Signal=5\r\nDuration=abc\r\n"),
        ("application/dtmf-relay", b"Signal=5\r\nDuration=-5\r\n"),
        ("application/dtmf-relay", "Signal=5\r\nDuration=\u00b2\r\n".encode()),
        ("application/dtmf-relay", b"Signal=5\r\nDuration=" + b"9" * 5000),
        ("application/dtmf-relay", b"Signal=55\r\n"),
        ("application/dtmf-relay", b"\xff\xfeS\x00"),
        ("application/dtmf-relay", b""),
        ("application/dtmf", b"hello"),
        ("application/dtmf", b""),
        ("application/dtmf", "\u0665".encode()),  # an Arabic-Indic five is not a key
    ],
)
def test_malformed_info_bodies_are_dropped(content_type, body, caplog):
    with caplog.at_level(logging.DEBUG, logger="intercom.media.dtmf"):
        assert parse_info_dtmf(content_type, body) is None
    assert caplog.records and caplog.records[0].getMessage().startswith("x INFO")
    assert "Signal=" not in caplog.text and "hello" not in caplog.text  # bodies stay out


@pytest.mark.parametrize("content_type", ["application/sdp", "text/plain", "", "application"])
def test_other_content_types_are_not_dtmf(content_type, caplog):
    with caplog.at_level(logging.DEBUG, logger="intercom.media.dtmf"):
        assert parse_info_dtmf(content_type, b"Signal=5\r\n") is None
    assert not caplog.records
