"""Full SIP messages at DEBUG, with direction markers and credentials redacted.

``<`` received, ``>`` sent (``x`` dropped is logged where the decision is made). Authorization and
Proxy-Authorization values never reach a log: their digest response lets an eavesdropper on the
log mount an offline password search.
"""

from __future__ import annotations

import logging

from intercom.sip.core import Address
from intercom.sip.message import Message, Request

logger = logging.getLogger("intercom.sip.wire")

SECRET_HEADERS = frozenset({"Authorization", "Proxy-Authorization"})


def redacted(message: Message) -> str:
    """The message as text with credential values replaced; bodies shown when textual."""
    if isinstance(message, Request):
        lines = [f"{message.method} {message.uri} SIP/2.0"]
    else:
        lines = [f"SIP/2.0 {message.status} {message.reason}"]
    for name, value in message.headers:
        if name in SECRET_HEADERS:
            scheme = value.split(" ", 1)[0]
            value = f"{scheme} <redacted>"
        lines.append(f"{name}: {value}")
    text = "\n".join(lines)
    if message.body:
        text += "\n\n" + message.body.decode("utf-8", "replace")
    return text


def log_message(direction: str, message: Message, peer: Address) -> None:
    if logger.isEnabledFor(logging.DEBUG):
        logger.debug("%s %s\n%s", direction, peer, redacted(message))
