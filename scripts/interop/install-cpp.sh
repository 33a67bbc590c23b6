#!/usr/bin/env bash
# Builds the gRPC C++ benchmark peer (crates/courier-bench/peers/cpp/
# benchmark_server.cc: BenchmarkService and TestService on the callback API)
# against Debian 12's gRPC C++ 1.51, using only Debian's apt archive.
#
#   1. as root, installs libgrpc++-dev, protobuf-compiler-grpc (protoc and
#      grpc_cpp_plugin), pkg-config and g++ when any is missing;
#   2. generates the C++ code of the same protos the Rust bench servers use
#      (crates/courier-bench/proto's benchmark_service.proto and
#      crates/courier-interop/proto's test, messages and empty) into
#      target/interop/cpp/gen;
#   3. compiles them and the server with g++ -O2 into
#      target/interop/cpp/bin/benchmark-server.
#
# Idempotent: the binary is rebuilt only when it is missing or older than the
# server's source, a proto, or this script. Delete target/interop/cpp to start
# over.
set -euo pipefail

SELF=$(cd "$(dirname "$0")" && pwd)/$(basename "$0")
cd "$(dirname "$0")/../.."
ROOT=$PWD

export DEBIAN_FRONTEND=noninteractive

CPP_DIR=$ROOT/target/interop/cpp
GEN_DIR=$CPP_DIR/gen
BIN_DIR=$CPP_DIR/bin
SERVER=$BIN_DIR/benchmark-server
SOURCE=crates/courier-bench/peers/cpp/benchmark_server.cc
INCLUDES=(crates/courier-bench/proto crates/courier-interop/proto)
PROTOS=(
    crates/courier-bench/proto/grpc/testing/benchmark_service.proto
    crates/courier-interop/proto/grpc/testing/test.proto
    crates/courier-interop/proto/grpc/testing/messages.proto
    crates/courier-interop/proto/grpc/testing/empty.proto
)
PACKAGES=(libgrpc++-dev protobuf-compiler-grpc pkg-config g++)

log() { printf '==> %s\n' "$*"; }
die() { printf 'install-cpp.sh: %s\n' "$*" >&2; exit 1; }

# --- 1. system packages -----------------------------------------------------
# shellcheck source=scripts/interop/apt.sh
. scripts/interop/apt.sh
apt_install_missing "${PACKAGES[@]}"
PLUGIN=$(command -v grpc_cpp_plugin) || die "grpc_cpp_plugin not found (protobuf-compiler-grpc)"
command -v protoc >/dev/null || die "protoc not found (protobuf-compiler)"
pkg-config --exists grpc++ protobuf || die "pkg-config knows no grpc++ or protobuf (libgrpc++-dev)"
GRPC_VERSION=$(pkg-config --modversion grpc++)

# --- 2 and 3: generate and compile, when out of date -----------------------
up_to_date() {
    local f
    [ -x "$SERVER" ] || return 1
    for f in "$SOURCE" "${PROTOS[@]}" "$SELF"; do
        [ "$SERVER" -nt "$f" ] || return 1
    done
}

if up_to_date; then
    log "gRPC C++ $GRPC_VERSION benchmark server is up to date"
else
    log "generating C++ code into ${GEN_DIR#"$ROOT"/}"
    rm -rf "$GEN_DIR"
    mkdir -p "$GEN_DIR" "$BIN_DIR"
    include_args=()
    for i in "${INCLUDES[@]}"; do include_args+=(-I "$i"); done
    protoc "${include_args[@]}" \
        --plugin=protoc-gen-grpc="$PLUGIN" \
        --cpp_out="$GEN_DIR" --grpc_out="$GEN_DIR" \
        "${PROTOS[@]}" || die "protoc failed"

    log "compiling ${SERVER#"$ROOT"/} (gRPC C++ $GRPC_VERSION)"
    # shellcheck disable=SC2046 # pkg-config's flags are meant to split
    g++ -std=c++17 -O2 -pthread -I "$GEN_DIR" -o "$SERVER.tmp" \
        "$SOURCE" "$GEN_DIR"/grpc/testing/*.pb.cc \
        $(pkg-config --cflags --libs grpc++ protobuf) ||
        die "g++ failed"
    mv "$SERVER.tmp" "$SERVER"
fi

echo "gRPC C++ $GRPC_VERSION benchmark server:"
echo "  ${SERVER#"$ROOT"/}"
