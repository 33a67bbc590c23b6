#!/usr/bin/env bash
# The server's runtime: courier-bench-server on one tokio multi-thread
# runtime (--runtime multi-thread) against one current-thread runtime per
# thread, each with its own SO_REUSEPORT listener (--runtime per-core),
# driven by h2load with the unary loads of scripts/bench.sh. See
# docs/PERFORMANCE.md, "Runtime: one current-thread runtime per core".
#
#   scripts/bench-runtime.sh
#
# Environment:
#   BENCH_SECS=5        measured seconds per run (after BENCH_WARMUP=1)
#   BENCH_RUNS=3        runs per case and variant (median reported)
#   BENCH_THREADS="2 1" the server thread counts to measure
#   BENCH_LOADS="1x1 4x64"  h2load loads (CONNECTIONSxSTREAMS), empty unary
#   CARGO_TARGET_DIR    where cargo builds (default target)
#
# With 2 threads the server is pinned to cores 0 and 1 (taskset -c 0,1) and
# h2load runs on the same two cores, as a 2-core machine allows; with 1
# thread the server is on core 0 and h2load on core 1, as in bench.sh. The
# two variants are interleaved in every run, each run starting from the
# other one, each measurement on a fresh server. Besides QPS and the
# server's CPU per call (utime + stime of the whole process over the
# measured window, /proc/PID/stat), each run records how that CPU was
# spread over the server's threads (/proc/PID/task/*/stat): "busiest" is
# the busiest thread's share of it.
#
# Output: target/bench-runtime/results.jsonl (every run) and table.md.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/bench-lib.sh
source scripts/bench-lib.sh

OUT=target/bench-runtime
mkdir -p "$OUT/logs"
BIN=${CARGO_TARGET_DIR:-target}/release
SECS=${BENCH_SECS:-5}
RUNS=${BENCH_RUNS:-3}
WARMUP=${BENCH_WARMUP:-1}
read -r -a THREADS <<<"${BENCH_THREADS:-2 1}"
read -r -a LOADS <<<"${BENCH_LOADS:-1x1 4x64}"
VARIANTS=(multi-thread per-core)
RESULTS=$OUT/results.jsonl
CLK_TCK=$(getconf CLK_TCK)

for tool in cargo jq taskset h2load; do need "$tool"; done
if [ "$(nproc)" -lt 2 ]; then
  echo "bench-runtime.sh needs 2 cores" >&2
  exit 1
fi
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

echo "building courier-bench (release)..." >&2
cargo build -q --release -p courier-bench

trap stop_server EXIT

PORT=$((20000 + RANDOM % 10000))

# The request body bench.sh sends for an empty unary call: a SimpleRequest
# with no fields behind the 5-byte message prefix.
BODY=$OUT/request-0.grpc
printf '\x00\x00\x00\x00\x00' >"$BODY"
URL_PATH=/grpc.testing.BenchmarkService/UnaryCall

# CPU ticks (utime + stime) of a process, and of each of its threads as
# "TID TICKS" lines.
cpu_ticks() {
  awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$1/stat"
}
thread_ticks() {
  local f
  for f in /proc/"$1"/task/*/stat; do
    awk -v f="$f" '{ n = split(f, p, "/"); sub(/^.*\) /, ""); print p[n - 1], $12 + $13 }' "$f" 2>/dev/null || true
  done
}

# measure VARIANT THREADS LOAD RUN
measure() {
  local variant=$1 threads=$2 load=$3 run=$4
  local conns=${load%x*} streams=${load#*x}
  local server_cpus client_cpus
  if [ "$threads" -ge 2 ]; then
    server_cpus=0,1 client_cpus=0,1
  else
    server_cpus=0 client_cpus=1
  fi
  PORT=$((PORT + 1))
  [ "$PORT" -ge 32000 ] && PORT=20000
  local tag="$variant-t$threads-$load-$run"
  taskset -c "$server_cpus" "$BIN/courier-bench-server" --port "$PORT" --threads "$threads" \
    --runtime "$variant" >"$OUT/logs/server-$tag.log" 2>&1 &
  SERVER_PID=$!
  local up=0
  for _ in $(seq 1 400); do
    if grep -q 'listening on' "$OUT/logs/server-$tag.log" 2>/dev/null; then up=1; break; fi
    kill -0 "$SERVER_PID" 2>/dev/null || break
    sleep 0.05
  done
  if [ "$up" = 0 ]; then
    echo "the server did not start ($tag):" >&2
    tail -n 5 "$OUT/logs/server-$tag.log" >&2
    stop_server
    return 1
  fi
  local url="http://127.0.0.1:$PORT$URL_PATH"
  local -a common=(-d "$BODY" -H 'content-type: application/grpc' -H 'te: trailers')
  taskset -c "$client_cpus" h2load -c "$conns" -m "$streams" -D "$WARMUP" "${common[@]}" "$url" >/dev/null 2>&1 || true
  local before after tbefore tafter log="$OUT/logs/h2load-$tag.log"
  tbefore=$(thread_ticks "$SERVER_PID")
  before=$(cpu_ticks "$SERVER_PID")
  if ! taskset -c "$client_cpus" h2load -c "$conns" -m "$streams" -D "$SECS" "${common[@]}" "$url" >"$log" 2>&1; then
    echo "h2load failed ($tag); see $log" >&2
    stop_server
    return 1
  fi
  after=$(cpu_ticks "$SERVER_PID")
  tafter=$(thread_ticks "$SERVER_PID")
  stop_server
  local rps ok failed data
  rps=$(awk '/^finished in/ { print $4 }' "$log")
  read -r ok failed < <(awk '/^requests:/ { print $8, $10 }' "$log")
  data=$(sed -n 's/^traffic:.*(\([0-9]*\)) data.*/\1/p' "$log")
  # Per-thread ticks over the window, busiest first.
  local split
  split=$(join <(sort <<<"$tbefore") <(sort <<<"$tafter") | awk '{ print $3 - $2 }' | sort -rn | awk '$1 > 0' | paste -sd, -)
  jq -n -c --arg variant "$variant" --argjson threads "$threads" --arg load "$load" --argjson run "$run" \
    --argjson rps "${rps:-null}" --argjson ok "${ok:-0}" --argjson failed "${failed:-0}" \
    --argjson data "${data:-0}" --argjson ticks "$((after - before))" --argjson tck "$CLK_TCK" \
    --arg split "$split" '{
      variant: $variant, threads: $threads, load: $load, run: $run, qps: $rps, ok: $ok,
      failed: $failed, data_bytes: $data,
      cpu_us_per_call: (if $ok > 0 then $ticks * 1000000 / $tck / $ok else null end),
      thread_ticks: ($split | split(",") | map(select(. != "") | tonumber)),
      busiest: ($split | split(",") | map(select(. != "") | tonumber)
                | if length > 0 and add > 0 then .[0] / add else null end) }' >>"$RESULTS"
  tail -n 1 "$RESULTS" >&2
}

: >"$RESULTS"
echo "runs=$RUNS secs=$SECS warmup=$WARMUP date=$(date -u +%Y-%m-%dT%H:%MZ)" >"$OUT/run-settings.txt"
for threads in "${THREADS[@]}"; do
  for load in "${LOADS[@]}"; do
    for run in $(seq 1 "$RUNS"); do
      n=${#VARIANTS[@]}
      for k in $(seq 0 $((n - 1))); do
        variant=${VARIANTS[$(((k + run - 1) % n))]}
        echo "threads $threads, $load, run $run/$RUNS: $variant" >&2
        measure "$variant" "$threads" "$load" "$run" || true
      done
    done
  done
done

{
  echo "$(cat "$OUT/run-settings.txt"); h2load, empty unary calls; medians of the runs."
  echo
  echo "| threads | load | runtime | QPS | QPS range | server CPU µs/call | CPU range | busiest thread's share | failed |"
  echo "|---:|---|---|---:|---:|---:|---:|---:|---:|"
  jq -s -r '
    def median: map(select(. != null)) | sort
      | if length == 0 then null elif length % 2 == 1 then .[(length - 1) / 2]
        else (.[length / 2 - 1] + .[length / 2]) / 2 end;
    def r(d): if . == null then "—" else (. * pow(10; d) | round) / pow(10; d) | tostring end;
    group_by([.threads, .load, .variant]) | sort_by([-.[0].threads, .[0].load, .[0].variant])[]
    | "| \(.[0].threads) | \(.[0].load) | \(.[0].variant) | \(map(.qps) | median | r(0)) | \(map(.qps) | min | r(0))–\(map(.qps) | max | r(0)) | \(map(.cpu_us_per_call) | median | r(2)) | \(map(.cpu_us_per_call) | min | r(2))–\(map(.cpu_us_per_call) | max | r(2)) | \(map(.busiest) | median | r(2)) (\(map(.busiest | r(2)) | join(", "))) | \(map(.failed) | add) |"
  ' "$RESULTS"
} | tee "$OUT/table.md"
