# Sourced by end-to-end tests (bash, run from the workspace root as Bazel
# tests are): start_slabserve launches server/slabserve with the tiny Griffin
# model on loopback ports the OS picks, waits until it listens, exports
# SLABSERVE_TARGET and SLABSERVE_METRICS_TARGET, and stops it when the test
# exits. Extra arguments go to the server.

stop_slabserve() {
  if [[ -n "${SLABSERVE_PID:-}" ]]; then
    kill "$SLABSERVE_PID" 2>/dev/null || true
    wait "$SLABSERVE_PID" 2>/dev/null || true
    SLABSERVE_PID=""
  fi
}

start_slabserve() {
  local dir="${TEST_TMPDIR:-$(mktemp -d)}"
  local port_file="$dir/slabserve.port"
  SLABSERVE_LOG="$dir/slabserve.log"
  local metrics_port_file="$dir/slabserve.metrics_port"
  rm -f "$port_file" "$metrics_port_file"
  server/slabserve --model=tests/golden/griffin_tiny \
    --tokenizer=tests/golden/tokenizer/tokenizer.model \
    --listen=127.0.0.1:0 --metrics_listen=127.0.0.1:0 \
    --port_file="$port_file" --metrics_port_file="$metrics_port_file" \
    "$@" >"$SLABSERVE_LOG" 2>&1 &
  SLABSERVE_PID=$!
  trap stop_slabserve EXIT
  local i
  for ((i = 0; i < 600; ++i)); do
    [[ -s "$port_file" ]] && break
    if ! kill -0 "$SLABSERVE_PID" 2>/dev/null; then
      echo "slabserve exited before listening; its log:" >&2
      cat "$SLABSERVE_LOG" >&2
      return 1
    fi
    sleep 0.1
  done
  if [[ ! -s "$port_file" ]]; then
    echo "slabserve wrote no port file within 60 s; its log:" >&2
    cat "$SLABSERVE_LOG" >&2
    return 1
  fi
  # The server writes the metrics port file before the gRPC one.
  export SLABSERVE_TARGET="127.0.0.1:$(tr -d '[:space:]' <"$port_file")"
  export SLABSERVE_METRICS_TARGET="127.0.0.1:$(tr -d '[:space:]' <"$metrics_port_file")"
}
