#!/usr/bin/env bash
# Runs every test: the clang-format check, then `bazel test //...` (unit,
# golden and end-to-end tests). CUDA tests are skipped unless --config=cuda.
set -uo pipefail
cd "$(dirname "$0")/.."

bash scripts/install_deps.sh
format_status=0
bash scripts/check_format.sh || format_status=$?
bazel test --config=opt --keep_going //... "$@"
test_status=$?
if ((format_status != 0)); then exit "$format_status"; fi
exit "$test_status"
