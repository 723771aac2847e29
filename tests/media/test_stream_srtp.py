"""MediaStream with SRTP: protected both ways, RTCP too; strangers dropped before any crypto;
forged and replayed packets dropped and counted; a re-negotiation with the same keys keeps the
contexts."""

from __future__ import annotations

import random
from dataclasses import replace

from intercom.media.offer_answer import NegotiatedMedia
from intercom.media.sdes import SUITES, SdesKey, SrtpKeys
from intercom.media.stream import MediaStream
from tests.media.test_stream import DOOR, OTHER, PHONE, media
from tests.pcm_arrays import pcm

SUITE = SUITES["AES_CM_128_HMAC_SHA1_80"]
DOOR_KEY = SdesKey(1, SUITE, b"\x11" * 30)
PHONE_KEY = SdesKey(1, SUITE, b"\x22" * 30)
FRAME = pcm([3000, -3000] * 80)


def secure(remote: tuple[str, int], local: SdesKey, theirs: SdesKey) -> NegotiatedMedia:
    return replace(media(remote=remote), srtp=SrtpKeys(local, theirs))


def pair() -> tuple[MediaStream, MediaStream]:
    door = MediaStream(secure(PHONE, DOOR_KEY, PHONE_KEY), rng=random.Random(1), cname="d@t")
    phone = MediaStream(secure(DOOR, PHONE_KEY, DOOR_KEY), rng=random.Random(2), cname="p@t")
    return door, phone


def test_audio_goes_protected_and_arrives_in_clear() -> None:
    door, phone = pair()
    plain = MediaStream(media(), rng=random.Random(1), cname="d@t").send_frame(FRAME)
    assert plain is not None
    for tick in range(5):
        packet = door.send_frame(FRAME)
        assert packet is not None
        assert len(packet) == 12 + 160 + 10
        if tick == 0:  # the same frame, header and SSRC in clear: only the payload differs
            assert packet[:12] == plain[:12] and packet[12:172] != plain[12:]
        phone.receive_rtp(packet, DOOR, tick * 0.02)
    stats = phone.stats()
    assert stats.packets_received == 5 and stats.srtp_failures == 0
    assert stats.srtp == "AES_CM_128_HMAC_SHA1_80"


def test_a_stranger_is_dropped_before_any_crypto() -> None:
    door, phone = pair()
    packet = door.send_frame(FRAME)
    assert packet is not None
    phone.receive_rtp(packet, OTHER, 0.0)
    stats = phone.stats()
    assert (stats.strangers, stats.srtp_failures, stats.packets_received) == (1, 0, 0)


def test_forged_and_replayed_packets_are_dropped_and_do_not_latch() -> None:
    door, phone = pair()
    packet = door.send_frame(FRAME)
    assert packet is not None
    forged = packet[:20] + bytes([packet[20] ^ 1]) + packet[21:]
    phone.receive_rtp(forged, DOOR, 0.0)
    assert phone.rtp_destination == DOOR  # the SDP's address: no latch on a forged packet
    assert phone.stats().srtp_failures == 1
    clear_rtp = MediaStream(media(), rng=random.Random(1), cname="d@t").send_frame(FRAME)
    assert clear_rtp is not None
    phone.receive_rtp(clear_rtp, DOOR, 0.0)  # RTP in clear is not taken either
    phone.receive_rtp(packet, DOOR, 0.01)
    phone.receive_rtp(packet, DOOR, 0.02)  # a replay
    stats = phone.stats()
    assert (stats.packets_received, stats.srtp_failures) == (1, 3)


def test_rtcp_is_protected_both_ways() -> None:
    door, phone = pair()
    for tick in range(3):
        packet = door.send_frame(FRAME)
        assert packet is not None
        phone.receive_rtp(packet, DOOR, tick * 0.02)
    report = door.bye(1.0, 1_700_000_000.0)
    assert b"d@t" not in report  # the SDES CNAME is encrypted
    phone.receive_rtcp(report, (DOOR[0], DOOR[1] + 1), 1.0)
    assert phone.stats().srtp_failures == 0
    assert phone._last_sr_arrival == 1.0  # the SR inside was read


def test_same_keys_keep_the_contexts_new_keys_replace_them() -> None:
    door, phone = pair()
    first = door.send_frame(FRAME)
    assert first is not None
    phone.receive_rtp(first, DOOR, 0.0)
    phone.update(replace(phone.media, direction="sendrecv"))  # a session refresh
    phone.receive_rtp(first, DOOR, 0.02)  # still a replay: the window was kept
    assert phone.stats().srtp_failures == 1
    new_key = SdesKey(3, SUITE, b"\x33" * 30)
    phone.update(secure(DOOR, PHONE_KEY, new_key))
    other_door = MediaStream(secure(PHONE, new_key, PHONE_KEY), rng=random.Random(9), cname="x")
    packet = other_door.send_frame(FRAME)
    assert packet is not None
    phone.receive_rtp(packet, DOOR, 0.04)
    stats = phone.stats()
    assert stats.packets_received == 2 and stats.srtp_failures == 1
