#!/usr/bin/env bash
# One entry point for a fresh Debian / Raspberry Pi OS machine:
#   ./dev.sh demo    install, then run `intercom demo`: a doorbell call on loopback
#   ./dev.sh test    install what the tests need, then run lint, types and the whole suite
#   ./dev.sh bench   install, then run the side-by-side benchmark (intercom, baresip, pyVoIP)
#   ./dev.sh setup   only install (system packages with apt-get, Python packages into .venv)
# System packages are installed with apt-get (through sudo when not root); Python packages go
# into ./.venv, never into the system Python.
set -euo pipefail
cd "$(dirname "$0")"

VENV=.venv
# portaudio19-dev: PortAudio headers and library, which PyAudio is built against.
# sip-tester: sipp, the independent SIP peer of the integration tests.
# baresip: a real SIP phone (C stack) that the media tests call and compare audio with.
# iproute2: `ip` for private network namespaces in tests.
# sipvicious: svwar, the scanner strangers use to find SIP accounts; the door must show none.
# The shellcheck package lints the installer scripts and this one.
# kamailio: the registrar and forking proxy of the one-number tests; linphone-cli: linphonec,
# the second phone implementation ringing on that number beside baresip.
# mosquitto: the MQTT broker the Home Assistant tests start on a free port (with
# mosquitto_passwd for the password file); mosquitto-clients: mosquitto_sub/pub to watch it.
# openssl: the tests make their own CA and server certificates with it (tests/tls_certs.py);
# kamailio-tls-modules: kamailio's tls.so, the TLS server of the SIP-over-TLS integration tests.
# systemd: systemd-analyze, which verifies the unit and scores its sandbox in the tests.
APT_PACKAGES=(python3 python3-venv python3-dev gcc portaudio19-dev sip-tester baresip iproute2
    sipvicious shellcheck kamailio kamailio-tls-modules openssl linphone-cli mosquitto
    mosquitto-clients systemd)

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

install_system_packages() {
    local missing=()
    for pkg in "${APT_PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" \
            || missing+=("$pkg")
    done
    if [ "${#missing[@]}" -gt 0 ]; then
        echo "dev.sh: installing system packages: ${missing[*]}"
        as_root apt-get update -q
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
            "${missing[@]}"
    fi
}

install_python_packages() {
    if [ ! -x "$VENV/bin/python" ]; then
        python3 -m venv "$VENV"
    fi
    local stamp
    stamp="$VENV/.installed-$(sha256sum pyproject.toml | cut -c1-16)"
    if [ ! -e "$stamp" ]; then
        "$VENV/bin/python" -m pip install -q --upgrade pip
        # The distribution was called "intercom" before (PyPI's intercom is another project):
        # the old editable install goes, sip-door-intercom replaces it.
        if "$VENV/bin/python" -m pip show -q intercom >/dev/null 2>&1; then
            "$VENV/bin/python" -m pip uninstall -q -y intercom
        fi
        "$VENV/bin/python" -m pip install -q -e ".[test]"
        rm -f "$VENV"/.installed-*
        touch "$stamp"
    fi
}

setup() {
    install_system_packages
    install_python_packages
}

# The benchmark's throwaway venv (git-ignored, never a product dependency): pyVoIP 1.6.8, the
# third caller of the side-by-side benchmark, and matplotlib for its plot. pyVoIP needs audioop,
# which Python 3.13 dropped: audioop-lts stands in there.
BENCH_VENV=.bench/venv
BENCH_PACKAGES=(pyVoIP==1.6.8 "matplotlib>=3.8")

install_bench_packages() {
    if [ ! -x "$BENCH_VENV/bin/python" ]; then
        python3 -m venv "$BENCH_VENV"
    fi
    local stamp
    stamp="$BENCH_VENV/.installed-$(echo "${BENCH_PACKAGES[*]}" | sha256sum | cut -c1-16)"
    if [ ! -e "$stamp" ]; then
        local extra=()
        "$BENCH_VENV/bin/python" -c "import audioop" 2>/dev/null || extra=(audioop-lts)
        "$BENCH_VENV/bin/python" -m pip install -q "${BENCH_PACKAGES[@]}" "${extra[@]}"
        rm -f "$BENCH_VENV"/.installed-*
        touch "$stamp"
    fi
}

run_bench() {
    setup
    install_bench_packages
    # The capture on lo (an AF_PACKET socket) needs root.
    as_root "$VENV/bin/python" -m benchmarks.side_by_side "$@"
}

run_tests() {
    setup
    echo "== ruff"
    "$VENV/bin/ruff" check intercom tests benchmarks
    "$VENV/bin/ruff" format --check intercom tests benchmarks
    echo "== mypy"
    "$VENV/bin/mypy" intercom
    echo "== pytest"
    "$VENV/bin/python" -m pytest -q "$@"
}

cmd="${1:-}"
shift || true
case "$cmd" in
    test) run_tests "$@" ;;
    demo)
        setup
        exec "$VENV/bin/intercom" demo
        ;;
    bench) run_bench "$@" ;;
    setup) setup ;;
    *)
        echo "usage: ./dev.sh demo | ./dev.sh test [pytest args] | ./dev.sh bench [options]" \
            "| ./dev.sh setup" >&2
        exit 2
        ;;
esac
