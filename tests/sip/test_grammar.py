"""Tests for intercom.sip.grammar: RFC 3261 §25.1 tokens and quoted strings."""

from __future__ import annotations

import pytest

from intercom.sip.grammar import (
    is_quoted_string,
    is_token,
    mask_quoted,
    quote,
    split_outside_quotes,
    unquote,
)
from tests.sip.test_uri import error_of


@pytest.mark.parametrize(
    ("text", "expected"),
    [("INVITE", True), ("!%*_+`'~-.", True), ("a b", False), ("", False), ("a,b", False),
     ("é", False), ("a:b", False)],
)  # fmt: skip
def test_is_token(text: str, expected: bool) -> None:
    assert is_token(text) is expected


def test_split_outside_quotes() -> None:
    text = '"a,b" <sip:x@y;p=1,2>, c, "\\"q,\\"", <d>'
    assert list(split_outside_quotes(text, ",")) == [
        '"a,b" <sip:x@y;p=1,2>', " c", ' "\\"q,\\""', " <d>",
    ]  # fmt: skip
    assert list(split_outside_quotes("", ",")) == [""]
    assert str(error_of(lambda t: list(split_outside_quotes(t, ",")), '"open, x')) == (
        "unterminated quoted string in '\"open, x'"
    )
    assert list(split_outside_quotes('a;"open;b', ";", strict=False)) == ["a", '"open;b']


def test_quote_and_unquote() -> None:
    assert quote('a "b" \\c') == '"a \\"b\\" \\\\c"'
    assert unquote(quote('a "b" \\c')) == 'a "b" \\c'
    assert unquote('"\\x\\\n"') == "x\n"  # a quoted-pair may escape any character


@pytest.mark.parametrize(
    ("text", "expected"),
    [('""', True), ('"a b"', True), ('"a\\"b"', True), ('"a\\"', False), ('"a"b"', False),
     ('"a" ', False), ("a", False), ('"', False)],
)  # fmt: skip
def test_is_quoted_string(text: str, expected: bool) -> None:
    assert is_quoted_string(text) is expected


def test_mask_quoted_hides_what_is_inside_quotes() -> None:
    masked, closed = mask_quoted('"a <b>" <sip:x>')
    assert closed and len(masked) == 15 and masked.find("<") == 8
    masked, closed = mask_quoted('x "a\\" <y>')  # the escaped quote does not close it
    assert not closed and masked.find("<") == -1
