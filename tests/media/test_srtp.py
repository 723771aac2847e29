"""SRTP/SRTCP (RFC 3711): the RFC's vectors, libsrtp's known answers, round trips, tampering,
replays and the rollover counter."""

from __future__ import annotations

import struct

import pytest

from intercom.media.rtcp import build_compound, build_receiver_report, build_sdes
from intercom.media.sdes import SUITES
from intercom.media.srtp import REPLAY_WINDOW, SrtpContext, derive_session_key, keystream

H = bytes.fromhex
SUITE_80 = SUITES["AES_CM_128_HMAC_SHA1_80"]
SUITE_32 = SUITES["AES_CM_128_HMAC_SHA1_32"]
SUITE_256 = SUITES["AES_256_CM_HMAC_SHA1_80"]
KEY_128 = H("E1F97A0D3E018BE0D64FA32C06DE4139")
SALT_128 = H("0EC675AD498AFEEBB6960B3AABE6")
KEY_256 = H("f0f04914b513f2763a1b1fa130f10e2998f6f6e43e4309d1e622a0e332b9f1b6")
SALT_256 = H("3b04803de51ee7c96423ab5b78d2")


# -- RFC 3711 Appendix B ----------------------------------------------------------------------


def test_b2_aes_cm_keystream() -> None:
    key = H("2B7E151628AED2A6ABF7158809CF4F3C")
    iv = int("F0F1F2F3F4F5F6F7F8F9FAFBFCFD0000", 16)
    assert keystream(key, iv, 48) == H(
        "E03EAD0935C95E80E166B16DD92B4EB4"
        "D23513162B02D0F72A43A2FE4A5F97AB"
        "41E95B3BB0A2E8DD477901E4FCA894C0"
    )
    assert keystream(key, iv + 0xFEFF, 48) == H(
        "EC8CDF7398607CB0F2D21675EA9EA1E4"
        "362B7C3C6773516318A077D7FC5073AE"
        "6A2CC3787889374FBEB4C81B17BA6C44"
    )


def test_b3_key_derivation() -> None:
    assert derive_session_key(KEY_128, SALT_128, 0, 16) == H("C61E7A93744F39EE10734AFE3FF7A087")
    assert derive_session_key(KEY_128, SALT_128, 2, 14) == H("30CBBC08863D8C85D49DB34A9AE1")
    assert derive_session_key(KEY_128, SALT_128, 1, 94) == H(
        "CEBE321F6FF7716B6FD4AB49AF256A15"
        "6D38BAA48F0A0ACF3C34E2359E6CDBCE"
        "E049646C43D9327AD175578EF7227098"
        "6371C10C9A369AC2F94A8C5FBCDDDC25"
        "6D6E919A48B610EF17C2041E47403576"
        "6B68642C59BBFC2F34DB60DBDFB2"
    )


def test_rfc6188_aes_256_key_derivation() -> None:
    assert derive_session_key(KEY_256, SALT_256, 0, 32) == H(
        "5ba1064e30ec51613cad926c5a28ef731ec7fb397f70a960653caf06554cd8c4"
    )
    assert derive_session_key(KEY_256, SALT_256, 2, 14) == H("fa31791685ca444a9e07c6c64e93")
    assert derive_session_key(KEY_256, SALT_256, 1, 20) == H(
        "fd9c32d39ed5fbb5a9dc96b30818454d1313dc05"
    )


# -- known answers of another implementation (libsrtp's test packet) -----------------------------

PLAIN = H("800f1234decafbadcafebabe") + b"\xab" * 16


@pytest.mark.parametrize(
    ("suite", "key", "salt", "protected"),
    [
        (SUITE_80, KEY_128, SALT_128,
         "800f1234decafbadcafebabe4e55dc4ce79978d88ca4d215949d2402b78d6acc99ea179b8dbb"),
        (SUITE_256, KEY_256, SALT_256,
         "800f1234decafbadcafebabef1d9de17ff251ff1aa007774b0b4b40da08d9d9a5b3a55d8873b"),
    ],
)  # fmt: skip
def test_known_packet(suite: object, key: bytes, salt: bytes, protected: str) -> None:
    assert SrtpContext(suite, key, salt).protect_rtp(PLAIN) == H(protected)  # type: ignore[arg-type]
    assert SrtpContext(suite, key, salt).unprotect_rtp(H(protected)) == PLAIN  # type: ignore[arg-type]


# -- round trips ------------------------------------------------------------------------------


def rtp(
    seq: int, payload: bytes = b"\x55" * 160, ssrc: int = 0x1234, *, first: int = 0x80
) -> bytes:
    return struct.pack("!BBHII", 0x80, 0, seq & 0xFFFF, seq * 160, ssrc) + payload


def pair(suite: object = SUITE_80) -> tuple[SrtpContext, SrtpContext]:
    return SrtpContext(suite, KEY_128, SALT_128), SrtpContext(suite, KEY_128, SALT_128)  # type: ignore[arg-type]


@pytest.mark.parametrize("suite", [SUITE_80, SUITE_32])
def test_round_trip(suite: object) -> None:
    sender, receiver = pair(suite)
    for seq in range(100, 110):
        packet = rtp(seq)
        protected = sender.protect_rtp(packet)
        assert len(protected) == len(packet) + suite.rtp_tag_length  # type: ignore[attr-defined]
        assert protected[12:-10] != packet[12 : 172 - 10]  # the payload is not in clear
        assert receiver.unprotect_rtp(protected) == packet
    assert receiver.failures == 0


def test_csrcs_and_extension_stay_in_clear_and_authenticated() -> None:
    sender, receiver = pair()
    header = struct.pack("!BBHII", 0x91, 0, 7, 0, 9) + b"CSRC" + b"\xbe\xde\x00\x01" + b"EXT!"
    packet = header + b"payload!"
    protected = sender.protect_rtp(packet)
    assert protected.startswith(header)
    assert protected[len(header) : len(header) + 8] != b"payload!"
    assert receiver.unprotect_rtp(protected) == packet
    forged = protected[:13] + b"X" + protected[14:]  # a CSRC octet changed
    assert pair()[1].unprotect_rtp(forged) is None


def test_tamper_is_dropped_and_counted() -> None:
    sender, receiver = pair()
    protected = bytearray(sender.protect_rtp(rtp(1)))
    protected[20] ^= 1
    assert receiver.unprotect_rtp(bytes(protected)) is None
    assert receiver.auth_failures == 1
    assert receiver.unprotect_rtp(b"\x80\x00") is None  # too short for a header and a tag
    assert receiver.malformed == 1
    wrong_key = SrtpContext(SUITE_80, bytes(16), SALT_128)
    assert receiver.unprotect_rtp(wrong_key.protect_rtp(rtp(2))) is None
    assert receiver.auth_failures == 2
    # a forged packet leaves no state behind: the genuine one with that index still passes
    assert receiver.unprotect_rtp(sender.protect_rtp(rtp(1))) == rtp(1)


def test_replay_window() -> None:
    sender, receiver = pair()
    packets = {seq: sender.protect_rtp(rtp(seq)) for seq in range(1000, 1000 + REPLAY_WINDOW + 2)}
    assert receiver.unprotect_rtp(packets[1001]) is not None
    assert receiver.unprotect_rtp(packets[1001]) is None  # the same again
    assert receiver.unprotect_rtp(packets[1000]) is not None  # late but new
    newest = 1000 + REPLAY_WINDOW + 1
    assert receiver.unprotect_rtp(packets[newest]) is not None
    assert receiver.unprotect_rtp(packets[1000 + 2]) is not None  # just inside the window
    assert receiver.unprotect_rtp(packets[1000 + 1]) is None  # beyond it now
    assert receiver.replayed == 2


def test_rollover_counter_wraps_on_both_sides() -> None:
    sender, receiver = pair()
    protected = [sender.protect_rtp(rtp(seq)) for seq in range(65530, 65546)]  # 65530 .. 9
    order = list(range(len(protected)))
    order[5], order[7] = order[7], order[5]  # 65535 arrives after 1: reordered across the wrap
    for i in order:
        assert receiver.unprotect_rtp(protected[i]) == rtp(65530 + i)
    # the sender's ROC moved to 1: encrypting seq 3 with ROC 0 would be another packet
    fresh_sender, _ = pair()
    assert fresh_sender.protect_rtp(rtp(3)) != protected[9]
    assert receiver.failures == 0


def test_a_second_ssrc_has_its_own_state() -> None:
    sender, receiver = pair()
    assert receiver.unprotect_rtp(sender.protect_rtp(rtp(5, ssrc=1))) is not None
    assert receiver.unprotect_rtp(sender.protect_rtp(rtp(5, ssrc=2))) is not None


# -- SRTCP ------------------------------------------------------------------------------------


def report(ssrc: int = 0x1234) -> bytes:
    return build_compound(build_receiver_report(ssrc, []), build_sdes(ssrc, "door@intercom"))


@pytest.mark.parametrize("suite", [SUITE_80, SUITE_32])
def test_srtcp_round_trip_encrypted_with_index(suite: object) -> None:
    sender, receiver = pair(suite)
    for index in range(3):
        protected = sender.protect_rtcp(report())
        assert len(protected) == len(report()) + 4 + 10  # E||index, then an 80-bit tag
        assert protected[:8] == report()[:8]
        assert b"door@intercom" not in protected
        assert protected[-14:-10] == (0x80000000 | index).to_bytes(4, "big")
        assert receiver.unprotect_rtcp(protected) == report()


def test_srtcp_tamper_and_replay() -> None:
    sender, receiver = pair()
    first = sender.protect_rtcp(report())
    second = sender.protect_rtcp(report())
    assert receiver.unprotect_rtcp(second) is not None
    assert receiver.unprotect_rtcp(first) is not None  # older, not seen yet
    assert receiver.unprotect_rtcp(first) is None
    assert receiver.replayed == 1
    tampered = bytearray(sender.protect_rtcp(report()))
    tampered[-12] ^= 0x80  # the index word
    assert receiver.unprotect_rtcp(bytes(tampered)) is None
    assert receiver.auth_failures == 1
    assert receiver.unprotect_rtcp(b"\x80\xc9\x00\x01") is None
    assert receiver.malformed == 1


def test_contexts_check_their_keys() -> None:
    with pytest.raises(ValueError, match="16-octet master key"):
        SrtpContext(SUITE_80, KEY_256, SALT_128)
    with pytest.raises(ValueError, match="master salt"):
        SrtpContext(SUITE_80, KEY_128, SALT_128[:12])
    with pytest.raises(ValueError, match="not an RTP packet"):
        SrtpContext(SUITE_80, KEY_128, SALT_128).protect_rtp(b"\x00" * 20)
