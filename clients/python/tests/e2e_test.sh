#!/usr/bin/env bash
# Runs the Python client's end-to-end checks (tests/e2e.py) against the real
# server: assembles the package and its generated stubs from runfiles into a
# temporary PYTHONPATH for Debian's /usr/bin/python3.
set -euo pipefail
source clients/testing/server_fixture.sh

root="${TEST_TMPDIR:-$(mktemp -d)}/pythonpath"
mkdir -p "$root/slabserve/v1"
cp clients/python/slabserve/__init__.py "$root/slabserve/"
cp proto/slabserve/v1/slabserve_pb2.py proto/slabserve/v1/slabserve_pb2_grpc.py \
  clients/proto/grpc/health/v1/health_pb2.py "$root/slabserve/v1/"
: >"$root/slabserve/v1/__init__.py"

start_slabserve
PYTHONPATH="$root" PYTHONDONTWRITEBYTECODE=1 /usr/bin/python3 \
  clients/python/tests/e2e.py "$SLABSERVE_TARGET"
stop_slabserve

# Again over TLS with an API key, with a certificate made here.
certs="${TEST_TMPDIR:-$(mktemp -d)}/certs"
mkdir -p "$certs"
/usr/bin/openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
  -nodes -keyout "$certs/server.key" -out "$certs/server.pem" -days 2 \
  -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 2>/dev/null
key=python-test-key-0123456789
echo "$key" >"$certs/keys"
start_slabserve --tls_cert_file="$certs/server.pem" \
  --tls_key_file="$certs/server.key" --api_keys_file="$certs/keys"
PYTHONPATH="$root" PYTHONDONTWRITEBYTECODE=1 /usr/bin/python3 \
  clients/python/tests/e2e.py --secure "$SLABSERVE_TARGET" \
  "$certs/server.pem" "$key"
