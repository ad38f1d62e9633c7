#!/usr/bin/env bash
# Sets up a fresh Debian 12 machine: system packages, an optimised build of
# every binary, and the Python client (`import slabserve`).
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install_deps.sh
bazel build --config=opt //server:slabserve //clients/slabctl:slabctl //loadtest:slabload //engine/eval:slabeval
if [[ -f scripts/install_python_client.sh ]]; then
  bash scripts/install_python_client.sh
fi
