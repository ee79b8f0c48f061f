#!/usr/bin/env bash
# Builds the libFuzzer targets (clang, `fuzz` preset) and runs each one for FUZZ_SECONDS on its
# checked-in corpus (fuzz/corpus/<target>/), FUZZ_JOBS (default: one per core) at a time. New
# inputs go to a scratch folder, so the checked-in corpus only changes on purpose. Exit 1 if any
# target crashes; the crashing input is kept in fuzz/artifacts/.
set -uo pipefail
cd "$(dirname "$0")/.."
secs=${FUZZ_SECONDS:-30}
if ! command -v clang++ >/dev/null 2>&1; then
  echo "fuzz: clang++ not found, skipped"
  exit 0
fi
cmake --preset fuzz >/dev/null || exit 1
cmake --build build/fuzz -j "$(nproc)" || exit 1
mkdir -p fuzz/artifacts
# Targets run side by side, one per core, each for the full FUZZ_SECONDS on a core of its own:
# the same fuzzing as one after another, in a fraction of the wall time.
slots=${FUZZ_JOBS:-$(nproc)}
results=$(mktemp -d)
run_target() {
  local corpus=$1 target bin scratch dict
  target=$(basename "$corpus")
  bin=$(find build/fuzz -type f -name "$target" -perm -u+x | head -n 1)
  if [ -z "$bin" ]; then
    echo "fuzz: no binary for $target" >"$results/$target.failed"
    return
  fi
  scratch=$(mktemp -d)
  dict=""
  [ -f "fuzz/$target.dict" ] && dict="-dict=fuzz/$target.dict"
  if "$bin" $dict -max_total_time="$secs" -print_final_stats=1 -artifact_prefix=fuzz/artifacts/ \
      "$scratch" "$corpus" >"build/fuzz/$target.log" 2>&1; then
    { echo "fuzz: $target for ${secs}s"
      grep -E "stat::number_of_executed_units|Done" "build/fuzz/$target.log" | tail -n 2
    } >"$results/$target.passed"
  else
    { echo "fuzz: $target for ${secs}s FAILED"; tail -n 40 "build/fuzz/$target.log"
    } >"$results/$target.failed"
  fi
  rm -rf "$scratch"
}
running=0
for corpus in fuzz/corpus/*/; do
  if [ "$running" -ge "$slots" ]; then
    wait -n
    running=$((running - 1))
  fi
  run_target "$corpus" &
  running=$((running + 1))
done
wait
passed=0
failed=0
for f in "$results"/*; do
  [ -e "$f" ] || continue
  cat "$f"
  case "$f" in
    *.passed) passed=$((passed + 1)) ;;
    *) failed=$((failed + 1)) ;;
  esac
done
rm -rf "$results"
echo "fuzz: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
