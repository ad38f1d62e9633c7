#!/usr/bin/env bash
# Fails when a C++ file in the repository differs from clang-format's Google
# style (.clang-format). With --fix, rewrites the files instead.
set -euo pipefail
cd "$(dirname "$0")/.."

files=$(git ls-files '*.cc' '*.h' '*.cu' 2>/dev/null || true)
if [[ -z "$files" ]]; then
  files=$(find . -path ./.bazel -prune -o \( -name '*.cc' -o -name '*.h' -o -name '*.cu' \) -print)
fi
if [[ "${1:-}" == "--fix" ]]; then
  echo "$files" | xargs clang-format -i --style=file
  exit 0
fi
bad=0
for f in $files; do
  if ! clang-format --style=file --dry-run -Werror "$f" >/dev/null 2>&1; then
    echo "not clang-formatted: $f (run scripts/check_format.sh --fix)"
    bad=1
  fi
done
if ((bad)); then echo "format check: FAILED"; else echo "format check: PASSED"; fi
exit "$bad"
