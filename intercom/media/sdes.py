"""SDES keys in SDP (RFC 4568): the ``a=crypto`` attribute and the SRTP crypto suites we speak.

Theory of operation
===================

An SDES offer carries one ``a=crypto`` line per suite it proposes, each with its own tag and
its own key; the answer picks one, repeats its tag and suite and gives the answerer's key::

    a=crypto:<tag> <crypto-suite> inline:<base64(master key || master salt)>[|lifetime][|MKI:len]
             [<session parameters>]

What we take (§9.1, §9.2, §6.1):

* suites: AES_CM_128_HMAC_SHA1_80 and _32 (RFC 4568 §6.2), AES_256_CM_HMAC_SHA1_80 and _32
  (RFC 6188 §3); the master salt is 112 bits for all of them;
* exactly one key parameter. A lifetime is taken and ignored (SDES calls are short and the
  SRTP index wraps at 2^48 packets, years of audio); an MKI is refused: we send and expect
  packets without one;
* session parameters: ``KDR=0`` (the default, no rekeying), ``WSH=n`` (a window hint; ours is
  larger) and the FEC ones, which concern a layer we do not have. Any other (``UNENCRYPTED_SRTP``,
  ``UNENCRYPTED_SRTCP``, ``UNAUTHENTICATED_SRTP``, a KDR other than 0, an unknown one) makes the
  line unusable: we would not protect or check what the peer expects.

Nothing here draws randomness or does cryptography (:mod:`intercom.media.srtp` does, with the
``cryptography`` package): the keys are handed in. A key is secret: :class:`SdesKey` never
shows it in its ``repr``, and the SIP wire log masks ``inline:`` values
(:mod:`intercom.sip.wirelog`).
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass, field

__all__ = [
    "MASTER_SALT_LENGTH",
    "OFFER_SUITES",
    "SUITES",
    "CryptoSuite",
    "SdesKey",
    "SrtpKeys",
    "format_crypto",
    "parse_crypto",
]

MASTER_SALT_LENGTH = 14
"""Octets of the master salt of every AES-CM suite (RFC 3711 §8.2, RFC 6188 §3)."""


@dataclass(frozen=True, slots=True)
class CryptoSuite:
    """One SRTP crypto suite: AES counter mode with an HMAC-SHA1 tag."""

    name: str
    key_length: int  #: octets of the master (and session) encryption key
    rtp_tag_length: int  #: octets of the SRTP authentication tag
    rtcp_tag_length: int = 10  #: SRTCP's tag is 80 bits in every suite (RFC 4568 §6.2.2)

    @property
    def key_material_length(self) -> int:
        """Octets of ``inline:`` material: master key then master salt."""
        return self.key_length + MASTER_SALT_LENGTH


SUITES = {
    suite.name: suite
    for suite in (
        CryptoSuite("AES_CM_128_HMAC_SHA1_80", 16, 10),
        CryptoSuite("AES_CM_128_HMAC_SHA1_32", 16, 4),
        CryptoSuite("AES_256_CM_HMAC_SHA1_80", 32, 10),
        CryptoSuite("AES_256_CM_HMAC_SHA1_32", 32, 4),
    )
}
OFFER_SUITES = ("AES_CM_128_HMAC_SHA1_80", "AES_CM_128_HMAC_SHA1_32")
"""What our offers propose, in preference order: every SDES phone and PBX speaks these two."""

_SESSION_PARAMETERS_IGNORED = ("WSH=", "FEC_ORDER=", "FEC_KEY=")
_TAG = re.compile(r"[0-9]{1,9}")


@dataclass(frozen=True, slots=True)
class SdesKey:
    """One ``a=crypto`` line: the tag, the suite and the key material (never in a repr)."""

    tag: int
    suite: CryptoSuite
    material: bytes = field(repr=False)  #: master key || master salt

    @property
    def master_key(self) -> bytes:
        return self.material[: self.suite.key_length]

    @property
    def master_salt(self) -> bytes:
        return self.material[self.suite.key_length :]


def parse_crypto(value: str) -> SdesKey | str:
    """The ``a=crypto`` value (after ``crypto:``) as a key, or why we cannot use it."""
    parts = value.split()
    if len(parts) < 3:
        return "a=crypto needs a tag, a suite and a key"
    tag, suite_name, key_params, *session = parts
    if not _TAG.fullmatch(tag):
        return f"a=crypto tag {tag!r} is not a number"
    suite = SUITES.get(suite_name.upper())
    if suite is None:
        return f"suite {suite_name} is not one we speak"
    if ";" in key_params:
        return "more than one key per a=crypto line (several MKIs) is not supported"
    method, colon, info = key_params.partition(":")
    if method.lower() != "inline" or not colon:
        return f"key method {method!r} is not inline"
    key_text, *extras = info.split("|")
    for extra in extras:
        if ":" in extra:
            return "an MKI is not supported"
        # else a lifetime ("2^31" or a number): calls are far shorter, taken and ignored
    for parameter in session:
        upper = parameter.upper()
        if upper == "KDR=0" or upper.startswith(_SESSION_PARAMETERS_IGNORED):
            continue
        return f"session parameter {parameter} is not supported"
    try:
        material = base64.b64decode(key_text + "=" * (-len(key_text) % 4), validate=True)
    except (binascii.Error, ValueError):
        return "the inline key is not base64"
    if len(material) != suite.key_material_length:
        return (
            f"the inline key of {suite.name} must be {suite.key_material_length} octets, "
            f"got {len(material)}"
        )
    return SdesKey(int(tag), suite, material)


def format_crypto(key: SdesKey) -> str:
    """The ``a=crypto`` value for ``key`` (what follows ``crypto:``)."""
    inline = base64.b64encode(key.material).decode("ascii")
    return f"{key.tag} {key.suite.name} inline:{inline}"


@dataclass(frozen=True, slots=True)
class SrtpKeys:
    """What one offer/answer exchange agreed for SRTP: our key (we protect with it) and the
    peer's (we check and decrypt with it), of one suite."""

    local: SdesKey
    remote: SdesKey

    @property
    def suite(self) -> CryptoSuite:
        return self.local.suite
