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
# CUDA toolkit's, or those of the NVIDIA Python wheels. Logs go to $OUT (or
# .gpu_bundle/logs). Extra arguments go to the benchmark (e.g.
# --peak_gbs=4800 --peak_tflops=989 for an H200).
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
start=$SECONDS
bundle=.gpu_bundle
logs=${OUT:-$bundle/logs}

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

echo "=== GPU tests"
tests=0
skipped=0
while read -r program; do
  [[ $program == decode_benchmark ]] && continue
  echo "--- $program"
  timeout 300 "$bundle/bin/$program" --gtest_output="xml:$logs/$program.xml" \
    >"$logs/$program.log" 2>&1
  status=$?
  grep -E '^\[ +(OK|FAILED|SKIPPED) +\]|Failure|error' "$logs/$program.log" |
    head -n 60
  if ((status != 0)); then
    echo "$program: exit status $status (124: timed out)"
    tests=1
  fi
  if [[ -f $logs/$program.xml ]]; then
    skipped=$((skipped + $(grep -c 'result="skipped"' "$logs/$program.xml")))
  fi
done <"$bundle/manifest"
echo "GPU test cases skipped: $skipped"
if ((skipped > 0)); then
  echo "device check: a GPU test skipped, so no device was found"
  tests=1
fi

# The kernel tests again under compute-sanitizer's memcheck, where it is
# installed: an out-of-bounds access or a misaligned one fails the check
# even when the results happened to come out right.
echo "=== memcheck"
sanitizer=$(command -v compute-sanitizer ||
  find /usr/local/cuda/bin/ /usr/local/cuda/compute-sanitizer/ /opt/ \
    -name compute-sanitizer -type f 2>/dev/null | head -n 1)
if [[ -z $sanitizer ]]; then
  echo "compute-sanitizer: not available, memcheck not run"
else
  for program in model_kernels_test sampling_kernels_test gemm_slots_test; do
    timeout 180 "$sanitizer" --tool memcheck --error-exitcode 9 \
      "$bundle/bin/$program" >"$logs/$program.memcheck.log" 2>&1
    status=$?
    tail -n 3 "$logs/$program.memcheck.log"
    if ((status != 0)); then
      echo "$program under memcheck: exit status $status (9: errors found)"
      tests=1
    fi
  done
fi

echo "=== decode benchmark"
bench=$bundle/bin/decode_benchmark
extra=("$@")
bench_status=0
# run_bench LIMIT ARGS...: each runs even when one before it failed, so one
# device run tells all.
run_bench() {
  local limit=$1 status
  shift
  timeout "$limit" "$bench" "$@" "${extra[@]}" 2>&1 |
    tee -a "$logs/decode_benchmark.log"
  status=${PIPESTATUS[0]}
  if ((status != 0)); then
    echo "decode benchmark: exit status $status (124: timed out): $*"
    bench_status=1
  fi
}
golden=(--model=tests/golden/griffin_tiny --model=tests/golden/hawk_tiny
  --model=tests/golden/srm_tiny)
run_bench 120 "${golden[@]}" --position=6
run_bench 120 "${golden[@]}" --position=6 --bf16
run_bench 180 --griffin_2b --bf16 --position=1024 --steps=4

echo "device check: $((SECONDS - start)) s"
if ((tests != 0 || bench_status != 0)); then
  echo "device check: FAILED"
  exit 1
fi
echo "device check: PASSED"
