#!/usr/bin/env bash
# Build grpc-go's interop test client and server (the peers we test Courier
# against) on Debian 12 (bookworm), using only Debian's apt archive.
#
# Debian's golang-google-grpc source package (1.33.x) ships interop/client and
# interop/server, but its binary packages leave them out. This script, run as
# root:
#   1. installs Go, protoc, the protoc-gen-go-1-3 / protoc-gen-go-grpc plugins
#      and the Go -dev packages the interop binaries import;
#   2. fetches the source package with `apt-get source`, through a private
#      APT_CONFIG under target/interop/apt whose deb-src entries are derived
#      from the machine's own `deb` entries (the system apt config is left
#      untouched);
#   3. unpacks it under target/interop/go/source and builds a private GOPATH
#      tree src/google.golang.org/grpc = the installed library
#      (/usr/share/gocode, whose *.pb.go Debian regenerated for protobuf 1.3)
#      plus interop/ from the source package. The source tree's own *.pb.go
#      are stale APIv2 files that Debian deletes at build time, and GOPATH
#      mode resolves google.golang.org/grpc to a single directory, so the
#      library and interop/ have to sit together in one tree;
#      interop/grpc_testing/*.pb.go are then regenerated with Debian's
#      plugins so they match the installed protobuf and grpc;
#   4. builds in GOPATH mode (GO111MODULE=off, GOPATH=<private>:/usr/share/gocode).
#
# Outputs:
#   target/interop/go/bin/interop-client, target/interop/go/bin/interop-server
#   target/interop/go/bin/interop-xds-server (interop/xds/server: a TestService
#     whose UnaryCall answers with its --server_id, for the load-balancing
#     tests; it needs nothing of xDS itself)
#   target/interop/go/testdata/{ca.pem,server1.pem,server1.key}
#
# Idempotent: every step is skipped when its output already exists, so a
# second run takes well under a second. Delete target/interop to start over.
set -euo pipefail

cd "$(dirname "$0")/../.."
ROOT=$PWD

export DEBIAN_FRONTEND=noninteractive

APT_DIR=$ROOT/target/interop/apt
GO_DIR=$ROOT/target/interop/go
DL_DIR=$GO_DIR/download
SRC_ROOT=$GO_DIR/source
GOPATH_DIR=$GO_DIR/gopath
GRPC_DIR=$GOPATH_DIR/src/google.golang.org/grpc
INTEROP_DIR=$GRPC_DIR/interop
BIN_DIR=$GO_DIR/bin
TESTDATA_DIR=$GO_DIR/testdata

SRC_PKG=golang-google-grpc
# protoc-gen-go-1-3 is the APIv1 (github.com/golang/protobuf 1.3) generator;
# golang-github-golang-protobuf-1-3-dev is the matching runtime (it conflicts
# with the 1-5 flavour, so name it explicitly).
# The interop packages import, besides grpc itself, only
# github.com/golang/protobuf/proto and golang.org/x/oauth2{,/google}; the
# rest (x/net, genproto, go-cmp, glog, ...) comes in as grpc-dev dependencies.
# dpkg-dev provides dpkg-source, which unpacks the source package (step 3),
# and xz-utils its .tar.xz; a minimal Debian image has neither.
PACKAGES=(
    dpkg-dev
    xz-utils
    golang-go
    protobuf-compiler
    protoc-gen-go-1-3
    protoc-gen-go-grpc
    golang-github-golang-protobuf-1-3-dev
    golang-google-grpc-dev
    golang-golang-x-oauth2-dev
    golang-golang-x-oauth2-google-dev
)

log() { printf '==> %s\n' "$*"; }
die() { printf 'install-go.sh: %s\n' "$*" >&2; exit 1; }

# --- 1. system packages -----------------------------------------------------
# shellcheck source=scripts/interop/apt.sh
. scripts/interop/apt.sh
apt_install_missing "${PACKAGES[@]}"

# Source version = installed library version, so the tree we build from is
# exactly the grpc that /usr/share/gocode has (minus any binNMU suffix).
SRC_VERSION=$(dpkg-query -W -f '${Version}' golang-google-grpc-dev)
SRC_VERSION=${SRC_VERSION%+b*}
case $SRC_VERSION in
    1.33.*) ;;
    *) die "expected golang-google-grpc-dev 1.33.x, found $SRC_VERSION" ;;
esac
# A different installed grpc (e.g. after an upgrade) invalidates what we built.
VERSION_STAMP=$GO_DIR/grpc-version
if [ -f "$VERSION_STAMP" ] && [ "$(cat "$VERSION_STAMP")" != "$SRC_VERSION" ]; then
    log "golang-google-grpc-dev changed to $SRC_VERSION: rebuilding"
    rm -rf "$GOPATH_DIR" "$BIN_DIR" "$TESTDATA_DIR"
fi
mkdir -p "$GO_DIR"
echo "$SRC_VERSION" >"$VERSION_STAMP"

# --- 2. private apt config with deb-src entries -----------------------------
# Keep only the distribution's own entries: those with a suite equal to the
# release codename or "<codename>-something" (updates, security, ...).
derive_deb_src() {
    local codename sl sp f
    codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
    [ -n "$codename" ] || die "no VERSION_CODENAME in /etc/os-release"
    eval "$(apt-config shell sl Dir::Etc::sourcelist/f sp Dir::Etc::sourceparts/d)"
    # one-line format (sources.list, *.list)
    for f in "$sl" "$sp"/*.list; do
        [ -f "$f" ] || continue
        awk -v cn="$codename" '
            $1 == "deb" {
                i = 2
                if ($2 ~ /^\[/) { while (i <= NF && $i !~ /\]$/) i++; i++ }
                suite = $(i + 1)
                if (suite == cn || index(suite, cn "-") == 1) {
                    sub(/^deb/, "deb-src"); print
                }
            }' "$f" >>"$APT_DIR/sources.list.tmp"
    done
    # deb822 format (*.sources)
    for f in "$sp"/*.sources; do
        [ -f "$f" ] || continue
        awk -v cn="$codename" '
            function flush() {
                if (n && isdeb && ours && enabled) {
                    for (j = 1; j <= n; j++) print lines[j]
                    print ""
                }
                n = 0; isdeb = 0; ours = 0; enabled = 1
            }
            BEGIN { n = 0; enabled = 1 }
            /^[ \t]*$/ { flush(); next }
            /^#/ { next }
            {
                line = $0
                key = tolower($1)
                if (key == "types:") {
                    for (k = 2; k <= NF; k++) if ($k == "deb") isdeb = 1
                    line = "Types: deb-src"
                } else if (key == "suites:") {
                    for (k = 2; k <= NF; k++)
                        if ($k == cn || index($k, cn "-") == 1) ours = 1
                } else if (key == "enabled:" && tolower($2) == "no") {
                    enabled = 0
                }
                lines[++n] = line
            }
            END { flush() }' "$f" >>"$APT_DIR/sources.d/debian-src.sources.tmp"
    done
}

APT_CONF=$APT_DIR/apt.conf
if [ ! -f "$APT_CONF" ]; then
    log "writing private apt config in ${APT_DIR#"$ROOT"/}"
    mkdir -p "$APT_DIR/sources.d" "$APT_DIR/lists/partial" "$APT_DIR/cache/archives/partial"
    rm -f "$APT_DIR/sources.list.tmp" "$APT_DIR/sources.d/debian-src.sources.tmp"
    : >"$APT_DIR/sources.list.tmp"
    : >"$APT_DIR/sources.d/debian-src.sources.tmp"
    derive_deb_src
    if ! grep -q . "$APT_DIR/sources.list.tmp" "$APT_DIR/sources.d/debian-src.sources.tmp"; then
        die "found no deb entries for this release in the system apt sources"
    fi
    mv "$APT_DIR/sources.list.tmp" "$APT_DIR/sources.list"
    mv "$APT_DIR/sources.d/debian-src.sources.tmp" "$APT_DIR/sources.d/debian-src.sources"
    cat >"$APT_CONF.tmp" <<EOF
Dir::Etc::sourcelist "$APT_DIR/sources.list";
Dir::Etc::sourceparts "$APT_DIR/sources.d";
Dir::State::lists "$APT_DIR/lists";
Dir::Cache "$APT_DIR/cache";
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
APT::Sandbox::User "root";
EOF
    mv "$APT_CONF.tmp" "$APT_CONF"
fi
with_apt() { APT_CONFIG=$APT_CONF "$@"; }

# --- 3. fetch and unpack the source package, overlay interop/ -------------
SRC_DIR=$SRC_ROOT/$SRC_PKG-${SRC_VERSION#*:}
need_src=false
[ -f "$INTEROP_DIR/client/client.go" ] || need_src=true
for f in ca.pem server1.pem server1.key; do
    [ -f "$TESTDATA_DIR/$f" ] || need_src=true
done
if $need_src && [ ! -f "$SRC_DIR/interop/client/client.go" ]; then
    if ! ls "$APT_DIR"/lists/*_Sources* >/dev/null 2>&1; then
        log "apt-get update (deb-src, private config)"
        with_apt apt-get update -qq
    fi
    dsc=$DL_DIR/${SRC_PKG}_${SRC_VERSION#*:}.dsc
    if [ ! -f "$dsc" ]; then
        log "apt-get source $SRC_PKG=$SRC_VERSION"
        mkdir -p "$DL_DIR"
        fetch() { (cd "$DL_DIR" && with_apt apt-get source -qq --download-only "$SRC_PKG=$SRC_VERSION"); }
        # Lists from an earlier run may predate this version: refresh once.
        fetch 2>/dev/null || { with_apt apt-get update -qq && fetch; }
    fi
    log "unpacking into ${SRC_DIR#"$ROOT"/}"
    rm -rf "$SRC_DIR"
    mkdir -p "$SRC_ROOT"
    # apt already checked the files against the signed Sources index.
    dpkg-source --no-check -x "$dsc" "$SRC_DIR" >/dev/null
fi

if [ ! -f "$INTEROP_DIR/client/client.go" ]; then
    log "assembling ${GRPC_DIR#"$ROOT"/}"
    rm -rf "$GRPC_DIR" "$GRPC_DIR.tmp"
    mkdir -p "$(dirname "$GRPC_DIR")"
    cp -a /usr/share/gocode/src/google.golang.org/grpc "$GRPC_DIR.tmp"
    cp -a "$SRC_DIR/interop" "$GRPC_DIR.tmp/interop"
    mv "$GRPC_DIR.tmp" "$GRPC_DIR"
fi

# --- 4. regenerate interop/grpc_testing with Debian's plugins ---------------
# protoc-gen-go-1-3 installs its plugin as /usr/bin/protoc-gen-go.
STAMP=$INTEROP_DIR/grpc_testing/.regenerated
if [ ! -f "$STAMP" ]; then
    plugin=/usr/bin/protoc-gen-go
    [ "$(dpkg-query -S "$plugin" 2>/dev/null | cut -d: -f1)" = protoc-gen-go-1-3 ] ||
        die "$plugin is not from protoc-gen-go-1-3"
    log "regenerating interop/grpc_testing/*.pb.go"
    (
        # Paths relative to the grpc root, as upstream does, so the registered
        # file name is interop/grpc_testing/test.proto.
        cd "$GRPC_DIR"
        rm -f interop/grpc_testing/*.pb.go
        protoc -I . \
            --plugin=protoc-gen-go="$plugin" \
            --plugin=protoc-gen-go-grpc=/usr/bin/protoc-gen-go-grpc \
            --go_out=paths=source_relative:. \
            --go-grpc_out=paths=source_relative:. \
            interop/grpc_testing/*.proto
    )
    touch "$STAMP"
fi

# --- 5. build ----------------------------------------------------------------
export GO111MODULE=off
export GOPATH=$GOPATH_DIR:/usr/share/gocode
export GOCACHE=$GO_DIR/cache
export GOFLAGS=
export CGO_ENABLED=0
mkdir -p "$BIN_DIR"
for role in client server xds/server; do
    out=$BIN_DIR/interop-${role//\//-}
    if [ ! -x "$out" ]; then
        log "go build google.golang.org/grpc/interop/$role"
        go build -o "$out.tmp" "google.golang.org/grpc/interop/$role"
        mv "$out.tmp" "$out"
    fi
done

# --- 6. TLS test files ---------------------------------------------------------
mkdir -p "$TESTDATA_DIR"
for f in ca.pem server1.pem server1.key; do
    [ -f "$TESTDATA_DIR/$f" ] || cp "$SRC_DIR/testdata/$f" "$TESTDATA_DIR/$f"
done

echo "grpc-go $SRC_VERSION interop binaries ($(go version | awk '{print $3}')):"
for f in "$BIN_DIR/interop-client" "$BIN_DIR/interop-server" "$BIN_DIR/interop-xds-server" \
         "$TESTDATA_DIR/ca.pem" "$TESTDATA_DIR/server1.pem" "$TESTDATA_DIR/server1.key"; do
    echo "  ${f#"$ROOT"/}"
done
