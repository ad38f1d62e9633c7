#!/usr/bin/env bash
# slabload against the real server on loopback: closed loop, open loop,
# burst and a sweep give consistent counts, ordered percentiles and their
# report files; bad flags, an unreachable server and a server that rejects
# every request fail with clear messages.
set -euo pipefail
source clients/testing/server_fixture.sh
tmp="${TEST_TMPDIR:-$(mktemp -d)}"
start_slabserve --openai_listen=127.0.0.1:0 \
  --openai_port_file="$tmp/openai.port"
openai_target="127.0.0.1:$(tr -d '[:space:]' <"$tmp/openai.port")"

slabload=loadtest/slabload
check() { /usr/bin/python3 loadtest/check_report.py "$@"; }
fail() { echo "FAIL: $*" >&2; exit 1; }

# Closed loop, dashed flag names, warmup excluded, SLOs, server metrics.
"$slabload" --target="$SLABSERVE_TARGET" \
  --metrics-target="$SLABSERVE_METRICS_TARGET" --concurrency=4 \
  --requests=24 --warmup=4 --prompt-len=4:16 --output-len=8 --seed=5 \
  --ttft-slo=10000 --itl-slo=10000 --json="$tmp/closed.json" >"$tmp/closed.txt"
check "$tmp/closed.json" --requests=24 --output-tokens=8 --no-errors \
  --server-metrics
grep -q "TTFT" "$tmp/closed.txt" || fail "no summary table"
grep -q '"warmup_requests": 4' "$tmp/closed.json" || fail "warmup not excluded"
grep -q '"good_requests": 24' "$tmp/closed.json" || fail "goodput"

# The same closed loop over the OpenAI API (server-sent events).
"$slabload" --target="$SLABSERVE_TARGET" --protocol=openai \
  --openai_target="$openai_target" --concurrency=4 --requests=16 \
  --prompt-len=4:16 --output-len=8 --seed=5 --json="$tmp/openai.json" \
  >"$tmp/openai.txt"
check "$tmp/openai.json" --requests=16 --output-tokens=8 --no-errors
grep -q '"protocol": "openai"' "$tmp/openai.json" || fail "protocol not reported"

# Open loop (Poisson), bounded by duration.
"$slabload" --target="$SLABSERVE_TARGET" --rate=20 --duration=2 --seed=3 \
  --prompt-len=8 --output-len=4 --requests=0 --json="$tmp/open.json" >/dev/null
check "$tmp/open.json" --output-tokens=4 --no-errors

# Burst.
"$slabload" --target="$SLABSERVE_TARGET" --burst --requests=16 \
  --prompt-len=8 --output-len=4 --json="$tmp/burst.json" >/dev/null
check "$tmp/burst.json" --requests=16 --output-tokens=4 --no-errors

# Sweep over concurrencies: JSON, CSV and plots.
"$slabload" --target="$SLABSERVE_TARGET" --sweep=1,4 --requests=8 \
  --prompt-len=8 --output-len=4 --json="$tmp/sweep.json" \
  --plot-dir="$tmp/plots" >"$tmp/sweep.txt"
check "$tmp/sweep.json" --points=2 --requests=8 --no-errors
[[ $(wc -l <"$tmp/sweep.csv") -eq 3 ]] || fail "sweep.csv should have 3 lines"
for png in throughput latency; do
  [[ -s "$tmp/plots/$png.png" ]] || fail "missing $png.png"
done

# Failures: exit status and message.
expect_failure() {  # expected_status expected_text command...
  local want=$1 text=$2
  shift 2
  local got=0
  "$@" >"$tmp/out.txt" 2>&1 || got=$?
  [[ $got -eq $want ]] || fail "'$*' exited $got, expected $want"
  grep -q "$text" "$tmp/out.txt" ||
    fail "'$*' did not say '$text': $(cat "$tmp/out.txt")"
}
expect_failure 1 "cannot reach slabserve" "$slabload" --target=127.0.0.1:1
expect_failure 2 "prompt-len" "$slabload" --prompt-len=0
expect_failure 2 "unbounded" "$slabload" --requests=0
expect_failure 2 "warmup" "$slabload" --warmup=soon
expect_failure 2 "rate must be a finite number" "$slabload" --rate=nan
expect_failure 2 "rate must be a finite number" "$slabload" --rate=inf
expect_failure 2 "duration must be a finite number" "$slabload" --duration=nan
expect_failure 2 "channels must be in" "$slabload" --channels=-1
expect_failure 2 "protocol must be" "$slabload" --target="$SLABSERVE_TARGET" \
  --protocol=carrier-pigeon
expect_failure 2 "openai_target" "$slabload" --target="$SLABSERVE_TARGET" \
  --protocol=openai
expect_failure 2 "is not a positive integer" "$slabload" --sweep=1,nan
# Report paths are checked before the run, so nothing is measured in vain.
expect_failure 2 "does not exist" "$slabload" --target="$SLABSERVE_TARGET" \
  --requests=4 --json="$tmp/no/such/dir/report.json"
expect_failure 2 "cannot be written" "$slabload" --target="$SLABSERVE_TARGET" \
  --requests=4 --json="$tmp"
expect_failure 2 "max_tokens limit" "$slabload" \
  --target="$SLABSERVE_TARGET" --output-len=100000000
echo '{"ids": [1000000]}' >"$tmp/bad_prompts.jsonl"
expect_failure 1 "all failed" "$slabload" --target="$SLABSERVE_TARGET" \
  --prompts="$tmp/bad_prompts.jsonl" --requests=50 --concurrency=4
echo "slabload end-to-end: all checks passed"
