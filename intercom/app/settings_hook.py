"""The rule of ``INTERCOM_ON_RING``: the command run on every ring (design.md).

The value is a command line split as a POSIX shell would split words (:func:`shlex.split`:
quotes and backslashes group, nothing else is interpreted), and run *without* a shell: no
``|``, ``>``, ``$VAR`` or ``~``. Its first word is the program: an absolute path, or a bare
name looked up on ``PATH`` where it runs. A relative path (``./notify``) is refused: the service
runs in ``/run/intercom`` (the unit's WorkingDirectory), where no such file is. Whether the
program exists and may be executed is I/O, checked by ``intercom check`` and when the daemon
starts (:func:`intercom.runtime.ring_hook.find_program`); here only the syntax is.
"""

from __future__ import annotations

import re

from intercom.app.settings_parse import ValueParser

__all__ = ["ON_RING_KEY", "read_on_ring"]

ON_RING_KEY = "INTERCOM_ON_RING"
_CONTROL_CHARS = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")  # a tab separates words like a blank
_SHELL_ONLY = frozenset({"|", "||", "&", "&&", ";", ">", ">>", "<", "2>", "2>&1"})


def read_on_ring(check: ValueParser) -> tuple[str, ...]:
    """The hook's argument vector; () when not set (or invalid: then a problem is added)."""
    text = check.text(ON_RING_KEY)
    if text is None:
        return ()
    if _CONTROL_CHARS.search(text):
        check.problem(ON_RING_KEY, "holds a control character")
        return ()
    import shlex  # only with a hook: not on every start

    try:
        argv = tuple(shlex.split(text))
    except ValueError as exc:  # "No closing quotation", "No escaped character"
        check.problem(ON_RING_KEY, f"{text!r} cannot be split into words: {exc}")
        return ()
    if not argv or not argv[0]:
        check.problem(ON_RING_KEY, f"{text!r} names no program")
        return ()
    program = argv[0]
    if "/" in program and not program.startswith("/"):
        check.problem(
            ON_RING_KEY,
            f"{program!r} is a relative path: give an absolute path or a command name on PATH "
            "(the service runs in /run/intercom)",
        )
        return ()
    shell = [word for word in argv[1:] if word in _SHELL_ONLY]
    if shell:
        check.problem(
            ON_RING_KEY,
            f"{shell[0]!r} needs a shell, but the command runs without one; put the pipeline "
            "in a script and name the script",
        )
        return ()
    return argv
