"""``INTERCOM_ON_RING``: real small scripts in a temporary directory, run by the hook in-process
and by the daemon (in-process, pressed through its control socket)."""

from __future__ import annotations

import asyncio
import logging
import os
import stat
import time
from pathlib import Path

import pytest

from intercom.runtime import ring_hook
from intercom.runtime.ring_hook import RingHook, find_program, hook_environment

from .test_daemon import running_door, wait_until

pytestmark = pytest.mark.timeout(30)

SECRETS = {
    "INTERCOM_SIP_PASSWORD": "s3cret-sip",
    "INTERCOM_MQTT_PASSWORD": "s3cret-mqtt",
    "INTERCOM_DOOR_CODE": "2580#",
    "NOTIFY_SOCKET": "/run/systemd/notify",
}


def script(tmp_path: Path, name: str, body: str) -> Path:
    path = tmp_path / name
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def alive(pid: int) -> bool:
    """A process that exists and is not a zombie waiting for a (container's) init to reap it."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


def fire(hook: RingHook, call_id: str = "c0ffee") -> bool:
    return hook.fire(wall=1_800_000_000.5, target="sip:**9@fritz.box", call_id=call_id)


async def settle(hook: RingHook, timeout: float = 10.0) -> None:
    await wait_until(lambda: hook.running == 0, timeout, "the hooks' end")


def test_the_hook_sees_the_rings_facts_and_no_secret(tmp_path: Path) -> None:
    out = tmp_path / "env.txt"
    hook_script = script(tmp_path, "hook", f"env > {out}\n")

    async def main() -> None:
        environ = {**SECRETS, "PATH": os.environ["PATH"], "LANG": "C.UTF-8"}
        hook = RingHook([str(hook_script)], name="Front door", environ=environ)
        assert fire(hook)
        await settle(hook)

    asyncio.run(main())
    env = dict(line.split("=", 1) for line in out.read_text().splitlines() if "=" in line)
    assert {key for key in env if key.startswith("INTERCOM_")} == set(ring_hook.HOOK_VARIABLES)
    assert env["INTERCOM_EVENT"] == "ring"
    assert env["INTERCOM_CALL_TARGET"] == "sip:**9@fritz.box"
    assert env["INTERCOM_CALL_ID"] == "c0ffee"
    assert env["INTERCOM_NAME"] == "Front door"
    assert env["INTERCOM_UNIX_TIME"] == "1800000000.500"
    assert env["INTERCOM_TIME"].startswith("2027-01-15T")  # ISO 8601 with the UTC offset
    assert env["INTERCOM_TIME"][-6] in "+-" and env["INTERCOM_TIME"][-3] == ":"
    assert env["LANG"] == "C.UTF-8"
    text = out.read_text()
    for secret in ("s3cret-sip", "s3cret-mqtt", "2580#", "NOTIFY_SOCKET"):
        assert secret not in text


def test_arguments_are_passed_without_a_shell(tmp_path: Path) -> None:
    out = tmp_path / "args.txt"
    hook_script = script(tmp_path, "hook", f'for a in "$@"; do echo "[$a]"; done > {out}\n')

    async def main() -> None:
        hook = RingHook([str(hook_script), "two words", "$HOME", "*"], name="door")
        fire(hook)
        await settle(hook)

    asyncio.run(main())
    assert out.read_text().splitlines() == ["[two words]", "[$HOME]", "[*]"]


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("echo 'no route to ntfy' >&2\nexit 3\n", "exited with 3: no route to ntfy"),
        ("kill -USR1 $$\n", "ended by signal 10"),
    ],
    ids=["exit-code", "signal"],
)
def test_a_failing_hook_is_logged_once_in_one_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, body: str, expected: str
) -> None:
    hook_script = script(tmp_path, "hook", body)

    async def main() -> None:
        hook = RingHook([str(hook_script)], name="door")
        fire(hook)
        await settle(hook)

    with caplog.at_level(logging.DEBUG, logger=ring_hook.__name__):
        asyncio.run(main())
    lines = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert lines == [f"x ring hook {hook_script} {expected}"]


def test_a_missing_program_is_logged_once(tmp_path: Path, caplog) -> None:
    async def main() -> None:
        hook = RingHook([str(tmp_path / "nowhere")], name="door")
        fire(hook)
        await settle(hook)

    asyncio.run(main())
    lines = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert lines == [
        f"x ring hook {tmp_path / 'nowhere'} could not start: No such file or directory"
    ]


def test_a_hook_that_overruns_is_killed_with_its_children(tmp_path: Path, caplog) -> None:
    pids = tmp_path / "pids"
    # The script starts a child that would outlive it, and both ignore nothing: one group.
    hook_script = script(tmp_path, "hook", f"sleep 60 &\necho $! > {pids}\nexec sleep 60\n")

    async def main() -> float:
        hook = RingHook([str(hook_script)], name="door", timeout=0.5)
        started = time.monotonic()
        fire(hook)
        await settle(hook)
        return time.monotonic() - started

    took = asyncio.run(main())
    assert took < 5, took
    child = int(pids.read_text())
    assert not alive(child)  # killed with the group (init reaps it: it is not our child)
    lines = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert lines == [f"x ring hook {hook_script} killed after 0.5 s"]


def test_a_flood_of_rings_runs_at_most_the_bound_and_warns_once(tmp_path: Path, caplog) -> None:
    count = tmp_path / "count"
    gate = tmp_path / "gate"
    hook_script = script(
        tmp_path, "hook", f"echo x >> {count}\nwhile [ ! -e {gate} ]; do sleep 0.02; done\n"
    )

    async def main() -> list[bool]:
        hook = RingHook([str(hook_script)], name="door", max_running=2)
        started = [fire(hook, f"call{n}") for n in range(20)]
        assert hook.running == 2
        await wait_until(lambda: count.exists() and len(count.read_text().split()) == 2, 5, "2")
        gate.touch()
        await settle(hook)
        assert fire(hook, "after")  # room again once they ended
        await settle(hook)
        return started

    started = asyncio.run(main())
    assert started == [True, True] + [False] * 18
    assert len(count.read_text().split()) == 3
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert warnings == ["x ring hook not run: 2 still running (at most 2 at once)"]


def test_close_terminates_a_running_hook(tmp_path: Path) -> None:
    hook_script = script(tmp_path, "hook", "exec sleep 60\n")

    async def main() -> None:
        hook = RingHook([str(hook_script)], name="door")
        fire(hook)
        await asyncio.sleep(0.2)
        started = time.monotonic()
        await hook.close()
        assert hook.running == 0
        assert time.monotonic() - started < 3

    asyncio.run(main())


def test_find_program(tmp_path: Path) -> None:
    runnable = script(tmp_path, "notify", "exit 0\n")
    plain = tmp_path / "plain"
    plain.write_text("")
    assert find_program([str(runnable)]) is None
    assert find_program(["notify"], path=str(tmp_path)) is None
    assert find_program(["sh"]) is None
    assert find_program([str(tmp_path / "gone")]) == f"{tmp_path / 'gone'} does not exist"
    assert "is not executable" in (find_program([str(plain)]) or "")
    assert find_program(["notify"], path="/nonexistent") == (
        "'notify' is not found on PATH (/nonexistent)"
    )


def test_hook_environment_drops_every_intercom_key_and_systemds_sockets() -> None:
    env = hook_environment({**SECRETS, "INTERCOM_SIP_USER": "door", "HOME": "/x"}, {"A": "b"})
    assert env == {"HOME": "/x", "A": "b"}


# -- the daemon ---------------------------------------------------------------------------------


def test_the_daemon_runs_the_hook_after_placing_the_call(tmp_path: Path) -> None:
    out = tmp_path / "ring.txt"
    hook_script = script(tmp_path, "hook", f'echo "$INTERCOM_EVENT $INTERCOM_NAME" > {out}\n')

    async def main() -> None:
        async with running_door(
            tmp_path,
            INTERCOM_CALL_TARGET="sip:phone@127.0.0.1:9",  # nobody answers there
            INTERCOM_ON_RING=f"{hook_script}",
            INTERCOM_NAME="Garden gate",
            INTERCOM_SIP_PASSWORD="s3cret-sip",
        ) as door:
            assert door.ring_hook is not None
            door.press()
            # The INVITE was handed over before the hook's process existed.
            assert door.ring_hook.running == 1 and not out.exists()
            assert door.doorbell.state.value == "calling"
            await wait_until(out.exists, 10, "the hook's file")
            await wait_until(lambda: door.ring_hook.finished == 1, 10, "the hook's end")

    asyncio.run(main())
    assert out.read_text() == "ring Garden gate\n"


def test_the_daemon_warns_at_start_about_a_hook_it_cannot_find(tmp_path: Path, caplog) -> None:
    async def main() -> None:
        async with running_door(tmp_path, INTERCOM_ON_RING="no-such-doorbell-notifier --x"):
            pass

    asyncio.run(main())
    assert any(
        "INTERCOM_ON_RING: 'no-such-doorbell-notifier' is not found on PATH" in r.getMessage()
        for r in caplog.records
    )


def test_intercom_run_as_a_process_runs_the_hook_on_intercom_press(tmp_path: Path) -> None:
    from tests.integration.daemon_process import DaemonProcess

    out = tmp_path / "env.txt"
    hook_script = script(tmp_path, "hook", f"env > {out}.part\nmv {out}.part {out}\n")
    settings = {
        "INTERCOM_SIP_BIND": "127.0.0.1:0",
        "INTERCOM_AUDIO_INPUT": "null",
        "INTERCOM_AUDIO_OUTPUT": "null",
        "INTERCOM_CALL_TARGET": "sip:phone@127.0.0.1:9",
        "INTERCOM_ON_RING": f"{hook_script} --door 'front gate'",
        "INTERCOM_SIP_PASSWORD": "s3cret-sip",
    }

    async def main() -> None:
        async with DaemonProcess(tmp_path, settings) as daemon:
            assert (await daemon.cli("press"))[0] == 0
            await wait_until(out.exists, 10, "the hook's file")
            assert await daemon.terminate() == 0
            assert "Traceback" not in daemon.log()

    asyncio.run(main())
    text = out.read_text()
    assert "INTERCOM_EVENT=ring\n" in text
    assert "INTERCOM_CALL_TARGET=sip:phone@127.0.0.1:9\n" in text
    assert "s3cret-sip" not in text
