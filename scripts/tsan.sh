#!/usr/bin/env bash
# `make tsan`: ThreadSanitizer over the code where more than one thread exists. Warren has one
# I/O thread plus the storage sync thread (src/storage/store.cc, group commit), so this builds
# the tsan preset's warrend and the storage and durable-session unit tests, and runs those tests
# plus the suites that drive the sync thread through the real binary (durability, crash,
# restart and shutdown). A data race makes warrend exit non-zero (TSan's exitcode 66), which the
# integration fixtures report as a failure. Not part of `make test` (its 30-minute budget on two
# cores); run it when storage or threading code changes.
set -uo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc)
# clang: g++ 12 rejects Boost.Asio's atomic_thread_fence under -fsanitize=thread (-Werror=tsan).
cmake --preset tsan >/dev/null || exit 1
cmake --build build/tsan -j "$jobs" --target warrend storage_test durable_session_test || exit 1
export TSAN_OPTIONS="${TSAN_OPTIONS:-halt_on_error=0 second_deadlock_stack=1}"
ctest --test-dir build/tsan -j "$jobs" --output-on-failure --timeout 900 \
  -R '^((StoreTest|Segment|DurableSessionTest)\.|crash\.kill9$|integration\.test_(durability|queue_features|shutdown|amqp_core|limits)$)'
