"""sipvicious' svwar, the tool people scan SIP devices with, finds no account on the door.

svwar (Debian package `sipvicious`) guesses extensions by the difference between the answers
to an existing and a made-up one: REGISTER, OPTIONS and INVITE scans over a dictionary holding
the door's own account name and a range of numbers. The running `intercom run`, registered
as ``door``, must answer every guess alike (a stateless 405, 200 or 403 to a stranger), so
svwar ends with "found nothing"; and the daemon's log stays a few lines long.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from .daemon_process import DaemonProcess
from .peer_support import require_program
from .sipp_harness import free_port

pytestmark = [pytest.mark.integration, pytest.mark.timeout(150)]

HOST = "127.0.0.1"
ACCOUNTS = ("door", "alice", "intercom", "admin", "100")


def require_svwar() -> str:
    return require_program("svwar", "sipvicious")


async def svwar(port: int, method: str, dictionary: Path) -> str:
    process = await asyncio.create_subprocess_exec(
        require_svwar(), "-d", str(dictionary), "-e", "100-120", "-m", method, "--force",
        "-t", "0.2", "-p", str(port), HOST,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    try:
        out, _ = await asyncio.wait_for(process.communicate(), 40)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise AssertionError(f"svwar -m {method} did not finish in 40 s") from None
    assert process.returncode == 0, out.decode()
    return out.decode(errors="replace")


async def _scan(tmp_path: Path) -> None:
    require_svwar()
    dictionary = tmp_path / "accounts.txt"
    dictionary.write_text("\n".join(ACCOUNTS) + "\n")
    door_port = free_port()
    daemon = DaemonProcess(tmp_path, {
        "INTERCOM_SIP_BIND": f"{HOST}:{door_port}",
        "INTERCOM_SIP_USER": "door",
        "INTERCOM_AUDIO_INPUT": "null",
        "INTERCOM_AUDIO_OUTPUT": "null",
        "INTERCOM_ALLOWED_CALLERS": "alice@pbx.test",
    })  # fmt: skip
    async with daemon:
        for method in ("REGISTER", "OPTIONS", "INVITE"):
            out = await svwar(door_port, method, dictionary)
            assert "found nothing" in out, f"svwar -m {method}:\n{out}"
            assert "Extension" not in out, f"svwar -m {method} found accounts:\n{out}"
        status = await daemon.status()
        assert status["call"]["state"] == "idle" and status["last_call"]["outcome"] is None
        assert await daemon.terminate() == 0
    log = daemon.log()
    assert "Traceback" not in log, log
    assert len(log.splitlines()) < 20, log  # one line per kind of refusal, not per guess


def test_svwar_finds_no_account(tmp_path: Path) -> None:
    asyncio.run(_scan(tmp_path))
