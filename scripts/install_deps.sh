#!/usr/bin/env bash
# Installs every Debian package slabserve needs to build, test and serve.
# Idempotent and quiet; needs root (or sudo) and network access to Debian.
set -euo pipefail

packages=(
  bazel-bootstrap g++ git
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  libabsl-dev libspdlog-dev libfmt-dev nlohmann-json3-dev
  libgtest-dev libgmock-dev libbenchmark-dev libsentencepiece-dev
  libmicrohttpd-dev
  python3 python3-grpcio python3-protobuf python3-numpy python3-h2
  gnuplot-nox clang-format openssl curl nginx python3-yaml clang-14
  libclang-rt-14-dev
)
# kubectl (client side only, for the offline manifest check): Debian's
# kubernetes-client, unless another package already provides the command.
if ! command -v kubectl >/dev/null; then packages+=(kubernetes-client); fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" ||
    missing+=("$p")
done
if ((${#missing[@]} == 0)); then
  exit 0
fi

SUDO=""
if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
echo "installing: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
