#!/usr/bin/env bash
# Installs the Python (grpcio, i.e. the gRPC C core) interop peers' dependencies:
#   - Debian's grpc-proto package (grpc.testing protos under /usr/share/grpc-proto)
#   - a venv at target/interop/python/venv with pinned grpcio packages
#     (grpcio-channelz among them), and
#     the pure-Python HTTP/2 library h2 (tests/h2_peers.rs frames gRPC by
#     hand with it, as a raw HTTP/2 client and server)
#   - generated stubs at target/interop/python/gen
#
# Run as root on Debian 12. Idempotent: a second run only checks a stamp file.
#
# The generated modules live under the Python package `interop_pb`
# (interop_pb.grpc.testing.test_pb2, ...), not under a top-level `grpc`
# package, which would be shadowed by grpcio's own `grpc` package. To get that
# module path the three protos are staged into interop_pb/grpc/testing/ with
# their `import "grpc/testing/..."` lines rewritten. The proto package
# (grpc.testing) and so the wire method names are unchanged.
set -euo pipefail
cd "$(dirname "$0")/../.."

GRPC_VERSION=1.85.1
# grpcio-tools only bounds protobuf loosely; pinned so the generated stubs and
# the runtime always match.
PROTOBUF_VERSION=7.36.2
H2_VERSION=4.4.1
# grpcio-channelz has no 1.85.1 release; 1.85.0 is the newest, and takes
# grpcio 1.85.1.
CHANNELZ_VERSION=1.85.0
PROTO_DIR=/usr/share/grpc-proto
PROTOS=(empty messages test)
OUT=target/interop/python
VENV="$OUT/venv"
GEN="$OUT/gen"
STAGE="$OUT/proto-stage"
STAMP="$OUT/.installed"
# Everything that should force a reinstall when it changes.
STAMP_CONTENT="grpcio=$GRPC_VERSION protobuf=$PROTOBUF_VERSION h2=$H2_VERSION protos=${PROTOS[*]} layout=interop_pb channelz=$CHANNELZ_VERSION v2"

log() { echo "install-python: $*" >&2; }

have_protos() {
    local p
    for p in "${PROTOS[@]}"; do
        [[ -f "$PROTO_DIR/grpc/testing/$p.proto" ]] || return 1
    done
}

if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$STAMP_CONTENT" ]] && have_protos \
    && [[ -x "$VENV/bin/python" && -f "$GEN/interop_pb/grpc/testing/test_pb2_grpc.py" ]]; then
    log "already installed (grpcio $GRPC_VERSION, h2 $H2_VERSION)"
    exit 0
fi

# --- Debian packages ---------------------------------------------------------
apt_updated=0
apt_install() {
    if [[ $apt_updated -eq 0 ]]; then
        apt-get update -qq
        apt_updated=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

if ! have_protos; then
    log "installing grpc-proto"
    apt_install grpc-proto
    have_protos || { log "grpc-proto did not provide $PROTO_DIR/grpc/testing/*.proto"; exit 1; }
fi

# --- Python + venv -----------------------------------------------------------
PYTHON=""
if command -v python3 >/dev/null 2>&1 && python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
    PYTHON=python3
elif [[ -x /root/.pyenv/shims/python3 ]] && /root/.pyenv/shims/python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
    PYTHON=/root/.pyenv/shims/python3
else
    log "installing python3-venv"
    apt_install python3 python3-venv
    PYTHON=/usr/bin/python3
fi

if [[ ! -x "$VENV/bin/python" ]] || ! "$VENV/bin/python" -c 'import sys' >/dev/null 2>&1; then
    log "creating venv at $VENV with $($PYTHON --version 2>&1)"
    rm -rf "$VENV"
    mkdir -p "$OUT"
    "$PYTHON" -m venv "$VENV"
fi

log "installing grpcio $GRPC_VERSION and h2 $H2_VERSION into the venv"
"$VENV/bin/python" -m pip install -q --disable-pip-version-check \
    "grpcio==$GRPC_VERSION" \
    "grpcio-tools==$GRPC_VERSION" \
    "grpcio-reflection==$GRPC_VERSION" \
    "grpcio-health-checking==$GRPC_VERSION" \
    "grpcio-channelz==$CHANNELZ_VERSION" \
    "protobuf==$PROTOBUF_VERSION" \
    "h2==$H2_VERSION"

# --- Stubs ---------------------------------------------------------------------
log "generating stubs into $GEN"
rm -rf "$STAGE" "$GEN"
mkdir -p "$STAGE/interop_pb/grpc/testing" "$GEN"
for p in "${PROTOS[@]}"; do
    sed -E 's#^import "grpc/testing/#import "interop_pb/grpc/testing/#' \
        "$PROTO_DIR/grpc/testing/$p.proto" >"$STAGE/interop_pb/grpc/testing/$p.proto"
done
files=()
for p in "${PROTOS[@]}"; do
    files+=("$STAGE/interop_pb/grpc/testing/$p.proto")
done
"$VENV/bin/python" -m grpc_tools.protoc -I "$STAGE" \
    --python_out="$GEN" --grpc_python_out="$GEN" "${files[@]}"
for d in "$GEN/interop_pb" "$GEN/interop_pb/grpc" "$GEN/interop_pb/grpc/testing"; do
    touch "$d/__init__.py"
done
"$VENV/bin/python" - "$GEN" <<'EOF'
import sys
sys.path.insert(0, sys.argv[1])
from interop_pb.grpc.testing import test_pb2_grpc, messages_pb2, empty_pb2  # noqa: F401
import grpc
import grpc_channelz.v1.channelz_pb2_grpc  # noqa: F401
import h2.connection
EOF

echo "$STAMP_CONTENT" >"$STAMP"
log "done (grpcio $GRPC_VERSION, h2 $H2_VERSION)"
