"""The `intercom` command as a user runs it: demo, check, and the control commands without a
daemon. Each runs the real console entry in a subprocess, bounded by a timeout."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.daemon_process import intercom_env

pytestmark = pytest.mark.timeout(60)


def intercom(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None):
    return subprocess.run(
        [sys.executable, "-m", "intercom", *args],
        capture_output=True, text=True, timeout=50, env=intercom_env(env or {}), cwd=cwd,
    )  # fmt: skip


def test_demo_places_a_call_shows_the_ladder_and_opens_the_door(tmp_path: Path) -> None:
    result = intercom("demo", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    ladder = out[out.index("door   ") :]
    assert ladder.splitlines()[0].split() == ["door", "pbx", "phone"]
    # Both register with a digest challenge, then the INVITE goes through the PBX to the phone.
    assert ladder.count("401 Unauthorized (REGISTER)") == 2
    assert ladder.index("401 Unauthorized") < ladder.index("200 OK (REGISTER)")
    assert ladder.index("200 OK (REGISTER)") < ladder.index("INVITE -")
    assert ladder.index("INVITE -") < ladder.index("407 Proxy") < ladder.index("180 Ringing")
    ack = ladder.index("ACK -", ladder.index("200 OK (INVITE)"))
    assert ladder.index("180 Ringing") < ack < ladder.index("RTP both ways") < ladder.index("BYE -")
    assert ladder.rindex("REGISTER") > ladder.index("200 OK (BYE)")  # un-REGISTER at shutdown
    assert "door registration: registered (last SIP status 200)" in out
    assert "call: answered" in out and "lost 0" in out
    assert "door opened 1 time(s)" in out and "demo: ok" in out
    assert "Traceback" not in result.stderr


def test_check_lists_every_problem_of_a_broken_env_file_and_exits_2(tmp_path: Path) -> None:
    env_file = tmp_path / "intercom.env"
    env_file.write_text(
        "INTERCOM_RING_TIMEOUT=abc\n"
        "INTERCOM_SIP_TRANSPORT=carrier-pigeon\n"
        "INTERCOM_BUTTON_PIN=99\n"
        "INTERCOM_SIP_PASSWORD=hunter2-secret\n"
        "INTERCOM_RINGTIMEOUT=5\n"
    )
    result = intercom("check", "--env-file", str(env_file))
    assert result.returncode == 2
    err = result.stderr
    assert "INTERCOM_RING_TIMEOUT: 'abc' is not a number of seconds" in err
    assert "INTERCOM_SIP_TRANSPORT" in err and "INTERCOM_BUTTON_PIN" in err
    assert "INTERCOM_RINGTIMEOUT" in err  # unknown key, with a suggestion
    assert "hunter2-secret" not in result.stdout + err
    assert "Traceback" not in err


def test_check_accepts_a_mock_setup(tmp_path: Path) -> None:
    env_file = tmp_path / "intercom.env"
    env_file.write_text(
        "INTERCOM_GPIO=mock\nINTERCOM_AUDIO_INPUT=tone:440\nINTERCOM_AUDIO_OUTPUT=null\n"
        "INTERCOM_CALL_TARGET=sip:phone@127.0.0.1\nINTERCOM_SIP_PASSWORD=hunter2-secret\n"
    )
    env_file.chmod(0o600)
    result = intercom("check", "--env-file", str(env_file))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ok:" in result.stdout and "hunter2-secret" not in result.stdout


@pytest.mark.parametrize("command", ["press", "hangup", "open", "status"])
def test_control_commands_without_a_daemon_exit_1_with_a_message(
    command: str, tmp_path: Path
) -> None:
    result = intercom(command, "--socket", str(tmp_path / "none.sock"))
    assert result.returncode == 1
    assert "not running" in result.stderr and "Traceback" not in result.stderr


def test_the_status_table_reads_as_english() -> None:
    from intercom.cli import _status_table

    def door_line(count: int, locked_out: bool = False) -> str:
        status = {"door": {"opened_count": count, "locked_out": locked_out}}
        return _status_table(status).splitlines()[-1]

    assert door_line(0) == "door          opened 0 times"
    assert door_line(1) == "door          opened once"
    assert door_line(3, locked_out=True) == "door          opened 3 times, LOCKED OUT"


def test_no_command_prints_help_and_exits_2() -> None:
    result = intercom()
    assert result.returncode == 2
    assert "usage: intercom" in result.stderr and "watch" in result.stderr
    assert result.stdout == ""


def test_check_without_env_file_checks_the_services_file(tmp_path: Path, monkeypatch, capsys):
    from intercom import cli

    env_file = tmp_path / "intercom.env"
    env_file.write_text(
        "INTERCOM_GPIO=mock\nINTERCOM_AUDIO_INPUT=wav:door.wav\nINTERCOM_AUDIO_OUTPUT=null\n"
        "INTERCOM_RING_TIMEOUT=abc\nINTERCOM_ON_RING=no-such-notifier --now\n"
    )
    env_file.chmod(0o600)
    monkeypatch.setattr(cli, "SERVICE_ENV_FILE", str(env_file))
    for key in [k for k in os.environ if k.startswith("INTERCOM_")]:
        monkeypatch.delenv(key)
    assert cli.main(["check"]) == 2
    out, err = capsys.readouterr()
    assert f"checking {env_file}" in out
    assert "INTERCOM_RING_TIMEOUT: 'abc' is not a number of seconds" in err
    assert "fix the settings first" in out  # the rest waits for a usable configuration

    env_file.write_text(env_file.read_text().replace("INTERCOM_RING_TIMEOUT=abc\n", ""))
    assert cli.main(["check"]) == 2
    out, err = capsys.readouterr()
    # One pass: the WAV file (looked for where the service runs) and the hook's program.
    assert "'door.wav' is a relative path: the service looks for /run/intercom/door.wav" in out
    assert "INTERCOM_AUDIO_INPUT: " in err
    assert "INTERCOM_ON_RING: 'no-such-notifier' is not found on PATH" in err
    assert "2 problem(s)" in err


def test_check_without_any_file_says_so(tmp_path: Path, monkeypatch, capsys) -> None:
    from intercom import cli

    monkeypatch.setattr(cli, "SERVICE_ENV_FILE", str(tmp_path / "absent.env"))
    for key in [k for k in os.environ if k.startswith("INTERCOM_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("INTERCOM_GPIO", "mock")
    monkeypatch.setenv("INTERCOM_AUDIO_INPUT", "null")
    monkeypatch.setenv("INTERCOM_AUDIO_OUTPUT", "null")
    assert cli.main(["check"]) == 0
    out = capsys.readouterr().out
    assert f"no {tmp_path / 'absent.env'} (install with scripts/install.sh" in out
    assert "intercom check --env-file PATH" in out


def test_the_service_directory_is_the_units_working_directory() -> None:
    from intercom import cli

    unit = (Path(__file__).resolve().parents[1] / "systemd" / "intercom.service").read_text()
    assert f"WorkingDirectory={cli.SERVICE_DIRECTORY}\n" in unit
    assert f"EnvironmentFile={cli.SERVICE_ENV_FILE}\n" in unit


def test_watch_follows_the_daemon_until_ctrl_c(tmp_path: Path) -> None:
    import asyncio
    import signal

    from tests.integration.daemon_process import DaemonProcess

    settings = {
        "INTERCOM_SIP_BIND": "127.0.0.1:0", "INTERCOM_AUDIO_INPUT": "null",
        "INTERCOM_AUDIO_OUTPUT": "null", "INTERCOM_DOOR_RELAY_PIN": "22",
    }  # fmt: skip

    async def main() -> tuple[int, str]:
        async with DaemonProcess(tmp_path, settings) as daemon:
            watcher = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "intercom", "watch", env=daemon.env,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            )  # fmt: skip
            assert watcher.stdout is not None
            lines = []
            while not lines or not lines[-1].startswith("-- following"):
                lines.append((await asyncio.wait_for(watcher.stdout.readline(), 10)).decode())
            assert (await daemon.cli("open"))[0] == 0
            lines.append((await asyncio.wait_for(watcher.stdout.readline(), 10)).decode())
            watcher.send_signal(signal.SIGINT)
            code = await asyncio.wait_for(watcher.wait(), 10)
            assert await daemon.terminate() == 0
            return code, "".join(lines)

    code, out = asyncio.run(main())
    assert code == 0
    assert out.startswith("registration  disabled")
    assert "door opened (1 since the start)" in out.splitlines()[-1]


def test_run_freezes_the_start_up_heap_once_the_daemon_is_ready(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from intercom import cli
    from intercom.runtime import daemon, heap

    handed: list[object] = []

    async def run(self: daemon.Intercom, *, after_start: object = None) -> int:
        handed.append(after_start)
        return 0

    monkeypatch.setattr(daemon.Intercom, "run", run)
    monkeypatch.setattr(cli, "_setup_logging", lambda level: None)  # the test process's logging
    for key in [k for k in os.environ if k.startswith("INTERCOM_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("INTERCOM_GPIO", "mock")
    monkeypatch.setenv("INTERCOM_CONTROL_SOCKET", str(tmp_path / "control.sock"))
    assert cli.main(["run"]) == 0
    assert handed == [heap.freeze_start_up_objects]
