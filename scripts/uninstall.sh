#!/usr/bin/env bash
# Remove the intercom service: stop and disable it, remove the unit, /opt/intercom and
# /usr/local/bin/intercom. Your settings (/etc/intercom) and the intercom user stay unless
# --purge is given. Takes install.sh's --dry-run and --prefix DIR too.
#
#   sudo scripts/uninstall.sh [--purge] [--dry-run]
set -euo pipefail
exec "$(dirname "${BASH_SOURCE[0]}")/install.sh" --uninstall "$@"
