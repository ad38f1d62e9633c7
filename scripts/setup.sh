#!/usr/bin/env bash
# Sets up a fresh Debian 12 machine: system packages, an optimised build of
# every binary, installed into bin/ (a fixed place that no later `bazel build`
# with other flags can move), and the Python client (`import slabserve`).
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install_deps.sh
targets=(//server:slabserve //clients/slabctl:slabctl //loadtest:slabload
  //engine/eval:slabeval)
bazel build --config=opt "${targets[@]}"
bazel_bin=$(bazel info --config=opt bazel-bin 2>/dev/null)
mkdir -p bin
for target in "${targets[@]}"; do
  path=${target#//}
  install -m 755 "$bazel_bin/${path%%:*}/${path##*:}" bin/
done
echo "installed: $(ls bin | tr '\n' ' ')into bin/"
bash scripts/install_python_client.sh
