#!/usr/bin/env bash
# Backlog larger than the memory budget (issue 4): publish N persistent 1 KiB messages with
# confirms into one durable queue with no consumer, then consume them all, sampling warrend's
# RSS and the queue's segment files every second. Checks that RSS stays bounded while the
# backlog is far larger than storage.queue_memory_bytes, and that the segments are deleted once
# everything is acked (the tail segment is always kept: docs/formats/segment-v1.md).
#
# Usage: bench/backlog.sh
# Environment: MESSAGES (5000000), SIZE (1024), WARREN_PORT (5692),
#              DATA_PARENT (build/bench-data; real disk), KEEP_FREE_GB (20: refuse to start if
#              the backlog would leave less free), WARREN_CONFIG (optional TOML for --config).
# Writes bench/results/backlog-<stamp>.{md,tsv,png}; the data dir is deleted at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
MESSAGES=${MESSAGES:-5000000}
SIZE=${SIZE:-1024}
WARREN_PORT=${WARREN_PORT:-5692}
DATA_PARENT=${DATA_PARENT:-$ROOT/build/bench-data}
KEEP_FREE_GB=${KEEP_FREE_GB:-20}
WARREN_CONFIG=${WARREN_CONFIG:-}
WARREND=$ROOT/build/release/src/app/warrend
PERF=$ROOT/build/release/tools/perf/warren-perf
QUEUE=backlog-bench

log() { echo "[backlog] $*" >&2; }
[ -x "$WARREND" ] && [ -x "$PERF" ] || { log "build first"; exit 1; }
mkdir -p "$DATA_PARENT" "$ROOT/bench/results"
need_kb=$(( MESSAGES * (SIZE + 100) / 1024 ))
avail_kb=$(df --output=avail -k "$DATA_PARENT" | tail -1)
if [ $(( avail_kb - need_kb )) -lt $(( KEEP_FREE_GB * 1024 * 1024 )) ]; then
  log "not enough disk: need ~$((need_kb / 1048576)) GiB, $((avail_kb / 1048576)) GiB free, keep $KEEP_FREE_GB GiB"
  exit 1
fi

STAMP=$(date -u +%Y%m%d-%H%M%S)
OUT=$ROOT/bench/results/backlog-$STAMP
DATA=$DATA_PARENT/backlog
LOGF=$DATA_PARENT/backlog-warrend.log
rm -rf "$DATA"
WARREN_PID= SAMPLER_PID= PERF_PID=
cleanup() {
  for p in $PERF_PID $SAMPLER_PID $WARREN_PID; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  rm -rf "$DATA"
}
trap cleanup EXIT

"$WARREND" --amqp-port "$WARREN_PORT" --data-dir "$DATA" --log-level info \
  ${WARREN_CONFIG:+--config "$WARREN_CONFIG"} >"$LOGF" 2>&1 &
WARREN_PID=$!
until grep -q "amqp listening" "$LOGF"; do
  kill -0 "$WARREN_PID" || { cat "$LOGF" >&2; exit 1; }
  sleep 0.05
done

PHASE_FILE=$DATA_PARENT/backlog-phase
echo publish >"$PHASE_FILE"
T0=$(date +%s.%N)
# Sampler: seconds since start, phase, VmRSS KiB, VmHWM KiB, segment files, segment bytes.
echo -e "t_s\tphase\trss_kb\thwm_kb\tsegments\tseg_bytes" >"$OUT.tsv"
(
  while kill -0 "$WARREN_PID" 2>/dev/null; do
    now=$(date +%s.%N)
    rss=$(awk '$1 == "VmRSS:" {print $2}' "/proc/$WARREN_PID/status" 2>/dev/null || echo 0)
    hwm=$(awk '$1 == "VmHWM:" {print $2}' "/proc/$WARREN_PID/status" 2>/dev/null || echo 0)
    read -r segs bytes < <(find "$DATA/queues" -name '*.seg' -printf '%s\n' 2>/dev/null |
      awk '{n++; b += $1} END {printf "%d %.0f\n", n, b}')
    printf '%.1f\t%s\t%s\t%s\t%s\t%s\n' "$(echo "$now - $T0" | bc -l)" "$(cat "$PHASE_FILE")" \
      "$rss" "$hwm" "$segs" "$bytes" >>"$OUT.tsv"
    sleep 1
  done
) &
SAMPLER_PID=$!

log "publishing $MESSAGES x $SIZE B persistent, confirms 1000, into durable queue $QUEUE"
"$PERF" --uri "127.0.0.1:$WARREN_PORT" --producers 1 --consumers 0 --queue "$QUEUE" --durable \
  --persistent --confirm 1000 --size "$SIZE" --pmessages "$MESSAGES" --duration 0 \
  >"$DATA_PARENT/backlog-publish.log" 2>&1
PUB_JSON=$(tail -1 "$DATA_PARENT/backlog-publish.log")
log "publish: $PUB_JSON"
AFTER_PUB=$(tail -1 "$OUT.tsv")

echo consume >"$PHASE_FILE"
log "consuming (prefetch 1000, multi-ack 100)"
"$PERF" --uri "127.0.0.1:$WARREN_PORT" --producers 0 --consumers 1 --queue "$QUEUE" --durable \
  --prefetch 1000 --multi-ack 100 --size "$SIZE" --duration 100000 \
  >"$DATA_PARENT/backlog-consume.log" 2>&1 &
PERF_PID=$!
# Stop the consumer when three per-second lines in a row received nothing after a start.
zeros=0 started=0 seen=0
while kill -0 "$PERF_PID" 2>/dev/null; do
  sleep 1
  lines=$(grep -c '^time' "$DATA_PARENT/backlog-consume.log" || true)
  [ "$lines" -gt "$seen" ] || continue
  seen=$lines
  r=$(grep '^time' "$DATA_PARENT/backlog-consume.log" | tail -1 | sed -E 's/.*received +([0-9.]+).*/\1/')
  # (Any nonzero line counts as the start: two lines can arrive between checks.)
  grep -q '^time.*received *[1-9]' "$DATA_PARENT/backlog-consume.log" && started=1
  if [ "${r%.*}" -gt 0 ]; then zeros=0; else zeros=$((zeros + 1)); fi
  if [ "$started" = 1 ] && [ "$zeros" -ge 3 ]; then kill -INT "$PERF_PID"; fi
done
wait "$PERF_PID" || true; PERF_PID=
CON_JSON=$(tail -1 "$DATA_PARENT/backlog-consume.log")
log "consume: $CON_JSON"
echo idle >"$PHASE_FILE"
sleep 3
AFTER_CON=$(tail -1 "$OUT.tsv")
SEGS_LEFT=$(find "$DATA/queues" -name '*.seg' | wc -l)
SEG_BYTES_LEFT=$(find "$DATA/queues" -name '*.seg' -printf '%s\n' | awk '{b += $1} END {printf "%.0f", b}')
kill "$SAMPLER_PID" 2>/dev/null || true; wait "$SAMPLER_PID" 2>/dev/null || true; SAMPLER_PID=
kill "$WARREN_PID"; wait "$WARREN_PID" || true; WARREN_PID=

peak_pub=$(awk -F'\t' '$2 == "publish" && $3 > m {m = $3} END {print m+0}' "$OUT.tsv")
peak_con=$(awk -F'\t' '$2 == "consume" && $3 > m {m = $3} END {print m+0}' "$OUT.tsv")
# (mawk prints integers above 2^31 as %.6g and caps %d, so keep big numbers in %.0f / MiB.)
max_seg_mib=$(awk -F'\t' 'NR > 1 && $6 + 0 > m {m = $6 + 0} END {printf "%.0f", m / 1048576}' "$OUT.tsv")
{
  echo "# Backlog beyond the memory budget ($STAMP UTC)"
  echo
  echo "- machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)," \
       "$(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), kernel $(uname -r)"
  echo "- data dir on $(df -T "$DATA_PARENT" | awk 'NR==2 {print $1 " (" $2 ")"}');" \
       "warren $(git rev-parse --short HEAD) release build; config: ${WARREN_CONFIG:-defaults (queue_memory_bytes 64 MiB, segment_bytes 8 MiB)}"
  echo "- publish: \`warren-perf --producers 1 --consumers 0 --queue $QUEUE --durable --persistent --confirm 1000 --size $SIZE --pmessages $MESSAGES --duration 0\`"
  echo "- consume: \`warren-perf --producers 0 --consumers 1 --queue $QUEUE --durable --prefetch 1000 --multi-ack 100\` (stopped after 3 s with no deliveries)"
  echo
  echo "| | value |"
  echo "|---|---:|"
  echo "| published (confirmed) | $(echo "$PUB_JSON" | jq .confirmed) in $(echo "$PUB_JSON" | jq .duration_s) s ($(echo "$PUB_JSON" | jq '.confirm_rate|round') msg/s) |"
  echo "| largest segment total on disk | $max_seg_mib MiB |"
  echo "| peak RSS while publishing | $(( peak_pub / 1024 )) MiB |"
  echo "| RSS when the backlog was complete | $(( $(echo "$AFTER_PUB" | cut -f3) / 1024 )) MiB |"
  echo "| consumed | $(echo "$CON_JSON" | jq .received) ($(echo "$CON_JSON" | jq '.recv_rate|round') msg/s over the run incl. the idle tail) |"
  echo "| peak RSS while consuming | $(( peak_con / 1024 )) MiB |"
  echo "| RSS after consuming | $(( $(echo "$AFTER_CON" | cut -f3) / 1024 )) MiB |"
  echo "| segment files left after consuming | $SEGS_LEFT ($SEG_BYTES_LEFT bytes) |"
  echo
  echo "RSS over time (every 10th one-second sample; all in \`$(basename "$OUT").tsv\`):"
  echo
  echo "| t s | phase | RSS MiB | segments | segment GiB |"
  echo "|---:|---|---:|---:|---:|"
  awk -F'\t' 'NR > 1 && (NR - 2) % 10 == 0 {printf "| %s | %s | %d | %d | %.2f |\n", $1, $2, $3/1024, $5, $6/1073741824}' "$OUT.tsv"
} >"$OUT.md"
if command -v gnuplot >/dev/null; then
  gnuplot <<GP || log "gnuplot failed"
set terminal png size 900,500 noenhanced
set output "$OUT.png"
set title "warrend RSS and segment bytes: $MESSAGES x $SIZE B persistent backlog, then consumed"
set xlabel "seconds"
set ylabel "RSS MiB"
set y2label "segment files GiB"
set y2tics
set key top left
plot "$OUT.tsv" every ::1 using 1:(\$3/1024) with lines title "RSS (MiB)", \
     "" every ::1 using 1:(\$6/1073741824) axes x1y2 with lines title "segment files (GiB)"
GP
fi
log "wrote $OUT.md"
cat "$OUT.md" | head -20
