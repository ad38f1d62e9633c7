#!/usr/bin/env bash
# Builds the libFuzzer targets (//fuzz:all: clang-14, ASan + UBSan) and runs
# each for SECONDS (default 20) over a scratch copy of its seed corpus.
# Prints "fuzz NAME: PASSED (...)" or "fuzz NAME: FAILED" per target and
# exits non-zero if any failed. Usage: bash scripts/fuzz.sh [SECONDS]
set -uo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-20}

bash scripts/install_deps.sh
# No convenience symlinks: they must keep pointing at the main build.
if ! bazel build --config=fuzz --symlink_prefix=/ //fuzz:all; then
  echo "fuzz build: FAILED"
  exit 1
fi
bin=$(bazel info --config=fuzz bazel-bin 2>/dev/null)/fuzz
work=$(mktemp -d)
status=0
for target in safetensors config_json server_config tokenizer request; do
  cp -r "fuzz/corpus/$target" "$work/$target"
  mkdir -p "$work/$target.artifacts"
  log="$work/$target.log"
  if "$bin/${target}_fuzzer" -max_total_time="$seconds" -rss_limit_mb=3072 \
    -artifact_prefix="$work/$target.artifacts/" "$work/$target" >"$log" 2>&1; then
    echo "fuzz $target: PASSED ($(grep -o 'Done [0-9]* runs' "$log" | tail -n 1) in $seconds s)"
  else
    echo "fuzz $target: FAILED"
    tail -n 40 "$log" | sed 's/^/  /'
    status=1
  fi
done
rm -rf "$work"
exit "$status"
