#!/usr/bin/env bash
# `make test`: builds and runs every test, then prints one summary line "Total: N passed, N failed".
#   1. release build: unit tests + integration tests (real warrend, real clients)
#   2. asan-ubsan build: the same suite under AddressSanitizer + UndefinedBehaviorSanitizer
#   3. tsan smoke when clang is present: ThreadSanitizer over the storage sync thread, building
#      only warrend and the storage and durable-session unit tests (scripts/tsan.sh smoke;
#      `make tsan` runs more suites)
#   4. fuzz smoke: every libFuzzer target for FUZZ_SECONDS (default 20) when clang is present
#   5. clang-format check
# Phases keep going after a failure so one run shows everything; the exit code is non-zero if
# anything failed.
set -uo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc)
passed=0
failed=0
log_dir=build/test-logs
mkdir -p "$log_dir"

phase() { echo; echo "=== $* ==="; }

# Adds ctest's counts from its log to the totals; a build failure counts as one failure.
count_ctest() {
  local log=$1 line total nfail
  line=$(grep -E "tests passed, [0-9]+ tests? failed out of [0-9]+" "$log" | tail -n 1)
  if [ -z "$line" ]; then
    if grep -q "No tests were found" "$log"; then return; fi
    failed=$((failed + 1)); return
  fi
  total=$(sed -E 's/.*out of ([0-9]+).*/\1/' <<<"$line")
  nfail=$(sed -E 's/.* ([0-9]+) tests? failed.*/\1/' <<<"$line")
  passed=$((passed + total - nfail))
  failed=$((failed + nfail))
}

run_suite() {
  local preset=$1
  phase "build ($preset)"
  if ! cmake --preset "$preset" >"$log_dir/$preset-configure.log" 2>&1; then
    tail -n 30 "$log_dir/$preset-configure.log"; failed=$((failed + 1)); return
  fi
  if ! cmake --build "build/$preset" -j "$jobs" >"$log_dir/$preset-build.log" 2>&1; then
    grep -E "error|FAILED" "$log_dir/$preset-build.log" | head -n 40
    tail -n 20 "$log_dir/$preset-build.log"; failed=$((failed + 1)); return
  fi
  phase "tests ($preset)"
  ctest --test-dir "build/$preset" -j "$jobs" --output-on-failure --timeout 600 2>&1 |
    tee "$log_dir/$preset-ctest.log" | grep -vE "^ *[0-9]+/[0-9]+ Test +#[0-9]+: .* Passed"
  count_ctest "$log_dir/$preset-ctest.log"
}

run_suite release
run_suite asan-ubsan

phase "tsan smoke"
if command -v clang++ >/dev/null 2>&1; then
  # A build failure leaves no ctest summary in the log: count_ctest counts it as one failure.
  scripts/tsan.sh smoke >"$log_dir/tsan-ctest.log" 2>&1
  grep -vE "^ *[0-9]+/[0-9]+ Test +#[0-9]+: .* Passed|^ *Start +[0-9]+: |^\[[0-9]+/[0-9]+\] " \
    "$log_dir/tsan-ctest.log" | tail -n 40
  count_ctest "$log_dir/tsan-ctest.log"
  # Unlike the full suites, finding no test here means the filter in tsan.sh went stale.
  if grep -q "No tests were found" "$log_dir/tsan-ctest.log"; then failed=$((failed + 1)); fi
else
  echo "skipped: clang++ not installed"
fi

phase "fuzz smoke"
if FUZZ_SECONDS=${FUZZ_SECONDS:-20} scripts/fuzz.sh 2>&1 | tee "$log_dir/fuzz.log"; then :; fi
fl=$(grep -E "^fuzz: [0-9]+ passed, [0-9]+ failed" "$log_dir/fuzz.log" | tail -n 1)
if [ -n "$fl" ]; then
  passed=$((passed + $(sed -E 's/fuzz: ([0-9]+) passed.*/\1/' <<<"$fl")))
  failed=$((failed + $(sed -E 's/.* ([0-9]+) failed/\1/' <<<"$fl")))
elif ! grep -q "skipped" "$log_dir/fuzz.log"; then
  failed=$((failed + 1))
fi

phase "format check"
if scripts/format-check.sh; then passed=$((passed + 1)); else failed=$((failed + 1)); fi

echo
echo "Total: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
