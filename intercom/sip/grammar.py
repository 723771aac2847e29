"""The RFC 3261 §25.1 tokens and quoted strings every SIP parser here shares (as h11's _abnf).

Regex strings to build patterns from, and the few scans that need them: a separator or a
bracket counts only outside quoted strings, where a quoted-pair (``\\"``) never closes one.
Quoted strings are read leniently as RFC 7616 §3.4 asks of digest values: a backslash escapes
any character.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from intercom.sip.errors import RemoteProtocolError

TOKEN = r"[A-Za-z0-9\-.!%*_+`'~]+"
"""token = 1*(alphanum / "-" / "." / "!" / "%" / "*" / "_" / "+" / "`" / "'" / "~")"""
QUOTED_STRING = r'"(?:[^"\\]|\\[\s\S])*"'
"""quoted-string = DQUOTE *(qdtext / quoted-pair) DQUOTE, without the leading SWS"""

_TOKEN = re.compile(TOKEN)
_QUOTED_STRING = re.compile(QUOTED_STRING)
_QUOTED_PAIR = re.compile(r"\\([\s\S])")
_OPEN_QUOTE = re.compile(r'"(?:[^"\\]|\\[\s\S]?)*(")?')  # group 1 misses when it never closes


def is_token(text: str) -> bool:
    return _TOKEN.fullmatch(text) is not None


def is_quoted_string(text: str) -> bool:
    """Whether ``text`` is one whole quoted string and nothing else."""
    return _QUOTED_STRING.fullmatch(text) is not None


def quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def unquote(quoted: str) -> str:
    """The value of a quoted string: quotes removed, quoted-pairs resolved."""
    return _QUOTED_PAIR.sub(r"\1", quoted[1:-1])


def mask_quoted(text: str) -> tuple[str, bool]:
    """``text`` with the inside of every quoted string blanked (same length), so that plain
    ``str`` searches see only what lies outside quotes; and whether every quote closed (an
    unclosed one runs to the end)."""
    closed = True

    def blank(match: re.Match[str]) -> str:
        nonlocal closed
        closed = closed and match[1] is not None
        return '"' + "\0" * (len(match[0]) - 1)

    return _OPEN_QUOTE.sub(blank, text), closed


def split_outside_quotes(text: str, sep: str, *, strict: bool = True) -> Iterator[str]:
    """Split on ``sep`` where it is not inside a quoted string or ``<...>``; an unterminated
    quoted string raises, or with ``strict`` False runs to the end."""
    masked, closed = mask_quoted(text)
    depth = start = 0
    for match in re.finditer(f"[<>{re.escape(sep)}]", masked):
        if match[0] == "<":
            depth += 1
        elif match[0] == ">":
            depth = max(0, depth - 1)
        elif depth == 0:
            yield text[start : match.start()]
            start = match.end()
    if strict and not closed:
        raise RemoteProtocolError(f"unterminated quoted string in {text!r}")
    yield text[start:]
