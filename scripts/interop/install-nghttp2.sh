#!/usr/bin/env bash
# Installs nghttp2's tools, independent HTTP/2 peers for
# crates/courier-tests/tests/h2_peers.rs: Debian's nghttp2-client (nghttp,
# h2load) and nghttp2-server (nghttpd). Run as root on Debian 12; a second
# run only checks that the packages are installed.
set -euo pipefail
cd "$(dirname "$0")/../.."

PACKAGES=(nghttp2-client nghttp2-server)

log() { printf 'install-nghttp2: %s\n' "$*" >&2; }
die() { printf 'install-nghttp2.sh: %s\n' "$*" >&2; exit 1; }

# shellcheck source=scripts/interop/apt.sh
. scripts/interop/apt.sh
apt_install_missing "${PACKAGES[@]}"
for tool in nghttp h2load; do
    command -v "$tool" >/dev/null || die "$tool not found (nghttp2-client)"
done
# nghttpd is in /usr/sbin, which a non-root PATH may lack.
command -v nghttpd >/dev/null || [ -x /usr/sbin/nghttpd ] || die "nghttpd not found (nghttp2-server)"
log "installed: $(nghttp --version 2>&1 | head -n 1)"
