#!/usr/bin/env bash
# Runs the unit and end-to-end tests again under AddressSanitizer and
# UndefinedBehaviorSanitizer (gcc, -c dbg). Tests tagged no_sanitizer (they
# measure resident memory, which ASan's quarantine changes) are left out.
# Not yet part of CI: ASan forbids RTLD_DEEPBIND, without which a server
# that links gRPC's protobuf cannot load libsentencepiece (it bundles its
# own protobuf), so the end-to-end tests that load a tokenizer need another
# way to isolate it first.
# Prints the bazel-testlogs folder of the run on its last line, as
# "sanitizer testlogs: DIR", for scripts/count_results.py.
set -uo pipefail
cd "$(dirname "$0")/.."

flags=(--config=asan --config=ubsan)
bash scripts/install_deps.sh
# No convenience symlinks: they must keep pointing at the main build.
bazel test "${flags[@]}" --symlink_prefix=/ --keep_going \
  --test_tag_filters=-no_sanitizer //... "$@"
status=$?
echo "sanitizer testlogs: $(bazel info "${flags[@]}" bazel-testlogs 2>/dev/null)"
exit "$status"
