#!/usr/bin/env bash
# The CUDA configuration: builds every target with --config=cuda (so a
# compile break in a kernel or in the CUDA backend fails CI), then runs the
# tests tagged "cuda". Without a device those tests skip their device cases
# (GoogleTest SKIPPED) and still run their host-side cases. Needs the CUDA
# toolkit at /usr/local/cuda. Prints "cuda build: PASSED|FAILED" for
# scripts/count_results.py.
set -uo pipefail
cd "$(dirname "$0")/.."

if bazel build --config=opt --config=cuda --keep_going //... "$@"; then
  echo "cuda build: PASSED"
else
  echo "cuda build: FAILED"
  exit 1
fi
bazel test --config=opt --config=cuda --keep_going --test_tag_filters=cuda \
  //... "$@"
