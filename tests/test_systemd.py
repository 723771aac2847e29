"""The service unit and the install script: what systemd and a Pi's root shell will see.

The unit is checked three ways: its directives against the contract of design.md (notify,
watchdog, restart, env file, user and groups, runtime directory, device access), systemd's own
``systemd-analyze verify`` (where systemd is installed, as on CI), and ``systemd-analyze
security`` so that loosening the sandbox shows. ``verify`` exits 0 even for unknown keys and
unparsable values (it only warns), so the tests read its output, and one test proves that a
broken unit is caught. The install script only ever runs with ``--dry-run`` here (and the
uninstall for real only under ``--prefix`` in a scratch directory): nothing on the host changes.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
import tempfile
from pathlib import Path
from xml.etree import ElementTree

import pytest

from intercom.app.settings import load_settings
from intercom.runtime.priority import MEDIA_NICE, RT_PRIORITY

REPO = Path(__file__).resolve().parents[1]
UNIT = REPO / "systemd" / "intercom.service"
ENV_EXAMPLE = REPO / "systemd" / "intercom.env.example"
INSTALL = REPO / "scripts" / "install.sh"
UNINSTALL = REPO / "scripts" / "uninstall.sh"

SYSTEMD_ANALYZE = shutil.which("systemd-analyze")
needs_systemd_analyze = pytest.mark.skipif(
    SYSTEMD_ANALYZE is None, reason="systemd-analyze is not installed"
)

Unit = dict[str, dict[str, list[str]]]


def parse_unit(text: str) -> Unit:
    """Sections -> keys -> every value in order (DeviceAllow= and friends repeat)."""
    unit: Unit = {}
    section: dict[str, list[str]] | None = None
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("[") and line.endswith("]"):
            section = unit.setdefault(line[1:-1], {})
            continue
        assert section is not None, f"line {number} is outside any section: {raw!r}"
        assert "=" in line, f"line {number} is not KEY=VALUE: {raw!r}"
        assert not line.endswith("\\"), f"line {number}: no continuation lines, please"
        key, value = line.split("=", 1)
        section.setdefault(key.strip(), []).append(value.strip())
    return unit


@pytest.fixture(scope="module")
def unit() -> Unit:
    return parse_unit(UNIT.read_text())


def one(unit: Unit, section: str, key: str) -> str:
    values = unit.get(section, {}).get(key)
    assert values is not None, f"[{section}] has no {key}="
    assert len(values) == 1, f"[{section}] sets {key}= {len(values)} times: {values}"
    return values[0]


# -- the unit against the contract ---------------------------------------------------------------

SERVICE_DIRECTIVES = [
    # Life cycle: READY=1 after the first registration attempt, WATCHDOG=1 from the event loop,
    # both sent by the main process.
    ("Type", "notify"),
    ("NotifyAccess", "main"),
    ("WatchdogSec", "30"),
    ("Restart", "on-failure"),
    ("RestartSec", "5"),
    ("RestartPreventExitStatus", "2"),  # an invalid env file: restarting cannot help
    ("TimeoutStopSec", "10"),  # the daemon needs at most 5 s to hang up and un-register
    ("KillSignal", "SIGTERM"),
    ("ExecStart", "/opt/intercom/venv/bin/intercom run"),
    ("EnvironmentFile", "/etc/intercom/intercom.env"),
    ("User", "intercom"),
    ("Group", "intercom"),
    ("SupplementaryGroups", "gpio audio"),
    ("RuntimeDirectory", "intercom"),
    ("RuntimeDirectoryMode", "0750"),
    ("StateDirectory", "intercom"),  # the door-code lockout outlives a restart
    ("StateDirectoryMode", "0700"),
    ("WorkingDirectory", "/run/intercom"),  # lgpio's notification pipe goes there
    ("UMask", "0007"),
    # The sandbox.
    ("ProtectSystem", "strict"),
    ("ProtectHome", "yes"),
    ("PrivateTmp", "yes"),
    ("NoNewPrivileges", "yes"),
    ("DevicePolicy", "closed"),
    ("ProtectKernelTunables", "yes"),
    ("ProtectKernelModules", "yes"),
    ("ProtectControlGroups", "yes"),
    ("RestrictAddressFamilies", "AF_UNIX AF_INET AF_INET6 AF_NETLINK"),
    ("RestrictNamespaces", "yes"),
    ("LockPersonality", "yes"),
    ("MemoryDenyWriteExecute", "yes"),
    ("SystemCallArchitectures", "native"),
    ("CapabilityBoundingSet", ""),  # SIP on 5060 and RTP above 1024 need no capability
    ("AmbientCapabilities", ""),
]


@pytest.mark.parametrize(
    ("key", "value"), SERVICE_DIRECTIVES, ids=[k for k, _ in SERVICE_DIRECTIVES]
)
def test_service_directive(unit: Unit, key: str, value: str) -> None:
    assert one(unit, "Service", key) == value


def test_devices_reachable_are_the_gpio_chips_and_the_sound_cards(unit: Unit) -> None:
    # Device groups of /proc/devices: every /dev/gpiochipN (the Pi 5's included) and all of
    # /dev/snd (a USB card plugged in later too).
    assert unit["Service"]["DeviceAllow"] == ["char-gpiochip rw", "char-alsa rw"]
    # Each of these would cut the service off from /dev/gpiochip* or /dev/snd, or (ProcSubset)
    # from /proc/cpuinfo, which gpiozero reads to recognise the board.
    service = unit["Service"]
    assert service.get("PrivateDevices", ["no"]) == ["no"]
    assert service.get("PrivateUsers", ["no"]) == ["no"]
    assert service.get("ProcSubset", ["all"]) == ["all"]
    assert "ReadWritePaths" not in service, "the service writes only to its RuntimeDirectory"


def test_control_socket_default_lies_in_the_runtime_directory(unit: Unit) -> None:
    runtime_dir = Path("/run") / one(unit, "Service", "RuntimeDirectory")
    socket = Path(load_settings({}, None).control_socket)
    assert socket.parent == runtime_dir
    assert Path(one(unit, "Service", "WorkingDirectory")) == runtime_dir


def test_umask_leaves_nothing_to_others(unit: Unit) -> None:
    umask = int(one(unit, "Service", "UMask"), 8)
    assert umask & 0o007 == 0o007  # no access for others
    assert umask & 0o070 == 0  # the intercom group (the CLI's users) keeps read and write


def test_unit_waits_for_the_network_and_starts_at_boot(unit: Unit) -> None:
    assert "network-online.target" in one(unit, "Unit", "Wants").split()
    assert "network-online.target" in one(unit, "Unit", "After").split()
    assert one(unit, "Install", "WantedBy") == "multi-user.target"


# -- systemd's own checks ----------------------------------------------------------------------


def _analyze_help(verb: str) -> str:
    assert SYSTEMD_ANALYZE is not None
    done = subprocess.run(
        [SYSTEMD_ANALYZE, verb, "--help"], capture_output=True, text=True, timeout=30
    )
    return done.stdout + done.stderr


def _testable_copy(tmp_path: Path, extra_service_lines: str = "") -> Path:
    """The unit with an ExecStart and EnvironmentFile that exist here (verify checks them)."""
    env_file = tmp_path / "intercom.env"
    env_file.write_text("INTERCOM_GPIO=mock\n")
    text = UNIT.read_text()
    text, execs = re.subn(r"(?m)^ExecStart=\S+", "ExecStart=/bin/true", text)
    text, envs = re.subn(r"(?m)^EnvironmentFile=.*$", f"EnvironmentFile={env_file}", text)
    assert execs == 1 and envs == 1
    if extra_service_lines:
        text = text.replace("[Install]", extra_service_lines + "\n[Install]")
    copy = tmp_path / "intercom.service"
    copy.write_text(text)
    return copy


def _verify(path: Path) -> subprocess.CompletedProcess[str]:
    assert SYSTEMD_ANALYZE is not None
    help_text = _analyze_help("verify")
    options = [opt for opt in ("--man=no", "--generators=no") if opt.split("=")[0] in help_text]
    return subprocess.run(
        [SYSTEMD_ANALYZE, "verify", *options, str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "SYSTEMD_LOG_COLOR": "0", "SYSTEMD_PAGER": ""},
    )


def _complaints(done: subprocess.CompletedProcess[str], path: Path) -> list[str]:
    """verify's lines about our unit (it prefixes them with the file or unit name)."""
    return [line for line in (done.stdout + done.stderr).splitlines() if path.name in line]


@needs_systemd_analyze
def test_systemd_analyze_verify_accepts_the_unit(tmp_path: Path) -> None:
    copy = _testable_copy(tmp_path)
    done = _verify(copy)
    assert done.returncode == 0, done.stdout + done.stderr
    assert _complaints(done, copy) == []


@needs_systemd_analyze
def test_systemd_analyze_verify_check_catches_mistakes(tmp_path: Path) -> None:
    # The check above must be able to fail: verify only warns (exit 0) about these.
    copy = _testable_copy(tmp_path, "WatchdogSecs=30\nDeviceAllow=char-gpiochip rwx")
    complaints = "\n".join(_complaints(_verify(copy), copy))
    assert "WatchdogSecs" in complaints
    assert "rwx" in complaints


@needs_systemd_analyze
def test_sandbox_exposure_stays_low(tmp_path: Path) -> None:
    if "--offline" not in _analyze_help("security"):
        pytest.skip("this systemd-analyze has no security --offline")
    assert SYSTEMD_ANALYZE is not None
    copy = _testable_copy(tmp_path)
    done = subprocess.run(
        [SYSTEMD_ANALYZE, "security", "--offline=yes", "--no-pager", str(copy)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "SYSTEMD_LOG_COLOR": "0"},
    )
    match = re.search(r"Overall exposure level for \S+: (\d+\.\d)", done.stdout)
    assert match, done.stdout + done.stderr
    # 1.8 today ("OK"); 10 is a service with no sandbox at all. What remains is what the
    # intercom needs: the network, the GPIO and sound devices, its groups.
    assert float(match.group(1)) <= 2.5, done.stdout


# -- the install script ------------------------------------------------------------------------


def _script(script: Path, *args: str) -> subprocess.CompletedProcess[str]:
    # Never without --dry-run, except an uninstall confined to a scratch --prefix.
    uninstall = script == UNINSTALL or "--uninstall" in args
    assert "--dry-run" in args or (uninstall and "--prefix" in args), "this would change the host"
    return subprocess.run(["bash", str(script), *args], capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("script", [INSTALL, UNINSTALL], ids=["install", "uninstall"])
def test_scripts_parse_and_are_executable(script: Path) -> None:
    done = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert script.stat().st_mode & stat.S_IXUSR


def test_shellcheck() -> None:
    """shellcheck comes with ./dev.sh setup: a missing one fails here, it is never skipped."""
    shellcheck = shutil.which("shellcheck")
    assert shellcheck is not None, "shellcheck is not installed: run ./dev.sh setup"
    scripts = [INSTALL, UNINSTALL, REPO / "dev.sh", REPO / ".ci" / "run"]
    done = subprocess.run([shellcheck, *map(str, scripts)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout


def test_install_dry_run_lists_every_step_and_changes_nothing(tmp_path: Path) -> None:
    root = tmp_path / "root"
    done = _script(INSTALL, "--dry-run", "--prefix", str(root))
    assert done.returncode == 0, done.stderr
    out = done.stdout
    expected = [
        # Host-wide steps, named but skipped under --prefix.
        r"skipped under --prefix: apt-get install .*alsa-utils python3-numpy python3-pyaudio "
        r"python3-lgpio",
        r"skipped under --prefix: useradd --system .*--home-dir /var/lib/intercom "
        r".*--shell /usr/sbin/nologin .*--groups gpio\\?,audio intercom",
        # The venv sees the distribution's python3-lgpio; the project is pip-installed from a
        # copy of the checkout.
        rf"\+ python3 -m venv --clear --system-site-packages {root}/opt/intercom/venv",
        rf"\+ {root}/opt/intercom/venv/bin/python -m pip install .*intercom-build",
        rf"\+ ln -sfn /opt/intercom/venv/bin/intercom {root}/usr/local/bin/intercom",
        rf"\+ install -D -m 0644 {REPO}/systemd/intercom.service "
        rf"{root}/etc/systemd/system/intercom.service",
        rf"\+ install -d -m 0750 {root}/etc/intercom",
        # The env file holds the password: 0600, read by systemd as root.
        rf"\+ install -m 0600 {REPO}/systemd/intercom.env.example {root}/etc/intercom/intercom.env",
        rf"\+ systemctl --root={root} enable intercom.service",
        r"dry run: nothing was changed",
    ]
    for pattern in expected:
        assert re.search(pattern, out), f"missing step {pattern!r} in:\n{out}"
    positions = [re.search(p, out).start() for p in expected]  # type: ignore[union-attr]
    assert positions == sorted(positions), "steps out of order"
    assert not root.exists()


@pytest.mark.parametrize(
    ("arch", "binary"),
    [("x86_64", "--prefer-binary"), ("aarch64", "--prefer-binary"),
     ("armv7l", "--only-binary=:all:"), ("armv6l", "--only-binary=:all:")],
)  # fmt: skip
def test_install_plan_builds_nothing_on_any_board(tmp_path: Path, arch: str, binary: str) -> None:
    """The distribution's numpy, PyAudio and lgpio, a venv that sees them, and pip that never
    compiles on a 32-bit Pi (wheels only); the same plan whatever machine runs the test."""
    root = tmp_path / "root"
    done = _script(INSTALL, "--dry-run", "--arch", arch, "--prefix", str(root))
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert f"installing the intercom from {REPO} under {root} for {arch}" in out
    apt = re.search(r"skipped under --prefix: apt-get install (.*)", out)
    assert apt is not None, out
    packages = apt[1].split()
    assert {"python3-numpy", "python3-pyaudio", "python3-lgpio", "python3-venv"} <= set(packages)
    assert not {"gcc", "python3-dev", "portaudio19-dev", "build-essential"} & set(packages)
    assert f"+ python3 -m venv --clear --system-site-packages {root}/opt/intercom/venv" in out
    pip = re.search(r"\+ \S+/venv/bin/python -m pip install (.*)", out)
    assert pip is not None, out
    assert binary in pip[1].split()
    assert ("--only-binary=:all:" in pip[1]) == arch.startswith("armv")
    assert f"+ install -D -m 0644 {REPO}/systemd/intercom.service" in out
    assert f"+ install -m 0600 {REPO}/systemd/intercom.env.example {root}/etc/intercom/" in out
    assert "dry run: nothing was changed" in out and not root.exists()


def test_install_plans_for_another_board_only_as_a_dry_run(tmp_path: Path) -> None:
    other = "armv6l" if os.uname().machine != "armv6l" else "x86_64"
    done = subprocess.run(["bash", str(INSTALL), "--arch", other, "--prefix", str(tmp_path)],
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 1
    assert f"--arch {other} is not this machine" in done.stderr
    assert not any(tmp_path.iterdir())


def test_the_distribution_name_is_not_pypis_intercom() -> None:
    """PyPI's ``intercom`` is another project: ours is sip-door-intercom, its command and
    import package still ``intercom``."""
    text = (REPO / "pyproject.toml").read_text()
    assert re.search(r'(?m)^name = "sip-door-intercom"$', text)
    assert re.search(r'(?m)^intercom = "intercom.cli:main"$', text)


def test_install_on_this_host_dry_run_names_the_host_steps() -> None:
    before = {path: path.exists() for path in map(Path, ("/etc/intercom", "/opt/intercom"))}
    done = _script(INSTALL, "--dry-run")
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "skipped under --prefix" not in out
    assert "python3-pyaudio" in out  # installed, or already there
    assert "gcc" not in out and "-dev" not in out  # nothing is compiled
    assert re.search(r"\+ (useradd .*|usermod --append --groups gpio\\?,audio )intercom", out)
    assert "+ install -d -m 0750 -o root -g intercom /etc/intercom" in out
    assert re.search(r"\+ systemctl enable intercom\.service", out)
    assert {path: path.exists() for path in before} == before


def test_install_never_overwrites_an_existing_env_file(tmp_path: Path) -> None:
    root = tmp_path / "root"
    env = root / "etc" / "intercom" / "intercom.env"
    env.parent.mkdir(parents=True)
    env.write_text("INTERCOM_SIP_PASSWORD=mine\n")
    env.chmod(0o644)
    done = _script(INSTALL, "--dry-run", "--prefix", str(root))
    assert done.returncode == 0, done.stderr
    assert f"keeping your {env}" in done.stdout
    assert re.search(rf"WARNING: {env} is readable by more than root.*chmod 0600", done.stdout)
    assert not re.search(rf"\+ install .*{env}$", done.stdout, re.M)
    assert env.read_text() == "INTERCOM_SIP_PASSWORD=mine\n"


def test_install_refuses_unknown_options() -> None:
    done = subprocess.run(
        ["bash", str(INSTALL), "--dry-run", "--frobnicate"], capture_output=True, text=True
    )
    assert done.returncode == 1
    assert done.stderr.strip() == "install.sh: unknown option '--frobnicate' (see --help)"
    assert done.stdout == ""


def test_install_needs_root_without_dry_run() -> None:
    # As root (CI), the script would really install: run a copy as nobody instead.
    command = ["bash"]
    if os.geteuid() == 0:
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            pytest.skip("running as root and there is no setpriv to drop privileges")
        command = [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", "bash"]
    scratch = Path(tempfile.mkdtemp(prefix="intercom-install-"))
    try:
        scratch.chmod(0o755)
        script = scratch / "install.sh"
        shutil.copy(INSTALL, script)
        script.chmod(0o755)
        done = subprocess.run(
            [*command, str(script)], capture_output=True, text=True, timeout=60, cwd="/"
        )
    finally:
        shutil.rmtree(scratch)
    assert done.returncode == 1, done.stdout
    assert "run it as root" in done.stderr
    assert done.stdout == ""


def test_uninstall_removes_what_install_put_in_place(tmp_path: Path) -> None:
    root = tmp_path / "root"
    for path in (
        "etc/systemd/system/intercom.service",
        "opt/intercom/venv/bin/intercom",
        "etc/intercom/intercom.env",
    ):
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text("x\n")
    link = root / "usr/local/bin/intercom"
    link.parent.mkdir(parents=True)
    link.symlink_to("/opt/intercom/venv/bin/intercom")
    other = root / "usr/local/bin/other"
    other.symlink_to("/usr/bin/true")

    done = _script(UNINSTALL, "--prefix", str(root))
    assert done.returncode == 0, done.stderr
    assert not (root / "etc/systemd/system/intercom.service").exists()
    assert not (root / "opt/intercom").exists()
    assert not link.is_symlink()
    assert other.is_symlink()
    # Settings stay unless --purge.
    assert (root / "etc/intercom/intercom.env").exists()
    assert "--purge removes them" in done.stdout

    done = _script(UNINSTALL, "--purge", "--prefix", str(root))
    assert done.returncode == 0, done.stderr
    assert not (root / "etc/intercom").exists()
    assert "skipped under --prefix: userdel --remove intercom" in done.stdout


def test_example_env_file_is_what_the_installer_copies() -> None:
    # The installer copies it to /etc/intercom/intercom.env: with every key commented out it
    # must start the service with the defaults, not stop it with exit code 2.
    assert ENV_EXAMPLE.is_file()
    settings = load_settings({}, str(ENV_EXAMPLE))
    assert settings.control_socket == "/run/intercom/control.sock"


# -- the wiring guide ------------------------------------------------------------------------------

HARDWARE = REPO / "hardware"


def test_wiring_diagram_is_an_svg_the_guide_shows() -> None:
    root = ElementTree.parse(HARDWARE / "wiring.svg").getroot()
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    text = " ".join("".join(element.itertext()) for element in root.iter())
    for label in ("GPIO17", "GPIO27", "GPIO22", "GND", "1N4007", "330 Ω", "USB sound card"):
        assert label in text
    assert "](wiring.svg)" in (HARDWARE / "README.md").read_text()


def test_settings_in_the_guide_are_valid_and_match_the_diagram() -> None:
    guide = (HARDWARE / "README.md").read_text()
    lines = re.findall(r"(?m)^(INTERCOM_[A-Z_]+)=(.*)$", guide)
    env = dict(lines)
    assert len(env) == len(lines), "a key is set twice in the guide"
    settings = load_settings(env, None)  # SettingsError if the guide tells people nonsense
    assert (settings.button_pin, settings.led_pin, settings.door_relay_pin) == (17, 27, 22)
    assert load_settings({}, None).button_pin == settings.button_pin  # the default
    diagram = (HARDWARE / "wiring.svg").read_text()
    pins = dict(re.findall(r"(INTERCOM_[A-Z_]+_PIN)=(\d+)", diagram))
    assert pins == {
        "INTERCOM_BUTTON_PIN": "17",
        "INTERCOM_LED_PIN": "27",
        "INTERCOM_DOOR_RELAY_PIN": "22",
    }


def test_the_media_thread_may_take_the_priority_it_asks_for(unit: Unit) -> None:
    # runtime/priority.py asks for SCHED_FIFO at RT_PRIORITY, else nice MEDIA_NICE: the unit
    # allows exactly those (a limit below them would leave the thread at normal priority).
    assert one(unit, "Service", "RestrictRealtime") == "no"
    assert one(unit, "Service", "LimitRTPRIO") == str(RT_PRIORITY)
    assert one(unit, "Service", "LimitNICE") == str(MEDIA_NICE)
