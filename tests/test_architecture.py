"""The map is the territory: the import layers of docs/architecture.md hold, and no cycles."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parent.parent
LINT_IMPORTS = "import sys; from importlinter.cli import lint_imports_command as c; sys.exit(c())"


def test_import_layers_hold():
    """The contracts in pyproject.toml's [tool.importlinter]; the output names a broken one.

    In a process of its own: lint-imports configures logging as a command line tool does.
    """
    lint = [sys.executable, "-c", LINT_IMPORTS, "--no-cache"]
    result = subprocess.run(lint, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_no_import_cycles():
    """No module imports itself through others (imports inside functions count too)."""
    graph = grimp.build_graph("intercom", cache_dir=None)
    cycles = {
        tuple(sorted(chain))
        for module in graph.modules
        for imported in graph.find_modules_directly_imported_by(module)
        if (chain := graph.find_shortest_chain(importer=imported, imported=module))
    }
    assert cycles == set()
