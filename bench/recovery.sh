#!/usr/bin/env bash
# Recovery benchmark (issue 4): how long warrend takes to start on a data dir holding one
# durable queue of N small persistent messages, and its RSS afterwards.
#
# For each N: bench/recovery_fill writes the data dir through warren::storage (the broker's own
# segment writer) plus a definitions.json naming the queue; then warrend is started on it
# (twice: "warm", segment files still in the page cache, and "cold", after
# `echo 3 > /proc/sys/vm/drop_caches` when we are root), and we read its
# "recovered N durable queues, M messages, B bytes in S s" line, the wall time from exec to the
# "amqp listening" line, VmRSS once listening and VmHWM (peak RSS, i.e. during recovery).
# Optionally (VERIFY=1) every message is then consumed with warren-perf to check the count.
#
# Usage: bench/recovery.sh                 (MESSAGES="1000000 10000000")
# Environment: MESSAGES, SIZE body bytes (16), ACKED_PERCENT (0), WARREN_PORT (5691),
#              DATA_PARENT (build/bench-data; real disk), MODES ("warm cold"), VERIFY (0),
#              WARREN_CONFIG (optional TOML passed with --config).
# Writes bench/results/recovery-<stamp>.{md,jsonl}.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
MESSAGES=${MESSAGES:-"1000000 10000000"}
SIZE=${SIZE:-16}
ACKED_PERCENT=${ACKED_PERCENT:-0}
WARREN_PORT=${WARREN_PORT:-5691}
DATA_PARENT=${DATA_PARENT:-$ROOT/build/bench-data}
MODES=${MODES:-"warm cold"}
VERIFY=${VERIFY:-0}
WARREN_CONFIG=${WARREN_CONFIG:-}
FILL=$ROOT/build/release/bench/recovery_fill
WARREND=$ROOT/build/release/src/app/warrend
PERF=$ROOT/build/release/tools/perf/warren-perf
QUEUE=recovery-bench

log() { echo "[recovery] $*" >&2; }
[ -x "$FILL" ] && [ -x "$WARREND" ] && [ -x "$PERF" ] ||
  { log "build first: cmake --build build/release --target warrend warren-perf recovery_fill"; exit 1; }

mkdir -p "$DATA_PARENT" "$ROOT/bench/results"
STAMP=$(date -u +%Y%m%d-%H%M%S)
OUT=$ROOT/bench/results/recovery-$STAMP
: >"$OUT.jsonl"
WARREN_PID=
DATA=
cleanup() {
  if [ -n "$WARREN_PID" ]; then kill "$WARREN_PID" 2>/dev/null || true; wait "$WARREN_PID" 2>/dev/null || true; fi
  [ -n "$DATA" ] && rm -rf "$DATA"
}
trap cleanup EXIT

kb() { awk -v k="$2:" '$1 == k {print $2}' "/proc/$1/status"; }

for n in $MESSAGES; do
  DATA=$DATA_PARENT/recovery-$n
  rm -rf "$DATA"
  log "filling $DATA with $n messages of $SIZE B"
  fill_json=$("$FILL" --data-dir "$DATA" --messages "$n" --size "$SIZE" --queue "$QUEUE" \
    --acked-percent "$ACKED_PERCENT")
  log "fill: $fill_json"
  disk_kb=$(du -sk "$DATA/queues" | cut -f1)
  for mode in $MODES; do
    if [ "$mode" = cold ]; then
      if [ "$(id -u)" != 0 ]; then log "not root: cannot drop caches; skipping cold"; continue; fi
      sync; echo 3 >/proc/sys/vm/drop_caches
    else
      cat "$DATA"/queues/*/*.seg >/dev/null  # make sure it is all in the page cache
    fi
    LOGF=$DATA_PARENT/recovery-$n-$mode.log
    t0=$(date +%s.%N)
    "$WARREND" --amqp-port "$WARREN_PORT" --data-dir "$DATA" --log-level info \
      ${WARREN_CONFIG:+--config "$WARREN_CONFIG"} >"$LOGF" 2>&1 &
    WARREN_PID=$!
    until grep -q "amqp listening" "$LOGF"; do
      kill -0 "$WARREN_PID" 2>/dev/null || { log "warrend died:"; cat "$LOGF" >&2; exit 1; }
      sleep 0.02
    done
    t1=$(date +%s.%N)
    sleep 0.5  # let the first post-recovery turn finish
    rss=$(kb "$WARREN_PID" VmRSS); hwm=$(kb "$WARREN_PID" VmHWM)
    # warrend's CPU (utime + stime) so far: nearly all of it is recovery.
    cpu_s=$(awk -v hz="$(getconf CLK_TCK)" '{print ($14 + $15) / hz}' "/proc/$WARREN_PID/stat")
    line=$(grep -m1 "recovered .* durable queues" "$LOGF")
    log "$mode: $line"
    # "recovered Q durable queues, M messages, B bytes in S s (...)"
    read -r q m b s < <(echo "$line" | sed -E 's/.*recovered ([0-9]+) durable queues, ([0-9]+) messages, ([0-9]+) bytes in ([0-9.]+) s.*/\1 \2 \3 \4/')
    consumed=null
    if [ "$VERIFY" = 1 ]; then
      log "consuming all $m messages to check the count"
      vjson=$("$PERF" --uri "127.0.0.1:$WARREN_PORT" --producers 0 --consumers 1 --queue "$QUEUE" \
        --durable --autoack --duration $(( m / 100000 + 20 )) 2>/dev/null | tail -1)
      consumed=$(echo "$vjson" | jq .received)
      log "consumed $consumed"
    fi
    kill "$WARREN_PID"; wait "$WARREN_PID" 2>/dev/null || true; WARREN_PID=
    jq -n -c --argjson fill "$fill_json" --arg mode "$mode" --argjson q "$q" --argjson m "$m" \
      --argjson b "$b" --argjson s "$s" --argjson wall "$(echo "$t1 - $t0" | bc -l)" \
      --argjson rss "$rss" --argjson hwm "$hwm" --argjson disk "$disk_kb" \
      --argjson consumed "$consumed" --argjson cpu "$cpu_s" --arg cfg "${WARREN_CONFIG:-}" \
      '{messages:$fill.messages, size:$fill.size, acked:$fill.acked, segments:$fill.segments,
        disk_kb:$disk, fill_s:$fill.fill_s, mode:$mode, queues:$q, recovered:$m,
        recovered_bytes:$b, recovery_s:$s, start_to_listen_s:$wall, rss_kb:$rss,
        peak_rss_kb:$hwm, cpu_s:$cpu, config:$cfg, consumed:$consumed}' >>"$OUT.jsonl"
    log "$(tail -1 "$OUT.jsonl")"
    if [ "$VERIFY" = 1 ]; then break; fi  # the queue is empty now
  done
  rm -rf "$DATA"; DATA=
done

{
  echo "# Recovery: warrend start-up on a stored durable queue ($STAMP UTC)"
  echo
  echo "- machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)," \
       "$(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), kernel $(uname -r)"
  echo "- data dir on $(df -T "$DATA_PARENT" | awk 'NR==2 {print $1 " (" $2 ")"}');" \
       "warren $(git rev-parse --short HEAD) release build"
  echo "- one durable queue, $SIZE B bodies, delivery-mode 2, ${ACKED_PERCENT}% acked;" \
       "written by bench/recovery_fill (warren::storage), default segment_bytes (8 MiB)"
  echo "- warm: segments in the page cache; cold: after drop_caches."
  echo "  recovery s = warrend's own \"recovered ...\" line; start→listen = exec to \"amqp listening\"."
  echo
  echo "- config: ${WARREN_CONFIG:-defaults (queue_memory_bytes 64 MiB)}${WARREN_CONFIG:+: $(grep -v '^\[' "$WARREN_CONFIG" | xargs)}"
  echo "- warrend CPU s = its utime+stime when listening (almost all recovery); the machine is shared,"
  echo "  so recovery s - CPU s is mostly time spent waiting for a CPU. Load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)."
  echo
  echo "| messages | mode | on disk MiB | recovered | recovery s | warrend CPU s | start→listen s | RSS after MiB | peak RSS MiB |"
  echo "|---:|---|---:|---:|---:|---:|---:|---:|---:|"
  jq -r '"| \(.messages) | \(.mode) | \(.disk_kb/1024|round) | \(.recovered) | \(.recovery_s) | \(.cpu_s) | \(.start_to_listen_s*1000|round/1000) | \(.rss_kb/1024|round) | \(.peak_rss_kb/1024|round) |"' "$OUT.jsonl"
} >"$OUT.md"
log "wrote $OUT.md"
cat "$OUT.md"
