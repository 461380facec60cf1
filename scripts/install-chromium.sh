#!/usr/bin/env bash
# Installs Debian's chromium package, which the browser tests drive headless
# (internal/browsertest). Idempotent: with chromium on PATH it only prints
# its version. Waits up to 5 minutes for another apt/dpkg run to finish.
set -euo pipefail

log() { echo "install-chromium: $*" >&2; }

if command -v chromium >/dev/null 2>&1; then
  chromium --version 2>/dev/null | tail -n 1
  exit 0
fi
SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
APT=(-o DPkg::Lock::Timeout=300)
log "installing Debian's chromium package (about 155 MB)"
$SUDO apt-get "${APT[@]}" update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get "${APT[@]}" install -y -qq --no-install-recommends chromium >&2
chromium --version 2>/dev/null | tail -n 1
