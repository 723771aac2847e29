"""What the peer harnesses (sipp, baresip) share: free ports on 127.0.0.1 and output tails.

A port is free when checked, not when the peer binds it, and the kernel may offer a
just-closed port again; so every port handed out is remembered for the whole test run, across
all harnesses, and never handed out twice.
"""

from __future__ import annotations

import os
import shutil
import socket
from collections.abc import Sequence

UDP = (socket.SOCK_DGRAM,)
TCP = (socket.SOCK_STREAM,)
BOTH = (socket.SOCK_DGRAM, socket.SOCK_STREAM)

_HANDED_OUT: set[int] = set()


def require_program(name: str, package: str | None = None) -> str:
    """The path of the peer program ``name`` (also found in /usr/sbin, where kamailio lives),
    or a clear error naming the Debian ``package`` that ./dev.sh setup installs."""
    path = shutil.which(name, path=os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin"]))
    if path is None:
        raise RuntimeError(f"{package or name} not installed: run ./dev.sh setup")
    return path


def bindable(port: int, kinds: tuple[int, ...] = BOTH, host: str = "127.0.0.1") -> bool:
    """True when ``port`` on ``host`` can be bound right now for every socket kind given."""
    for kind in kinds:
        with socket.socket(socket.AF_INET, kind) as s:
            if kind == socket.SOCK_STREAM:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind((host, port))
            except OSError:
                return False
    return True


def claim_ports(needs: Sequence[tuple[int, ...]], *, even: bool = False) -> int:
    """The first of ``len(needs)`` consecutive free ports, port ``p + i`` free for the socket
    kinds ``needs[i]``; ``even`` for an RTP base. They are never handed out again this run."""
    for _ in range(200):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind(("127.0.0.1", 0))
            first = int(s.getsockname()[1])
        if even:
            first &= ~1
        ports = range(first, first + len(needs))
        if (
            first >= 1024
            and ports[-1] <= 65535
            and _HANDED_OUT.isdisjoint(ports)
            and all(bindable(port, kinds) for port, kinds in zip(ports, needs, strict=True))
        ):
            _HANDED_OUT.update(ports)
            return first
    raise RuntimeError(f"no {len(needs)} suitable consecutive free ports on 127.0.0.1")


def tail(text: str, lines: int) -> str:
    """The last ``lines`` lines of ``text``, saying how many were cut."""
    parts = text.rstrip().splitlines()
    if len(parts) <= lines:
        return "\n".join(parts)
    return "\n".join([f"[... {len(parts) - lines} earlier lines cut ...]", *parts[-lines:]])
