"""Full SIP messages at DEBUG, with direction markers and credentials redacted.

``<`` received, ``>`` sent (``x`` dropped is logged where the decision is made). Authorization and
Proxy-Authorization values never reach a log: their digest response lets an eavesdropper on the
log mount an offline password search. Nor does any body but SDP: a DTMF relay INFO (RFC 6086)
carries the door code's keys, so of other bodies only the type and length are shown.
"""

from __future__ import annotations

import logging

from intercom.sip.core import Address
from intercom.sip.message import Message

logger = logging.getLogger("intercom.sip.wire")

SECRET_HEADERS = frozenset({"Authorization", "Proxy-Authorization"})


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
            text += "\n\n" + message.body.decode("utf-8", "replace")
        else:
            text += f"\n\n<{len(message.body)} bytes of {message.content_type or 'body'}>"
    return text


def log_message(direction: str, message: Message, peer: Address) -> None:
    if logger.isEnabledFor(logging.DEBUG):
        logger.debug("%s %s\n%s", direction, peer, redacted(message))
