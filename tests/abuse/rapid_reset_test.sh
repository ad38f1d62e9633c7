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
peak=$before
for round in 1 2; do
  sent=$(/usr/bin/python3 tests/abuse/rapid_reset.py "$port" 3)
  now=$(rss_kib)
  ((now > peak)) && peak=$now
  echo "round $round: $sent streams opened and reset; RSS $now KiB"
  ((sent > 1000)) || fail "the flood sent only $sent streams"
done
kill -0 "$SLABSERVE_PID" || fail "the server died"
# Once the flood is over, what it grew must go back: all but 16 MiB, or an
# eighth of the growth when the flood outran the server (a fragmented heap
# keeps a little). Without the releaser nothing goes back at all.
grown=$((peak - before))
allowed=$((grown / 8 > 16 * 1024 ? grown / 8 : 16 * 1024))
limit=$((before + allowed))
# gRPC works through the backlog of reset streams first (seconds when the
# flood outran it), then the releaser gives the memory back.
for _ in $(seq 1 120); do
  (($(rss_kib) <= limit)) && break
  sleep 0.5
done
after=$(rss_kib)
echo "RSS before ${before} KiB, peak ${peak} KiB, after ${after} KiB (limit ${limit} KiB)"
((after <= limit)) || fail "RSS stayed ${after} KiB after the flood"
metrics=$(/usr/bin/python3 -c "import urllib.request, sys
print(urllib.request.urlopen('http://$SLABSERVE_METRICS_TARGET/metrics',
                             timeout=10).read().decode())")
grep -q "^slabserve_free_slots" <<<"$metrics" || fail "no metrics after flood"
echo "rapid reset: all checks passed"
