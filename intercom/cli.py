"""The ``intercom`` command (design.md's contract): run, check, press, hangup, open, status,
devices, demo.

This module parses and dispatches; the work is in :mod:`intercom.runtime`. A user mistake
(a bad setting, a daemon that is not running) is one clear message and an exit code, never a
traceback: 2 for invalid settings, 1 for an unreachable daemon or a failed run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
from collections.abc import Sequence
from typing import Any

from intercom import __version__
from intercom.errors import IntercomError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="intercom", description="SIP door intercom")
    parser.add_argument("--version", action="version", version=f"intercom {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    def env_file(sub: argparse.ArgumentParser) -> None:
        sub.add_argument(
            "--env-file", metavar="PATH", help="KEY=VALUE settings, as systemd's EnvironmentFile"
        )

    env_file(commands.add_parser("run", help="run the intercom in the foreground"))
    env_file(commands.add_parser("check", help="check settings, audio devices and GPIO"))
    for name, text in (
        ("press", "press the doorbell of the running intercom"),
        ("hangup", "end the running intercom's call (CANCEL or BYE)"),
        ("open", "pulse the door relay of the running intercom"),
        ("status", "show registration, call, last call and door"),
    ):
        sub = commands.add_parser(name, help=text)
        env_file(sub)
        sub.add_argument("--socket", metavar="PATH", help="the control socket")
        if name == "status":
            sub.add_argument("--json", action="store_true", help="print the status as JSON")
    commands.add_parser("devices", help="list the audio devices PyAudio sees")
    commands.add_parser("demo", help="a doorbell call on loopback with a simulated phone")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    try:
        if args.command == "run":
            return _run(args.env_file)
        if args.command == "check":
            return _check(args.env_file)
        if args.command in ("press", "hangup", "open", "status"):
            return _control(args)
        if args.command == "devices":
            return _devices()
        return _demo()
    except KeyboardInterrupt:
        return 130


# -- run and check ------------------------------------------------------------------------------


def _load(env_file: str | None) -> Any:
    from intercom.app.settings import SettingsError, load_settings

    try:
        return load_settings(os.environ, env_file)
    except SettingsError as exc:
        print(f"intercom: {len(exc.problems)} problem(s) in the settings:", file=sys.stderr)
        for problem in exc.problems:
            print(f"  {problem}", file=sys.stderr)
        return None


def _setup_logging(level: str) -> None:
    # No timestamps: journald adds them.
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


def _run(env_file: str | None) -> int:
    settings = _load(env_file)
    if settings is None:
        return 2
    _setup_logging(settings.log_level)
    for warning in settings.warnings:
        logging.getLogger("intercom").warning("settings: %s", warning)
    from intercom.runtime.daemon import Intercom
    from intercom.runtime.hardware import Hardware

    async def main() -> int:
        loop = asyncio.get_running_loop()

        def hardware() -> Hardware:  # opened once the first REGISTER is out
            from intercom.runtime.hardware import open_hardware

            return open_hardware(settings, loop)

        return await Intercom(settings, hardware).run()

    try:
        return asyncio.run(main())
    except IntercomError as exc:
        logging.getLogger("intercom").error("x %s", exc)
        return 1


def _check(env_file: str | None) -> int:
    settings = _load(env_file)
    if settings is None:
        return 2
    from intercom.hw.audio import validate_spec
    from intercom.runtime.hardware import check_hardware

    problems = [
        f"INTERCOM_AUDIO_{key}: {problem}"
        for key, problem in (
            ("INPUT", validate_spec(settings.audio_input, "input")),
            ("OUTPUT", validate_spec(settings.audio_output, "output")),
        )
        if problem is not None
    ]
    problems += check_hardware(settings)
    from intercom.runtime.tls import setup_problem

    tls = setup_problem(settings.sip_transport, settings.tls_ca_file, settings.tls_verify)
    problems += [tls] if tls is not None else []
    print("settings:")
    for key, value in settings.redacted().items():
        print(f"  {key}={value}")
    for warning in settings.warnings:
        print(f"warning: {warning}")
    if problems:
        print(f"intercom: {len(problems)} problem(s):", file=sys.stderr)
        for problem in problems:
            print(f"  {problem}", file=sys.stderr)
        return 2
    print("ok: settings, audio devices and GPIO are usable")
    return 0


# -- the control socket -------------------------------------------------------------------------


def _control(args: argparse.Namespace) -> int:
    from intercom.runtime.control import ControlError, send_command

    path = args.socket or os.environ.get("INTERCOM_CONTROL_SOCKET")
    if not path and args.env_file:
        settings = _load(args.env_file)
        if settings is None:
            return 2
        path = settings.control_socket
    if not path:
        from intercom.app.settings import Settings

        path = Settings().control_socket  # the default, known in one place
    try:
        reply = asyncio.run(send_command(path, args.command))
    except ControlError as exc:
        print(f"intercom: {exc}", file=sys.stderr)
        return 1
    if args.command == "status":
        status = reply.get("status", {})
        print(json.dumps(status, indent=2) if args.json else _status_table(status))
    else:
        print(f"{args.command}: accepted")
    return 0


def _status_table(status: dict[str, Any]) -> str:
    registration = status.get("registration", {})
    call = status.get("call", {})
    last = status.get("last_call", {})
    door = status.get("door", {})
    last_status = registration.get("last_status")
    rows = [
        ("registration", f"{registration.get('state')}"
         + (f" (last SIP status {last_status})" if last_status else "")
         + (f": {registration['reason']}" if registration.get("reason") else "")),
        ("call", str(call.get("state"))),
        ("last call", _last_call(last)),
        ("door", _opened(door.get("opened_count", 0))
         + (", LOCKED OUT" if door.get("locked_out") else "")),
    ]  # fmt: skip
    return "\n".join(f"{name:<13} {value}" for name, value in rows)


def _opened(count: int) -> str:
    return "opened once" if count == 1 else f"opened {count} times"


def _last_call(last: dict[str, Any]) -> str:
    if not last.get("outcome"):
        return "none yet"
    text = f"{last['outcome']}"
    if last.get("codec"):
        text += (
            f", {last['codec']}, {last.get('duration') or 0:.1f} s, sent {last.get('packets_sent')}"
            f", received {last.get('packets_received')}, lost {last.get('packets_lost')}"
            f", jitter {last.get('jitter_ms')} ms"
        )
    return text


# -- devices and demo ---------------------------------------------------------------------------


def _devices() -> int:
    from intercom.hw.audio import AudioDeviceError
    from intercom.hw.pyaudio_device import list_devices

    try:
        devices = list_devices()
    except AudioDeviceError as exc:
        print(f"intercom: {exc}", file=sys.stderr)
        return 1
    if not devices:
        print("no audio devices (is the user in the audio group?)")
    for device in devices:
        print(device.describe())
    return 0


def _demo() -> int:
    from intercom.demo.run import run_demo

    return run_demo()
