#!/usr/bin/env bash
# The device check: one run on a machine with a CUDA GPU proves the CUDA
# backend. Sized for one H100 (under 8 minutes):
#   1. the programs come from .gpu_bundle/ (tests/gpu/make_bundle.sh: built
#      with --config=opt --config=cuda for sm_80 and sm_90, with the shared
#      libraries they need). A GPU machine without Bazel gets the bundle
#      carried from the build machine; where Bazel is present, this script
#      (re)makes it first;
#   2. runs every test tagged "cuda" (kernels against host references, the
#      backend against the CPU backend on every golden model, batch
#      invariance, decode CUDA graphs against eager steps, the scheduler
#      crowd) and fails if any case skipped: on this machine a skip means the
#      device was not found;
#   3. runs the kernel tests again under compute-sanitizer's memcheck;
#   4. runs the decode benchmark: step time, tok/s and roofline fractions
#      against batch 1 ... 16,384 for the golden models (F32 and BF16) and a
#      RecurrentGemma-2B-shaped model with random weights made on the device.
# CUDA's libraries (cuBLAS, cudart, NCCL) are the GPU machine's own: the
# CUDA toolkit's, or those of the NVIDIA Python wheels.
#
# The whole check keeps to a deadline (DEVICE_CHECK_SECONDS, default 480):
# each program gets at most what is left of it, the fast kernel tests run
# first, and a program that could not run in time counts as a failure. Logs
# go to a working folder; with $OUT set, $OUT gets two files: summary.txt
# (what this script printed) and logs.tar.gz (every program's output). Extra
# arguments go to the benchmark (e.g. --peak_gbs=4800 --peak_tflops=989 for
# an H200).
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
start=$SECONDS
deadline=$((start + ${DEVICE_CHECK_SECONDS:-480}))
bundle=.gpu_bundle
logs=$bundle/logs
failed=0
if [[ -n ${OUT:-} ]]; then
  logs=$(mktemp -d)
  exec > >(tee "$OUT/summary.txt") 2>&1
  tee_pid=$!
  # On exit: the logs packed, and summary.txt complete before the run ends.
  trap 'tar czf "$OUT/logs.tar.gz" -C "$logs" . 2>/dev/null
    exec >&- 2>&-
    wait "$tee_pid"' EXIT
fi

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader ||
  echo "nvidia-smi: not available"

if command -v bazel >/dev/null; then
  echo "=== build (tests/gpu/make_bundle.sh)"
  bash tests/gpu/make_bundle.sh || exit 1
elif [[ ! -f $bundle/manifest ]]; then
  echo "device check: no $bundle and no bazel: run tests/gpu/make_bundle.sh" \
    "on a build machine and bring $bundle here"
  exit 1
fi
mkdir -p "$logs"

# Where this machine keeps CUDA's libraries, each found by its soname.
library_path=$PWD/$bundle/lib
for soname in libcublas.so.13 libcublasLt.so.13 libcudart.so.13 libnccl.so.2; do
  # Trailing slashes: find descends into a folder that is a symbolic link.
  found=$(find /usr/local/cuda/lib64/ /usr/local/cuda/targets/x86_64-linux/lib/ \
    /usr/lib/x86_64-linux-gnu/ /usr/local/lib/ /opt/ /usr/lib/python3*/ \
    -name "$soname" 2>/dev/null | head -n 1)
  if [[ -z $found ]]; then
    echo "device check: $soname not found on this machine"
    continue
  fi
  library_path+=":$(dirname "$found")"
done
export LD_LIBRARY_PATH=$library_path${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
echo "libraries: $LD_LIBRARY_PATH"

# run_limited LIMIT LOG PROGRAM ARGS...: runs a program for at most LIMIT
# seconds or what is left before the deadline, its output to LOG; returns its
# exit status, or 124 when it timed out or there was no time left to start
# (137: killed 10 s after the time limit, as a hung program may be).
run_limited() {
  local limit=$1 log=$2
  shift 2
  local left=$((deadline - SECONDS))
  ((left < limit)) && limit=$left
  if ((limit < 10)); then
    echo "not run: the check's deadline had passed" >"$log"
    return 124
  fi
  timeout -k 10 "$limit" "$@" >"$log" 2>&1
}

echo "=== GPU tests"
skipped=0
while read -r program; do
  [[ $program == decode_benchmark ]] && continue
  echo "--- $program"
  run_limited 150 "$logs/$program.log" "$bundle/bin/$program" \
    --gtest_output="xml:$logs/$program.xml"
  status=$?
  grep -E '^\[ +(OK|FAILED|SKIPPED) +\]' "$logs/$program.log" | head -n 40
  # A failure's expected and actual values follow the line that names it.
  grep -E -A6 'Failure$|error:' "$logs/$program.log" | head -n 60
  if ((status != 0)); then
    echo "$program: exit status $status (124: timed out)"
    tail -n 5 "$logs/$program.log"
    failed=1
  fi
  if [[ -f $logs/$program.xml ]]; then
    skipped=$((skipped + $(grep -c 'result="skipped"' "$logs/$program.xml")))
  fi
done <"$bundle/manifest"
echo "GPU test cases skipped: $skipped"
if ((skipped > 0)); then
  echo "device check: a GPU test skipped, so no device was found"
  failed=1
fi

# The kernel tests again under compute-sanitizer's memcheck, where it is
# installed and supports this device (it refuses some virtualised ones): an
# out-of-bounds access or a misaligned one fails the check even when the
# results happened to come out right.
echo "=== memcheck"
sanitizer=$(command -v compute-sanitizer ||
  find /usr/local/cuda/bin/ /usr/local/cuda/compute-sanitizer/ /opt/ \
    -name compute-sanitizer -type f 2>/dev/null | head -n 1)
if [[ -z $sanitizer ]]; then
  echo "compute-sanitizer: not available, memcheck not run"
else
  for program in model_kernels_test sampling_kernels_test gemm_slots_test; do
    log=$logs/$program.memcheck.log
    run_limited 120 "$log" "$sanitizer" --tool memcheck --error-exitcode 9 \
      "$bundle/bin/$program"
    status=$?
    if grep -q -E 'Device not supported|error 999' "$log"; then
      echo "compute-sanitizer refused this device: memcheck not run"
      head -n 3 "$log"
      break
    fi
    tail -n 3 "$log"
    if ((status != 0)); then
      echo "$program under memcheck: exit status $status (9: errors found)"
      grep -m 5 -A4 'Invalid\|Misaligned' "$log"
      failed=1
    fi
  done
fi

echo "=== decode benchmark"
bench=$bundle/bin/decode_benchmark
extra=("$@")
# run_bench LIMIT ARGS...: each runs even when one before it failed, so one
# device run tells all; a failed batch (other than running out of memory)
# fails the check.
run_bench() {
  local limit=$1 status log=$logs/decode_benchmark.$((++bench_runs)).log
  shift
  run_limited "$limit" "$log" "$bench" "$@" "${extra[@]}"
  status=$?
  cat "$log"
  if ((status != 0)); then
    echo "decode benchmark: exit status $status (124: timed out): $*"
    failed=1
  fi
}
bench_runs=0
golden=(--model=tests/golden/griffin_tiny --model=tests/golden/hawk_tiny
  --model=tests/golden/srm_tiny)
run_bench 90 "${golden[@]}" --position=6
run_bench 90 "${golden[@]}" --position=6 --bf16
run_bench 150 --griffin_2b --bf16 --position=1024 --steps=4

echo "device check: $((SECONDS - start)) s"
if ((failed != 0)); then
  echo "device check: FAILED"
  exit 1
fi
echo "device check: PASSED"
