"""The DEBUG wire log: credentials and door-code keys never reach it."""

from __future__ import annotations

import logging

import pytest

from intercom.sip.core import Address
from intercom.sip.events import InfoReceived
from intercom.sip.message import parse_message
from intercom.sip.wirelog import log_message, redacted

INFO = (
    b"INFO sip:door@192.0.2.1 SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 192.0.2.9;branch=z9hG4bKinfo1\r\n"
    b"From: <sip:alice@pbx.example>;tag=a\r\nTo: <sip:door@pbx.example>;tag=d\r\n"
    b"Call-ID: c1\r\nCSeq: 7 INFO\r\n"
    b'Authorization: Digest username="door", response="0123456789abcdef"\r\n'
    b"Content-Type: {type}\r\nContent-Length: {length}\r\n\r\n{body}"
)


def info(content_type: str, body: bytes) -> bytes:
    return (
        INFO.replace(b"{type}", content_type.encode())
        .replace(b"{length}", str(len(body)).encode())
        .replace(b"{body}", body)
    )


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("application/dtmf-relay", b"Signal=7\r\nDuration=160\r\n"),
        ("application/dtmf", b"7"),
        ("text/plain", b"Signal=7"),  # any type but SDP: never shown
    ],
)
def test_no_body_but_sdp_is_shown(content_type: str, body: bytes) -> None:
    text = redacted(parse_message(info(content_type, body)))
    assert "Signal" not in text and "\n\n7" not in text
    assert f"<{len(body)} bytes of {content_type}>" in text
    assert "0123456789abcdef" not in text and "Digest <redacted>" in text


def test_sdp_is_shown() -> None:
    sdp = b"v=0\r\no=- 1 1 IN IP4 192.0.2.9\r\ns=-\r\nc=IN IP4 192.0.2.9\r\nt=0 0\r\n"
    text = redacted(parse_message(info("application/sdp", sdp)))
    assert "c=IN IP4 192.0.2.9" in text


def test_log_message_at_debug_keeps_the_keys_out(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="intercom.sip.wire")
    message = parse_message(info("application/dtmf-relay", b"Signal=5\r\nDuration=100\r\n"))
    log_message("<", message, Address("udp", "192.0.2.9", 5060))
    assert caplog.records and "Signal=5" not in caplog.text


def test_an_info_event_does_not_show_its_body() -> None:
    """The user agent logs every event at DEBUG: the INFO's body must not be in its repr."""
    event = InfoReceived("c1", "application/dtmf-relay", b"Signal=5\r\nDuration=100")
    assert "Signal" not in repr(event) and "c1" in repr(event)


def test_sdes_keys_are_masked_in_sdp() -> None:
    key = "WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz"
    sdp = (
        "v=0\r\no=- 1 1 IN IP4 192.0.2.9\r\ns=-\r\nc=IN IP4 192.0.2.9\r\nt=0 0\r\n"
        "m=audio 4000 RTP/SAVP 0\r\n"
        f"a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{key}|2^20|1:4\r\n"
        f"a=crypto:2 AES_CM_128_HMAC_SHA1_32 INLINE:{key}\r\n"
    ).encode()
    text = redacted(parse_message(info("application/sdp", sdp)))
    assert key not in text
    assert "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:<redacted>|2^20|1:4" in text
    assert "a=crypto:2 AES_CM_128_HMAC_SHA1_32 INLINE:<redacted>" in text
