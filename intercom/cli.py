"""The `intercom` command line (the subcommands of design.md arrive with the application)."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from intercom import __version__


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="intercom", description="SIP door intercom")
    parser.add_argument("--version", action="version", version=f"intercom {__version__}")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    parser.parse_args(argv)
    parser.print_help()
    return 0
