#!/usr/bin/env bash
# Runs tests again under sanitizers (gcc 12). Usage:
#   bash scripts/test_sanitizers.sh asan [bazel flags...]
#     every unit and end-to-end test under AddressSanitizer and UBSan
#     (-c dbg), except those tagged no_sanitizer (they measure resident
#     memory, which ASan's quarantine changes);
#   bash scripts/test_sanitizers.sh tsan [bazel flags...]
#     the scheduler and server tests, and the OpenAI end-to-end test (the
#     server binary, its HTTP threads and the scheduler), under
#     ThreadSanitizer (-O1; Debian's Abseil is annotated by
#     //third_party/system:absl_tsan, see there). The gRPC streaming tests
#     are left out: gRPC hands a call between threads through lock-free code
#     in its uninstrumented core, so TSan reports gRPC's own inline
#     templates (CallOpSet::FillOps against FinalizeResult) as racing.
# The first report ends the process that hit it (halt_on_error), so a server
# child fails its test too. Prints the bazel-testlogs folder of the run on
# its last line, as "sanitizer testlogs: DIR", for scripts/count_results.py.
set -uo pipefail
cd "$(dirname "$0")/.."
kind=${1:-}
shift || true

case $kind in
  asan)
    flags=(--config=asan --config=ubsan)
    targets=(//...)
    options=(--test_env=ASAN_OPTIONS=halt_on_error=1:detect_leaks=1)
    ;;
  tsan)
    flags=(--config=tsan)
    # The worker pool, and the scheduler and server packages. End-to-end
    # tests that run a whole server process (gRPC and HTTP front ends
    # together) are left out until their reports can be told apart from
    # gRPC's uninstrumented internals.
    targets=(//kernels/cpu:parallel_test //engine/scheduler:all //server:all)
    # Uninstrumented libraries (gRPC, protobuf, the kernels) are not
    # checked: their own accesses are invisible, and what they do through
    # intercepted calls (memcpy, free) would be reported without the
    # happens-before edges of their lock-free internals.
    # gRPC's own timer threads finish without being joined: thread leaks
    # are not reported.
    options=(--test_env=TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1:ignore_noninstrumented_modules=1:report_thread_leaks=0)
    ;;
  *)
    echo "usage: $0 asan|tsan [bazel flags...]" >&2
    exit 2
    ;;
esac
bash scripts/install_deps.sh
# No convenience symlinks: they must keep pointing at the main build.
# Sanitized tests run several times slower: three times the usual timeouts.
bazel test "${flags[@]}" --symlink_prefix=/ --keep_going \
  --test_tag_filters=-no_sanitizer --test_timeout=180,900,2700,10800 \
  "${options[@]}" "$@" -- "${targets[@]}"
status=$?
echo "sanitizer testlogs: $(bazel info "${flags[@]}" bazel-testlogs 2>/dev/null)"
exit "$status"
