"""SRTP and SRTCP (RFC 3711) with AES counter mode and HMAC-SHA1, sans-IO.

Theory of operation
===================

A :class:`SrtpContext` is one direction's cryptographic context (§3.2) made from one SDES master
key and salt: the sending side protects with our key, the receiving side unprotects with the
peer's. It is deterministic: the keys are handed in (the runtime draws them from the OS CSPRNG).

* Key derivation (§4.3.1, §4.3.3): the AES-CM PRF keyed with the master key, over the master
  salt XOR ``label << 48`` shifted left 16 bits, gives the session encryption key, the 160-bit
  authentication key and the 112-bit session salt; labels 0-2 for SRTP, 3-5 for SRTCP. The key
  derivation rate is 0 (SDES's default, and all we accept): keys are derived once.
* Encryption (§4.1.1): AES in counter mode, IV = salt * 2^16 XOR SSRC * 2^64 XOR index * 2^16.
  The low 16 bits of that IV are always zero, so the keystream is AES-ECB over blocks
  ``IV[0:14] || counter`` built in one ``bytes.join``: one AES-ECB encryptor per session key,
  made once, serves every packet, and the XOR runs on two Python ints (C). Only the payload of
  an RTP packet is encrypted (after CSRCs and the header extension), an RTCP compound from its
  ninth octet on.
* Authentication (§4.2.1): HMAC-SHA1 over the authenticated portion (header and encrypted
  payload) followed by the 32-bit rollover counter (SRTP), or over the packet and its
  ``E || SRTCP index`` word (SRTCP), truncated to the suite's tag (80 or 32 bits; SRTCP's is 80
  bits in every suite). Tags are compared in constant time.
* Index (§3.3.1): the 48-bit packet index is ROC * 2^16 + SEQ. The receiver guesses the ROC of
  a packet from the highest index it authenticated for that SSRC (the rule of Appendix A), and
  keeps that state per SSRC only once a packet authenticates: a forged packet changes nothing.
* Replay (§3.3.2): a window of :data:`REPLAY_WINDOW` indices behind the highest, a bit per index;
  a packet already seen or older than the window is dropped, before its tag is computed (the
  cheap refusal first). SRTCP has its own window on the explicit SRTCP index.

Nothing is logged here: a packet that fails is counted (:attr:`SrtpContext.auth_failures`,
``replayed``, ``malformed``) and its ``unprotect`` returns None; the call logs one line at its
end. No MKI is sent or expected (:mod:`intercom.media.sdes` refuses offers with one).
"""

from __future__ import annotations

import hashlib
import hmac
import struct

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from intercom.media.sdes import MASTER_SALT_LENGTH, CryptoSuite

__all__ = ["REPLAY_WINDOW", "SrtpContext", "derive_session_key", "keystream"]

REPLAY_WINDOW = 128
"""Indices behind the highest one that are still taken once (RFC 3711 §3.3.2 asks at least 64)."""

LABEL_RTP_ENCRYPTION, LABEL_RTP_AUTH, LABEL_RTP_SALT = 0, 1, 2
LABEL_RTCP_ENCRYPTION, LABEL_RTCP_AUTH, LABEL_RTCP_SALT = 3, 4, 5
AUTH_KEY_LENGTH = 20
MAX_SSRCS = 8
"""Receiving states kept (an authenticated peer changing SSRC); the oldest goes beyond that."""

_COUNTERS = tuple(i.to_bytes(2, "big") for i in range(4096))
"""The low 16 bits of the counter blocks: 4096 blocks, 64 KiB, beyond any datagram."""
_WINDOW_MASK = (1 << REPLAY_WINDOW) - 1
_SEQ_SSRC = struct.Struct("!H4xI")  # from the third octet: sequence, (timestamp), SSRC
_E_FLAG = 0x80000000


def _ecb(key: bytes):  # type: ignore[no-untyped-def]  # cryptography's context type is private
    return Cipher(algorithms.AES(key), modes.ECB()).encryptor()


def keystream(key: bytes, iv: int, length: int) -> bytes:
    """``length`` octets of AES-CM keystream (RFC 3711 §4.1.1): AES of the 128-bit blocks
    IV, IV + 1, ... For tests and the key derivation; the packet path keeps one encryptor per
    key and an IV whose low 16 bits are zero."""
    blocks = (((iv + i) % (1 << 128)).to_bytes(16, "big") for i in range((length + 15) // 16))
    stream: bytes = _ecb(key).update(b"".join(blocks))
    return stream[:length]


def _keystream(encrypt, iv: int, length: int) -> bytes:  # type: ignore[no-untyped-def]
    """The keystream of one packet: ``iv``'s low 16 bits are zero (RFC 3711 §4.1.1)."""
    prefix = (iv >> 16).to_bytes(14, "big")
    stream: bytes = encrypt(prefix + prefix.join(_COUNTERS[: (length + 15) // 16]))
    return stream


def derive_session_key(master_key: bytes, master_salt: bytes, label: int, length: int) -> bytes:
    """The AES-CM PRF of RFC 3711 §4.3.1 and §4.3.3 with a key derivation rate of 0."""
    if len(master_salt) != MASTER_SALT_LENGTH:
        raise ValueError(f"the master salt must be {MASTER_SALT_LENGTH} octets")
    x = int.from_bytes(master_salt, "big") ^ (label << 48)
    return keystream(master_key, x << 16, length)


def _xor(data: bytes, stream: bytes) -> bytes:
    size = len(data)
    return (int.from_bytes(data, "big") ^ int.from_bytes(stream[:size], "big")).to_bytes(
        size, "big"
    )


def _estimate(highest: int, seq: int) -> int:
    """The index of a packet with sequence number ``seq`` (RFC 3711 §3.3.1, Appendix A)."""
    roc = highest >> 16
    last = highest & 0xFFFF
    if last < 0x8000:
        guess = roc - 1 if seq - last > 0x8000 else roc
    else:
        guess = roc + 1 if last - 0x8000 > seq else roc
    return ((guess & 0xFFFFFFFF) << 16) | seq


class _Replay:
    """The highest index authenticated and the window of indices seen behind it."""

    __slots__ = ("highest", "seen")

    def __init__(self, index: int) -> None:
        self.highest = index
        self.seen = 1

    def fresh(self, index: int) -> bool:
        delta = self.highest - index
        return delta < 0 or (delta < REPLAY_WINDOW and not (self.seen >> delta) & 1)

    def accept(self, index: int) -> None:
        delta = index - self.highest
        if delta > 0:
            self.seen = ((self.seen << delta) | 1) & _WINDOW_MASK
            self.highest = index
        else:
            self.seen |= 1 << -delta


class _Keys:
    """The session keys of one of SRTP or SRTCP."""

    __slots__ = ("encrypt", "inner", "outer", "salt")

    def __init__(self, master_key: bytes, master_salt: bytes, first_label: int) -> None:
        length = len(master_key)
        key = derive_session_key(master_key, master_salt, first_label, length)
        auth = derive_session_key(master_key, master_salt, first_label + 1, AUTH_KEY_LENGTH)
        salt = derive_session_key(master_key, master_salt, first_label + 2, MASTER_SALT_LENGTH)
        self.salt = int.from_bytes(salt, "big") << 16
        self.encrypt = _ecb(key).update
        # HMAC (RFC 2104) with its two keyed SHA-1 states made once: a packet's tag is then
        # two copies and three updates, less than half the cost of hmac.digest per packet.
        padded = auth.ljust(64, b"\0")
        self.inner = hashlib.sha1(bytes(b ^ 0x36 for b in padded))
        self.outer = hashlib.sha1(bytes(b ^ 0x5C for b in padded))

    def tag(self, portion: bytes, trailer: bytes, length: int) -> bytes:
        """HMAC-SHA1 over ``portion || trailer``, truncated to ``length`` octets."""
        inner = self.inner.copy()
        inner.update(portion)
        inner.update(trailer)
        outer = self.outer.copy()
        outer.update(inner.digest())
        return outer.digest()[:length]


class SrtpContext:
    """One direction of SRTP and SRTCP under one master key (see the module docstring)."""

    def __init__(self, suite: CryptoSuite, master_key: bytes, master_salt: bytes) -> None:
        if len(master_key) != suite.key_length:
            raise ValueError(f"{suite.name} needs a {suite.key_length}-octet master key")
        self.suite = suite
        self._rtp = _Keys(master_key, master_salt, LABEL_RTP_ENCRYPTION)
        self._rtcp = _Keys(master_key, master_salt, LABEL_RTCP_ENCRYPTION)
        self._tag = suite.rtp_tag_length
        self._rtcp_tag = suite.rtcp_tag_length
        self._sent: dict[int, int] = {}  # SSRC -> highest index sent
        self._received: dict[int, _Replay] = {}
        self._rtcp_sent = 0  # the SRTCP index of the next report (31 bits)
        self._rtcp_received: dict[int, _Replay] = {}
        self.auth_failures = 0
        self.replayed = 0
        self.malformed = 0

    @property
    def failures(self) -> int:
        """Packets refused: a wrong tag, a replay, or too short to be SRTP/SRTCP."""
        return self.auth_failures + self.replayed + self.malformed

    # -- SRTP -------------------------------------------------------------------------------

    def protect_rtp(self, packet: bytes) -> bytes:
        """The SRTP packet for one RTP packet of ours (ValueError if it is no RTP packet)."""
        start = _payload_start(packet)
        if start < 0:
            raise ValueError("not an RTP packet")
        seq, ssrc = _SEQ_SSRC.unpack_from(packet, 2)
        last = self._sent.get(ssrc)
        index = seq if last is None else _estimate(last, seq)
        if last is None or index > last:
            self._sent[ssrc] = index
        keys = self._rtp
        payload = packet[start:]
        iv = keys.salt ^ (ssrc << 64) ^ (index << 16)
        portion = packet[:start] + _xor(payload, _keystream(keys.encrypt, iv, len(payload)))
        return portion + keys.tag(portion, (index >> 16).to_bytes(4, "big"), self._tag)

    def unprotect_rtp(self, packet: bytes) -> bytes | None:
        """The RTP packet inside an SRTP one; None (and counted) when it fails."""
        tag_length = self._tag
        end = len(packet) - tag_length
        start = _payload_start(packet, end)
        if start < 0:
            self.malformed += 1
            return None
        seq, ssrc = _SEQ_SSRC.unpack_from(packet, 2)
        replay = self._received.get(ssrc)
        index = seq if replay is None else _estimate(replay.highest, seq)
        if replay is not None and not replay.fresh(index):
            self.replayed += 1
            return None
        keys = self._rtp
        portion = packet[:end]
        tag = keys.tag(portion, (index >> 16).to_bytes(4, "big"), tag_length)
        if not hmac.compare_digest(tag, packet[end:]):
            self.auth_failures += 1
            return None
        if replay is None:
            self._new_state(self._received, ssrc, index)
        else:
            replay.accept(index)
        payload = packet[start:end]
        iv = keys.salt ^ (ssrc << 64) ^ (index << 16)
        return packet[:start] + _xor(payload, _keystream(keys.encrypt, iv, len(payload)))

    # -- SRTCP ------------------------------------------------------------------------------

    def protect_rtcp(self, packet: bytes) -> bytes:
        """The SRTCP packet for one RTCP compound of ours, encrypted (E=1)."""
        if len(packet) < 8:
            raise ValueError("not an RTCP packet")
        index = self._rtcp_sent
        self._rtcp_sent = (index + 1) & 0x7FFFFFFF
        keys = self._rtcp
        ssrc = int.from_bytes(packet[4:8], "big")
        body = packet[8:]
        iv = keys.salt ^ (ssrc << 64) ^ (index << 16)
        portion = (
            packet[:8]
            + _xor(body, _keystream(keys.encrypt, iv, len(body)))
            + (_E_FLAG | index).to_bytes(4, "big")
        )
        return portion + keys.tag(portion, b"", self._rtcp_tag)

    def unprotect_rtcp(self, packet: bytes) -> bytes | None:
        """The RTCP compound inside an SRTCP packet; None (and counted) when it fails."""
        end = len(packet) - self._rtcp_tag
        if end < 12 or packet[0] >> 6 != 2:
            self.malformed += 1
            return None
        word = int.from_bytes(packet[end - 4 : end], "big")
        index = word & 0x7FFFFFFF
        ssrc = int.from_bytes(packet[4:8], "big")
        replay = self._rtcp_received.get(ssrc)
        if replay is not None and not replay.fresh(index):
            self.replayed += 1
            return None
        keys = self._rtcp
        portion = packet[:end]
        tag = keys.tag(portion, b"", self._rtcp_tag)
        if not hmac.compare_digest(tag, packet[end:]):
            self.auth_failures += 1
            return None
        if replay is None:
            self._new_state(self._rtcp_received, ssrc, index)
        else:
            replay.accept(index)
        body = packet[8 : end - 4]
        if not word & _E_FLAG:  # sent unencrypted (the peer's choice, authenticated still)
            return packet[:8] + body
        iv = keys.salt ^ (ssrc << 64) ^ (index << 16)
        return packet[:8] + _xor(body, _keystream(keys.encrypt, iv, len(body)))

    @staticmethod
    def _new_state(states: dict[int, _Replay], ssrc: int, index: int) -> None:
        if len(states) >= MAX_SSRCS:
            del states[next(iter(states))]
        states[ssrc] = _Replay(index)


def _payload_start(packet: bytes, end: int | None = None) -> int:
    """Where an RTP packet's payload begins (after CSRCs and extension); -1 if it cannot."""
    size = len(packet) if end is None else end
    if size < 12 or packet[0] >> 6 != 2:
        return -1
    start = 12 + 4 * (packet[0] & 0x0F)
    if packet[0] & 0x10:
        if size < start + 4:
            return -1
        start += 4 + 4 * int.from_bytes(packet[start + 2 : start + 4], "big")
    return start if start <= size else -1
