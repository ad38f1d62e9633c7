#!/usr/bin/env bash
# Runs gateway_e2e.py: nginx from deploy/nginx in front of two slabserve
# replicas, all on loopback. Assembles the Python client and the generated
# stubs into a temporary PYTHONPATH for Debian's /usr/bin/python3.
set -euo pipefail
root="${TEST_TMPDIR:-$(mktemp -d)}/pythonpath"
mkdir -p "$root/slabserve/v1"
cp clients/python/slabserve/__init__.py "$root/slabserve/"
cp proto/slabserve/v1/slabserve_pb2.py proto/slabserve/v1/slabserve_pb2_grpc.py \
  clients/proto/grpc/health/v1/health_pb2.py "$root/slabserve/v1/"
: >"$root/slabserve/v1/__init__.py"
PYTHONPATH="$root" PYTHONDONTWRITEBYTECODE=1 exec /usr/bin/python3 \
  tests/deploy/gateway_e2e.py
