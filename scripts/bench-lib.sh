# Helpers shared by scripts/bench.sh and scripts/bench-runtime.sh; sourced,
# not run.

# stop_server: stops the server whose pid is in SERVER_PID (SIGTERM, then
# SIGKILL if it has not stopped within 10 s) and clears SERVER_PID.
SERVER_PID=
stop_server() {
  if [ -n "$SERVER_PID" ]; then
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    for _ in $(seq 1 100); do
      kill -0 "$SERVER_PID" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=
  fi
}

# need TOOL: exits unless TOOL is on the PATH.
need() {
  command -v "$1" >/dev/null 2>&1 || { echo "$(basename "$0") needs $1" >&2; exit 1; }
}
