"""MediaStream, the sans-IO RTP session of one call, driven with exact times and bytes.

Two streams are wired back to back: the door sends to the phone (``transfer``). At tick ``n``
(t = n * 20 ms) the door builds its packet, which arrives at ``t + transit``; at every tick the
phone is handed what has arrived by then, then plays out one frame. With a 5 ms transit and the
jitter buffer's 40 ms minimum delay, frame n plays at tick n + 3.
"""

from __future__ import annotations

import ipaddress
import random
import socket
from collections.abc import Callable
from dataclasses import replace

import numpy as np
import pytest

from intercom.media.dtmf import DtmfDigit, encode_event, parse_event
from intercom.media.g711 import ulaw_decode, ulaw_encode
from intercom.media.offer_answer import NegotiatedMedia
from intercom.media.pcm import Pcm
from intercom.media.rtcp import (
    Bye,
    ReceiverReport,
    SdesChunk,
    SenderReport,
    SourceDescription,
    build_receiver_report,
    ntp_from_unix,
    ntp_middle,
    parse_rtcp,
    rtcp_interval,
)
from intercom.media.rtp import RTP_HEADER, RtpPacket, parse_rtp
from intercom.media.stream import MediaStream, source_forms
from tests.pcm_arrays import pcm, samples

FRAME = 0.02
DOOR = ("192.0.2.10", 40000)
PHONE = ("198.51.100.20", 50000)
OTHER = ("203.0.113.5", 6000)
PLAY_DELAY = 3  # ticks from sending a frame to playing it (5 ms transit + 40 ms buffer)


def media(codec: str = "PCMU", remote: tuple[str, int] = PHONE, *, rtcp_port: int | None = None,
          dtmf_pt: int | None = 101, dtmf_rate: int = 8000, direction: str = "sendrecv",
          payload_type: int | None = None) -> NegotiatedMedia:  # fmt: skip
    return NegotiatedMedia(
        codec=codec,
        payload_type={"PCMU": 0, "PCMA": 8, "G722": 9}[codec] if payload_type is None
        else payload_type,
        remote_address=remote[0],
        remote_port=remote[1],
        remote_rtcp_port=remote[1] + 1 if rtcp_port is None else rtcp_port,
        dtmf_payload_type=dtmf_pt,
        dtmf_clock_rate=dtmf_rate,
        direction=direction,
        ptime=20,
        receive_payload_type={"PCMU": 0, "PCMA": 8, "G722": 9}[codec] if payload_type is None
        else payload_type,
        receive_dtmf_payload_type=dtmf_pt,
    )  # fmt: skip


def stream(seed: int, m: NegotiatedMedia | None = None, timeout: float = 30.0,
           peer_host: str | None = None) -> MediaStream:  # fmt: skip
    return MediaStream(m or media(), rng=random.Random(seed), cname=f"s{seed}@test",
                       media_timeout=timeout, peer_host=peer_host)  # fmt: skip


def initial(seed: int) -> tuple[int, int, int, float]:
    """SSRC, first sequence, first timestamp and first RTCP interval a stream of ``seed`` draws."""
    rng = random.Random(seed)
    ssrc, seq, ts = rng.getrandbits(32), rng.getrandbits(16), rng.getrandbits(32)
    return ssrc, seq, ts, rtcp_interval(rng.random())


def tone(rate: int, frames: int, hz: float = 440.0, level: float = 8000.0) -> list[Pcm]:
    size = rate // 50
    t = np.arange(frames * size) / rate
    signal = (level * np.sin(2 * np.pi * hz * t)).astype(np.int16)
    return [pcm(signal[i * size : (i + 1) * size]) for i in range(frames)]


def transfer(door: MediaStream, phone: MediaStream, frames: list[Pcm], *,
             transit: Callable[[int], float] = lambda n: 0.005,
             drop: Callable[[int], bool] = lambda n: False, t0: float = 0.0,
             source: tuple[str, int] = DOOR, extra: int = 10,
             ) -> tuple[list[Pcm | None], list[DtmfDigit], list[RtpPacket]]:  # fmt: skip
    """Run len(frames) + extra ticks: (phone's playout per tick, digits it reported, packets)."""
    flight: list[tuple[float, bytes]] = []
    played: list[Pcm | None] = []
    digits: list[DtmfDigit] = []
    sent: list[RtpPacket] = []
    for n in range(len(frames) + extra):
        t = t0 + n * FRAME
        if n < len(frames) and (data := door.send_frame(frames[n])) is not None:
            sent.append(parse_rtp(data))
            if not drop(n):
                flight.append((t + transit(n), data))
        flight.sort()
        while flight and flight[0][0] <= t + 1e-9:
            at, data = flight.pop(0)
            if (digit := phone.receive_rtp(data, source, at)) is not None:
                digits.append(digit)
        played.append(phone.playout(t))
    return played, digits, sent


def pair(codec: str = "PCMU", dtmf_pt: int = 101, dtmf_rate: int = 8000,
         ) -> tuple[MediaStream, MediaStream]:  # fmt: skip
    door = stream(1, media(codec, PHONE, dtmf_pt=dtmf_pt, dtmf_rate=dtmf_rate))
    phone = stream(2, media(codec, DOOR, dtmf_pt=dtmf_pt, dtmf_rate=dtmf_rate))
    return door, phone


# --- sending ---------------------------------------------------------------------------------


@pytest.mark.parametrize("codec, pt, size", [("PCMU", 0, 160), ("PCMA", 8, 160), ("G722", 9, 160)])
def test_header_fields(codec: str, pt: int, size: int) -> None:
    door = stream(7, media(codec))
    ssrc, seq, ts, _ = initial(7)
    packets = [parse_rtp(door.send_frame(f) or b"") for f in tone(door.sample_rate, 5)]
    assert [p.sequence for p in packets] == [(seq + i) % 65536 for i in range(5)]
    assert [p.timestamp for p in packets] == [(ts + 160 * i) % 2**32 for i in range(5)]
    assert [p.marker for p in packets] == [True, False, False, False, False]
    assert {p.ssrc for p in packets} == {ssrc}
    assert {p.payload_type for p in packets} == {pt}
    assert {len(p.payload) for p in packets} == {size}
    assert door.stats().packets_sent == 5


def test_payload_type_is_the_remote_one() -> None:
    door = stream(7, media("PCMU", payload_type=96))
    assert parse_rtp(door.send_frame(tone(8000, 1)[0]) or b"").payload_type == 96


def test_skip_frames_moves_the_timestamp() -> None:
    door = stream(3)
    frame = tone(8000, 1)[0]
    first = parse_rtp(door.send_frame(frame) or b"")
    door.skip_frames(4)
    second = parse_rtp(door.send_frame(frame) or b"")
    assert second.timestamp == (first.timestamp + 5 * 160) % 2**32
    assert second.sequence == (first.sequence + 1) % 65536
    assert door.stats().skipped == 4
    assert door.stats().packets_sent == 2


# --- audio end to end ------------------------------------------------------------------------


def test_pcmu_end_to_end_is_the_g711_round_trip() -> None:
    door, phone = pair("PCMU")
    rng = np.random.default_rng(5)
    frames = [pcm(rng.integers(-20000, 20000, 160)) for _ in range(50)]
    played, _, _ = transfer(door, phone, frames)
    for n in range(PLAY_DELAY):  # prefetch: concealed silence
        assert played[n] == bytes(320)
    for n, frame in enumerate(frames):
        out = played[n + PLAY_DELAY]
        assert out is not None and type(out) is bytes
        assert out == ulaw_decode(ulaw_encode(frame))
    assert samples(ulaw_decode(ulaw_encode(pcm([0, 1000, -32768])))).tolist() == [
        0, 988, -32124]  # fmt: skip
    stats = phone.stats()
    assert (stats.packets_received, stats.packets_lost, stats.dropped) == (50, 0, 0)
    assert stats.concealed == len(played) - 50  # prefetch and the ticks after the last frame
    assert stats.jitter_ms == 0.0


def test_g722_end_to_end_correlates() -> None:
    door, phone = pair("G722")
    assert door.sample_rate == 16000
    frames = tone(16000, 50, hz=1000.0)
    played, _, sent = transfer(door, phone, frames)
    assert [p.timestamp - sent[0].timestamp for p in sent[:3]] == [0, 160, 320]
    heard = samples(b"".join(p for p in played[PLAY_DELAY : PLAY_DELAY + 50] if p is not None))
    assert len(heard) == 50 * 320
    spoken = samples(b"".join(frames)).astype(float)
    heard_f = heard.astype(float)
    best = max(
        np.corrcoef(spoken[1000:15000], heard_f[1000 + lag : 15000 + lag])[0, 1]
        for lag in range(0, 40)
    )
    assert best > 0.95


# --- direction -------------------------------------------------------------------------------


@pytest.mark.parametrize("direction, sends, receives", [
    ("sendrecv", True, True), ("sendonly", True, False), ("recvonly", False, True),
    ("inactive", False, False),
])  # fmt: skip
def test_direction(direction: str, sends: bool, receives: bool) -> None:
    s = stream(4, media(direction=direction))
    assert (s.send_frame(tone(8000, 1)[0]) is not None) == sends
    assert (s.playout(0.0) is not None) == receives


def test_timestamp_advances_while_not_sending() -> None:
    s = stream(4, media(direction="recvonly"))
    _, _, ts, _ = initial(4)
    frame = tone(8000, 1)[0]
    for _ in range(6):
        assert s.send_frame(frame) is None
    s.update(media(direction="sendrecv"))
    packet = parse_rtp(s.send_frame(frame) or b"")
    assert packet.timestamp == (ts + 6 * 160) % 2**32
    assert s.stats().packets_sent == 1


# --- DTMF ------------------------------------------------------------------------------------


def test_dtmf_send_and_receive() -> None:
    door, phone = pair("PCMU")
    door.send_dtmf("1#")
    frames = tone(8000, 30)
    _, digits, sent = transfer(door, phone, frames)
    t0 = sent[0].timestamp
    assert [p.sequence for p in sent] == [(sent[0].sequence + i) % 65536 for i in range(30)]
    for k, (event, start) in enumerate([(1, t0), (11, t0 + 1600)]):
        packets = sent[10 * k : 10 * k + 10]
        assert {p.payload_type for p in packets} == {101}
        assert {p.timestamp for p in packets} == {start}
        assert [p.marker for p in packets] == [True] + [False] * 9
        fields = [parse_event(p.payload) for p in packets]
        assert [f[0] for f in fields] == [event] * 10
        assert [f[1] for f in fields] == [False] * 7 + [True] * 3
        assert [f[3] for f in fields] == [160 * i for i in range(1, 8)] + [1280] * 3
    audio = sent[20:]
    assert {p.payload_type for p in audio} == {0}
    assert [p.timestamp for p in audio] == [t0 + 160 * (20 + i) for i in range(10)]
    assert audio[0].payload == ulaw_encode(frames[20])
    assert digits == [DtmfDigit("1", 160, "rtp"), DtmfDigit("#", 160, "rtp")]
    assert phone.stats().packets_received == 30
    assert phone.stats().packets_lost == 0


def test_events_go_out_with_the_peers_number_and_are_heard_by_ours() -> None:
    """RFC 3264 §5.1: our offer said 101, the answer 96: we send 96, the peer sends us 101."""
    door = stream(1, replace(media(dtmf_pt=96), receive_dtmf_payload_type=101))
    door.send_dtmf("4")
    assert {parse_rtp(door.send_frame(f) or b"").payload_type for f in tone(8000, 10)} == {96}
    for pt, digits in ((101, [DtmfDigit("4", 160, "rtp")]), (96, [])):
        phone = stream(2, media(remote=DOOR, dtmf_pt=pt))
        phone.send_dtmf("4")
        packets = [phone.send_frame(f) or b"" for f in tone(8000, 10)]
        door = stream(1, replace(media(dtmf_pt=96), receive_dtmf_payload_type=101))
        heard = [door.receive_rtp(p, PHONE, n * FRAME) for n, p in enumerate(packets)]
        assert [d for d in heard if d is not None] == digits
        assert door.stats().dropped == (10 if pt == 96 else 0)


def test_dtmf_16k_durations() -> None:
    door, phone = pair("G722", dtmf_pt=102, dtmf_rate=16000)
    door.send_dtmf("5")
    _, digits, sent = transfer(door, phone, tone(16000, 12))
    durations = [parse_event(p.payload)[3] for p in sent[:10]]
    assert durations == [320 * i for i in range(1, 8)] + [2560] * 3
    assert {p.payload_type for p in sent[:10]} == {102}
    assert [p.payload_type for p in sent[10:]] == [9, 9]
    assert digits == [DtmfDigit("5", 160, "rtp")]


def test_dtmf_rejects_non_digit_and_queues_nothing() -> None:
    door = stream(1)
    with pytest.raises(ValueError, match="'x' is not a DTMF digit"):
        door.send_dtmf("12x")
    assert parse_rtp(door.send_frame(tone(8000, 1)[0]) or b"").payload_type == 0


def test_malformed_dtmf_payload_is_dropped() -> None:
    phone = stream(2, media(remote=DOOR))
    bad = bytes.fromhex("80e5 0001 00000010 11111111 0102")  # telephone-event of 2 bytes
    assert phone.receive_rtp(bad, DOOR, 0.0) is None
    assert phone.stats().dropped == 1


# --- symmetric RTP ---------------------------------------------------------------------------


def rtp(seq: int, pt: int = 0, ssrc: int = 0x11111111, marker: bool = False,
        payload: bytes = bytes(160), timestamp: int | None = None) -> bytes:  # fmt: skip
    second = pt | (0x80 if marker else 0)
    ts = seq * 160 if timestamp is None else timestamp
    return bytes([0x80, second]) + seq.to_bytes(2) + ts.to_bytes(4) + ssrc.to_bytes(4) + payload


def test_latching_to_the_signalling_peer_behind_nat() -> None:
    sdp = ("192.0.2.99", 4000)  # what the phone wrote; its media comes from DOOR's IP
    s = stream(2, media(remote=sdp, rtcp_port=4444), peer_host=DOOR[0])
    assert s.rtp_destination == sdp
    assert s.rtcp_destination == ("192.0.2.99", 4444)
    s.receive_rtp(rtp(1, pt=96), DOOR, 0.0)  # unknown payload type: no latch
    assert s.rtp_destination == sdp
    s.receive_rtp(rtp(2), DOOR, 0.01)
    assert s.rtp_destination == DOOR
    assert s.rtcp_destination == (DOOR[0], 4444)
    s.receive_rtp(rtp(3), DOOR, 0.5)
    rr = build_receiver_report(0x11111111)
    s.receive_rtcp(rr, ("192.0.2.77", 9), 1.45)  # RTCP from another host: not taken
    assert s.rtcp_destination == (DOOR[0], 4444)
    s.receive_rtcp(rr, (DOOR[0], 33333), 1.45)
    assert s.rtcp_destination == (DOOR[0], 33333)
    stats = s.stats()
    assert (stats.packets_received, stats.dropped, stats.strangers) == (2, 1, 1)


# --- media belongs to the call's peer (RTP Bleed) --------------------------------------------

STRANGER = ("203.0.113.66", 16000)


def events(digit: int, seq: int, start: int, *, ssrc: int = 0x6666) -> list[bytes]:
    """A whole RFC 4733 event as a sender keys it: updates, then the end packet three times."""
    packets = []
    for n in range(1, 8):
        packets.append(rtp(seq + n - 1, 101, ssrc, n == 1, encode_event(digit, False, 10, 160 * n),
                           start))  # fmt: skip
    for n in range(3):
        packets.append(rtp(seq + 7 + n, 101, ssrc, False, encode_event(digit, True, 10, 1280),
                           start))  # fmt: skip
    return packets


def spray(s: MediaStream, source: tuple[str, int], t0: float, seconds: float,
          first_seq: int = 1000) -> list[DtmfDigit]:  # fmt: skip
    """PCMU and then the digits 1 2 3 as events from ``source``, a packet every 20 ms."""
    packets = [rtp(first_seq + n, ssrc=0x6666) for n in range(int(seconds / FRAME))]
    seq = first_seq + len(packets)
    for k, event in enumerate((1, 2, 3)):
        packets += events(event, seq + 10 * k, 999_000 + 2000 * k)
    digits = []
    for n, data in enumerate(packets):
        if (digit := s.receive_rtp(data, source, t0 + n * FRAME)) is not None:
            digits.append(digit)
    return digits


def test_a_stranger_before_the_peers_first_packet_is_not_heard_nor_answered() -> None:
    s = stream(2, media(remote=PHONE), peer_host="192.0.2.1")
    assert spray(s, STRANGER, 0.0, 2.0) == []
    assert s.rtp_destination == PHONE
    assert s.rtcp_destination == (PHONE[0], PHONE[1] + 1)
    stats = s.stats()
    assert (stats.packets_received, stats.dropped, stats.strangers) == (0, 0, 100 + 30)
    assert s.playout(2.0) is not None and s.playout(2.02) == bytes(320)
    s.receive_rtp(rtp(1), PHONE, 2.1)  # the peer's first packet still latches
    assert s.rtp_destination == PHONE and s.stats().packets_received == 1


@pytest.mark.parametrize("silence", [1.0, 10.0, 1000.0])
def test_a_stranger_after_the_peer_went_silent_is_not_heard(silence: float) -> None:
    s = stream(2, media(remote=PHONE), peer_host="192.0.2.1")
    for n in range(10):
        s.receive_rtp(rtp(n + 1), PHONE, n * FRAME)
    last = 9 * FRAME
    assert spray(s, STRANGER, last + silence, 1.0) == []
    assert s.rtp_destination == PHONE
    stats = s.stats()
    assert (stats.packets_received, stats.strangers) == (10, 50 + 30)
    s.receive_rtp(rtp(11), PHONE, last + silence + 2.0)  # the peer comes back
    assert s.rtp_destination == PHONE and s.stats().packets_received == 11


def test_a_strangers_events_never_make_a_digit_after_the_latch() -> None:
    s = stream(2, media(remote=PHONE))
    for n in range(10):
        s.receive_rtp(rtp(n + 1), PHONE, n * FRAME)
    heard = []
    for n, (theirs, ours) in enumerate(
        zip(events(7, 500, 70_000), events(5, 11, 1600, ssrc=0x11111111), strict=True)
    ):  # the stranger keys 7 while the phone keys 5, packet for packet
        t = 0.2 + n * FRAME
        heard += [d for d in (s.receive_rtp(theirs, STRANGER, t), s.receive_rtp(ours, PHONE, t))
                  if d is not None]  # fmt: skip
    assert heard == [DtmfDigit("5", 160, "rtp")]
    assert spray(s, STRANGER, 5.0, 0.0) == []  # and after the phone went quiet: none either
    assert s.stats().strangers == 10 + 30


def test_the_peers_events_before_any_audio_latch_and_count() -> None:
    s = stream(2, media(remote=PHONE))
    assert spray(s, STRANGER, 0.0, 0.0) == []
    digits = [s.receive_rtp(p, (PHONE[0], 50010), 1.0 + n * FRAME)
              for n, p in enumerate(events(9, 1, 800))]  # fmt: skip
    assert digits[-3:] == [DtmfDigit("9", 160, "rtp"), None, None]
    assert s.rtp_destination == (PHONE[0], 50010)


def test_rtcp_from_a_stranger_is_not_taken() -> None:
    door, phone = pair("PCMU")
    door.start(0.0)
    transfer(door, phone, tone(8000, 20))
    assert phone.rtp_destination == DOOR
    stranger_sr = door.rtcp_due(8.0, 1_700_000_003.5)
    assert stranger_sr is not None
    phone.receive_rtcp(stranger_sr, (STRANGER[0], DOOR[1] + 1), 8.5)
    phone.receive_rtcp(stranger_sr, (PHONE[0], DOOR[1] + 1), 8.5)  # the SDP's IP, not latched
    assert phone.rtcp_destination == (DOOR[0], DOOR[1] + 1)
    (block,) = parse_rtcp(phone.bye(10.0, 1_700_000_005.0))[0].reports  # type: ignore[union-attr]
    assert (block.lsr, block.dlsr) == (0, 0)  # no SR of the peer's was heard
    assert phone.stats().strangers == 2
    phone.receive_rtcp(stranger_sr, (DOOR[0], 7777), 9.0)  # the latched IP's RTCP: taken
    assert phone.rtcp_destination == (DOOR[0], 7777)


def test_rtcp_before_the_latch_only_from_an_allowed_ip() -> None:
    peer = stream(9, media(remote=DOOR))
    peer.send_frame(tone(8000, 1)[0])
    peer.start(0.0)
    sr = peer.rtcp_due(8.0, 1_700_000_003.5)
    assert sr is not None
    lsr = []
    for source in (STRANGER[0], "192.0.2.1"):
        s = stream(2, media(remote=PHONE), peer_host="192.0.2.1")
        s.receive_rtcp(sr, (source, 7), 1.0)
        assert s.rtcp_destination == (PHONE[0], PHONE[1] + 1)  # as before: no latch yet
        s.receive_rtp(rtp(1), PHONE, 1.5)
        (block,) = parse_rtcp(s.bye(2.0, 1e9))[0].reports  # type: ignore[union-attr]
        lsr.append((block.lsr, s.stats().strangers))
    assert lsr == [(0, 1), (ntp_middle(ntp_from_unix(1_700_000_003.5)), 0)]


def test_a_port_move_on_the_same_ip_waits_for_silence() -> None:
    s = stream(2, media(remote=PHONE))
    s.receive_rtp(rtp(1), PHONE, 0.0)
    rebound = (PHONE[0], 50002)
    s.receive_rtp(rtp(2, ssrc=0x2222), rebound, 0.5)  # the latched source spoke 0.5 s ago
    s.receive_rtp(rtp(2), PHONE, 0.75)
    s.receive_rtp(rtp(3, ssrc=0x2222), rebound, 1.74)
    assert s.rtp_destination == PHONE
    assert (s.stats().strangers, s.stats().packets_received) == (2, 2)
    s.receive_rtp(rtp(4, pt=96), rebound, 1.75)  # silent long enough, but not the payload
    assert s.rtp_destination == PHONE
    s.receive_rtp(rtp(5, ssrc=0x2222), rebound, 1.75)  # 1 s of silence: the NAT rebound
    assert s.rtp_destination == rebound
    assert s.rtcp_destination == (PHONE[0], PHONE[1] + 1)
    s.receive_rtp(rtp(6), PHONE, 2.0)  # the old port is the stranger now
    assert s.rtp_destination == rebound
    stats = s.stats()
    assert (stats.strangers, stats.dropped, stats.packets_received) == (3, 1, 3)


def test_another_ip_never_takes_the_latch() -> None:
    s = stream(2, media(remote=PHONE), peer_host="192.0.2.1")
    s.receive_rtp(rtp(1), PHONE, 0.0)
    for t in (0.5, 1.5, 60.0, 3600.0):
        s.receive_rtp(rtp(2), ("192.0.2.1", 5004), t)  # even an allowed IP: the latch is set
        s.receive_rtp(rtp(2), OTHER, t)
    assert s.rtp_destination == PHONE
    assert (s.stats().strangers, s.stats().packets_received) == (8, 1)


def test_an_update_to_a_new_address_moves_what_is_allowed() -> None:
    s = stream(2, media(remote=PHONE))
    s.receive_rtp(rtp(1), PHONE, 0.0)
    moved = ("192.0.2.50", 41000)
    s.update(media(remote=moved))  # a re-INVITE: the media now comes from elsewhere
    assert s.rtp_destination == moved
    s.receive_rtp(rtp(2), PHONE, 0.1)  # the old address is no longer the peer's
    assert s.rtp_destination == moved
    s.receive_rtp(rtp(3), (moved[0], 41234), 0.2)
    assert s.rtp_destination == (moved[0], 41234)
    s.receive_rtp(rtp(4), OTHER, 5.0)
    assert s.rtp_destination == (moved[0], 41234)
    assert (s.stats().strangers, s.stats().packets_received) == (2, 2)


def test_an_update_with_the_same_address_keeps_the_latch() -> None:
    s = stream(2, media(remote=PHONE), peer_host="192.0.2.1")
    s.receive_rtp(rtp(1), ("192.0.2.1", 7000), 0.0)
    s.update(media(remote=PHONE, direction="recvonly"))
    assert s.rtp_destination == ("192.0.2.1", 7000)
    s.receive_rtp(rtp(2), PHONE, 5.0)
    assert s.rtp_destination == ("192.0.2.1", 7000) and s.stats().strangers == 1


def test_the_signalling_peer_is_heard_when_the_sdp_names_a_private_address() -> None:
    private = ("10.1.2.3", 4000)  # a phone behind NAT, its media anchored at the server
    s = stream(2, media(remote=private), peer_host="198.51.100.7")
    assert spray(s, STRANGER, 0.0, 0.4) == []
    s.receive_rtp(rtp(1), ("198.51.100.7", 30000), 1.0)
    assert s.rtp_destination == ("198.51.100.7", 30000)
    assert s.rtcp_destination == ("198.51.100.7", 4001)
    assert s.stats().packets_received == 1


@pytest.mark.parametrize("sdp_ip, peer_host, source_ip", [
    ("2001:db8::20", None, "2001:db8::20"),
    ("2001:DB8:0:0::20", None, "2001:db8::20"),  # as the socket writes it
    ("192.0.2.10", None, "::ffff:192.0.2.10"),  # a dual-stack socket
    ("::ffff:192.0.2.10", None, "192.0.2.10"),
    ("10.0.0.1", "::ffff:198.51.100.7", "198.51.100.7"),
    ("10.0.0.1", "198.51.100.7", "::ffff:198.51.100.7"),
    ("10.0.0.1", "[2001:db8::7]", "2001:db8::7"),
    ("fe80::7", None, "fe80::7%eth0"),  # a link-local source carries our zone index
])  # fmt: skip
def test_ipv6_and_ipv4_mapped_forms(sdp_ip: str, peer_host: str | None, source_ip: str) -> None:
    s = stream(2, media(remote=(sdp_ip, 4000)), peer_host=peer_host)
    for stranger in ("2001:db8::66", "::ffff:203.0.113.66", "203.0.113.66", "fe80::66%eth0"):
        s.receive_rtp(rtp(1), (stranger, 4000), 0.0)
    assert s.stats().strangers == 4
    s.receive_rtp(rtp(2), (source_ip, 4002), 0.1)
    assert s.rtp_destination == (source_ip, 4002)
    assert s.stats().packets_received == 1


@pytest.mark.parametrize("host", [
    "192.0.2.10", "::ffff:192.0.2.10", "2001:db8::1", "2001:db8:0:1:1:1:1:1", "2001:0:0:1::1",
    "fe80::1:2", "::1", "2001:db8::a:b:c:d",
])  # fmt: skip
def test_source_forms_are_those_a_socket_reports(host: str) -> None:
    ip = ipaddress.ip_address(host)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip.version == 4:
        expected = {
            socket.inet_ntop(socket.AF_INET, ip.packed),
            socket.inet_ntop(socket.AF_INET6, bytes(10) + b"\xff\xff" + ip.packed),
        }
    else:
        expected = {socket.inet_ntop(socket.AF_INET6, ip.packed)}
    assert source_forms(host.upper()) == expected


def test_source_forms_leave_out_what_no_packet_comes_from() -> None:
    assert source_forms(None, "", "0.0.0.0", "::", "pbx.example", "1.2.3") == frozenset()


def test_a_strangers_stream_does_not_keep_a_dead_call_alive() -> None:
    s = stream(2, media(remote=PHONE), timeout=10.0, peer_host="192.0.2.1")
    s.start(0.0)
    for n in range(50):
        s.receive_rtp(rtp(n + 1), PHONE, n * FRAME)
    last = 49 * FRAME
    for n in range(1000):  # 20 s of a stranger's PCMU, and RTCP
        s.receive_rtp(rtp(2000 + n, ssrc=0x6666), STRANGER, last + 0.02 + n * FRAME)
        s.receive_rtcp(build_receiver_report(0x6666), STRANGER, last + n * FRAME)
    assert not s.timed_out(last + 9.99)
    assert s.timed_out(last + 10.0)
    assert s.stats().strangers == 2000


def test_rtcp_from_the_peer_keeps_a_call_on_hold_without_rtp_alive() -> None:
    """RFC 3550 §6.3.5, RFC 3264 §8.4: a peer on hold without music (or with VAD) sends no RTP
    but goes on with RTCP: that is liveness; a stranger's RTCP is not."""
    s = stream(2, media(remote=PHONE, direction="recvonly"), timeout=10.0)  # theirs: sendonly
    s.start(0.0)
    for t in range(5, 61, 5):  # a minute of the peer's RTCP only, every 5 s
        s.receive_rtcp(build_receiver_report(0x1234), (PHONE[0], PHONE[1] + 1), float(t))
        s.receive_rtcp(build_receiver_report(0x6666), (STRANGER[0], 7), t + 2.5)
        assert not s.timed_out(t + 4.99)
    assert not s.timed_out(69.99)
    assert s.timed_out(70.0)  # the stranger's RTCP went on: it does not count
    assert s.stats().strangers == 12


def test_packets_from_the_peer_that_are_not_media_do_not_feed_the_timeout() -> None:
    s = stream(2, media(remote=PHONE), timeout=10.0)
    s.start(0.0)
    s.receive_rtp(rtp(1), PHONE, 0.0)
    for n in range(100):
        s.receive_rtp(rtp(n, pt=96), PHONE, 1.0 + n * 0.1)  # not the negotiated payload
    assert s.timed_out(10.0)


def test_update_resets_latch_and_changes_codec() -> None:
    door, phone = pair("PCMU")
    transfer(door, phone, tone(8000, 20))
    assert phone.rtp_destination == DOOR
    phone.update(media("PCMU", DOOR, direction="recvonly"))  # same address: latch kept
    assert phone.rtp_destination == DOOR
    moved = ("192.0.2.50", 41000)
    phone.update(media("G722", moved))
    door.update(media("G722", PHONE))
    assert phone.rtp_destination == moved
    assert phone.rtcp_destination == (moved[0], 41001)
    assert (phone.sample_rate, door.sample_rate) == (16000, 16000)
    packet = parse_rtp(phone.send_frame(tone(16000, 1)[0]) or b"")
    assert (packet.payload_type, len(packet.payload)) == (9, 160)
    played, _, _ = transfer(door, phone, tone(16000, 20), t0=1.0, source=moved)
    assert phone.rtp_destination == moved
    assert {len(p) for p in played if p is not None} == {640}
    stats = phone.stats()
    assert (stats.codec, stats.packets_received, stats.packets_lost) == ("G722", 40, 0)
    assert stats.concealed == 10 + 10  # 30 ticks and 20 frames played, before and after
    assert door.stats().packets_sent == 40


# --- bad input -------------------------------------------------------------------------------


@pytest.mark.parametrize("data", [
    b"", b"\x80\x00\x00", bytes.fromhex("4000 0001 00000010 11111111"),  # short, version 1
    bytes.fromhex("a000 0001 00000010 11111111 00"),  # padding count 0
    bytes.fromhex("8f00 0001 00000010 11111111"),  # 15 CSRCs missing
    rtp(1, pt=96), rtp(1, pt=8),
])  # fmt: skip
def test_bad_rtp_is_dropped(data: bytes) -> None:
    s = stream(2, media(remote=DOOR))
    assert s.receive_rtp(data, DOOR, 0.0) is None
    assert (s.stats().dropped, s.stats().packets_received) == (1, 0)
    assert s.rtp_destination == DOOR and s.timed_out(29.0) is False


def _dressed(data: bytes) -> bytes:
    """The same packet with a CSRC, a header extension and padding (RFC 3550 §5.1, §5.3.1)."""
    packet = parse_rtp(data)
    first, second = 0x80 | 0x20 | 0x10 | 1, data[1]
    header = RTP_HEADER.pack(first, second, packet.sequence, packet.timestamp, packet.ssrc)
    extension = bytes.fromhex("bede 0001 12345678")
    return header + bytes.fromhex("0badcafe") + extension + packet.payload + b"\x00\x00\x03"


def test_a_packet_with_csrcs_an_extension_and_padding_plays_as_the_plain_one() -> None:
    """The plain header takes a shortcut past parse_rtp(); both ways give the same audio."""
    door = stream(1, media(remote=PHONE))
    plain, dressed = stream(2, media(remote=DOOR)), stream(3, media(remote=DOOR))
    played: list[tuple[Pcm | None, Pcm | None]] = []
    for n, frame in enumerate(tone(8000, 30) + [None] * 5):
        t = n * FRAME
        if frame is not None and (data := door.send_frame(frame)) is not None:
            plain.receive_rtp(data, DOOR, t + 0.005)
            dressed.receive_rtp(_dressed(data), DOOR, t + 0.005)
        played.append((plain.playout(t), dressed.playout(t)))
    assert all(np.array_equal(a, b) for a, b in played)
    assert plain.stats() == dressed.stats()
    assert plain.stats().packets_received == 30


def test_bad_rtcp_is_dropped() -> None:
    s = stream(2, media(remote=DOOR))
    s.receive_rtcp(b"\x80\xc8\x00\x10", DOOR, 0.0)
    s.receive_rtcp(b"", DOOR, 0.0)
    assert s.stats().dropped == 2


# --- statistics ------------------------------------------------------------------------------


def test_loss_and_concealment() -> None:
    door, phone = pair("PCMU")
    frames = tone(8000, 100)
    played, _, _ = transfer(door, phone, frames, drop=lambda n: n % 10 == 5)
    stats = phone.stats()
    assert (stats.packets_received, stats.packets_lost) == (90, 10)
    for n in range(100):
        out = played[n + PLAY_DELAY]
        assert out is not None
        expected = ulaw_decode(ulaw_encode(frames[n]))
        assert (out == expected) == (n % 10 != 5), n
    assert stats.concealed == len(played) - 90
    assert stats.jitter_ms == 0.0


def test_jitter_of_alternating_transit() -> None:
    door, phone = pair("PCMU")
    transfer(door, phone, tone(8000, 100), transit=lambda n: 0.005 + 0.01 * (n % 2))
    # |D| is 10 ms every packet: J = 10 ms * (1 - (15/16)^99) (RFC 3550 A.8)
    assert phone.stats().jitter_ms == pytest.approx(10 * (1 - (15 / 16) ** 99), abs=0.01)
    assert phone.stats().packets_lost == 0


def test_remote_ssrc_change_keeps_cumulative_figures() -> None:
    door, phone = pair("PCMU")
    transfer(door, phone, tone(8000, 50), drop=lambda n: n in (10, 20, 30))
    door2 = stream(9, media("PCMU", PHONE))
    transfer(door2, phone, tone(8000, 50), drop=lambda n: n in (5, 6), t0=2.0)
    stats = phone.stats()
    assert (stats.packets_received, stats.packets_lost) == (47 + 48, 5)


# --- RTCP ------------------------------------------------------------------------------------


def test_rtcp_schedule_and_receiver_report() -> None:
    s = stream(5, media(direction="recvonly"))
    ssrc, _, _, interval = initial(5)
    assert 2.5 <= interval < 7.5
    assert s.rtcp_due(100.0, 1e9) is None  # not started
    s.start(10.0)
    assert s.rtcp_due(10.0 + interval - 0.001, 1e9) is None
    report = s.rtcp_due(10.0 + interval, 1e9)
    assert report is not None
    assert parse_rtcp(report) == [
        ReceiverReport(ssrc, ()),
        SourceDescription((SdesChunk(ssrc, "s5@test"),)),
    ]
    assert s.rtcp_due(10.0 + interval + 2.49, 1e9) is None  # next one at least 2.5 s later


def test_sender_report_blocks_and_lsr() -> None:
    door, phone = pair("PCMU")
    door_ssrc, _, _, _ = initial(1)
    phone_ssrc, _, phone_ts, interval = initial(2)
    door.start(0.0)
    phone.start(0.0)
    for frame in tone(8000, 100):  # the phone talks too (its packets are not delivered)
        phone.send_frame(frame)
    transfer(door, phone, tone(8000, 100), drop=lambda n: n % 10 == 5)
    report = phone.rtcp_due(8.0, 1_700_000_000.25)
    assert report is not None and interval < 8.0
    sr, sdes = parse_rtcp(report)
    assert isinstance(sr, SenderReport) and isinstance(sdes, SourceDescription)
    assert (sr.ssrc, sr.packet_count, sr.octet_count) == (phone_ssrc, 100, 16000)
    assert sr.ntp_timestamp == ntp_from_unix(1_700_000_000.25)
    assert sr.rtp_timestamp == (phone_ts + 100 * 160) % 2**32
    (block,) = sr.reports
    assert (block.ssrc, block.packets_lost, block.fraction_lost) == (door_ssrc, 10, 25)
    assert (block.lsr, block.dlsr) == (0, 0)
    door_report = door.rtcp_due(8.0, 1_700_000_003.5)
    assert door_report is not None
    phone.receive_rtcp(door_report, (DOOR[0], DOOR[1] + 1), 8.5)
    assert phone.rtcp_destination == (DOOR[0], DOOR[1] + 1)
    later = phone.bye(10.0, 1_700_000_005.0)
    sr2, _, bye = parse_rtcp(later)
    assert isinstance(sr2, SenderReport) and bye == Bye((phone_ssrc,))
    (block2,) = sr2.reports
    assert block2.lsr == ntp_middle(ntp_from_unix(1_700_000_003.5))
    assert block2.dlsr == int(1.5 * 65536)
    assert (block2.packets_lost, block2.fraction_lost) == (10, 0)  # cumulative; none since
    assert phone.rtcp_due(1000.0, 1_700_001_000.0) is None


# --- media timeout ---------------------------------------------------------------------------


def test_media_timeout() -> None:
    door, phone = stream(1, media(remote=PHONE)), stream(2, media(remote=DOOR), timeout=10.0)
    phone.start(100.0)
    assert not phone.timed_out(109.99)
    assert phone.timed_out(110.0)  # nothing ever came
    transfer(door, phone, tone(8000, 50), t0=110.0)
    last = 110.0 + 49 * FRAME + 0.005
    assert not phone.timed_out(111.0)
    assert not phone.timed_out(last + 9.99)
    assert phone.timed_out(last + 10.001)
    phone.update(media(remote=DOOR, direction="sendonly"))  # we hold: no media expected
    assert not phone.timed_out(1000.0)
    phone.update(media(remote=DOOR, direction="inactive"))
    assert not phone.timed_out(2000.0)
    phone.update(media(remote=DOOR))  # resumed: the timeout counts from now on
    assert not phone.timed_out(3000.0)
    assert not phone.timed_out(3009.9)
    assert phone.timed_out(3010.0)


def test_media_timeout_looks_again_when_its_deadline_comes() -> None:
    """timed_out() answers most ticks with one compare against a deadline it worked out the
    last time it looked; packets that came since move the deadline on."""
    s = stream(2, media(remote=DOOR), timeout=10.0)
    s.start(0.0)
    assert not s.timed_out(1.0)  # nothing yet: the deadline is 10.0
    s.receive_rtp(rtp(1), DOOR, 6.0)
    assert not s.timed_out(9.99)
    assert not s.timed_out(10.0)  # looked again: the packet at 6.0 moved it to 16.0
    s.receive_rtcp(build_receiver_report(0x1234), (DOOR[0], DOOR[1] + 1), 12.0)
    assert not s.timed_out(21.99)
    assert s.timed_out(22.0)


def test_a_shorter_media_timeout_applies_at_once() -> None:
    s = stream(2, media(remote=DOOR), timeout=30.0)
    s.start(0.0)
    assert not s.timed_out(1.0)  # the deadline was 30.0
    s.media_timeout = 5.0
    assert s.timed_out(5.0)
    s.media_timeout = 0.0
    assert not s.timed_out(1e6)


def test_media_timeout_zero_disables() -> None:
    s = stream(2, timeout=0.0)
    s.start(0.0)
    assert not s.timed_out(1e6)


# --- re-INVITEs and DTMF ---------------------------------------------------------------------


def test_session_refresh_during_a_digit_reports_it_once() -> None:
    door, phone = pair("PCMU")
    door.send_dtmf("7")
    packets = [door.send_frame(f) or b"" for f in tone(8000, 10)]
    digits = [phone.receive_rtp(p, DOOR, n * FRAME) for n, p in enumerate(packets[:8])]
    assert digits[:7] == [None] * 7 and digits[7] == DtmfDigit("7", 160, "rtp")
    phone.update(media("PCMU", DOOR))  # same SDP again (RFC 4028 refresh)
    assert [phone.receive_rtp(p, DOOR, 0.2) for p in packets[8:]] == [None, None]


def test_update_changes_the_dtmf_clock() -> None:
    door = stream(1, media("G722"))
    door.update(media("G722", dtmf_pt=102, dtmf_rate=16000))
    door.send_dtmf("0")
    sent = [parse_rtp(door.send_frame(f) or b"") for f in tone(16000, 10)]
    assert [parse_event(p.payload)[3] for p in sent] == [320 * i for i in range(1, 8)] + [2560] * 3
    assert {p.payload_type for p in sent} == {102}


def test_dtmf_dropped_from_the_session_stops_the_digit() -> None:
    door = stream(1)
    door.send_dtmf("12")
    frames = tone(8000, 4)
    assert parse_rtp(door.send_frame(frames[0]) or b"").payload_type == 101
    door.update(media(dtmf_pt=None))
    rest = [parse_rtp(door.send_frame(f) or b"") for f in frames[1:]]
    assert [(p.payload_type, len(p.payload)) for p in rest] == [(0, 160)] * 3
    assert rest[0].payload == ulaw_encode(frames[1])
