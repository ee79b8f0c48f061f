#!/usr/bin/env bash
# Fails (exit 1) when clang-format (Google style, 100 columns; .clang-format) would change a
# tracked C++ file. Lists the files it disagrees with.
set -uo pipefail
cd "$(dirname "$0")/.."
bad=()
while IFS= read -r f; do
  [ -f "$f" ] || continue
  clang-format --dry-run -Werror "$f" >/dev/null 2>&1 || bad+=("$f")
done < <(git ls-files '*.cc' '*.h')
if [ ${#bad[@]} -gt 0 ]; then
  echo "format-check: clang-format disagrees with: ${bad[*]} (run 'make format')"
  exit 1
fi
echo "format-check: ok"
