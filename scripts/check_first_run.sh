#!/usr/bin/env bash
# Runs README command 1 as a new user would, on free loopback ports: the
# command is read from README.md (so a change there is what gets tested),
# its setup part runs, then its serve part starts the server with the
# listen addresses overridden. Checks that `slabctl generate` prints text,
# that `slabctl health` says SERVING, and that SIGTERM ends the server with
# exit code 0. Prints "first run: PASSED" or "first run: FAILED: why".
set -uo pipefail
cd "$(dirname "$0")/.."

fail() {
  echo "first run: FAILED: $*"
  [[ -f ${log:-} ]] && tail -n 20 "$log" | sed 's/^/  server: /'
  [[ -n ${server_pid:-} ]] && kill -KILL "$server_pid" 2>/dev/null
  exit 1
}

command1=$(grep -A1 '^# 1\.' README.md | tail -n 1)
[[ $command1 == *" && "* ]] || fail "README command 1 not found: '$command1'"
setup_part=${command1%% && *}
serve_part=${command1#* && }
echo "first run: setup: $setup_part"
bash -c "$setup_part" || fail "setup exited $?"

work=$(mktemp -d)
log=$work/server.log
echo "first run: serve: $serve_part (on free loopback ports)"
bash -c "exec $serve_part --listen=127.0.0.1:0 --metrics_listen=127.0.0.1:0 \
  --port_file=$work/port" >"$log" 2>&1 &
server_pid=$!
for _ in $(seq 1 600); do
  [[ -s $work/port ]] && break
  kill -0 "$server_pid" 2>/dev/null || fail "server exited before serving"
  sleep 0.1
done
[[ -s $work/port ]] || fail "server did not write its port within 60 s"
target=127.0.0.1:$(cat "$work/port")

slabctl=$(grep -o '^[^ ]*slabctl generate' README.md | head -n 1)
slabctl=${slabctl% generate}
[[ -x $slabctl ]] || fail "README's slabctl path '$slabctl' is not executable"
text=$(timeout 60 "$slabctl" --target="$target" generate \
  --prompt "In the beginning" --max_tokens 16) || fail "generate exited $?"
[[ -n ${text//[[:space:]]/} ]] || fail "generate printed no text"
echo "first run: generate printed: ${text//$'\n'/ }"
health=$(timeout 30 "$slabctl" --target="$target" health) ||
  fail "health exited $?"
[[ $health == SERVING ]] || fail "health said '$health'"

kill -TERM "$server_pid"
for _ in $(seq 1 300); do
  kill -0 "$server_pid" 2>/dev/null || break
  sleep 0.1
done
kill -0 "$server_pid" 2>/dev/null && fail "server still running 30 s after SIGTERM"
wait "$server_pid"
code=$?
server_pid=
((code == 0)) || fail "server exited $code after SIGTERM"
rm -rf "$work"
echo "first run: PASSED"
