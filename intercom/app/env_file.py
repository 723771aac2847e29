"""The env file: ``KEY=VALUE`` lines read the way systemd's ``EnvironmentFile=`` reads them.

Theory of operation
===================

``intercom run --env-file PATH`` and the service's ``EnvironmentFile=`` must see the same
values, so :func:`parse_env_text` follows systemd.exec(5) ("EnvironmentFile=") and systemd's
own parser (``src/basic/env-file.c``) character by character:

* Blank lines are skipped; a line whose first non-blank character is ``#`` or ``;`` is a
  comment. There are no end-of-line comments: in ``A=1 # one`` the value is ``1 # one``.
* ``KEY=VALUE``; blanks around the key and after ``=`` are dropped (``A = 1`` sets ``A``).
* An unquoted value keeps its inner blanks and loses its trailing ones. A backslash keeps the
  next character as it is (``\\\\`` is one backslash, ``\\ `` a kept blank); a backslash at the
  end of a line joins the next line, the newline itself dropped. Quotes after the first
  character of an unquoted value are ordinary characters.
* ``'...'`` keeps everything verbatim up to the next ``'``, newlines included; no escapes.
* ``"..."`` may span lines too; a backslash before one of ``" \\ ` $`` gives that character,
  before a newline joins the lines, and before anything else stays in the value with it.
* After a closing quote, blanks are skipped and more text continues the same value
  (``A='x' "y"z`` is ``xyz``).
* A later assignment of the same key replaces the earlier one.

Where systemd silently ignores a line, this parser reports it instead, because a line that
does nothing is a line whose author expected it to do something: a line without ``=``, a name
that is not a variable name (``export A=1``: systemd has no ``export``), a value that is not
UTF-8, a NUL byte, a byte order mark, and a quote that never closes (systemd would take the
rest of the file as the value). Each problem is one line, ``SOURCE:LINE: what``, naming the
line where the assignment starts. Values are never echoed in problems: the file holds a
password.

The text is decoded by the caller; undecodable bytes arrive as ``surrogateescape`` surrogates
(U+DC80-U+DCFF) so that only the assignments holding them are refused. This module does no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["EnvFile", "parse_env_text"]

_NEWLINE = "\n\r"  # systemd's NEWLINE: a carriage return ends an unquoted line too
_BLANK = " \t"
_COMMENT = "#;"
_DOUBLE_QUOTE_ESCAPABLE = '"\\`$'  # systemd's SHELL_NEED_ESCAPE
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*", re.ASCII)
_UNDECODED = re.compile("[\udc80-\udcff]")


@dataclass(frozen=True, slots=True)
class EnvFile:
    """What one env file says: its assignments, and what is wrong with it."""

    values: Mapping[str, str]  #: every valid assignment, the last one of each key
    lines: Mapping[str, int]  #: the line where each key of ``values`` was assigned
    problems: tuple[str, ...] = ()  #: ``"SOURCE:LINE: what"``, in file order
    warnings: tuple[str, ...] = ()  #: legal but suspicious: a key assigned twice


def parse_env_text(text: str, source: str) -> EnvFile:
    """Parse the text of an env file; ``source`` (its path) prefixes every problem.

    Never raises for bad input: problems are collected in :attr:`EnvFile.problems` and the
    assignments that are fine still come back in :attr:`EnvFile.values`.
    """
    return _Parser(text, source).run()


class _Parser:
    """One pass over the text; ``pos`` is the next character, ``line`` its 1-based line."""

    def __init__(self, text: str, source: str) -> None:
        self.text = text
        self.source = source
        self.pos = 0
        self.line = 1
        self.values: dict[str, str] = {}
        self.lines: dict[str, int] = {}
        self.problems: list[str] = []
        self.warnings: list[str] = []

    def run(self) -> EnvFile:
        if self.text.startswith("\ufeff"):
            self._problem(
                1,
                "the file starts with a byte order mark (U+FEFF), which systemd reads as part "
                "of the first name; save it as UTF-8 without one",
            )
            self.pos = 1
        nul = self.text.find("\0")
        if nul >= 0:
            line = self.text.count("\n", 0, nul) + 1
            self._problem(line, "a NUL byte; systemd stops reading the file there")
            self.text = self.text[:nul]
        while self.pos < len(self.text):
            char = self.text[self.pos]
            if char in _BLANK or char in _NEWLINE:
                self._advance()
            elif char in _COMMENT:
                self._skip_line()
            else:
                self._assignment()
        return EnvFile(self.values, self.lines, tuple(self.problems), tuple(self.warnings))

    # -- one assignment -------------------------------------------------------------------

    def _assignment(self) -> None:
        line = self.line
        start = self.pos
        while self.pos < len(self.text) and self.text[self.pos] not in "=" + _NEWLINE:
            self.pos += 1
        if self.pos == len(self.text) or self.text[self.pos] != "=":
            # The line is not echoed: it may be a password that lost its "KEY=".
            self._problem(line, "not a KEY=VALUE assignment (no '=' on the line)")
            return
        key = self.text[start : self.pos].rstrip(_BLANK)
        self.pos += 1  # the "="
        value = self._value(key, line)
        if not _NAME.fullmatch(key):
            self._problem(line, _bad_name(key))
            return
        if value is None:
            return
        if _UNDECODED.search(value):
            self._problem(line, f"{key}: the value is not UTF-8 text")
            return
        if key in self.values:
            self.warnings.append(
                f"{self.source}:{line}: {key} is assigned again (first on line "
                f"{self.lines[key]}); the later value is used"
            )
        self.values[key] = value
        self.lines[key] = line

    def _value(self, key: str, line: int) -> str | None:
        """The value after ``=``, up to the end of its (possibly continued) line; None when a
        quote never closes (reported here)."""
        text = self.text
        chars: list[str] = []
        trim_at: int | None = None  # where the unquoted value's trailing blanks begin
        unquoted = False
        while self.pos < len(text):
            char = text[self.pos]
            if char in _NEWLINE:
                break
            if not unquoted:
                if char in _BLANK:
                    self.pos += 1
                    continue
                if char in "'\"":
                    if not self._quoted(char, chars):
                        kind = _QUOTE_NAMES[char]
                        self._problem(line, f"{key}: the {kind} quote opened here is never closed")
                        return None
                    continue
                unquoted = True
            if char == "\\":
                self._advance()
                trim_at = None  # blanks before a backslash stay, as in systemd
                if self.pos < len(text):
                    escaped = text[self.pos]
                    self._advance()
                    if escaped not in _NEWLINE:  # a backslash-newline joins the lines
                        chars.append(escaped)
                continue
            if char in _BLANK:
                if trim_at is None:
                    trim_at = len(chars)
            else:
                trim_at = None
            chars.append(char)
            self.pos += 1
        if trim_at is not None:
            del chars[trim_at:]
        return "".join(chars)

    def _quoted(self, quote: str, chars: list[str]) -> bool:
        """Append a quoted part to ``chars``; False if the text ends before it closes."""
        text = self.text
        self._advance()  # the opening quote
        while self.pos < len(text):
            char = text[self.pos]
            self._advance()
            if char == quote:
                return True
            if char == "\\" and quote == '"':
                if self.pos == len(text):
                    return False
                escaped = text[self.pos]
                self._advance()
                if escaped in _DOUBLE_QUOTE_ESCAPABLE:
                    chars.append(escaped)
                elif escaped != "\n":  # "\<newline>" joins the lines; others stay as written
                    chars.append("\\" + escaped)
            else:
                chars.append(char)
        return False

    # -- helpers --------------------------------------------------------------------------

    def _advance(self) -> None:
        if self.text[self.pos] == "\n":
            self.line += 1
        self.pos += 1

    def _skip_line(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos] not in _NEWLINE:
            self.pos += 1

    def _problem(self, line: int, what: str) -> None:
        self.problems.append(f"{self.source}:{line}: {what}")


_QUOTE_NAMES = {"'": "single", '"': "double"}


def _bad_name(key: str) -> str:
    words = key.split()
    if len(words) == 2 and words[0] == "export" and _NAME.fullmatch(words[1]):
        return (
            f"{key!r}: systemd does not understand 'export' (a shell word); "
            f"write {words[1]}=... without it"
        )
    if not key:
        return "an assignment without a name (the line starts with '=')"
    return f"{key!r} is not a variable name (letters, digits and '_', not starting with a digit)"
