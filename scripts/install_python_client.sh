#!/usr/bin/env bash
# Makes `import slabserve` work for Debian's /usr/bin/python3: generates the
# gRPC stubs with Bazel, copies them into clients/python/slabserve/v1/ and
# puts clients/python on the interpreter's path with a .pth file.
# Needs python3-grpcio and python3-protobuf (scripts/install_deps.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
python=/usr/bin/python3

bazel build --config=opt //proto:slabserve_py_proto //clients/proto:health_py_proto
bin=$(bazel info --config=opt bazel-bin 2>/dev/null)
dest=clients/python/slabserve/v1
mkdir -p "$dest"
install -m 644 "$bin/proto/slabserve/v1/slabserve_pb2.py" \
  "$bin/proto/slabserve/v1/slabserve_pb2_grpc.py" \
  "$bin/clients/proto/grpc/health/v1/health_pb2.py" "$dest/"
: >"$dest/__init__.py"

site_dir=$("$python" -c 'import site; print(site.getsitepackages()[0])')
SUDO=""
if [[ $(id -u) -ne 0 && ! -w "$(dirname "$site_dir")" ]]; then SUDO="sudo"; fi
$SUDO mkdir -p "$site_dir"
echo "$root/clients/python" | $SUDO tee "$site_dir/slabserve.pth" >/dev/null
"$python" -c 'import slabserve; print("slabserve client ready:", slabserve.__file__)'
