#!/usr/bin/env bash
# Renders deploy/k8s offline (kubectl kustomize needs no cluster) and checks
# the result's structure, so a broken manifest fails CI. Then checks that
# the checker catches a broken copy.
set -euo pipefail
out="${TEST_TMPDIR:-$(mktemp -d)}"
check() {
  KUBECONFIG=/dev/null kubectl kustomize "$1" >"$out/rendered.yaml"
  /usr/bin/python3 tests/deploy/check_k8s.py "$out/rendered.yaml" \
    server/config.proto
}
# Runfiles are symlinks, which kustomize does not read: render a copy.
mkdir -p "$out/k8s"
cp -L deploy/k8s/*.yaml "$out/k8s/"
check "$out/k8s"

# Must fail: a grace period shorter than the drain, and a missing probe.
mkdir -p "$out/broken"
cp -L deploy/k8s/*.yaml "$out/broken/"
sed -i 's/terminationGracePeriodSeconds: .*/terminationGracePeriodSeconds: 10/' \
  "$out/broken/deployment.yaml"
if check "$out/broken"; then
  echo "FAIL: a too short terminationGracePeriodSeconds passed" >&2
  exit 1
fi
cp -L deploy/k8s/deployment.yaml "$out/broken/"
sed -i 's/readinessProbe:/readinessProbeX:/' "$out/broken/deployment.yaml"
if check "$out/broken" 2>/dev/null; then
  echo "FAIL: a Deployment without a readiness probe passed" >&2
  exit 1
fi
echo "deploy/k8s: ok"
