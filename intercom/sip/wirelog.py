"""Full SIP messages at DEBUG, with direction markers and credentials redacted.

``<`` received, ``>`` sent (``x`` dropped is logged where the decision is made). Authorization and
Proxy-Authorization values never reach a log: their digest response lets an eavesdropper on the
log mount an offline password search. Nor does any body but SDP: a DTMF relay INFO (RFC 6086)
carries the door code's keys, so of other bodies only the type and length are shown. In SDP the
SRTP master keys (``a=crypto:... inline:<key>``, RFC 4568) are masked: with them a recording of
the call's packets could be decrypted.
"""

from __future__ import annotations

import logging
import re

from intercom.sip.core import Address
from intercom.sip.message import Message

logger = logging.getLogger("intercom.sip.wire")

SECRET_HEADERS = frozenset({"Authorization", "Proxy-Authorization"})
_SDES_KEY = re.compile(r"(inline:)[^|\s;]+", re.IGNORECASE)


def redacted(message: Message) -> str:
    """The message as text with credential values replaced; bodies shown when textual."""
    lines = [message.start_line()]
    for name, value in message.headers:
        if name in SECRET_HEADERS:
            scheme = value.split(" ", 1)[0]
            value = f"{scheme} <redacted>"
        lines.append(f"{name}: {value}")
    text = "\n".join(lines)
    if message.body:
        if message.content_type == "application/sdp":
            sdp = message.body.decode("utf-8", "replace")
            text += "\n\n" + _SDES_KEY.sub(r"\1<redacted>", sdp)
        else:
            text += f"\n\n<{len(message.body)} bytes of {message.content_type or 'body'}>"
    return text


def log_message(direction: str, message: Message, peer: Address) -> None:
    if logger.isEnabledFor(logging.DEBUG):
        logger.debug("%s %s\n%s", direction, peer, redacted(message))
