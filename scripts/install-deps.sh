#!/usr/bin/env bash
# Installs the Debian packages listed in deps/debian-packages.txt that are missing, and the
# npm packages of the integration tests. Idempotent: runs apt-get update only when something
# must be installed. Needs root (or sudo) only when something is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

mapfile -t wanted < <(sed -e 's/#.*//' -e 's/[[:space:]]//g' deps/debian-packages.txt | grep -v '^$')
missing=()
for p in "${wanted[@]}"; do
  # nodejs may come from another origin (e.g. nodesource) that also ships npm: accept any.
  if [ "$p" = nodejs ] && command -v node >/dev/null 2>&1; then continue; fi
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [ "$status" = "install ok installed" ] || missing+=("$p")
done
if ! command -v npm >/dev/null 2>&1; then missing+=(npm); fi

if [ ${#missing[@]} -gt 0 ]; then
  echo "install-deps: installing ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# Node packages, pinned by their package-lock.json: the integration tests' clients, and the
# example applications' (amqplib, ws, level, and playwright-core for their browser test).
for dir in tests/integration/node examples; do
  if [ -f "$dir/package-lock.json" ] && [ ! -d "$dir/node_modules" ]; then
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
  fi
done
