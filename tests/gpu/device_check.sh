#!/usr/bin/env bash
# The device check: one run on a machine with a CUDA GPU proves the CUDA
# backend. Sized for one H100 (under 8 minutes, most of it the build):
#   1. builds the CUDA kernels, the CUDA backend, its tests and the decode
#      benchmark with --config=cuda (sm_80, sm_90);
#   2. runs every test tagged "cuda" (kernels against host references, the
#      backend against the CPU backend on every golden model, batch
#      invariance, decode CUDA graphs against eager steps, the scheduler
#      crowd) and fails if any case skipped: on
#      this machine a skip means the device was not found;
#   3. runs the decode benchmark: step time, tok/s and roofline fractions
#      against batch 1 ... 16,384 for the golden models (F32 and BF16) and a
#      RecurrentGemma-2B-shaped model with random weights made on the device.
# Needs the build tools of scripts/install_deps.sh and the CUDA toolkit at
# /usr/local/cuda. Extra arguments go to the benchmark (e.g. --peak_gbs=4800
# --peak_tflops=989 for an H200).
set -uo pipefail
cd "$(dirname "$0")/../.."
start=$SECONDS

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader ||
  echo "nvidia-smi: not available"

echo "=== build (--config=cuda)"
bazel build --config=opt --config=cuda //kernels/... //engine/backend/... ||
  exit 1

echo "=== GPU tests"
bazel test --config=opt --config=cuda --test_tag_filters=cuda \
  --test_output=errors //kernels/... //engine/backend/...
tests=$?
skipped=$(find -L .bazel/testlogs/kernels .bazel/testlogs/engine/backend \
  -name test.xml -exec grep -c 'result="skipped"' {} + |
  awk -F: '{s += $NF} END {print s + 0}')
echo "GPU test cases skipped: $skipped"
if ((skipped > 0)); then
  echo "device check: a GPU test skipped, so no device was found"
  tests=1
fi

echo "=== decode benchmark"
bench=.bazel/bin/engine/backend/cuda/decode_benchmark
golden=(--model=tests/golden/griffin_tiny --model=tests/golden/hawk_tiny
  --model=tests/golden/srm_tiny)
"$bench" "${golden[@]}" --position=6 "$@" &&
  "$bench" "${golden[@]}" --position=6 --bf16 "$@" &&
  "$bench" --griffin_2b --bf16 --position=1024 --steps=4 "$@"
bench_status=$?

echo "device check: $((SECONDS - start)) s"
if ((tests != 0 || bench_status != 0)); then
  echo "device check: FAILED"
  exit 1
fi
echo "device check: PASSED"
