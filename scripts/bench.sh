#!/usr/bin/env bash
# Courier's benchmark suite: every scenario against every implementation in
# one run, and a table of scenario x implementation with the Courier/tonic
# ratios. See docs/PERFORMANCE.md for what it measures and how.
#
#   scripts/bench.sh               # everything: Courier, tonic, grpc-go, gRPC C++, grpcio
#   scripts/bench.sh --smoke       # 1 s, one run, Courier and tonic only
#   scripts/bench.sh --callgrind   # server instructions per RPC under callgrind
#   scripts/bench.sh --callgrind-lb   # client instructions per call, and the
#                                     # picker's, pick_first vs round_robin
#   scripts/bench.sh --table       # only print the table of the last run again
#
# Environment:
#   BENCH_SECS=5        measured seconds per run (after BENCH_WARMUP=1)
#   BENCH_RUNS=3        runs per scenario and implementation (median reported)
#   BENCH_IMPLS="courier tonic courier-test go cpp python"   which servers
#   BENCH_SCENARIOS="..."   a subset of the scenario names below
#   CALLGRIND_RPCS=2000 calls per callgrind run (the second run makes twice as many)
#   CALLGRIND_IMPLS="courier tonic"   the servers --callgrind measures; add
#                       courier-otel for Courier recording OpenTelemetry
#                       metrics (an SDK meter provider, a Prometheus reader)
#   CALLGRIND_REPEAT=1  how many times --callgrind and --callgrind-lb measure
#                       each; the tables give the median (unary counts, the
#                       server's and --callgrind-lb's client's, agree to a
#                       few dozen instructions per call; ping-pong and
#                       streaming move by a few per cent with how messages
#                       and wake-ups batch)
#   CALLGRIND_COURIER_SERVER  Courier's server binary for --callgrind (default
#                       this tree's courier-bench-server, built with
#                       --cfg courier_untimed_inline into
#                       target/untimed-inline; it needs --fixed-windows)
#   CALLGRIND_LB_CLIENT the client binary --callgrind-lb measures (default
#                       this build's courier-bench; it needs --fixed-windows)
#   CARGO_TARGET_DIR    where cargo builds (default target); the binaries are
#                       taken from its release/
#
# Every server is pinned to core 0 with taskset and runs one worker thread
# (Courier and tonic: a tokio multi-thread runtime with 1 worker; grpc-go:
# GOMAXPROCS follows the one-core affinity; gRPC C++: the callback API on
# gRPC core's own threads, which size themselves from the one-core affinity;
# grpcio: one core, its default thread pool). The load generator (courier-bench, on the Courier client) and
# h2load run on core 1. Each measurement starts a fresh server, and the
# implementations are interleaved within each run of each scenario.
#
# The lb-* scenarios measure the client instead: the same load (one
# channel, 64 calls in flight) sent by a single-address channel to one
# Courier server, or balanced by round_robin over four (all pinned to the
# server core, one worker thread each), and report the load generator's CPU
# time per call (its own utime + stime over the measured window / calls).
# The retry-* scenarios measure the client the same way: unary 1 KiB at
# 4x64 with a retry policy on every method that never triggers, and none.
# The client-* scenarios compare clients: the same unary load from
# courier-bench on the Courier client and on tonic's (--client tonic),
# against a Courier server and against a tonic server, each measurement on
# a fresh server, the implementations interleaved; they print the client
# CPU per call of each and the Courier/tonic ratio.
#
# Outputs go to target/bench/: results.jsonl (every run), table.md (the
# medians and ratios), logs/, and callgrind/ for --callgrind and
# --callgrind-lb.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/bench-lib.sh
source scripts/bench-lib.sh

MODE=full
for arg in "$@"; do
  case "$arg" in
    --smoke) MODE=smoke ;;
    --callgrind) MODE=callgrind ;;
    --callgrind-lb) MODE=callgrind-lb ;;
    --table) MODE=table ;;
    -h|--help) sed -n '2,43p' "$0"; exit 0 ;;
    *) echo "unknown argument: $arg" >&2; exit 2 ;;
  esac
done

OUT=target/bench
mkdir -p "$OUT/logs"
BIN=${CARGO_TARGET_DIR:-target}/release
SECS=${BENCH_SECS:-5}
RUNS=${BENCH_RUNS:-3}
WARMUP=${BENCH_WARMUP:-1}
if [ "$MODE" = smoke ]; then
  SECS=${BENCH_SECS:-1}
  RUNS=1
  WARMUP=${BENCH_WARMUP:-0.5}
fi

GO_SERVER=target/interop/go/bin/interop-server
CPP_SERVER=target/interop/cpp/bin/benchmark-server
PY=target/interop/python/venv/bin/python
PY_GEN=target/interop/python/gen
PY_SERVER=crates/courier-interop/peers/interop_server.py

# Cores: servers on 0, load generators on 1 (on a one-core machine, both on 0).
if [ "$(nproc)" -ge 2 ]; then
  SERVER_CPU=0
  CLIENT_CPU=1
else
  echo "warning: one core only; server and load generator share it" >&2
  SERVER_CPU=0
  CLIENT_CPU=0
fi
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

need cargo
need jq
need taskset

if [ "$MODE" != table ]; then
  echo "building courier-bench (release)..." >&2
  cargo build -q --release -p courier-bench
fi

# h2load (Debian's nghttp2-client), the second load generator.
if ! command -v h2load >/dev/null 2>&1 && [ "$MODE" = full ] && [ "$(id -u)" = 0 ]; then
  echo "installing nghttp2-client for h2load..." >&2
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nghttp2-client) \
    >"$OUT/logs/apt.log" 2>&1 || echo "warning: could not install nghttp2-client" >&2
fi
HAVE_H2LOAD=0
command -v h2load >/dev/null 2>&1 && HAVE_H2LOAD=1

trap stop_server EXIT

wait_for_port() {
  local port=$1 pid=$2 tries=${3:-200}
  for _ in $(seq 1 "$tries"); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
    if ! kill -0 "$pid" 2>/dev/null; then return 1; fi
    sleep 0.05
  done
  return 1
}

# The gRPC service an implementation's server is driven through.
target_of() {
  case "$1" in
    courier|tonic|cpp) echo benchmark ;;
    *) echo test ;;
  esac
}

service_path() {
  case "$(target_of "$1")" in
    benchmark) echo /grpc.testing.BenchmarkService/UnaryCall ;;
    test) echo /grpc.testing.TestService/UnaryCall ;;
  esac
}

available() {
  case "$1" in
    courier|tonic|courier-test) return 0 ;;
    go) [ -x "$GO_SERVER" ] ;;
    cpp) [ -x "$CPP_SERVER" ] ;;
    python) [ -x "$PY" ] && [ -d "$PY_GEN" ] ;;
    *) return 1 ;;
  esac
}

# Courier's bench server: this build's, or another (an older commit's
# build, to compare) with CALLGRIND_COURIER_SERVER.
COURIER_SERVER=${CALLGRIND_COURIER_SERVER:-$BIN/courier-bench-server}
# --callgrind measures a build of it whose inline policy does not time its
# calls (--cfg courier_untimed_inline; see src/transport/inline.rs): under
# callgrind's slowdown the clock would decide from run to run which calls
# are polled inline and which spawned. It has its own target directory, as
# its flags differ.
if [ "$MODE" = callgrind ] && [ -z "${CALLGRIND_COURIER_SERVER:-}" ]; then
  UNTIMED_TARGET=${CARGO_TARGET_DIR:-target}/untimed-inline
  echo "building courier-bench-server with --cfg courier_untimed_inline (release, $UNTIMED_TARGET)..." >&2
  RUSTFLAGS="${RUSTFLAGS:-} --cfg courier_untimed_inline" CARGO_TARGET_DIR="$UNTIMED_TARGET" \
    cargo build -q --release -p courier-bench --bin courier-bench-server
  COURIER_SERVER=$UNTIMED_TARGET/release/courier-bench-server
fi
# More arguments for Courier's server (--callgrind sets them).
SERVER_ARGS=()

# start_server IMPL PORT [WRAPPER...]: starts the server pinned to the
# server core; sets SERVER_PID. With a wrapper (valgrind), the wrapper's
# process is the server's.
start_server() {
  local impl=$1 port=$2
  shift 2
  local log="$OUT/logs/server-$impl-$port.log"
  local -a cmd
  case "$impl" in
    courier|courier-test) cmd=("$COURIER_SERVER" --port "$port" --threads 1 "${SERVER_ARGS[@]}") ;;
    courier-otel) cmd=("$COURIER_SERVER" --port "$port" --threads 1 --otel "${SERVER_ARGS[@]}") ;;
    tonic) cmd=("$BIN/tonic-bench-server" --port "$port" --threads 1) ;;
    go) cmd=("$GO_SERVER" --port="$port") ;;
    cpp) cmd=("$CPP_SERVER" --port="$port") ;;
    python) cmd=(env "PYTHONPATH=$PY_GEN" "$PY" "$PY_SERVER" --port="$port") ;;
  esac
  taskset -c "$SERVER_CPU" "$@" "${cmd[@]}" >"$log" 2>&1 &
  SERVER_PID=$!
  if ! wait_for_port "$port" "$SERVER_PID" 1200; then
    echo "the $impl server did not start on port $port:" >&2
    tail -n 5 "$log" >&2
    SERVER_PID=
    return 1
  fi
}

# start_backends N [WRAPPER...]: N Courier bench servers on ports they
# choose (--port 0, read from the line each prints), pinned to the server
# core; sets BACKEND_PIDS and BACKEND_TARGET (an ipv4: target of them all).
BACKEND_PIDS=()
BACKEND_TARGET=
# More arguments for every backend.
BACKEND_ARGS=()
start_backends() {
  local n=$1 i addr log addrs=()
  shift
  BACKEND_PIDS=()
  for i in $(seq 1 "$n"); do
    log="$OUT/logs/backend-$i.log"
    taskset -c "$SERVER_CPU" "$@" "$BIN/courier-bench-server" --port 0 --threads 1 "${BACKEND_ARGS[@]}" >"$log" 2>&1 &
    BACKEND_PIDS+=($!)
    addr=
    for _ in $(seq 1 1200); do
      addr=$(sed -n 's/^courier-bench-server listening on //p' "$log")
      [ -n "$addr" ] && break
      kill -0 "${BACKEND_PIDS[-1]}" 2>/dev/null || break
      sleep 0.05
    done
    if [ -z "$addr" ]; then
      echo "backend $i did not start:" >&2
      tail -n 5 "$log" >&2
      stop_backends
      return 1
    fi
    addrs+=("$addr")
  done
  BACKEND_TARGET="ipv4:$(IFS=,; echo "${addrs[*]}")"
}

stop_backends() {
  local pid
  for pid in "${BACKEND_PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${BACKEND_PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  BACKEND_PIDS=()
}
trap 'stop_server; stop_backends' EXIT

# Listening ports below Linux's default ephemeral range (32768-60999), so
# that the load generators' own connections never hold one.
PORT=$((20000 + RANDOM % 10000))
next_port() {
  PORT=$((PORT + 1))
  if [ "$PORT" -ge 32000 ]; then PORT=20000; fi
}

# Scenarios: NAME|KIND|ARGS. KIND is loadgen (courier-bench) or h2load
# (CONNECTIONS STREAMS PAYLOAD [MESSAGES]). With MESSAGES, each h2load
# request is one BenchmarkService.StreamingCall carrying that many requests
# in its body, all sent as fast as flow control allows, each answered by the
# server: streaming throughput with a load generator much cheaper per
# message than the Courier client. QPS is then messages per second.
SCENARIOS=(
  "unary-empty-1x1|loadgen|--mode unary --connections 1 --streams 1 --payload 0"
  "unary-1k-1x1|loadgen|--mode unary --connections 1 --streams 1 --payload 1024"
  "unary-empty-4x64|loadgen|--mode unary --connections 4 --streams 64 --payload 0"
  "unary-1k-4x64|loadgen|--mode unary --connections 4 --streams 64 --payload 1024"
  "ping-pong|loadgen|--mode ping-pong --connections 1 --streams 1 --payload 0"
  "stream-1k|loadgen|--mode streaming --connections 1 --streams 1 --payload 1024"
  "stream-1m|loadgen|--mode streaming --connections 1 --streams 1 --payload 1048576"
  "idle-1000|loadgen|--mode idle-connections --connections 1000 --hold 3"
  "streams-10k|loadgen|--mode unary --connections 1 --streams 10000 --payload 0"
  "h2load-unary-empty-1x1|h2load|1 1 0"
  "h2load-unary-empty-4x64|h2load|4 64 0"
  "h2load-unary-1k-4x64|h2load|4 64 1024"
  "h2load-stream-1k|h2load|1 1 1024 1000"
  "h2load-stream-1m|h2load|1 1 1048576 20"
  "h2load-streams-10k|h2load|1 10000 0"
  # BACKENDS POLICY LOADGEN ARGS: the client's cost, Courier servers only.
  "lb-single-1x64|lb|1 pick_first --mode unary --connections 1 --streams 64 --payload 0"
  "lb-rr4-1x64|lb|4 round_robin --mode unary --connections 1 --streams 64 --payload 0"
  # The same 64 calls over as many connections as round_robin's (4
  # channels of 16), to one address: what one connection per backend costs
  # apart from the picker.
  "lb-single-4x16|lb|1 pick_first --mode unary --connections 4 --streams 16 --payload 0"
  # Unary 1 KiB at 4x64 with a retry policy on every method that never
  # triggers, against none: what a configured policy costs the client.
  "retry-none-4x64|lb|1 pick_first --mode unary --connections 4 --streams 64 --payload 1024"
  "retry-policy-4x64|lb|1 pick_first --mode unary --connections 4 --streams 64 --payload 1024 --retry-policy"
  # LOADGEN ARGS, run with --client courier and --client tonic against a
  # Courier server and a tonic server: the client's cost against tonic's.
  "client-unary-1x1|client|--mode unary --connections 1 --streams 1 --payload 0"
  "client-unary-4x64|client|--mode unary --connections 4 --streams 64 --payload 0"
)

# A protobuf varint, as printf escapes.
varint() {
  local v=$1 out=""
  while [ "$v" -ge 128 ]; do
    out+="\\x$(printf %02x $(( (v & 0x7f) | 0x80 )))"
    v=$(( v >> 7 ))
  done
  out+="\\x$(printf %02x "$v")"
  echo "$out"
}

# The gRPC body h2load sends: a SimpleRequest asking for PAYLOAD bytes back
# and carrying PAYLOAD bytes, behind the 5-byte message prefix.
request_body() {
  local payload=$1 file="$OUT/request-$1.grpc"
  if [ ! -f "$file" ]; then
    {
      if [ "$payload" -eq 0 ]; then
        printf '\x00\x00\x00\x00\x00'
      else
        # response_size (field 2, varint) + payload (field 3) { body (field 2) }.
        local size body inner
        size=$(varint "$payload")
        body="\\x12$size"
        local inner_len=$(( 1 + ${#size} / 4 + payload ))
        inner=$(varint "$inner_len")
        local total=$(( 1 + ${#size} / 4 + 1 + ${#inner} / 4 + inner_len ))
        printf '\x00'
        printf "\\x$(printf %02x $(( (total >> 24) & 255 )))\\x$(printf %02x $(( (total >> 16) & 255 )))"
        printf "\\x$(printf %02x $(( (total >> 8) & 255 )))\\x$(printf %02x $(( total & 255 )))"
        printf "\\x10$size\\x1a$inner$body"
        head -c "$payload" /dev/zero
      fi
    } >"$file"
  fi
  echo "$file"
}

# CPU ticks (utime + stime) of a process.
cpu_ticks() {
  awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$1/stat"
}
CLK_TCK=$(getconf CLK_TCK)

record() {
  # record SCENARIO IMPL RUN: reads one JSON object on stdin, appends it.
  jq -c --arg s "$1" --arg i "$2" --argjson r "$3" '. + {scenario: $s, impl: $i, run: $r}' >>"$RESULTS"
}

run_loadgen() {
  local scenario=$1 impl=$2 run=$3 args=$4
  local log="$OUT/logs/$scenario-$impl-$run.log"
  # shellcheck disable=SC2086
  if taskset -c "$CLIENT_CPU" "$BIN/courier-bench" --server "127.0.0.1:$PORT" --target "$(target_of "$impl")" \
      --server-pid "$SERVER_PID" --duration "$SECS" --warmup "$WARMUP" --threads 1 --json \
      --label "$scenario/$impl/$run" $args >"$log.json" 2>"$log"; then
    record "$scenario" "$impl" "$run" <"$log.json"
  else
    echo "  courier-bench failed for $scenario on $impl; see $log" >&2
    FAILED=$((FAILED + 1))
  fi
}

# run_clients SCENARIO RUN ARGS: the client-* scenarios. Every pair of a
# server (Courier, tonic, those of BENCH_IMPLS) and a client (Courier,
# tonic), each on a fresh server, starting from a different pair each run.
# Recorded with impl = the client and server_impl = the server.
run_clients() {
  local scenario=$1 run=$2 args=$3 server client k n log
  local -a pairs=()
  for server in courier tonic; do
    [[ " ${ACTIVE[*]} " == *" $server "* ]] || continue
    for client in courier tonic; do pairs+=("$server $client"); done
  done
  n=${#pairs[@]}
  for k in $(seq 0 $((n - 1))); do
    read -r server client <<<"${pairs[$(((k + run - 1) % n))]}"
    echo "$scenario run $run/$RUNS: $client client, $server server" >&2
    log="$OUT/logs/$scenario-$client-client-$server-server-$run.log"
    next_port
    start_server "$server" "$PORT" || { FAILED=$((FAILED + 1)); continue; }
    # shellcheck disable=SC2086
    if taskset -c "$CLIENT_CPU" "$BIN/courier-bench" --client "$client" --server "127.0.0.1:$PORT" \
        --target benchmark --server-pid "$SERVER_PID" --duration "$SECS" --warmup "$WARMUP" --threads 1 \
        --json --label "$scenario/$client-client/$server-server/$run" $args >"$log.json" 2>"$log"; then
      jq -c --arg srv "$server" '. + {server_impl: $srv}' "$log.json" | record "$scenario" "$client" "$run"
    else
      echo "  courier-bench --client $client failed for $scenario on the $server server; see $log" >&2
      FAILED=$((FAILED + 1))
    fi
    stop_server
  done
}

run_lb() {
  local scenario=$1 run=$2 backends=$3 lb=$4 args=$5
  local log="$OUT/logs/$scenario-$run.log" pid
  local -a pids=()
  start_backends "$backends" || { FAILED=$((FAILED + 1)); return; }
  for pid in "${BACKEND_PIDS[@]}"; do pids+=(--server-pid "$pid"); done
  # shellcheck disable=SC2086
  if taskset -c "$CLIENT_CPU" "$BIN/courier-bench" --server "$BACKEND_TARGET" --lb "$lb" --target benchmark \
      "${pids[@]}" --duration "$SECS" --warmup "$WARMUP" --threads 1 --json \
      --label "$scenario/courier/$run" $args >"$log.json" 2>"$log"; then
    jq -c --argjson b "$backends" '. + {backends: $b}' "$log.json" | record "$scenario" courier "$run"
  else
    echo "  courier-bench failed for $scenario; see $log" >&2
    FAILED=$((FAILED + 1))
  fi
  stop_backends
}

# Converts an h2load time ("123.45us", "1.2ms", "2s") to microseconds.
# The argument if it is a JSON number, else null.
number() {
  if [[ "$1" =~ ^-?[0-9]+(\.[0-9]+)?$ ]]; then echo "$1"; else echo null; fi
}

to_us() {
  awk -v t="$1" 'BEGIN {
    if (t ~ /us$/) { sub(/us$/, "", t); print t + 0 }
    else if (t ~ /ms$/) { sub(/ms$/, "", t); print t * 1000 }
    else if (t ~ /s$/) { sub(/s$/, "", t); print t * 1000000 }
    else print "null" }'
}

# The body of one streaming call: COUNT request messages back to back.
stream_body() {
  local payload=$1 count=$2 file="$OUT/stream-$1-$2.grpc"
  if [ ! -f "$file" ]; then
    local one
    one=$(request_body "$payload")
    for _ in $(seq 1 "$count"); do cat "$one"; done >"$file"
  fi
  echo "$file"
}

run_h2load() {
  local scenario=$1 impl=$2 run=$3 conns=$4 streams=$5 payload=$6 count=${7:-0}
  local log="$OUT/logs/$scenario-$impl-$run.log"
  local body url per=1
  if [ "$count" -gt 0 ]; then
    body=$(stream_body "$payload" "$count")
    url="http://127.0.0.1:$PORT/grpc.testing.BenchmarkService/StreamingCall"
    per=$count
  else
    body=$(request_body "$payload")
    url="http://127.0.0.1:$PORT$(service_path "$impl")"
  fi
  local -a common=(-d "$body" -H 'content-type: application/grpc' -H 'te: trailers')
  # Warm-up, not counted.
  taskset -c "$CLIENT_CPU" h2load -c "$conns" -m "$streams" -D "$WARMUP" "${common[@]}" "$url" >/dev/null 2>&1 || true
  local before after
  before=$(cpu_ticks "$SERVER_PID")
  if ! taskset -c "$CLIENT_CPU" h2load -c "$conns" -m "$streams" -D "$SECS" "${common[@]}" "$url" >"$log" 2>&1; then
    echo "  h2load failed for $scenario on $impl:" >&2
    sed 's/^/    /' "$log" >&2
    FAILED=$((FAILED + 1))
    return
  fi
  after=$(cpu_ticks "$SERVER_PID")
  local secs rps ok failed errored mean peak
  # h2load prints the elapsed time as "1.00s" or, under a second, "999.87ms".
  secs=$(to_us "$(awk '/^finished in/ { sub(/,$/, "", $3); print $3 }' "$log")")
  secs=$(awk -v u="$secs" 'BEGIN { if (u == "null") print "null"; else print u / 1000000 }')
  rps=$(number "$(awk '/^finished in/ { print $4 }' "$log")")
  read -r ok failed errored < <(awk '/^requests:/ { print $8, $10, $12 }' "$log")
  ok=$(number "${ok:-}")
  failed=$(number "${failed:-}")
  errored=$(number "${errored:-}")
  mean=$(to_us "$(awk '/^time for request:/ { print $6 }' "$log")")
  peak=$(number "$(awk '/^VmHWM:/ { print $2 }' "/proc/$SERVER_PID/status" 2>/dev/null || true)")
  if [ "$secs" = null ] || [ "$ok" = null ]; then
    echo "  h2load output for $scenario on $impl not understood:" >&2
    sed 's/^/    /' "$log" >&2
    FAILED=$((FAILED + 1))
    return
  fi
  # Response bytes in DATA frames: h2load counts HTTP 200s, not grpc-status,
  # so a server answering with errors shows here, as too few MiB/s.
  local data
  data=$(number "$(sed -n 's/^traffic:.*(\([0-9]*\)) data.*/\1/p' "$log")")
  jq -n -c --argjson secs "$secs" --argjson rps "$rps" --argjson ok "$ok" \
    --argjson failed "$failed" --argjson errored "$errored" --argjson mean "$mean" \
    --argjson ticks "$((after - before))" --argjson tck "$CLK_TCK" --argjson peak "$peak" \
    --argjson c "$conns" --argjson m "$streams" --argjson p "$payload" --argjson per "$per" \
    --argjson data "${data:-null}" '{
      mode: "h2load", connections: $c, streams: $m, payload: $p, elapsed_s: $secs,
      messages_per_call: $per, bytes_received: $data,
      ok: ($ok * $per), errors_total: (($failed // 0) + ($errored // 0)), qps: (if $rps == null then null else $rps * $per end),
      mean_us: (if $per == 1 then $mean else null end),
      p50_us: null, p99_us: null,
      server_cpu_us_per_rpc: (if $ok > 0 then $ticks * 1000000 / $tck / $ok / $per else null end),
      server_peak_rss_kib: $peak }' | record "$scenario" "$impl" "$run"
}

# ---------------------------------------------------------------------------
# --callgrind: server instructions per RPC, Courier and tonic.
# ---------------------------------------------------------------------------
# The awk function both callgrind tables take their medians with: the
# median of the numbers in a space-separated list, 0 for none. Numbers
# joined into a list keep ten digits (awk's default keeps six).
AWK_MEDIAN='
  BEGIN { CONVFMT = "%.10g" }
  function median(list,   v, n, i, j, t) {
    n = split(list, v, " ")
    if (n == 0) return 0
    for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (v[j] + 0 < v[i] + 0) { t = v[i]; v[i] = v[j]; v[j] = t }
    return (n % 2) ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
  }'

callgrind_total() {
  # The "summary:" (or "totals:") line of a callgrind output file: Ir.
  awk '/^(summary|totals):/ { print $2; exit }' "$1"
}

if [ "$MODE" = callgrind ]; then
  need valgrind
  N1=${CALLGRIND_RPCS:-2000}
  N2=$((2 * N1))
  IMPLS=${CALLGRIND_IMPLS:-courier tonic}
  REPEAT=${CALLGRIND_REPEAT:-1}
  CG="$OUT/callgrind"
  mkdir -p "$CG"
  # NAME|LOADGEN ARGS (one connection, one stream: a fixed amount of work)
  # Unary calls go one every 2 ms after the one before, so each reaches the
  # server once it has finished the last and parked, and both sides keep
  # fixed windows (no BDP pings, which would arrive, or whose acks would
  # come back, sooner or later from run to run): the server then does the
  # same work for every call, and unary counts repeat between runs.
  WORKLOADS=(
    "unary-empty|--mode unary --payload 0 --call-gap-us 2000 --fixed-windows"
    "unary-1k|--mode unary --payload 1024 --call-gap-us 2000 --fixed-windows"
    "ping-pong|--mode ping-pong --payload 0"
    "stream-1k|--mode streaming --payload 1024"
  )
  : >"$CG/results.tsv"
  for w in "${WORKLOADS[@]}"; do
    name=${w%%|*}
    args=${w#*|}
    for impl in $IMPLS; do
      for rep in $(seq 1 "$REPEAT"); do
        for n in "$N1" "$N2"; do
          next_port
          out="$CG/$impl-$name-$n.out"
          rm -f "$out"
          SERVER_ARGS=(--fixed-windows)
          start_server "$impl" "$PORT" valgrind --tool=callgrind --callgrind-out-file="$out" --dump-instr=no
          SERVER_ARGS=()
          # shellcheck disable=SC2086
          if ! taskset -c "$CLIENT_CPU" "$BIN/courier-bench" --server "127.0.0.1:$PORT" --target benchmark \
              --requests "$n" --threads 1 $args >"$CG/$impl-$name-$n.loadgen.txt" 2>&1; then
            echo "courier-bench failed under callgrind; see $CG/$impl-$name-$n.loadgen.txt" >&2
            exit 1
          fi
          stop_server
          ir=$(callgrind_total "$out")
          printf '%s\t%s\t%s\t%s\t%s\n' "$name" "$impl" "$rep" "$n" "$ir" >>"$CG/results.tsv"
          echo "  $name $impl run $rep, $n calls: $ir instructions" >&2
        done
      done
      # The profile of the last longer run, for reading.
      callgrind_annotate --inclusive=no "$CG/$impl-$name-$N2.out" 2>/dev/null | head -60 >"$CG/$impl-$name.top.txt" || true
      callgrind_annotate --inclusive=yes "$CG/$impl-$name-$N2.out" 2>/dev/null | head -80 >"$CG/$impl-$name.inclusive.txt" || true
    done
  done
  {
    echo "Server instructions per RPC under callgrind (Ir of a run with $N2 calls minus one with $N1,"
    echo "divided by $((N2 - N1)): start-up, connection set-up and shutdown cancel out); the median"
    echo "of $REPEAT such measurements per server."
    echo
    header="| workload |"
    rule="|---|"
    for impl in $IMPLS; do header="$header $impl instr/RPC |"; rule="$rule---:|"; done
    case " $IMPLS " in *" courier "*" tonic "*|*" tonic "*" courier "*) header="$header Courier/tonic |"; rule="$rule---:|" ;; esac
    case " $IMPLS " in *" courier-otel "*) header="$header with OTel / without |"; rule="$rule---:|" ;; esac
    echo "$header"
    echo "$rule"
    for w in "${WORKLOADS[@]}"; do
      name=${w%%|*}
      awk -F'\t' -v w="$name" -v n1="$N1" -v n2="$N2" -v impls="$IMPLS" "$AWK_MEDIAN"'
        $1 == w { ir[$2, $3, $4] = $5; reps[$2, $3] = 1 }
        END {
          # Each server'"'"'s per-RPC counts, one per measurement.
          for (k in reps) { split(k, p, SUBSEP); per[p[1]] = per[p[1]] " " (ir[p[1], p[2], n2] - ir[p[1], p[2], n1]) / (n2 - n1) }
          line = "| " w " |"
          n = split(impls, list, " ")
          for (i = 1; i <= n; i++) { m[list[i]] = median(per[list[i]]); line = line sprintf(" %.0f |", m[list[i]]) }
          if (("courier" in m) && ("tonic" in m)) line = line sprintf(" %.2f |", m["tonic"] > 0 ? m["courier"] / m["tonic"] : 0)
          if (("courier-otel" in m) && ("courier" in m)) line = line sprintf(" %.3f |", m["courier"] > 0 ? m["courier-otel"] / m["courier"] : 0)
          print line
        }' "$CG/results.tsv"
    done
  } | tee "$CG/table.md"
  echo
  echo "Profiles: $CG/*.out; top functions: $CG/*.top.txt"
  exit 0
fi

# ---------------------------------------------------------------------------
# --callgrind-lb: the load generator (the Courier client) under callgrind,
# one call at a time, against one backend with pick_first and four with
# round_robin; instructions per call for the whole client and for picking a
# connection. The servers run normally.
# ---------------------------------------------------------------------------
# pick_costs FILE: the instructions spent picking a connection, and of
# those in Picker::pick and in Subchannel::connection, from
# callgrind_annotate's inclusive costs. Shared::pick is inlined into the
# call's open future, so its share is the cost of that future's code from
# controller.rs (Shared::pick itself, with the Picker::pick and
# Subchannel::connection calls it makes, whose costs are read from the call
# tree) and from arc-swap (the load of the picker slot, inlined there too).
pick_costs() {
  callgrind_annotate --tree=calling --inclusive=yes --auto=no --threshold=100 "$1" 2>/dev/null | awk '
    function num(s) { gsub(/,/, "", s); return s + 0 }
    BEGIN { open_fn = "courier::client::call::<impl courier::client::Channel>::open::{{closure}}" }
    / \* / {
      line = $0
      n = index(line, "*")
      name = substr(line, n + 1)
      sub(/^ +/, "", name)
      sub(/ \[[^]]*\]$/, "", name)
      inblock = 0
      k = length(name) - length(open_fn)
      if (k > 0 && substr(name, k + 1) == open_fn) {
        file = substr(name, 1, k - 1)
        if (file ~ /client\/controller\.rs$/) { total += num($1); inblock = 1 }
        else if (file ~ /arc-swap-[^\/]*\/src\//) { total += num($1) }
      }
      next
    }
    inblock && / > / && /as courier::client::balancer::Picker>::pick / { picker += num($1) }
    inblock && / > / && /courier::client::subchannel::Subchannel::connection / { conn += num($1) }
    END { printf "%d\t%d\t%d\n", total, picker, conn }'
}

if [ "$MODE" = callgrind-lb ]; then
  need valgrind
  N1=${CALLGRIND_RPCS:-2000}
  N2=$((2 * N1))
  REPEAT=${CALLGRIND_REPEAT:-1}
  CG="$OUT/callgrind"
  mkdir -p "$CG"
  # The client's work per call repeats exactly only if nothing arrives
  # while it is still at work: the backends answer each call 2 ms late
  # (the client under callgrind has long sent the request and parked by
  # then), and the client sends no BDP pings, whose acks would come back
  # sooner or later from run to run. Counts then agree between runs to a
  # few instructions per call.
  BACKEND_ARGS=(--unary-delay-us 2000)
  # The client measured: this build's, or another (an older commit's build,
  # to compare), against this build's backends.
  LB_CLIENT=${CALLGRIND_LB_CLIENT:-$BIN/courier-bench}
  # NAME|BACKENDS|POLICY|LOADGEN ARGS
  LB_WORKLOADS=(
    "single-pick_first|1|pick_first|--payload 0"
    "rr4-round_robin|4|round_robin|--payload 0"
    # What a retry policy that never triggers costs (issue 13).
    "single-1k|1|pick_first|--payload 1024"
    "single-1k-retry-policy|1|pick_first|--payload 1024 --retry-policy"
    # What OpenTelemetry metrics cost the client (issue 15).
    "single-otel|1|pick_first|--payload 0 --otel"
  )
  : >"$CG/lb-results.tsv"
  for w in "${LB_WORKLOADS[@]}"; do
    IFS='|' read -r name backends lb extra <<<"$w"
    for rep in $(seq 1 "$REPEAT"); do
      for n in "$N1" "$N2"; do
        start_backends "$backends"
        out="$CG/client-$name-$n.out"
        rm -f "$out"
        # shellcheck disable=SC2086
        if ! taskset -c "$CLIENT_CPU" valgrind --tool=callgrind --callgrind-out-file="$out" --dump-instr=no \
            "$LB_CLIENT" --server "$BACKEND_TARGET" --lb "$lb" --target benchmark \
            --mode unary $extra --fixed-windows --connections 1 --streams 1 --requests "$n" --threads 1 \
            >"$CG/client-$name-$n.loadgen.txt" 2>&1; then
          echo "courier-bench failed under callgrind; see $CG/client-$name-$n.loadgen.txt" >&2
          exit 1
        fi
        stop_backends
        printf '%s\t%s\t%s\t%s\t%s\n' "$name" "$rep" "$n" "$(callgrind_total "$out")" "$(pick_costs "$out")" >>"$CG/lb-results.tsv"
        echo "  $name run $rep, $n calls: $(callgrind_total "$out") instructions" >&2
      done
    done
    callgrind_annotate --inclusive=yes --auto=no "$CG/client-$name-$N2.out" 2>/dev/null | head -80 >"$CG/client-$name.inclusive.txt" || true
  done
  BACKEND_ARGS=()
  {
    echo "Client instructions per call under callgrind (Ir of a run with $N2 calls minus one with $N1,"
    echo "divided by $((N2 - N1)); one channel, one call at a time, unary; the payload as named; the"
    echo "backends answer 2 ms late and the client's HTTP/2 windows are fixed); the median of $REPEAT"
    echo "such measurements. \"picking\" is Shared::pick with the picker slot's load, Picker::pick and"
    echo "Subchannel::connection."
    echo
    echo "| channel | client instr/call | picking instr/call | of which Picker::pick | of which Subchannel::connection |"
    echo "|---|---:|---:|---:|---:|"
    awk -F'\t' -v n1="$N1" -v n2="$N2" "$AWK_MEDIAN"'
      { k = $1 SUBSEP $2; total[k, $3] = $4; pick[k, $3] = $5; picker[k, $3] = $6; conn[k, $3] = $7
        if (!((k) in runs)) { runs[k] = 1; reps[$1] = reps[$1] " " $2 }
        if (!($1 in seen)) { seen[$1] = 1; order[++w] = $1 } }
      END {
        d = n2 - n1
        for (i = 1; i <= w; i++) {
          name = order[i]
          split(substr(reps[name], 2), rl, " ")
          t = p = q = c = ""
          for (r in rl) {
            k = name SUBSEP rl[r]
            t = t " " (total[k, n2] - total[k, n1]) / d
            p = p " " (pick[k, n2] - pick[k, n1]) / d
            q = q " " (picker[k, n2] - picker[k, n1]) / d
            c = c " " (conn[k, n2] - conn[k, n1]) / d
          }
          printf "| %s | %.0f | %.1f | %.1f | %.1f |\n", name, median(t), median(p), median(q), median(c)
        }
      }' "$CG/lb-results.tsv"
  } | tee "$CG/lb-table.md"
  echo
  echo "Profiles: $CG/client-*.out"
  exit 0
fi

# ---------------------------------------------------------------------------
# The load runs.
# ---------------------------------------------------------------------------
RESULTS="$OUT/results.jsonl"
FAILED=0
if [ "$MODE" != table ]; then
if [ "$MODE" = smoke ]; then
  IMPLS=(courier tonic)
else
  read -r -a IMPLS <<<"${BENCH_IMPLS:-courier tonic courier-test go cpp python}"
  # The third-party peers, built by the interop install scripts when absent.
  for impl in "${IMPLS[@]}"; do
    if [ "$impl" = go ] && ! available go; then
      bash scripts/interop/install-go.sh >"$OUT/logs/install-go.log" 2>&1 ||
        echo "warning: grpc-go's interop server could not be built; see $OUT/logs/install-go.log" >&2
    fi
    if [ "$impl" = cpp ] && ! available cpp; then
      bash scripts/interop/install-cpp.sh >"$OUT/logs/install-cpp.log" 2>&1 ||
        echo "warning: the gRPC C++ benchmark server could not be built; see $OUT/logs/install-cpp.log" >&2
    fi
    if [ "$impl" = python ] && ! available python; then
      bash scripts/interop/install-python.sh >"$OUT/logs/install-python.log" 2>&1 ||
        echo "warning: grpcio could not be installed; see $OUT/logs/install-python.log" >&2
    fi
  done
fi
ACTIVE=()
for impl in "${IMPLS[@]}"; do
  if available "$impl"; then ACTIVE+=("$impl"); else echo "skipping $impl: not installed" >&2; fi
done

if [ -n "${BENCH_SCENARIOS:-}" ]; then
  read -r -a WANT <<<"$BENCH_SCENARIOS"
  SELECTED=()
  for s in "${SCENARIOS[@]}"; do
    for w in "${WANT[@]}"; do
      [ "${s%%|*}" = "$w" ] && SELECTED+=("$s")
    done
  done
  SCENARIOS=("${SELECTED[@]}")
fi

: >"$RESULTS"
{
  echo "runs=$RUNS secs=$SECS warmup=$WARMUP server_cpu=$SERVER_CPU client_cpu=$CLIENT_CPU"
} >"$OUT/run-settings.txt"
for s in "${SCENARIOS[@]}"; do
  name=${s%%|*}
  rest=${s#*|}
  kind=${rest%%|*}
  args=${rest#*|}
  if [ "$kind" = h2load ] && [ "$HAVE_H2LOAD" = 0 ]; then
    echo "skipping $name: h2load is not installed" >&2
    continue
  fi
  c= m= p= count=
  if [ "$kind" = h2load ]; then
    read -r c m p count <<<"$args"
  fi
  for run in $(seq 1 "$RUNS"); do
    if [ "$kind" = client ]; then
      run_clients "$name" "$run" "$args"
      continue
    fi
    # Interleaved: each run goes through every implementation, starting
    # from a different one each time.
    n=${#ACTIVE[@]}
    for k in $(seq 0 $((n - 1))); do
      impl=${ACTIVE[$(((k + run - 1) % n))]}
      if [ -n "$count" ] && [ "$(target_of "$impl")" != benchmark ]; then
        continue # streams through h2load: BenchmarkService servers only
      fi
      if [ "$kind" = lb ]; then
        # The client's cost, balanced or not: Courier's servers only.
        [ "$impl" = courier ] || continue
        echo "$name run $run/$RUNS: courier client" >&2
        read -r backends lb lbargs <<<"$args"
        run_lb "$name" "$run" "$backends" "$lb" "$lbargs"
        continue
      fi
      echo "$name run $run/$RUNS: $impl" >&2
      next_port
      start_server "$impl" "$PORT" || { FAILED=$((FAILED + 1)); continue; }
      if [ "$kind" = loadgen ]; then
        run_loadgen "$name" "$impl" "$run" "$args"
      else
        run_h2load "$name" "$impl" "$run" "$c" "$m" "$p" "${count:-0}"
      fi
      stop_server
    done
  done
done
fi

# ---------------------------------------------------------------------------
# The table: medians per scenario and implementation, then the ratios.
# ---------------------------------------------------------------------------
if [ ! -s "$RESULTS" ]; then
  echo "no results in $RESULTS" >&2
  exit 1
fi
# Scenarios and implementations in the order they ran.
scenarios_json=$(jq -s -c 'reduce .[].scenario as $s ([]; if index([$s]) then . else . + [$s] end)' "$RESULTS")
impls_json=$(jq -s -c 'reduce .[].impl as $s ([]; if index([$s]) then . else . + [$s] end)
  | (["courier", "tonic", "courier-test", "go", "cpp", "python"] as $order | sort_by(($order | index(.)) // 99))' "$RESULTS")
# shellcheck disable=SC1091
settings=$(cat "$OUT/run-settings.txt" 2>/dev/null || echo "runs=? secs=? warmup=? server_cpu=0 client_cpu=1")
eval "$settings"
{
  echo "Medians of $runs run(s) of ${secs} s (after ${warmup} s of warm-up), $(date -u -r "$RESULTS" +%Y-%m-%d)."
  echo "Servers pinned to core $server_cpu with one worker thread; load generators on core $client_cpu."
  echo "\"QPS range\" is the lowest and highest QPS of the runs: this machine is a shared VM and noisy."
  echo
  jq -s -r --argjson scen "$scenarios_json" --argjson impls "$impls_json" -f /dev/stdin "$RESULTS" <<'JQ'
def median: map(select(. != null)) | sort
  | if length == 0 then null
    elif length % 2 == 1 then .[(length - 1) / 2]
    else (.[length / 2 - 1] + .[length / 2]) / 2 end;
def r(d): if . == null then "—" else (. * pow(10; d) | round) / pow(10; d) | tostring end;
def ratio(a; b): if a == null or b == null or b == 0 then null else a / b end;
def cell(d): if . == null then "—" else r(d) end;
def name: {"courier": "Courier", "tonic": "tonic", "courier-test": "Courier (TestService)",
            "go": "grpc-go 1.33", "cpp": "gRPC C++ 1.51", "python": "grpcio (Python)"}[.] // .;
def verdict(x; ok): if x == null then "not measured" elif ok then "met" else "NOT met" end;
# The client-* runs, by scenario, server and client (impl is the client).
(map(select(.server_impl != null)) | group_by(.scenario + "|" + .server_impl + "|" + .impl) | map({
   key: (.[0].scenario + "|" + .[0].server_impl + "|" + .[0].impl),
   value: {
     qps: (map(.qps) | median),
     p50: (map(.p50_us) | median),
     cpu: (map(.server_cpu_us_per_rpc) | median),
     ccpu: (map(.client_cpu_us_per_rpc) | median)
   }}) | from_entries) as $cm
| ($scen | map(select(startswith("client-")))) as $clients
# The medians of every other run, by scenario and implementation.
| (map(select(.server_impl == null)) | group_by(.scenario + "|" + .impl) | map({
   key: (.[0].scenario + "|" + .[0].impl),
   value: {
     qps: (map(.qps) | median),
     qps_lo: (map(.qps) | min),
     qps_hi: (map(.qps) | max),
     n: length,
     p50: (map(.p50_us) | median),
     p99: (map(.p99_us) | median),
     mean: (map(.mean_us) | median),
     cpu: (map(.server_cpu_us_per_rpc) | median),
     ccpu: (map(.client_cpu_us_per_rpc) | median),
     backends: .[0].backends,
     lb: .[0].lb,
     rss: (map(.server_peak_rss_kib) | median),
     per_conn: (map(.rss_per_connection_kib) | median),
     mibs: (map(if .bytes_received != null and .elapsed_s > 0 then .bytes_received / 1048576 / .elapsed_s else null end) | median),
     errors: (map(.errors_total // 0) | add),
     samples: (map(.error_samples // {} | to_entries[] | "\(.key): \(.value)") | unique | join("; "))
   }}) | from_entries) as $m
| ( if ($m | length) > 0 then
    "| scenario | implementation | QPS | QPS range | p50 µs | p99 µs | server CPU µs/RPC | server peak RSS MiB | notes |",
    "|---|---|---:|---:|---:|---:|---:|---:|---|",
    ( $scen[] as $s | $impls[] as $i | $m[$s + "|" + $i] | select(. != null) |
      "| \($s) | \($i | name) | \(.qps | cell(0)) | \(if .n > 1 then "\(.qps_lo | r(0))–\(.qps_hi | r(0))" else "—" end) | \(if .p50 == null and .mean != null then "mean \(.mean | r(0))" else .p50 | cell(1) end) | \(.p99 | cell(1)) | \(.cpu | cell(2)) | \(if .rss == null then "—" else .rss / 1024 | r(1) end) | \(
        [ (if .mibs != null and .mibs > 1 then "\(.mibs | r(0)) MiB/s" else empty end),
          (if .per_conn != null then "\(.per_conn | r(1)) KiB/conn" else empty end),
          (if .errors > 0 then "\(.errors) errors (\(.samples))" else empty end) ] | join("; ")) |"
    ),
    "",
    "Ratios Courier/tonic (QPS and MiB/s: higher is better for Courier; latency, CPU and memory: lower is better):",
    "",
    "| scenario | QPS | p50 | p99 | CPU/RPC | peak RSS | KiB/conn |",
    "|---|---:|---:|---:|---:|---:|---:|",
    ( $scen[] as $s | $m[$s + "|courier"] as $c | $m[$s + "|tonic"] as $t | select($c != null and $t != null) |
      "| \($s) | \(ratio($c.qps; $t.qps) | cell(2)) | \(ratio($c.p50 // $c.mean; $t.p50 // $t.mean) | cell(2)) | \(ratio($c.p99; $t.p99) | cell(2)) | \(ratio($c.cpu; $t.cpu) | cell(2)) | \(ratio($c.rss; $t.rss) | cell(2)) | \(ratio($c.per_conn; $t.per_conn) | cell(2)) |"
    ),
    ""
  else empty end ),
  ( if ($impls | index("go")) then
      "Courier against grpc-go, both driven through TestService (Courier/grpc-go):",
      "",
      "| scenario | QPS | p50 | p99 | CPU/RPC | peak RSS | KiB/conn |",
      "|---|---:|---:|---:|---:|---:|---:|",
      ( $scen[] as $s | ($m[$s + "|courier-test"] // $m[$s + "|courier"]) as $c | $m[$s + "|go"] as $g | select($c != null and $g != null) |
        "| \($s) | \(ratio($c.qps; $g.qps) | cell(2)) | \(ratio($c.p50 // $c.mean; $g.p50 // $g.mean) | cell(2)) | \(ratio($c.p99; $g.p99) | cell(2)) | \(ratio($c.cpu; $g.cpu) | cell(2)) | \(ratio($c.rss; $g.rss) | cell(2)) | \(ratio($c.per_conn; $g.per_conn) | cell(2)) |"
      ),
      ""
    else empty end ),
  ( if ($impls | index("cpp")) then
      "Courier against gRPC C++, both driven through BenchmarkService (Courier/gRPC C++):",
      "",
      "| scenario | QPS | p50 | p99 | CPU/RPC | peak RSS | KiB/conn |",
      "|---|---:|---:|---:|---:|---:|---:|",
      ( $scen[] as $s | $m[$s + "|courier"] as $c | $m[$s + "|cpp"] as $g | select($c != null and $g != null) |
        "| \($s) | \(ratio($c.qps; $g.qps) | cell(2)) | \(ratio($c.p50 // $c.mean; $g.p50 // $g.mean) | cell(2)) | \(ratio($c.p99; $g.p99) | cell(2)) | \(ratio($c.cpu; $g.cpu) | cell(2)) | \(ratio($c.rss; $g.rss) | cell(2)) | \(ratio($c.per_conn; $g.per_conn) | cell(2)) |"
      ),
      ""
    else empty end ),
  ( ($scen | map(select(startswith("lb-")))) as $lbs
    | if ($lbs | length) > 0 then
        "Balancing (issue 12): the load generator's CPU per call (its utime + stime / calls), the same load",
        "(one channel, 64 calls in flight) sent to one address or balanced over several Courier servers:",
        "",
        "| scenario | backends | policy | QPS | client CPU µs/call | server CPU µs/call (all backends) |",
        "|---|---:|---|---:|---:|---:|",
        ( $lbs[] as $s | $m[$s + "|courier"] | select(. != null) |
          "| \($s) | \(.backends // "—") | \(.lb // "—") | \(.qps | cell(0)) | \(.ccpu | cell(2)) | \(.cpu | cell(2)) |" ),
        "",
        ( ratio($m["lb-rr4-1x64|courier"].ccpu; $m["lb-single-1x64|courier"].ccpu) as $x
          | "- round_robin over 4 within 5% of the single-address channel, client CPU per call: \($x | cell(3)) x: \(if $x == null then "not measured" elif $x <= 1.05 then "met" else "NOT met" end)" ),
        ( ratio($m["lb-rr4-1x64|courier"].ccpu; $m["lb-single-4x16|courier"].ccpu) as $x
          | select($x != null)
          | "- round_robin over 4 against 4 single-address channels (as many connections): \($x | cell(3)) x" ),
        ""
      else empty end ),
  ( if $m["retry-policy-4x64|courier"] != null and $m["retry-none-4x64|courier"] != null then
        "Retries (issue 13): unary 1 KiB at 4x64, a retry policy on every method that never triggers, against none:",
        "",
        "| scenario | QPS | client CPU µs/call | server CPU µs/call |",
        "|---|---:|---:|---:|",
        ( ["retry-none-4x64", "retry-policy-4x64"][] as $s | $m[$s + "|courier"] |
          "| \($s) | \(.qps | cell(0)) | \(.ccpu | cell(2)) | \(.cpu | cell(2)) |" ),
        "",
        ( ratio($m["retry-policy-4x64|courier"].ccpu; $m["retry-none-4x64|courier"].ccpu) as $x
          | "- a retry policy costs at most 5% more client CPU per call: \($x | cell(3)) x: \(if $x == null then "not measured" elif $x <= 1.05 then "met" else "NOT met" end)" ),
        ( ratio($m["retry-policy-4x64|courier"].qps; $m["retry-none-4x64|courier"].qps) as $x
          | "- QPS with the policy against without: \($x | cell(3)) x" ),
        ""
      else empty end ),
  ( if ($clients | length) > 0 then
        "Clients: the load generator's own CPU per call (its utime + stime over the measured window / calls),",
        "the same calls made by Courier's client and by tonic's (--client tonic) to the same server:",
        "",
        "| scenario | server | client | QPS | p50 µs | client CPU µs/call | server CPU µs/call |",
        "|---|---|---|---:|---:|---:|---:|",
        ( $clients[] as $s | ("courier", "tonic") as $srv | ("courier", "tonic") as $cl
          | $cm[$s + "|" + $srv + "|" + $cl] | select(. != null)
          | "| \($s) | \($srv | name) | \($cl | name) | \(.qps | cell(0)) | \(.p50 | cell(1)) | \(.ccpu | cell(2)) | \(.cpu | cell(2)) |" ),
        "",
        ( $clients[] as $s | ("courier", "tonic") as $srv
          | $cm[$s + "|" + $srv + "|courier"] as $c | $cm[$s + "|" + $srv + "|tonic"] as $t
          | select($c != null or $t != null)
          | ratio($c.ccpu; $t.ccpu) as $x
          | "- \($s), \($srv | name) server: client CPU per call: courier \($c.ccpu | cell(2)) µs, tonic \($t.ccpu | cell(2)) µs, ratio \($x | cell(3)) (target ≤ 0.6): \(verdict($x; $x <= 0.6))" ),
        ""
      else empty end ),
  "Targets (issue 4):",
  "",
  ( ($scen | map(select(startswith("unary") or startswith("h2load-unary")))) as $unary
    | ( $unary[] as $s | select($s | test("1x1")) | ratio($m[$s + "|courier"].cpu; $m[$s + "|tonic"].cpu) as $x
        | "- server CPU per unary RPC at 1x1 <= 0.6 x tonic, \($s): \($x | cell(2)) x: \(verdict($x; $x <= 0.6))" ),
      ( $unary[] as $s | select($s | test("4x64")) | ratio($m[$s + "|courier"].cpu; $m[$s + "|tonic"].cpu) as $x
        | "- server CPU per unary RPC at 4x64 <= 0.4 x tonic, \($s): \($x | cell(2)) x: \(verdict($x; $x <= 0.4))" ),
      ( ratio($m["idle-1000|courier"].per_conn; $m["idle-1000|tonic"].per_conn) as $x
        | "- memory per idle connection <= 0.5 x tonic: \($x | cell(2)) x: \(verdict($x; $x <= 0.5))" ),
      ( ($scen | map(select(startswith("h2load-stream-"))))[] as $s | ratio($m[$s + "|courier"].qps; $m[$s + "|tonic"].qps) as $x
        | "- streaming throughput with h2load as the client >= 2 x tonic, \($s): \($x | cell(2)) x: \(verdict($x; $x >= 2))" ),
      ( ($scen | map(select(startswith("stream-"))))[] as $s | ratio($m[$s + "|courier"].qps; $m[$s + "|tonic"].qps) as $x
        | "- streaming throughput with Courier's client >= 1.5 x tonic, \($s): \($x | cell(2)) x: \(verdict($x; $x >= 1.5))" ),
      ( ratio($m["ping-pong|courier"].p50; $m["ping-pong|tonic"].p50) as $x
        | "- ping-pong p50 <= 0.8 x tonic: \($x | cell(2)) x: \(verdict($x; $x <= 0.8))" ),
      ( if ($clients | length) > 0 then
          ( $clients[] as $s | ("courier", "tonic") as $srv
            | $cm[$s + "|" + $srv + "|courier"] as $c | $cm[$s + "|" + $srv + "|tonic"] as $t
            | select($c != null or $t != null)
            | ratio($c.ccpu; $t.ccpu) as $x
            | "- client CPU per unary call <= 0.6 x tonic's client on the same server, \($s), \($srv | name) server: \($x | cell(3)) x: \(verdict($x; $x <= 0.6))" )
        else "- client CPU per unary call <= 0.6 x tonic's client on the same server: not measured (no client-* scenario ran)" end ),
      ( if ($impls | index("go")) then
          ( $scen[] as $s | ($m[$s + "|courier-test"] // $m[$s + "|courier"]) as $c | $m[$s + "|go"] as $g
            | select($c != null and $g != null)
            | (if $s == "idle-1000" then ($c.per_conn < $g.per_conn)
               elif ($s | test("1x1|ping-pong")) then (($c.p50 // $c.mean) < ($g.p50 // $g.mean))
               else ($c.qps > $g.qps) end) as $ahead
            | "- ahead of grpc-go, \($s) (\(if $s == "idle-1000" then "KiB/conn" elif ($s | test("1x1|ping-pong")) then "p50" else "QPS" end)): \(if $ahead then "met" else "NOT met" end)" )
        else "- ahead of grpc-go: not measured (grpc-go not installed)" end ),
      ( if ($impls | index("cpp")) then
          ( $scen[] as $s | $m[$s + "|courier"] as $c | $m[$s + "|cpp"] as $g
            | select($c != null and $g != null)
            | (if $s == "idle-1000" then ($c.per_conn < $g.per_conn)
               elif ($s | test("1x1|ping-pong")) then (($c.p50 // $c.mean) < ($g.p50 // $g.mean))
               else ($c.qps > $g.qps) end) as $ahead
            | "- ahead of gRPC C++, \($s) (\(if $s == "idle-1000" then "KiB/conn" elif ($s | test("1x1|ping-pong")) then "p50" else "QPS" end)): \(if $ahead then "met" else "NOT met" end)" )
        else "- ahead of gRPC C++: not measured (gRPC C++ not installed)" end )
  )
JQ
} | tee "$OUT/table.md"

echo
echo "Every run: $RESULTS; table: $OUT/table.md"
if [ "$FAILED" -gt 0 ]; then
  echo "$FAILED measurement(s) failed" >&2
  exit 1
fi
