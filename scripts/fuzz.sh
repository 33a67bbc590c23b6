#!/usr/bin/env bash
# Runs each cargo-fuzz target in fuzz/ for a bounded time, one at a time.
#
#   bash scripts/fuzz.sh                 # every target, about 30 s each
#   FUZZ_SECONDS=600 bash scripts/fuzz.sh server reflection
#
# Without FUZZ_SECONDS each target gets 30 s, less when installing and
# building have used much of FUZZ_BUDGET (360 s by default, for the whole
# step), though never less than 10 s.
#
# Needs the nightly toolchain (`cargo +nightly`); without it the step says so
# in one line and succeeds. Installs cargo-fuzz from crates.io if missing.
# A crash, a leak, a timeout or an out-of-memory fails the script; the input
# that caused it is left in fuzz/artifacts/<target>/. New corpus entries go
# to a scratch directory (FUZZ_WORK, a temporary one by default); the seeds
# in fuzz/corpus/<target>/ are only read. See docs/FUZZING.md.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! cargo +nightly --version >/dev/null 2>&1; then
  echo "note: no nightly toolchain (cargo +nightly); skipping the fuzz targets"
  exit 0
fi
start=$SECONDS
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "installing cargo-fuzz"
  cargo install cargo-fuzz --locked --quiet
fi

all=(framer frame timeout metadata status_message status_details decompress server reflection target hpack connection)
if [ "$#" -gt 0 ]; then targets=("$@"); else targets=("${all[@]}"); fi
work="${FUZZ_WORK:-}"
if [ -z "$work" ]; then
  work="$(mktemp -d)"
  trap 'rm -rf "$work"' EXIT
fi

# One build of every target (release, debug assertions, AddressSanitizer).
cargo +nightly fuzz build

if [ -n "${FUZZ_SECONDS:-}" ]; then
  seconds="$FUZZ_SECONDS"
else
  left=$(( ${FUZZ_BUDGET:-360} - (SECONDS - start) ))
  seconds=$(( left / ${#targets[@]} ))
  if [ "$seconds" -gt 30 ]; then seconds=30; fi
  if [ "$seconds" -lt 10 ]; then seconds=10; fi
fi

failed=()
for target in "${targets[@]}"; do
  mkdir -p "$work/$target" "fuzz/corpus/$target"
  flags=(-max_total_time="$seconds" -timeout=20 -rss_limit_mb=2048 -print_final_stats=1)
  # An allocation far out of proportion to the 4 MiB limit is a bug here.
  if [ "$target" = decompress ]; then flags+=(-malloc_limit_mb=64); fi
  log="$work/$target.log"
  echo "fuzzing $target for ${seconds}s"
  if cargo +nightly fuzz run "$target" "$work/$target" "fuzz/corpus/$target" -- "${flags[@]}" >"$log" 2>&1; then
    # The closing status line: executions, coverage, corpus.
    grep -E '^#[0-9]+[[:space:]]+DONE' "$log" | tail -n 1 || true
    grep -E '^Done [0-9]+ runs' "$log" | tail -n 1 || true
  else
    echo "FAILED: fuzz target $target; the end of its log:" >&2
    tail -n 60 "$log" >&2
    failed+=("$target")
  fi
done

if [ "${#failed[@]}" -gt 0 ]; then
  echo "fuzz targets that failed: ${failed[*]}" >&2
  exit 1
fi
echo "fuzzing: ${#targets[@]} passed, 0 failed"
