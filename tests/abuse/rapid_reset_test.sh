#!/usr/bin/env bash
# Floods the server with streams reset as soon as they open (HTTP/2 rapid
# reset), twice, then checks that it still serves and that its resident
# memory comes back near where it started: what the flood allocated is freed
# and returned, not kept.
set -euo pipefail
source clients/testing/server_fixture.sh
start_slabserve
fail() { echo "FAIL: $*" >&2; exit 1; }
rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$SLABSERVE_PID/status"; }
port=${SLABSERVE_TARGET##*:}

before=$(rss_kib)
for round in 1 2; do
  sent=$(/usr/bin/python3 tests/abuse/rapid_reset.py "$port" 5)
  echo "round $round: $sent streams opened and reset; RSS $(rss_kib) KiB"
  ((sent > 1000)) || fail "the flood sent only $sent streams"
done
kill -0 "$SLABSERVE_PID" || fail "the server died"
# Allowed growth once the flood is over: 16 MiB (the floods grow it by tens
# of MiB while they last; freed memory kept by the allocator stays there).
limit=$((before + 16 * 1024))
for _ in $(seq 1 40); do
  (($(rss_kib) <= limit)) && break
  sleep 0.5
done
after=$(rss_kib)
echo "RSS before ${before} KiB, after ${after} KiB (limit ${limit} KiB)"
((after <= limit)) || fail "RSS stayed ${after} KiB after the flood"
metrics=$(/usr/bin/python3 -c "import urllib.request, sys
print(urllib.request.urlopen('http://$SLABSERVE_METRICS_TARGET/metrics',
                             timeout=10).read().decode())")
grep -q "^slabserve_free_slots" <<<"$metrics" || fail "no metrics after flood"
echo "rapid reset: all checks passed"
