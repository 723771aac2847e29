"""The ``intercom`` command (design.md's contract): run, check, press, hangup, open, status,
watch, devices, demo.

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
from typing import Any, Literal

from intercom import __version__
from intercom.errors import IntercomError

SERVICE_ENV_FILE = "/etc/intercom/intercom.env"
"""The service's settings (systemd/intercom.service's EnvironmentFile=): what ``intercom check``
checks without ``--env-file``."""
SERVICE_DIRECTORY = "/run/intercom"
"""The service's WorkingDirectory=: where a relative file path in the settings points."""
SERVICE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
"""The PATH systemd gives a service (where INTERCOM_ON_RING's command is looked for)."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="intercom", description="SIP door intercom")
    parser.add_argument("--version", action="version", version=f"intercom {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    def env_file(sub: argparse.ArgumentParser) -> None:
        sub.add_argument(
            "--env-file", metavar="PATH", help="KEY=VALUE settings, as systemd's EnvironmentFile"
        )

    env_file(commands.add_parser("run", help="run the intercom in the foreground"))
    check = commands.add_parser(
        "check",
        help=f"check settings, audio devices and GPIO (default: {SERVICE_ENV_FILE})",
    )
    env_file(check)
    for name, text in (
        ("press", "press the doorbell of the running intercom"),
        ("hangup", "end the running intercom's call (CANCEL or BYE)"),
        ("open", "pulse the door relay of the running intercom"),
        ("status", "show registration, call, last ring, door and the last calls"),
        ("watch", "follow the running intercom live (rings, calls, door) until Ctrl-C"),
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
        parser.print_help(sys.stderr)
        return 2
    try:
        if args.command == "run":
            return _run(args.env_file)
        if args.command == "check":
            return _check(args.env_file)
        if args.command in ("press", "hangup", "open", "status", "watch"):
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
    """Lines on stderr without timestamps (journald adds them); with their syslog priority
    (``<4>``) when stderr is the journal."""
    from intercom.runtime.systemd import PriorityFormatter, stderr_is_journal

    text = "%(levelname)s %(name)s: %(message)s"
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        PriorityFormatter(text) if stderr_is_journal() else logging.Formatter(text)
    )
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(getattr(logging, level.upper(), logging.INFO))


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

        from intercom.runtime.heap import freeze_start_up_objects

        return await Intercom(settings, hardware).run(after_start=freeze_start_up_objects)

    try:
        return asyncio.run(main())
    except IntercomError as exc:
        logging.getLogger("intercom").error("x %s", exc)
        return 1


def _check(env_file: str | None) -> int:
    """Every problem in one pass: the settings, then what they name (audio, GPIO, the ring
    hook's program), as the service would find them."""
    if env_file is None:
        if os.path.exists(SERVICE_ENV_FILE):
            env_file = SERVICE_ENV_FILE
        else:
            print(f"no {SERVICE_ENV_FILE} (install with scripts/install.sh, or name a file: "
                  "intercom check --env-file PATH); checking the environment's INTERCOM_* "
                  "keys alone")  # fmt: skip
    if env_file is not None:
        print(f"checking {env_file} (the environment's INTERCOM_* keys override it)")
    from intercom.app.settings import SettingsError, load_settings

    problems: list[str] = []
    try:
        settings = load_settings(os.environ, env_file)
    except SettingsError as exc:
        problems += exc.problems
        settings = None
    warnings: list[str] = []
    if settings is not None:
        problems += _check_what_settings_name(settings, warnings)
        print("settings:")
        for key, value in settings.redacted().items():
            print(f"  {key}={value}")
        warnings[:0] = settings.warnings
    else:
        print("audio devices, GPIO and the ring hook not checked: fix the settings first")
    for warning in warnings:
        print(f"warning: {warning}")
    if problems:
        where = " in the settings" if settings is None else ""
        print(f"intercom: {len(problems)} problem(s){where}:", file=sys.stderr)
        for problem in problems:
            print(f"  {problem}", file=sys.stderr)
        return 2
    print("ok: settings, audio devices, GPIO and the ring hook are usable")
    return 0


def _check_what_settings_name(settings: Any, warnings: list[str]) -> list[str]:
    from intercom.hw.audio import validate_spec
    from intercom.runtime.hardware import check_hardware

    problems: list[str] = []
    kinds: tuple[tuple[str, str, Literal["input", "output"]], ...] = (
        ("INTERCOM_AUDIO_INPUT", settings.audio_input, "input"),
        ("INTERCOM_AUDIO_OUTPUT", settings.audio_output, "output"),
    )
    for key, spec, kind in kinds:
        path = spec[4:].strip() if spec.startswith("wav:") else None
        if path and not path.startswith("/"):
            spec = f"wav:{os.path.join(SERVICE_DIRECTORY, path)}"
            warnings.append(f"{key}: {path!r} is a relative path: the service looks for {spec[4:]} "
                            f"(its working directory is {SERVICE_DIRECTORY}); "
                            "write an absolute path")  # fmt: skip
        problem = validate_spec(spec, kind)
        if problem is not None:
            problems.append(f"{key}: {problem}")
    problems += check_hardware(settings)
    if settings.on_ring:
        from intercom.runtime.ring_hook import find_program

        problem = find_program(settings.on_ring, SERVICE_PATH)
        if problem is not None:
            problems.append(f"INTERCOM_ON_RING: {problem}")
    from intercom.runtime.tls import setup_problem

    tls = setup_problem(settings.sip_transport, settings.tls_ca_file, settings.tls_verify)
    problems += [tls] if tls is not None else []
    return problems


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
    if args.command == "watch":
        return _watch(path)
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


def _watch(path: str) -> int:
    """Print the daemon's events as they come, until Ctrl-C (0) or the daemon goes (1)."""
    from intercom.runtime.control import ControlError, watch

    async def follow() -> None:
        async for message in watch(path):
            if "status" in message:
                print(_status_table(message["status"]), flush=True)
                print("-- following events (Ctrl-C to stop)", flush=True)
            else:
                print(_event_line(message), flush=True)

    try:
        asyncio.run(follow())
    except ControlError as exc:
        print(f"intercom: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    return 0


def _event_line(event: dict[str, Any]) -> str:
    """One event of ``intercom watch`` as a line people read."""
    when = _when(event.get("time")) or "-"
    kind = event.get("event")
    if kind == "registration":
        text = f"registration: {event.get('state')}"
        if event.get("reason"):
            text += f" ({event['reason']})"
    elif kind == "ring":
        text = "ring: the doorbell was pressed"
    elif kind == "call":
        text = f"call: {event.get('state')}"
        if event.get("direction"):
            text += f" ({event['direction']})"
        if event.get("peer"):
            text += f", {event['peer']}"
    elif kind == "call ended":
        text = "call ended: " + _call_summary(event)
    elif kind == "door opened":
        text = f"door opened ({event.get('count')} since the start)"
    elif kind == "door code":
        text = "door code locked out" if event.get("locked_out") else "door code usable again"
    elif kind == "dropped":
        text = f"({event.get('count')} events dropped: this watcher was too slow)"
    else:
        text = json.dumps(event)
    return f"{when}  {text}"


def _when(iso: object) -> str | None:
    """An ISO 8601 time as ``2026-12-07 10:15:02+01:00``."""
    return iso.replace("T", " ") if isinstance(iso, str) else None


def _call_summary(call: dict[str, Any]) -> str:
    text = f"{call.get('direction', '')} {call.get('outcome')}".strip()
    text += f", {call.get('duration') or 0:.1f} s"
    if call.get("codec"):
        text += f", {call['codec']}"
    if call.get("answered_by"):
        who = "answered by" if call.get("direction") == "outgoing" else "from"
        text += f", {who} {call['answered_by']}"
    return text


def _status_table(status: dict[str, Any]) -> str:
    registration = status.get("registration", {})
    call = status.get("call", {})
    last = status.get("last_call", {})
    door = status.get("door", {})
    last_status = registration.get("last_status")
    since = _when(registration.get("since"))
    rows = [
        ("registration", f"{registration.get('state')}"
         + (f" since {since}" if since else "")
         + (f" (last SIP status {last_status})" if last_status else "")
         + (f": {registration['reason']}" if registration.get("reason") else "")),
        ("call", str(call.get("state"))),
        ("last ring", _when(status.get("last_ring")) or "none yet"),
        ("last call", _last_call(last)),
        ("door", _opened(door.get("opened_count", 0))
         + (", LOCKED OUT" if door.get("locked_out") else "")),
    ]  # fmt: skip
    if "last_ring" not in status:
        rows.pop(2)  # an older daemon
    lines = [f"{name:<13} {value}" for name, value in rows]
    history = status.get("history") or []
    if history:
        lines += ["", f"last {len(history)} call(s), newest first:"]
        lines += [f"  {_when(c.get('time'))}  {_call_summary(c)}" for c in history]
    return "\n".join(lines)


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
