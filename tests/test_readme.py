"""README.md against the code: every setting, every command, the two dev.sh commands, links.

The README is what an installer follows alone, so it must not drift from the code: every key
of :data:`intercom.app.settings.KEYS` is documented with its real default, no key it names is
stale or invented, every ``intercom`` subcommand of the parser appears, the pin table agrees
with the wiring guide, and its links lead somewhere. Everything is read from the files and the
code; nothing here lists keys or commands by hand.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

from intercom.app.settings import KEYS, PREFIX, Settings
from intercom.cli import build_parser

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
HARDWARE_README = ROOT / "hardware" / "README.md"
CI_RUN = ROOT / ".ci" / "run"

# An INTERCOM_ name as a whole word: "INTERCOM_DOOR_CODE" must not be found inside
# "INTERCOM_DOOR_CODE_ATTEMPTS", and "INTERCOM_*" (the prefix in prose) is no name.
_NAME = re.compile(rf"(?<![A-Za-z0-9_]){PREFIX}[A-Z0-9_]*[A-Z0-9](?![A-Za-z0-9_])")
_LINK = re.compile(r"\]\(([^)\s]+)\)")


def readme() -> str:
    return README.read_text(encoding="utf-8")


def table_rows(text: str) -> list[list[str]]:
    """Every Markdown table row of ``text`` as its stripped cells."""
    return [
        [cell.strip() for cell in line.strip().strip("|").split("|")]
        for line in text.splitlines()
        if line.lstrip().startswith("|")
    ]


def subcommands(parser: argparse.ArgumentParser) -> list[str]:
    """The names of the parser's subcommands."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return list(action.choices)
    raise AssertionError("the intercom parser has no subcommands")


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, blanks to hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


# -- settings -----------------------------------------------------------------------------------


def test_keys_are_known_to_the_test() -> None:
    assert len(KEYS) > 20 and all(key.startswith(PREFIX) for key in KEYS)


@pytest.mark.parametrize("key", KEYS)
def test_every_setting_has_a_row_in_the_settings_tables(key: str) -> None:
    rows = [row for row in table_rows(readme()) if row and row[0] == f"`{key}`"]
    assert len(rows) == 1, f"README.md: {key} needs exactly one settings table row"


@pytest.mark.parametrize("key", KEYS)
def test_every_setting_row_shows_the_real_default(key: str) -> None:
    (row,) = [row for row in table_rows(readme()) if row and row[0] == f"`{key}`"]
    default = Settings().redacted()[key]
    cell = row[1]
    if default == "(not set)":
        assert cell.startswith("not set"), f"{key}: the default is not set, README says {cell}"
    else:
        assert f"`{default}`" in cell, f"{key}: the default is {default}, README says {cell}"


def test_every_intercom_name_in_the_readme_is_a_real_setting() -> None:
    named = set(_NAME.findall(readme()))
    assert named, "README.md names no setting at all"
    from intercom.runtime.ring_hook import HOOK_VARIABLES  # what INTERCOM_ON_RING's command gets

    unknown = sorted(named - set(KEYS) - set(HOOK_VARIABLES))
    assert not unknown, f"README.md names settings that do not exist: {unknown}"


# -- commands -----------------------------------------------------------------------------------


@pytest.mark.parametrize("command", subcommands(build_parser()))
def test_every_cli_command_appears(command: str) -> None:
    assert re.search(rf"\bintercom {re.escape(command)}\b", readme()), (
        f"README.md never shows `intercom {command}`"
    )


def test_the_two_dev_commands_are_in_the_readme_and_ci_runs_the_test_one() -> None:
    text = readme()
    assert "./dev.sh demo" in text
    assert "./dev.sh test" in text
    commands = [
        line.strip()
        for line in CI_RUN.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    assert any(re.search(r"(^|\s)\./dev\.sh test\b", line) for line in commands), (
        f".ci/run does not call ./dev.sh test: {commands}"
    )


def test_dev_sh_knows_both_commands() -> None:
    script = (ROOT / "dev.sh").read_text(encoding="utf-8")
    for command in ("demo", "test"):
        assert re.search(rf"^\s*{command}\)", script, re.MULTILINE), f"dev.sh has no {command}"


# -- wiring and links ---------------------------------------------------------------------------


@pytest.mark.parametrize("key", [key for key in KEYS if key.endswith("_PIN")], ids=lambda key: key)
def test_pin_table_agrees_with_the_wiring_guide(key: str) -> None:
    def pin_row(text: str) -> list[str]:
        for row in table_rows(text):
            if f"`{key}`" in row and any(re.fullmatch(r"GPIO\d+", cell) for cell in row):
                return row
        raise AssertionError(f"no pin table row for {key}")

    ours, guide = pin_row(readme()), pin_row(HARDWARE_README.read_text(encoding="utf-8"))
    # BCM name and physical pin: the second and third cells of both tables.
    assert ours[1:3] == guide[1:3], f"{key}: README.md says {ours[1:3]}, the guide {guide[1:3]}"


def headings(text: str) -> set[str]:
    """The anchors of the Markdown headings of ``text`` (lines in code fences are no headings)."""
    anchors: set[str] = set()
    fenced = False
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
        elif line.startswith("#") and not fenced:
            anchors.add(slug(line.lstrip("#")))
    return anchors


def test_relative_links_lead_to_files_and_headings() -> None:
    text = readme()
    anchors = headings(text)
    links = _LINK.findall(text)
    assert links
    for link in links:
        if re.match(r"[a-z]+:", link):
            continue
        path, _, anchor = link.partition("#")
        if path:
            target = ROOT / path
            assert target.exists(), f"README.md links to a missing file: {link}"
            if anchor and target.suffix == ".md":
                guide = headings(target.read_text(encoding="utf-8"))
                assert anchor in guide, f"README.md links to a missing heading: {link}"
        else:
            assert anchor in anchors, f"README.md links to a missing heading: {link}"
