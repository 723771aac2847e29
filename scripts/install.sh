#!/usr/bin/env bash
# Install the intercom as a system service on a Raspberry Pi (Raspberry Pi OS / Debian), from
# this checkout. Run it as root; running it again upgrades in place and changes nothing else.
#
#   sudo scripts/install.sh              install or upgrade
#   scripts/install.sh --dry-run         print every step, change nothing (no root needed)
#   sudo scripts/install.sh --uninstall [--purge]
#                                        remove the service and /opt/intercom; --purge also
#                                        removes /etc/intercom and the intercom user
#   scripts/install.sh --prefix DIR      install the files under DIR instead of / (a scratch
#                                        root for tests): packages, users, udev and the running
#                                        systemd are left alone, and the venv only works at DIR
#   scripts/install.sh --arch ARCH       plan for another machine (the output of `uname -m`:
#                                        armv6l, armv7l, aarch64, x86_64), with --dry-run
#
# Nothing is compiled, on any board: the packages with C code come built.
#   1. apt-get: python3-venv, alsa-utils (arecord, aplay, alsamixer, alsactl) and the
#      distribution's builds of the three C extensions the intercom uses: python3-numpy (only
#      for resampling and downmixing), python3-pyaudio (PyPI has no Linux wheel of it) and
#      python3-lgpio (Raspberry Pi OS; plain Debian has none, and PyPI's lgpio is used).
#   2. The system user `intercom` (no login, home /var/lib/intercom) in the gpio and audio
#      groups, which own /dev/gpiochip* and /dev/snd/*; a udev rule gives /dev/gpiochip* to the
#      gpio group where the distribution does not (Raspberry Pi OS does).
#   3. A virtualenv in /opt/intercom/venv with this project (sip-door-intercom) pip-installed
#      into it, and /usr/local/bin/intercom pointing at its command.
#      The venv is made with --system-site-packages so that it sees numpy, PyAudio and lgpio
#      of the distribution: pip keeps every one whose version satisfies pyproject.toml and
#      installs only what is missing or too old. On a 32-bit board (a Pi Zero or Pi 1,
#      armv6l; a Pi 2 or a 32-bit OS, armv7l) pip runs with --only-binary=:all:: it never
#      builds, it takes wheels only (Raspberry Pi OS points pip at piwheels, which has 32-bit
#      ARM wheels of soxr and G722), and fails at once with the name of a package it has no
#      wheel for rather than starting a compiler that is not there. Elsewhere pip prefers
#      wheels (--prefer-binary). Where there is no python3-lgpio package, lgpio comes from
#      PyPI into the venv instead.
#   4. /etc/systemd/system/intercom.service (0644), /etc/intercom (0750 root:intercom) and
#      /etc/intercom/intercom.env from systemd/intercom.env.example, mode 0600 root:root:
#      systemd reads it as root before dropping privileges, so the service user never needs
#      to. An existing env file is never overwritten.
#   5. systemctl daemon-reload, enable; a running service is restarted onto the new version.
set -euo pipefail
umask 022

readonly UNIT_NAME=intercom.service
readonly SERVICE_USER=intercom
readonly SERVICE_HOME=/var/lib/intercom
readonly OPT_DIR=/opt/intercom
readonly VENV_DIR=/opt/intercom/venv
readonly ETC_DIR=/etc/intercom
readonly ENV_FILE=/etc/intercom/intercom.env
readonly UNIT_DIR=/etc/systemd/system
readonly COMMAND_LINK=/usr/local/bin/intercom
readonly UDEV_RULE=/etc/udev/rules.d/99-intercom-gpiochip.rules
readonly APT_PACKAGES=(python3 python3-venv alsa-utils python3-numpy python3-pyaudio)

SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ROOT=""        # --prefix: where / is
BUILD_DIR=""   # the temporary copy pip builds from
DRY_RUN=0
ACTION=install
PURGE=0
ARCH=""        # --arch: the machine planned for (default: uname -m)

usage() {
    sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"
}

die() {
    printf 'install.sh: %s\n' "$*" >&2
    exit 1
}

# Print a step (quoted so that it can be pasted into a shell), then do it unless --dry-run.
run() {
    printf '+'
    printf ' %q' "$@"
    printf '\n'
    if [ "$DRY_RUN" -eq 0 ]; then
        "$@"
    fi
}

# A step that changes the host itself: skipped (and said so) under --prefix.
host() {
    if [ -n "$ROOT" ]; then
        printf '  skipped under --prefix:'
        printf ' %q' "$@"
        printf '\n'
    else
        run "$@"
    fi
}

note() {
    printf -- '- %s\n' "$*"
}

parse_args() {
    while [ "$#" -gt 0 ]; do
        case "$1" in
            --dry-run) DRY_RUN=1 ;;
            --prefix)
                if [ "$#" -lt 2 ] || [ -z "$2" ]; then
                    die "--prefix needs a directory"
                fi
                ROOT=$2
                shift
                ;;
            --prefix=*) ROOT=${1#--prefix=} ;;
            --arch)
                if [ "$#" -lt 2 ] || [ -z "$2" ]; then
                    die "--arch needs a machine name (uname -m)"
                fi
                ARCH=$2
                shift
                ;;
            --arch=*) ARCH=${1#--arch=} ;;
            --uninstall) ACTION=uninstall ;;
            --purge) PURGE=1 ;;
            -h | --help)
                usage
                exit 0
                ;;
            *) die "unknown option '$1' (see --help)" ;;
        esac
        shift
    done
    if [ -n "$ROOT" ]; then
        case "$ROOT" in
            /*) ;;
            *) ROOT="$(pwd)/$ROOT" ;;
        esac
        ROOT=${ROOT%/}
        [ -n "$ROOT" ] || die "--prefix / is the default; leave it out"
    fi
    if [ "$PURGE" -eq 1 ] && [ "$ACTION" != uninstall ]; then
        die "--purge goes with --uninstall"
    fi
    if [ -n "$ARCH" ] && [ "$DRY_RUN" -eq 0 ] && [ "$ARCH" != "$(uname -m)" ]; then
        die "--arch $ARCH is not this machine ($(uname -m)): only a --dry-run can plan for it"
    fi
    ARCH=${ARCH:-$(uname -m)}
    if [ "$DRY_RUN" -eq 0 ] && [ -z "$ROOT" ] && [ "$(id -u)" -ne 0 ]; then
        die "run it as root (sudo $0), or with --dry-run to see what it would do"
    fi
}

# -- install --------------------------------------------------------------------------------

check_checkout() {
    local file
    for file in pyproject.toml intercom/__init__.py systemd/$UNIT_NAME \
        systemd/intercom.env.example; do
        [ -f "$SRC/$file" ] || die "$SRC/$file is missing: run the script from a complete checkout"
    done
}

apt_has() {
    apt-cache show "$1" >/dev/null 2>&1
}

install_packages() {
    local packages=("${APT_PACKAGES[@]}") missing=() present=() pkg
    if [ -n "$ROOT" ]; then
        host apt-get install "${packages[@]}" python3-lgpio
        return
    fi
    if ! command -v apt-get >/dev/null 2>&1; then
        die "there is no apt-get: this script is for Raspberry Pi OS and Debian"
    fi
    # Raspberry Pi OS (and Ubuntu) package lgpio; plain Debian does not.
    if apt_has python3-lgpio; then
        packages+=(python3-lgpio)
    fi
    for pkg in "${packages[@]}"; do
        if dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
            present+=("$pkg")
        else
            missing+=("$pkg")
        fi
    done
    if [ "${#present[@]}" -gt 0 ]; then
        note "packages already installed: ${present[*]}"
    fi
    if [ "${#missing[@]}" -eq 0 ]; then
        return
    fi
    run apt-get update -q
    run env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
        "${missing[@]}"
}

create_user() {
    local group user_group=(--user-group)
    for group in gpio audio; do
        if [ -n "$ROOT" ] || ! getent group "$group" >/dev/null; then
            host groupadd --system "$group"
        fi
    done
    if [ -z "$ROOT" ] && getent passwd "$SERVICE_USER" >/dev/null; then
        note "user $SERVICE_USER exists; making sure it is in the gpio and audio groups"
        run usermod --append --groups gpio,audio "$SERVICE_USER"
    else
        # A group of that name left behind (by an earlier, interrupted run) becomes its group.
        if [ -z "$ROOT" ] && getent group "$SERVICE_USER" >/dev/null; then
            user_group=(--gid "$SERVICE_USER")
        fi
        host useradd --system "${user_group[@]}" --home-dir "$SERVICE_HOME" --no-create-home \
            --shell /usr/sbin/nologin --comment "SIP door intercom" --groups gpio,audio \
            "$SERVICE_USER"
    fi
    # An empty home (no /etc/skel dot files): nothing is written there, the unit makes it
    # read-only anyway; ALSA looks for ~/.asoundrc in it.
    if [ -n "$ROOT" ]; then
        run install -d -m 0750 "$ROOT$SERVICE_HOME"
    else
        run install -d -m 0750 -o "$SERVICE_USER" -g "$SERVICE_USER" "$SERVICE_HOME"
    fi
}

# Raspberry Pi OS gives /dev/gpiochip* to the gpio group; other distributions may leave it to
# root alone, and the service could not open the button's pin.
gpio_udev_rule() {
    local chip=/dev/gpiochip0
    if [ -n "$ROOT" ]; then
        host write_udev_rule
        return
    fi
    if [ ! -e "$chip" ]; then
        note "no $chip here (not a Raspberry Pi?): no udev rule for the gpio group"
        return
    fi
    if [ "$(stat -c %G "$chip")" = gpio ]; then
        note "$chip belongs to the gpio group already"
        return
    fi
    run write_udev_rule
    run udevadm control --reload
    run udevadm trigger --subsystem-match=gpio --action=add
}

write_udev_rule() {
    printf '%s\n' '# From intercom scripts/install.sh: the GPIO chips belong to the gpio group.' \
        'SUBSYSTEM=="gpio", KERNEL=="gpiochip*", GROUP="gpio", MODE="0660"' >"$UDEV_RULE"
    chmod 0644 "$UDEV_RULE"
}

venv_ok() {
    local venv=$1
    [ -x "$venv/bin/python" ] || return 1
    grep -qs '^include-system-site-packages = true' "$venv/pyvenv.cfg" || return 1
    # After an OS upgrade the venv's Python may be gone or older than the system's.
    [ "$("$venv/bin/python" -c 'import sys; print(sys.version_info[:2])' 2>/dev/null)" = \
        "$(python3 -c 'import sys; print(sys.version_info[:2])')" ]
}

install_venv() {
    local venv=$ROOT$VENV_DIR extra=()
    run install -d -m 0755 "$ROOT$OPT_DIR"
    if venv_ok "$venv"; then
        note "virtualenv $venv is usable; upgrading the intercom in it"
    else
        run python3 -m venv --clear --system-site-packages "$venv"
    fi
    # Without the distribution's lgpio, take it from PyPI. (find_spec, not import: importing
    # lgpio creates a notification pipe in the working directory.)
    if [ -n "$ROOT" ] || ! python3 -c 'import importlib.util as u, sys
sys.exit(u.find_spec("lgpio") is None)' 2>/dev/null; then
        extra=("lgpio>=0.2")
    fi
    # Nothing is compiled: 32-bit ARM takes wheels only, the rest prefers them.
    local binary=(--prefer-binary)
    case "$ARCH" in
        armv6l | armv7l | armhf | arm)
            binary=(--only-binary=:all:)
            note "$ARCH: pip takes wheels only (--only-binary=:all:); no compiler is needed"
            ;;
        *) note "$ARCH: pip prefers wheels (--prefer-binary)" ;;
    esac
    note "numpy, PyAudio and lgpio come from python3-numpy, python3-pyaudio and python3-lgpio" \
        "where their versions satisfy pyproject.toml: pip keeps them"
    # pip builds in the source tree: build from a copy, so that the checkout does not collect
    # root-owned build/ and *.egg-info directories.
    if [ "$DRY_RUN" -eq 1 ]; then
        BUILD_DIR="${TMPDIR:-/tmp}/intercom-build.XXXXXX"
    else
        BUILD_DIR=$(mktemp -d "${TMPDIR:-/tmp}/intercom-build.XXXXXX")
        trap 'rm -rf "$BUILD_DIR"' EXIT
    fi
    run copy_source "$BUILD_DIR"
    run "$venv/bin/python" -m pip install --disable-pip-version-check "${binary[@]}" \
        "$BUILD_DIR" "${extra[@]}"
    run install -d -m 0755 "$ROOT${COMMAND_LINK%/*}"
    run ln -sfn "$VENV_DIR/bin/intercom" "$ROOT$COMMAND_LINK"
}

copy_source() {
    tar -C "$SRC" --exclude=./.git --exclude=./.venv --exclude=./build --exclude=./dist \
        --exclude='*.egg-info' --exclude=__pycache__ --exclude=.mypy_cache \
        --exclude=.ruff_cache --exclude=.pytest_cache --exclude=.hypothesis -cf - . \
        | tar -C "$1" -xf -
}

install_config() {
    local owner=(-o root -g root) etc_owner=(-o root -g "$SERVICE_USER") env=$ROOT$ENV_FILE
    if [ -n "$ROOT" ]; then
        owner=()
        etc_owner=()
    fi
    run install -D -m 0644 "${owner[@]}" "$SRC/systemd/$UNIT_NAME" "$ROOT$UNIT_DIR/$UNIT_NAME"
    run install -d -m 0750 "${etc_owner[@]}" "$ROOT$ETC_DIR"
    # The example, for comparing with your own file after an upgrade (no secrets in it).
    run install -m 0644 "${owner[@]}" "$SRC/systemd/intercom.env.example" \
        "$ROOT$ETC_DIR/intercom.env.example"
    if [ -e "$env" ]; then
        note "keeping your $env (never overwritten)"
        if [ -n "$(find "$env" -maxdepth 0 -perm /0077)" ]; then
            note "WARNING: $env is readable by more than root (it holds the SIP password):" \
                "chmod 0600 $env"
        fi
    else
        run install -m 0600 "${owner[@]}" "$SRC/systemd/intercom.env.example" "$env"
    fi
}

enable_service() {
    if [ -n "$ROOT" ]; then
        run systemctl --root="$ROOT" enable "$UNIT_NAME"
        return
    fi
    if [ ! -d /run/systemd/system ]; then
        # A chroot or an image being built: enabling works offline, the rest waits for boot.
        run systemctl enable "$UNIT_NAME"
        return
    fi
    run systemctl daemon-reload
    run systemctl enable "$UNIT_NAME"
    # An upgrade: a running intercom restarts onto the new code; a stopped one stays stopped.
    run systemctl try-restart "$UNIT_NAME"
}

next_steps() {
    local admin=${SUDO_USER:-pi}
    cat <<EOF

Installed. Next:
  1. Wire the button, LED and relay: $SRC/hardware/README.md
  2. Edit the settings (SIP account, call target, pins, sound card):
       sudo nano $ENV_FILE
  3. Check them, and the GPIO and sound devices, as the service would see them (it reads
     $ENV_FILE):
       sudo intercom check
       intercom devices
  4. Start it (it starts on every boot from now on) and watch the log:
       sudo systemctl start intercom
       systemctl status intercom          (one line: registered, failed and why, in a call)
       journalctl -u intercom -f          (-p warning: only warnings and errors)
  5. Try it: intercom status, intercom watch, intercom press, intercom open. These talk to
     the daemon through /run/intercom/control.sock, which only root and the intercom group
     may use:
       sudo usermod -aG $SERVICE_USER $admin     (then log in again)
EOF
}

do_install() {
    check_checkout
    note "installing the intercom from $SRC${ROOT:+ under $ROOT} for $ARCH"
    install_packages
    create_user
    gpio_udev_rule
    install_venv
    install_config
    enable_service
    if [ "$DRY_RUN" -eq 1 ]; then
        printf '\ndry run: nothing was changed\n'
    else
        next_steps
    fi
}

# -- uninstall ------------------------------------------------------------------------------

do_uninstall() {
    note "removing the intercom${ROOT:+ under $ROOT}"
    if [ -n "$ROOT" ]; then
        run systemctl --root="$ROOT" disable "$UNIT_NAME"
    elif [ -d /run/systemd/system ]; then
        run systemctl disable --now "$UNIT_NAME"
    else
        run systemctl disable "$UNIT_NAME"
    fi
    run rm -f "$ROOT$UNIT_DIR/$UNIT_NAME"
    if [ -z "$ROOT" ] && [ -d /run/systemd/system ]; then
        run systemctl daemon-reload
    fi
    if [ "$(readlink "$ROOT$COMMAND_LINK" 2>/dev/null)" = "$VENV_DIR/bin/intercom" ]; then
        run rm -f "$ROOT$COMMAND_LINK"
    fi
    run rm -rf "$ROOT$OPT_DIR"
    if [ -e "$ROOT$UDEV_RULE" ]; then
        run rm -f "$ROOT$UDEV_RULE"
    fi
    if [ "$PURGE" -eq 1 ]; then
        run rm -rf "$ROOT$ETC_DIR"
        if [ -n "$ROOT" ]; then
            host userdel --remove "$SERVICE_USER"
            run rm -rf "$ROOT$SERVICE_HOME"
        elif getent passwd "$SERVICE_USER" >/dev/null; then
            run userdel --remove "$SERVICE_USER"
        fi
    else
        note "kept $ETC_DIR (your settings) and the user $SERVICE_USER: --purge removes them"
    fi
    if [ "$DRY_RUN" -eq 1 ]; then
        printf '\ndry run: nothing was changed\n'
    fi
}

parse_args "$@"
case "$ACTION" in
    install) do_install ;;
    uninstall) do_uninstall ;;
esac
