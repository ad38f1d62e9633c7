#!/usr/bin/env bash
# The OpenAI-compatible API with curl, as users call it: whole and streamed
# completions and chats, models, health, and error statuses with
# OpenAI-style bodies.
set -euo pipefail
source clients/testing/server_fixture.sh
tmp="${TEST_TMPDIR:-$(mktemp -d)}"
start_slabserve --openai_listen=127.0.0.1:0 \
  --openai_port_file="$tmp/openai.port"
base="http://127.0.0.1:$(tr -d '[:space:]' <"$tmp/openai.port")"
fail() { echo "FAIL: $*" >&2; exit 1; }
# Prints the HTTP status; the body goes to $tmp/body.
call() {
  curl -sS --max-time 30 -o "$tmp/body" -w '%{http_code}' "$@"
}
expect() {  # STATUS TEXT CURL_ARGS...
  local want="$1" text="$2"
  shift 2
  local got
  got=$(call "$@")
  [[ "$got" == "$want" ]] || fail "$* -> $got, want $want: $(cat "$tmp/body")"
  grep -qF -- "$text" "$tmp/body" || fail "$* body lacks '$text': $(cat "$tmp/body")"
}
json=(-H 'Content-Type: application/json')

expect 200 '"status":"ok"' "$base/health"
expect 200 '"id":"griffin_tiny"' "$base/v1/models"
expect 200 '"finish_reason":"length"' "${json[@]}" "$base/v1/completions" \
  -d '{"model":"griffin_tiny","prompt":"In the beginning","max_tokens":8,"temperature":0}'
grep -qF '"completion_tokens":8' "$tmp/body" || fail "usage: $(cat "$tmp/body")"
expect 200 '"object":"chat.completion"' "${json[@]}" \
  "$base/v1/chat/completions" \
  -d '{"model":"griffin_tiny","messages":[{"role":"user","content":"Who?"}],"max_tokens":4}'

# Streaming: event-stream chunks, the usage chunk, then [DONE] last.
expect 200 'data: [DONE]' -N "${json[@]}" "$base/v1/chat/completions" \
  -d '{"model":"griffin_tiny","messages":[{"role":"user","content":"Who?"}],"max_tokens":6,"stream":true,"stream_options":{"include_usage":true}}'
[[ "$(grep '^data: ' "$tmp/body" | tail -1)" == "data: [DONE]" ]] ||
  fail "[DONE] is not last"
grep -qF '"chat.completion.chunk"' "$tmp/body" || fail "no chunks"
grep -qF '"total_tokens"' "$tmp/body" || fail "no usage chunk"

expect 400 '"type":"invalid_request_error"' "${json[@]}" \
  "$base/v1/completions" -d '{"model":'
expect 400 '"param":"model"' "${json[@]}" "$base/v1/completions" \
  -d '{"model":"gpt-4","prompt":"x"}'
expect 404 '"code":"unknown_url"' "$base/v1/engines"
head -c 5000000 /dev/zero | tr '\0' 'a' >"$tmp/big"
expect 413 '"code":"request_too_large"' "${json[@]}" "$base/v1/completions" \
  --data-binary @"$tmp/big"
echo PASS
