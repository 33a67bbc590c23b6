#!/usr/bin/env bash
# The interop matrix: Courier's interop client and server against each other
# and against real third-party peers, grpc-go 1.33 (Debian's source package)
# and the gRPC C core (Python grpcio), in plaintext and in TLS.
#
# Run as root on Debian 12: it installs the peers first (scripts/interop/),
# and with them those that only cargo tests use (h2 in the Python venv,
# nghttp2's tools for crates/courier-tests/tests/h2_peers.rs).
# Prints a table of case x pairing and ends with "N passed, N failed"; exits
# non-zero if any case failed. A case a peer does not implement is shown as
# "n/a" and not counted.
#
#   scripts/interop.sh                 # the whole matrix
#   CASES="large_unary ping_pong" scripts/interop.sh
set -euo pipefail
cd "$(dirname "$0")/.."

OUT=target/interop
mkdir -p "$OUT/logs"

bash scripts/interop/install-go.sh
bash scripts/interop/install-python.sh
bash scripts/interop/install-nghttp2.sh
cargo build -q -p courier-interop --bins

COURIER_CLIENT=(target/debug/courier-interop-client)
COURIER_SERVER=(target/debug/courier-interop-server)
GO_CLIENT=("$OUT/go/bin/interop-client")
GO_SERVER=("$OUT/go/bin/interop-server")
PY="$OUT/python/venv/bin/python"
PY_CLIENT=(env "PYTHONPATH=$OUT/python/gen" "$PY" crates/courier-interop/peers/interop_client.py)
PY_SERVER=(env "PYTHONPATH=$OUT/python/gen" "$PY" crates/courier-interop/peers/interop_server.py)

# Test certificates: grpc-go's testdata (a test CA and a server certificate
# for *.test.google.fr), taken from the source package at install time.
CA="$OUT/go/testdata/ca.pem"
CERT="$OUT/go/testdata/server1.pem"
KEY="$OUT/go/testdata/server1.key"
HOST_OVERRIDE=foo.test.google.fr

ALL_CASES=(
  empty_unary large_unary
  client_streaming server_streaming ping_pong empty_stream
  timeout_on_sleeping_server cancel_after_begin cancel_after_first_response
  status_code_and_message special_status_message custom_metadata
  unimplemented_method unimplemented_service
  client_compressed_unary server_compressed_unary client_compressed_streaming server_compressed_streaming
  rpc_soak channel_soak
)
read -r -a CASE_LIST <<<"${CASES:-${ALL_CASES[*]}}"
SOAK_ITERATIONS=${SOAK_ITERATIONS:-10}

# Whether implementation $1, as $2 (client or server), has test case $3.
supports() {
  local impl=$1 role=$2 case=$3
  case "$impl:$role:$case" in
    # grpc-go 1.33's schema has no response_compressed or expect_compressed
    # and it has no compression cases; its client has no soak cases.
    go:*:*compressed*) return 1 ;;
    go:client:*_soak) return 1 ;;
  esac
  return 0
}

wait_for_port() {
  local port=$1 pid=$2
  for _ in $(seq 1 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
    if ! kill -0 "$pid" 2>/dev/null; then return 1; fi
    sleep 0.1
  done
  return 1
}

SERVER_PID=
stop_server() {
  if [ -n "$SERVER_PID" ]; then
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=
  fi
}
trap stop_server EXIT

# start_server IMPL PORT TLS(0|1)
start_server() {
  local impl=$1 port=$2 tls=$3 log="$OUT/logs/server-$1-$3.log"
  local -a cmd tlsargs=()
  case "$impl" in
    courier) cmd=("${COURIER_SERVER[@]}") ;;
    go) cmd=("${GO_SERVER[@]}") ;;
    python) cmd=("${PY_SERVER[@]}") ;;
  esac
  if [ "$tls" = 1 ]; then
    tlsargs=(--use_tls=true --tls_cert_file="$CERT" --tls_key_file="$KEY")
  else
    tlsargs=(--use_tls=false)
  fi
  "${cmd[@]}" --port="$port" "${tlsargs[@]}" >"$log" 2>&1 &
  SERVER_PID=$!
  if ! wait_for_port "$port" "$SERVER_PID"; then
    echo "the $impl server did not start; see $log" >&2
    return 1
  fi
}

# start_server_on_a_free_port IMPL TLS: start_server on $port, moving on to
# the next port while the server reports that its port is taken (the peers
# bind the port they are given, so a port cannot be reserved for them); sets
# port to the one the server listens on.
start_server_on_a_free_port() {
  local impl=$1 tls=$2 log="$OUT/logs/server-$1-$2.log"
  for _ in $(seq 1 20); do
    if start_server "$impl" "$port" "$tls" 2>/dev/null; then return 0; fi
    stop_server
    if ! grep -qiE 'address already in use|failed to bind' "$log"; then break; fi
    next_port
  done
  echo "the $impl server did not start; see $log" >&2
  return 1
}

# Listening ports below Linux's ephemeral range (32768-60999), where no
# outgoing connection of the clients can hold one.
next_port() {
  port=$((port + 1))
  if [ "$port" -ge 32000 ]; then port=20000; fi
}

# run_client IMPL PORT TLS CASE: prints one line of detail on failure.
run_client() {
  local impl=$1 port=$2 tls=$3 case=$4
  local -a cmd args=(--server_host=127.0.0.1 --server_port="$port" --test_case="$case")
  case "$impl" in
    courier) cmd=("${COURIER_CLIENT[@]}") ;;
    go) cmd=("${GO_CLIENT[@]}") ;;
    python) cmd=("${PY_CLIENT[@]}") ;;
  esac
  if [ "$tls" = 1 ]; then
    args+=(--use_tls=true --server_host_override="$HOST_OVERRIDE")
    if [ "$impl" = go ]; then args+=(--use_test_ca=true); else args+=(--use_test_ca=true --ca_file="$CA"); fi
  else
    args+=(--use_tls=false)
  fi
  case "$case" in
    rpc_soak|channel_soak) args+=(--soak_iterations="$SOAK_ITERATIONS") ;;
  esac
  # grpc-go's client waits forever for an absent server: always bounded.
  timeout 120 "${cmd[@]}" "${args[@]}" 2>&1
}

PAIRINGS=(courier:courier courier:go courier:python go:courier python:courier)
declare -A RESULT
passed=0
failed=0
FAILURES=()
port=$((20000 + RANDOM % 12000))

for tls in 0 1; do
  for pairing in "${PAIRINGS[@]}"; do
    client=${pairing%%:*}
    server=${pairing##*:}
    col="$client->$server$([ "$tls" = 1 ] && echo ' tls' || true)"
    next_port
    start_server_on_a_free_port "$server" "$tls"
    for case in "${CASE_LIST[@]}"; do
      if ! supports "$client" client "$case" || ! supports "$server" server "$case"; then
        RESULT["$case|$col"]="n/a"
        continue
      fi
      if out=$(run_client "$client" "$port" "$tls" "$case"); then
        RESULT["$case|$col"]="pass"
        passed=$((passed + 1))
      else
        RESULT["$case|$col"]="FAIL"
        failed=$((failed + 1))
        FAILURES+=("$case [$col]: $(printf '%s' "$out" | grep -v '^\s*$' | tail -n 1)")
      fi
    done
    stop_server
  done
done

COLUMNS_LIST=()
for tls in 0 1; do
  for pairing in "${PAIRINGS[@]}"; do
    COLUMNS_LIST+=("${pairing%%:*}->${pairing##*:}$([ "$tls" = 1 ] && echo ' tls' || true)")
  done
done

echo
printf '%-30s' "case \\ client->server"
for col in "${COLUMNS_LIST[@]}"; do printf ' %-18s' "$col"; done
echo
for case in "${CASE_LIST[@]}"; do
  printf '%-30s' "$case"
  for col in "${COLUMNS_LIST[@]}"; do printf ' %-18s' "${RESULT["$case|$col"]:-?}"; done
  echo
done
if [ "${#FAILURES[@]}" -gt 0 ]; then
  echo
  echo "Failures:"
  printf '  %s\n' "${FAILURES[@]}"
fi
echo
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
