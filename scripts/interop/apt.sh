# Sourced by the install scripts: installs the Debian packages given that
# are not installed yet (as root; otherwise says which are missing and
# fails). The caller defines `log` and `die`.
apt_install_missing() {
    local missing=() p
    for p in "$@"; do
        if [ "$(dpkg-query -W -f '${db:Status-Status}' "$p" 2>/dev/null)" != installed ]; then
            missing+=("$p")
        fi
    done
    [ ${#missing[@]} -gt 0 ] || return 0
    [ "$(id -u)" = 0 ] || die "must run as root to install: ${missing[*]}"
    log "installing ${missing[*]}"
    apt-get update -qq || die "apt-get update failed"
    DEBIAN_FRONTEND=noninteractive apt-get install -qq -y --no-install-recommends "${missing[@]}" >/dev/null ||
        die "apt-get install ${missing[*]} failed"
}
