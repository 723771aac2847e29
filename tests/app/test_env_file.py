"""The env file parser: systemd's EnvironmentFile= rules (systemd.exec(5)), and every line
systemd would silently ignore reported as ``path:line: problem``."""

from __future__ import annotations

import pytest

from intercom.app.env_file import parse_env_text
from intercom.app.settings import SettingsError, read_env_file


def values(text: str) -> dict[str, str]:
    parsed = parse_env_text(text, "f")
    assert parsed.problems == ()
    return dict(parsed.values)


def problems(text: str) -> list[str]:
    return list(parse_env_text(text, "f").problems)


# ---- what systemd accepts --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("A=1\nB=2\n", {"A": "1", "B": "2"}),
        ("A=1", {"A": "1"}),  # no newline at the end
        ("# comment\n; also a comment\n\n   \nA=1\n", {"A": "1"}),
        ("  A = 1  \n", {"A": "1"}),  # blanks around key and value dropped
        ("A=\n", {"A": ""}),
        ("A=", {"A": ""}),
        ("A=a  b \t\n", {"A": "a  b"}),  # inner blanks kept, trailing ones dropped
        ("A=1 # one\n", {"A": "1 # one"}),  # no end-of-line comments
        ("A=1;2\n", {"A": "1;2"}),
        ("A=2580#\n", {"A": "2580#"}),  # a '#' inside a value is a character
        ("A=x\"y\"'z'\n", {"A": "x\"y\"'z'"}),  # quotes after the first character are kept
        ("A=a\\\\b\\ c\n", {"A": "a\\b c"}),  # backslash keeps the next character
        ("A=x\\ \n", {"A": "x "}),  # an escaped trailing blank stays
        ("A=\\#x\n", {"A": "#x"}),
        ("A=one \\\n  two\nB=3\n", {"A": "one   two", "B": "3"}),  # continuation
        # the blank before the backslash stays, trailing ones on the joined line go (systemd)
        ("A=one \\\n  \nB=3\n", {"A": "one ", "B": "3"}),
        ("A=\\\nx\n", {"A": "x"}),
        ("A=' a \\n $b '\n", {"A": " a \\n $b "}),  # single quotes: verbatim
        ("A='x\ny'\nB=2\n", {"A": "x\ny", "B": "2"}),  # ... across lines
        ('A="q\\"b\\\\c\\`d\\$e\\nf"\n', {"A": 'q"b\\c`d$e\\nf'}),  # double-quote escapes
        ('A="a\\\nb"\n', {"A": "ab"}),  # "\<newline>" joins lines
        ('A="a\nb"\n', {"A": "a\nb"}),
        ("A='x' \"y\"z\n", {"A": "xyz"}),  # text after a closing quote continues the value
        ("A=   'v'   \n", {"A": "v"}),
        ("A=1\r\nB=2\r\n", {"A": "1", "B": "2"}),  # CRLF
        ("lower_case9=ok\n_X=1\n", {"lower_case9": "ok", "_X": "1"}),
        ("A=x=y\n", {"A": "x=y"}),
        ("A=Grüße\n", {"A": "Grüße"}),
    ],
)
def test_systemd_semantics(text, expected):
    assert values(text) == expected


def test_a_later_assignment_wins_with_a_warning():
    parsed = parse_env_text("A=1\nB=2\nA=3\n", "f")
    assert dict(parsed.values) == {"A": "3", "B": "2"}
    assert parsed.lines == {"A": 3, "B": 2}
    assert parsed.warnings == (
        "f:3: A is assigned again (first on line 1); the later value is used",
    )


# ---- what systemd would ignore: reported -----------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("NOEQUALS\n", "f:1: not a KEY=VALUE assignment (no '=' on the line)"),
        (
            "export A=1\n",
            "f:1: 'export A': systemd does not understand 'export' (a shell word); "
            "write A=... without it",
        ),
        (
            "1A=x\n",
            "f:1: '1A' is not a variable name (letters, digits and '_', not starting with a digit)",
        ),
        (
            "A B=x\n",
            "f:1: 'A B' is not a variable name (letters, digits and '_', "
            "not starting with a digit)",
        ),
        ("=x\n", "f:1: an assignment without a name (the line starts with '=')"),
        ("A='open\nB=2\n", "f:1: A: the single quote opened here is never closed"),
        ('A="open\\"\n', "f:1: A: the double quote opened here is never closed"),
        ("A=\udcff\udcfe\n", "f:1: A: the value is not UTF-8 text"),
    ],
)
def test_problems(text, expected):
    assert problems(text) == [expected]


def test_problems_name_the_line_where_the_assignment_starts():
    text = "# settings\nA='one\ntwo'\n\nbad line\nB=\"x\\\ny\"\nexport C=1\n"
    parsed = parse_env_text(text, "/etc/intercom/intercom.env")
    assert parsed.problems == (
        "/etc/intercom/intercom.env:5: not a KEY=VALUE assignment (no '=' on the line)",
        "/etc/intercom/intercom.env:8: 'export C': systemd does not understand 'export' "
        "(a shell word); write C=... without it",
    )
    assert dict(parsed.values) == {"A": "one\ntwo", "B": "xy"}  # the good lines still count
    assert parsed.lines == {"A": 2, "B": 6}


def test_byte_order_mark_reported_and_skipped():
    parsed = parse_env_text("\ufeffA=1\n", "f")
    assert parsed.problems == (
        "f:1: the file starts with a byte order mark (U+FEFF), which systemd reads as part of "
        "the first name; save it as UTF-8 without one",
    )
    assert dict(parsed.values) == {"A": "1"}


def test_nul_byte_ends_the_file_as_in_systemd():
    parsed = parse_env_text("A=1\nB=x\0y\nC=3\n", "f")
    assert parsed.problems == ("f:2: a NUL byte; systemd stops reading the file there",)
    assert dict(parsed.values) == {"A": "1", "B": "x"}


def test_a_line_without_equals_is_not_echoed():
    # A password that lost its "KEY=" must not end up in an error message on the console.
    assert problems("INTERCOM_SIP_PASSWORD hunter2\n") == [
        "f:1: not a KEY=VALUE assignment (no '=' on the line)"
    ]
    assert "hunter2" not in "".join(problems("INTERCOM_SIP_PASSWORD='hunter2\n"))


# ---- read_env_file ---------------------------------------------------------------------------


def test_read_env_file(tmp_path):
    path = tmp_path / "intercom.env"
    path.write_text("# door\nINTERCOM_SIP_USER=door\nOTHER='x y'\n")
    assert read_env_file(str(path)) == {"INTERCOM_SIP_USER": "door", "OTHER": "x y"}


def test_read_env_file_lists_every_malformed_line(tmp_path):
    path = tmp_path / "intercom.env"
    path.write_bytes(b"A=1\nexport B=2\nC\nD=\xff\n")
    with pytest.raises(SettingsError) as info:
        read_env_file(str(path))
    assert info.value.problems == [
        f"{path}:2: 'export B': systemd does not understand 'export' (a shell word); "
        "write B=... without it",
        f"{path}:3: not a KEY=VALUE assignment (no '=' on the line)",
        f"{path}:4: D: the value is not UTF-8 text",
    ]
    assert str(info.value) == "\n".join(info.value.problems)


def test_read_env_file_missing(tmp_path):
    path = tmp_path / "nope.env"
    with pytest.raises(SettingsError) as info:
        read_env_file(str(path))
    assert info.value.problems == [f"{path}: cannot read the env file: No such file or directory"]


def test_read_env_file_a_directory(tmp_path):
    with pytest.raises(SettingsError, match="cannot read the env file: Is a directory"):
        read_env_file(str(tmp_path))
