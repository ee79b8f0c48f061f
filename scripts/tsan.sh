#!/usr/bin/env bash
# ThreadSanitizer over the code where more than one thread exists. Warren has one I/O thread
# plus the storage sync thread (src/storage/store.cc, group commit), so this builds, with the
# clang preset `tsan`, only the targets that reach that thread. The preset keeps line tables
# only (-gline-tables-only): reports still show file:line, and the build costs ~17% less CPU
# than with -g (4m30s instead of 5m26s for the smoke's targets).
#
#   scripts/tsan.sh          `make tsan`: warrend and the storage and durable-session unit
#                            tests; runs those plus the suites that drive the sync thread
#                            through the real binary (durability, crash, restart, shutdown).
#   scripts/tsan.sh smoke    the part `make test` runs: the same build, and the unit tests
#                            plus the durability suite only (4m23s on the shared 2-core VM from
#                            an empty build/tsan, 30 s when it is up to date).
#
# A data race makes a test binary or warrend exit non-zero (TSan's exitcode 66), which ctest and
# the integration fixtures report as a failure.
set -uo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc)
mode=${1:-full}
case "$mode" in
  full)
    targets="warrend storage_test durable_session_test"
    tests='^((StoreTest|Segment|DurableSessionTest)\.|crash\.kill9$|integration\.test_(durability|queue_features|shutdown|amqp_core|limits)$)'
    ;;
  smoke)
    targets="warrend storage_test durable_session_test"
    tests='^((StoreTest|Segment|DurableSessionTest)\.|integration\.test_durability$)'
    ;;
  *) echo "usage: $0 [smoke]" >&2; exit 2 ;;
esac
# clang: g++ 12 rejects Boost.Asio's atomic_thread_fence under -fsanitize=thread (-Werror=tsan).
cmake --preset tsan >/dev/null || exit 1
# shellcheck disable=SC2086
cmake --build build/tsan -j "$jobs" --target $targets || exit 1
export TSAN_OPTIONS="${TSAN_OPTIONS:-halt_on_error=0 second_deadlock_stack=1}"
ctest --test-dir build/tsan -j "$jobs" --output-on-failure --timeout 900 -R "$tests"
