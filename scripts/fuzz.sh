#!/usr/bin/env bash
# Builds the libFuzzer targets (clang, `fuzz` preset) and runs each one for FUZZ_SECONDS on its
# checked-in corpus (fuzz/corpus/<target>/). New inputs go to a scratch folder, so the checked-in
# corpus only changes on purpose. Exit 1 if any target crashes; the crashing input is kept in
# fuzz/artifacts/.
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
status=0
passed=0
failed=0
for corpus in fuzz/corpus/*/; do
  target=$(basename "$corpus")
  bin=$(find build/fuzz -type f -name "$target" -perm -u+x | head -n 1)
  if [ -z "$bin" ]; then
    echo "fuzz: no binary for $target"
    failed=$((failed + 1)); status=1; continue
  fi
  scratch=$(mktemp -d)
  dict=""
  [ -f "fuzz/$target.dict" ] && dict="-dict=fuzz/$target.dict"
  echo "fuzz: $target for ${secs}s"
  if "$bin" $dict -max_total_time="$secs" -print_final_stats=1 -artifact_prefix=fuzz/artifacts/ \
      "$scratch" "$corpus" >"build/fuzz/$target.log" 2>&1; then
    grep -E "stat::number_of_executed_units|Done" "build/fuzz/$target.log" | tail -n 2
    passed=$((passed + 1))
  else
    tail -n 40 "build/fuzz/$target.log"
    failed=$((failed + 1)); status=1
  fi
  rm -rf "$scratch"
done
echo "fuzz: $passed passed, $failed failed"
exit $status
