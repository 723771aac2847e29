"""The side-by-side benchmark's options and its hook for benchmarks/starved.py (no process,
no socket: the starved module is a stand-in)."""

from __future__ import annotations

import argparse
import sys
import types

import pytest

from benchmarks.side_by_side import DEFAULT_RESULTS, ROOT, parse_args, run_starved


def test_defaults_are_the_full_run_and_a_try_writes_elsewhere() -> None:
    full = parse_args([])
    assert (full.seconds, full.runs, full.only) == (60.0, 3, ["intercom", "baresip", "pyVoIP"])
    assert full.results == str(DEFAULT_RESULTS)
    quick = parse_args(["--seconds", "5", "--only", "baresip"])
    assert quick.only == ["baresip"]
    assert quick.results == str(ROOT / ".bench" / "results")


def test_starved_missing_is_said(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "benchmarks.starved", None)
    [line] = run_starved(parse_args(["--no-flood"]))
    assert "does not exist yet" in line


def fake_starved(run: object) -> types.ModuleType:
    module = types.ModuleType("benchmarks.starved")

    def parser() -> argparse.ArgumentParser:
        p = argparse.ArgumentParser()
        p.add_argument("--codecs", default="G722,PCMU")
        return p

    module.parser = parser  # type: ignore[attr-defined]
    module.run = run  # type: ignore[attr-defined]
    return module


def test_starved_gets_its_own_parsed_arguments(monkeypatch: pytest.MonkeyPatch) -> None:
    def run(args: argparse.Namespace) -> list[str]:
        return [f"PCMU clean down to 6 % ({args.codecs})"]

    monkeypatch.setitem(sys.modules, "benchmarks.starved", fake_starved(run))
    lines = run_starved(parse_args(["--starved-args", "--codecs PCMU"]))
    assert lines[1:] == ["PCMU clean down to 6 % (PCMU)"]


def test_starved_refusing_to_run_is_a_line_not_a_crash(monkeypatch: pytest.MonkeyPatch) -> None:
    def run(args: argparse.Namespace) -> list[str]:
        raise SystemExit("benchmarks.starved needs root")

    monkeypatch.setitem(sys.modules, "benchmarks.starved", fake_starved(run))
    assert run_starved(parse_args([])) == ["starved: stopped: benchmarks.starved needs root"]
