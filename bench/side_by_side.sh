#!/usr/bin/env bash
# Side-by-side benchmark (issue 6): the same warren-perf scenario against RabbitMQ and against
# warrend, alternately A B A B ..., recording throughput, latency, broker CPU per message
# (utime+stime from /proc/<pid>/stat) and the broker's peak RSS (VmRSS sampled every 0.2 s).
# Writes bench/results/side-by-side-<stamp>.{md,jsonl,png} and bench/results/latest.md.
#
# Usage: bench/side_by_side.sh [scenario ...]     (default: 1 2 3 4 5 6 7a 7b 7c 8)
#        scenario 4r (4 at 5,000 msg/s: confirm latency) runs only when named.
# Environment: RUNS (3), DURATION seconds (10), RABBIT_PORT (5672), WARREN_PORT (5690),
#              WARRENPERF_ARGS (extra warren-perf flags, e.g. "--threads 2"),
#              SCALE_CONNECTIONS (1000), SCALE_QUEUES (10000), SCALE_MAX_SECONDS (120: each
#              declare phase stops there; RabbitMQ 3.10's 10,000 serial durable declares once
#              took over 15 minutes here): scenario 8 (bench/scale.py),
#              WARREN_DATA_PARENT (build/bench-data: where warrend's fresh data dir is made; keep
#              it on the real disk, not tmpfs, or scenario 4's fdatasync costs nothing).
# Needs root (or sudo) only to install rabbitmq-server / gnuplot-nox when they are missing.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
RUNS=${RUNS:-3}
DURATION=${DURATION:-10}
RABBIT_PORT=${RABBIT_PORT:-5672}
WARREN_PORT=${WARREN_PORT:-5690}
WARREN_DATA_PARENT=${WARREN_DATA_PARENT:-$ROOT/build/bench-data}
WARRENPERF_ARGS=${WARRENPERF_ARGS:-}
SCALE_CONNECTIONS=${SCALE_CONNECTIONS:-1000}
SCALE_QUEUES=${SCALE_QUEUES:-10000}
SCALE_MAX_SECONDS=${SCALE_MAX_SECONDS:-120}
PERF=$ROOT/build/release/tools/perf/warren-perf
WARREND=$ROOT/build/release/src/app/warrend
SCENARIOS=("$@")
[ ${#SCENARIOS[@]} -gt 0 ] || SCENARIOS=(1 2 3 4 5 6 7a 7b 7c 8)

declare -A ARGS=(
  [1]="--producers 1 --consumers 1 --size 16 --autoack"
  [2]="--producers 1 --consumers 1 --size 16 --prefetch 1000 --multi-ack 100"
  [3]="--producers 1 --consumers 0 --size 16"
  [4]="--producers 1 --consumers 1 --size 1024 --persistent --durable --confirm 1000 --prefetch 1000 --multi-ack 100"
  [5]="--producers 1 --consumers 10 --fanout 10 --size 16 --autoack"
  [6]="--producers 4 --consumers 4 --queues 4 --size 1024 --autoack"
  [7a]="--producers 1 --consumers 1 --size 16 --autoack --rate 10000"
  [7b]="--producers 1 --consumers 1 --size 16 --autoack --rate 50000"
  [7c]="--producers 1 --consumers 1 --size 16 --autoack --rate 100000"
  [4r]="--producers 1 --consumers 1 --size 1024 --persistent --durable --confirm 1000 --prefetch 1000 --multi-ack 100 --rate 5000"
  [8]="(bench/scale.py)"
)
declare -A TITLE=(
  [1]="1 producer / 1 consumer, 16 B, autoack"
  [2]="1/1, 16 B, manual ack, prefetch 1000, multi-ack 100"
  [3]="publish only, 16 B"
  [4]="persistent, durable queue, confirm window 1000, 1 KiB, manual ack"
  [5]="fanout to 10 queues, 1 producer, 10 consumers, 16 B"
  [6]="4 producers / 4 consumers over 4 queues, 1 KiB"
  [7a]="latency at a fixed 10,000 msg/s, 16 B, autoack"
  [7b]="latency at a fixed 50,000 msg/s, 16 B, autoack"
  [7c]="latency at a fixed 100,000 msg/s, 16 B, autoack"
  [4r]="as 4, at a fixed 5,000 msg/s (confirm latency)"
  [8]="1,000 idle connections; 10,000 durable queues"
)

log() { echo "[bench] $*" >&2; }
sudo_() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

[ -x "$PERF" ] && [ -x "$WARREND" ] || { log "build first: make build"; exit 1; }
if ! command -v rabbitmq-server >/dev/null; then
  log "installing Debian's rabbitmq-server"
  sudo_ env DEBIAN_FRONTEND=noninteractive apt-get install -y rabbitmq-server >/dev/null
fi
if ! command -v gnuplot >/dev/null; then
  sudo_ env DEBIAN_FRONTEND=noninteractive apt-get install -y gnuplot-nox >/dev/null ||
    log "no gnuplot: the table is written, the plot is skipped"
fi

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# --- RabbitMQ: reuse one that is already listening, else start one and stop it at the end.
STARTED_RABBIT=0
if ! port_open "$RABBIT_PORT"; then
  log "starting rabbitmq-server"
  # With an open-file limit like the one Debian's systemd unit gives it (LimitNOFILE=65536):
  # /usr/sbin/rabbitmq-server switches to the rabbitmq user through su, whose PAM session sets
  # the soft limit back to 1024, and then RabbitMQ stalls new connections at about 830. So as
  # root it is started as that user directly (setpriv keeps the limit raised here).
  if [ "$(id -u)" = 0 ] && id rabbitmq >/dev/null 2>&1 && command -v setpriv >/dev/null; then
    (ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
     cd /var/lib/rabbitmq && RABBITMQ_NODE_PORT=$RABBIT_PORT exec setpriv --reuid=rabbitmq \
       --regid=rabbitmq --init-groups env HOME=/var/lib/rabbitmq \
       /usr/lib/rabbitmq/bin/rabbitmq-server) >/tmp/warren-bench-rabbit.log 2>&1 &
  else
    RABBITMQ_NODE_PORT=$RABBIT_PORT rabbitmq-server >/tmp/warren-bench-rabbit.log 2>&1 &
  fi
  STARTED_RABBIT=1
  rabbitmqctl await_startup >/dev/null 2>&1 || true
  for _ in $(seq 60); do port_open "$RABBIT_PORT" && break; sleep 1; done
fi
RABBIT_PID=$(pgrep -f 'beam.smp.*rabbit' | head -1 || true)
[ -n "$RABBIT_PID" ] || { log "cannot find RabbitMQ's beam.smp"; exit 1; }
RABBIT_NOFILE=$(awk '/^Max open files/ {print $4}' "/proc/$RABBIT_PID/limits")
if [[ " ${SCENARIOS[*]} " == *" 8 "* ]] && [ "${RABBIT_NOFILE:-0}" -lt $((SCALE_CONNECTIONS + 1024)) ]; then
  log "warning: RabbitMQ (pid $RABBIT_PID) may open $RABBIT_NOFILE files: scenario 8's" \
      "$SCALE_CONNECTIONS connections will stall near $((RABBIT_NOFILE * 8 / 10)); restart it" \
      "with a higher limit (this script, starting it, does; Debian's systemd unit sets 65536)"
fi
RABBIT_VERSION=$(rabbitmqctl version 2>/dev/null || echo unknown)

# --- warrend: a fresh process (and data dir) per run, so one run's memory is not the next's.
WARREN_PID=
mkdir -p "$WARREN_DATA_PARENT"
WARREN_DATA=$(mktemp -d "$WARREN_DATA_PARENT/warren-bench-data.XXXXXX")
WARREN_DATA_FS=$(df -T "$WARREN_DATA" | awk 'NR==2 {print $1 " (" $2 ")"}')
case "$WARREN_DATA_FS" in *tmpfs*) log "warning: $WARREN_DATA is on tmpfs; fdatasync is free there";; esac
start_warren() {
  rm -rf "$WARREN_DATA" && mkdir -p "$WARREN_DATA"
  "$WARREND" --amqp-port "$WARREN_PORT" --data-dir "$WARREN_DATA" --log-level warning \
    >>/tmp/warren-bench-warrend.log 2>&1 &
  WARREN_PID=$!
  for _ in $(seq 50); do port_open "$WARREN_PORT" && return 0; sleep 0.1; done
  log "warrend did not start (see /tmp/warren-bench-warrend.log)"
  exit 1
}
stop_warren() {
  [ -n "$WARREN_PID" ] || return 0
  kill "$WARREN_PID" 2>/dev/null || true
  wait "$WARREN_PID" 2>/dev/null || true
  WARREN_PID=
}
cleanup() {
  stop_warren
  rm -rf "$WARREN_DATA"
  if [ "$STARTED_RABBIT" = 1 ]; then rabbitmqctl stop >/dev/null 2>&1 || true; fi
}
trap cleanup EXIT

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }

STAMP=$(date -u +%Y%m%d-%H%M%S)
OUT=$ROOT/bench/results/side-by-side-$STAMP
mkdir -p "$ROOT/bench/results"
: >"$OUT.jsonl"
HZ=$(getconf CLK_TCK)
# The disk's own fdatasync latency, alone, before the series: no confirm can beat it.
FSYNC_PROBE=$(/usr/bin/python3 "$ROOT/bench/fsync_probe.py" "$WARREN_DATA_PARENT" 2>/dev/null || echo '{}')
log "fdatasync probe: $FSYNC_PROBE"
# How often the machine stops a busy thread for more than 1 ms (hypervisor, other load).
STALL_PROBE=$(/usr/bin/python3 "$ROOT/bench/stall_probe.py" 2>/dev/null || echo '{}')
log "stall probe: $STALL_PROBE"

# run_one <broker name> <pid> <port> <scenario> <run #>: appends one JSON line to $OUT.jsonl.
# warren-perf samples the broker's CPU and RSS itself (--broker-pid): a shell loop forking a
# reader every 0.2 s added millisecond stalls to the latency scenarios on a 2-core machine.
run_one() {
  local name=$1 pid=$2 port=$3 sc=$4 run=$5
  local json
  if [ "$sc" = 8 ]; then
    # scale.py measures RSS and rates itself; its JSON gets the same CPU and RSS fields here.
    local before rss_base rss peak=0 after
    before=$(cpu_ticks "$pid")
    rss_base=$(rss_kb "$pid")
    /usr/bin/python3 "$ROOT/bench/scale.py" --port "$port" --pid "$pid" \
      --connections "$SCALE_CONNECTIONS" --queues "$SCALE_QUEUES" \
      --max-seconds "$SCALE_MAX_SECONDS" >/tmp/warren-bench-run.log 2>&1 &
    local scale_pid=$!
    while kill -0 "$scale_pid" 2>/dev/null; do
      rss=$(rss_kb "$pid"); [ "${rss:-0}" -gt "$peak" ] && peak=$rss
      sleep 0.2
    done
    wait "$scale_pid" || log "$name scenario 8 run $run: scale.py exited non-zero"
    after=$(cpu_ticks "$pid")
    json=$(tail -1 /tmp/warren-bench-run.log | jq -c \
      --argjson cpu_s "$(echo "($after - $before) / $HZ" | bc -l)" \
      --argjson rss_base "${rss_base:-0}" --argjson rss_peak "$peak" \
      '. + {broker_cpu_s:$cpu_s, rss_base_kb:$rss_base, rss_peak_kb:$rss_peak}' 2>/dev/null || true)
  else
    "$PERF" --uri "127.0.0.1:$port" ${ARGS[$sc]} --duration "$DURATION" --broker-pid "$pid" \
      $WARRENPERF_ARGS >/tmp/warren-bench-run.log 2>&1 ||
      log "$name scenario $sc run $run: warren-perf exited non-zero"
    json=$(tail -1 /tmp/warren-bench-run.log)
  fi
  if [ -z "$json" ] || ! echo "$json" | jq -e . >/dev/null 2>&1; then
    log "$name scenario $sc run $run: no result; see below"; tail -5 /tmp/warren-bench-run.log >&2
    json='{"sent":0,"received":0,"send_rate":0,"recv_rate":0,"lat_p50_us":0,"lat_p99_us":0,"confirm_p50_us":0,"confirm_p99_us":0,"error":true}'
  fi
  echo "$json" | jq -c --arg b "$name" --arg sc "$sc" --argjson run "$run" \
    '. + {broker:$b, scenario:$sc, run:$run}' >>"$OUT.jsonl"
  log "$name scenario $sc run $run: $(tail -1 "$OUT.jsonl" | jq -c '{send_rate,recv_rate,lat_p99_us,broker_cpu_us_per_msg,rss_peak_kb}')"
}

for sc in "${SCENARIOS[@]}"; do
  [ -n "${ARGS[$sc]:-}" ] || { log "unknown scenario $sc"; exit 1; }
  for run in $(seq "$RUNS"); do
    run_one rabbitmq "$RABBIT_PID" "$RABBIT_PORT" "$sc" "$run"          # A
    start_warren
    run_one warren "$WARREN_PID" "$WARREN_PORT" "$sc" "$run"            # B
    stop_warren
  done
done

# --- Medians and ratios (warren / rabbitmq; for CPU and RSS lower is better).
{
  echo "# Side by side: warren vs RabbitMQ ($STAMP UTC)"
  echo
  echo "- machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)," \
       "$(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), kernel $(uname -r)"
  echo "- RabbitMQ $RABBIT_VERSION (Debian package, default config, port $RABBIT_PORT);" \
       "warren $(git rev-parse --short HEAD) release build (port $WARREN_PORT," \
       "data dir on $WARREN_DATA_FS)"
  echo "- stalls: $(echo "$STALL_PROBE" | jq -r 'if .gaps_over_1ms then "a thread spinning on CPU \(.cpu) for \(.seconds) s before the series (bench/stall_probe.py) lost \(.gaps_over_1ms) gaps of over 1 ms, \(.lost_ms) ms in all, the longest \(.max_ms) ms" elif .cpu then "none over 1 ms in \(.seconds) s (bench/stall_probe.py)" else "stall probe failed" end')"
  echo "- RabbitMQ's open-file limit: $RABBIT_NOFILE"
  echo "- disk: $(echo "$FSYNC_PROBE" | jq -r 'if .fdatasyncs then "fdatasync after a \(.bytes_each)-byte append, alone (bench/fsync_probe.py): p50 \(.p50_us) µs, p99 \(.p99_us) µs, p99.9 \(.p999_us) µs, max \(.max_us) µs over \(.fdatasyncs)" else "fdatasync probe failed" end')"
  echo "- $RUNS runs per broker, alternating A B A B, $DURATION s each; the generator, both brokers"
  echo "  and the machine are shared. Medians. RabbitMQ runs for the whole series;"
  echo "  warrend is restarted for every run. Throughput is the consume rate (publish rate for"
  echo "  publish-only scenario 3). CPU per message = broker utime+stime / max(sent, received)."
  echo
  jq -s -r --argjson hz "$HZ" '
    def median: sort | if length == 0 then 0 elif length % 2 == 1 then .[length/2|floor]
                       else (.[length/2-1] + .[length/2]) / 2 end;
    def r(x): (x * 10 | round) / 10;
    def ratio(a; b): if b > 0 then r(a / b) else "-" end;
    map(select(.scenario != "8")) | group_by(.scenario)[] as $g
    | ($g | map(select(.broker=="rabbitmq"))) as $a | ($g | map(select(.broker=="warren"))) as $b
    | ($g[0].scenario) as $sc
    | (if $sc == "3" then "send_rate" else "recv_rate" end) as $m
    | [ $sc,
        ($a|map(.[$m])|median|round), ($b|map(.[$m])|median|round),
        ratio(($b|map(.[$m])|median); ($a|map(.[$m])|median)),
        r($a|map(.lat_p50_us)|median), r($b|map(.lat_p50_us)|median),
        r($a|map(.lat_p99_us)|median), r($b|map(.lat_p99_us)|median),
        r($a|map(.confirm_p99_us)|median), r($b|map(.confirm_p99_us)|median),
        (($a|map(.broker_cpu_us_per_msg)|median)*100|round/100),
        (($b|map(.broker_cpu_us_per_msg)|median)*100|round/100),
        (($a|map(.rss_peak_kb)|median)/1024|round), (($b|map(.rss_peak_kb)|median)/1024|round),
        ([$g[] | select(.error == true)] | length) ]
    | @tsv' "$OUT.jsonl" |
  awk -F'\t' -v titles="$(for s in "${SCENARIOS[@]}"; do printf '%s=%s;' "$s" "${TITLE[$s]}"; done)" '
    BEGIN {
      n = split(titles, t, ";"); for (i = 1; i <= n; i++) { split(t[i], kv, "="); T[kv[1]] = kv[2] }
      print "| # | scenario | msg/s RabbitMQ | msg/s warren | ratio | p50 µs R / W | p99 µs R / W | confirm p99 µs R / W | CPU µs/msg R / W | peak RSS MiB R / W | failed runs |"
      print "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    }
    { printf "| %s | %s | %s | %s | %s× | %s / %s | %s / %s | %s / %s | %s / %s | %s / %s | %s |\n",
        $1, T[$1], $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15 }'
  if jq -e -s 'any(.scenario == "8")' "$OUT.jsonl" >/dev/null; then
    echo
    echo "Scenario 8 (bench/scale.py): RSS growth per idle connection (each with one channel"
    echo "open) and per durable queue; durable queue.declare rate, one at a time and 8 in flight."
    echo
    echo "| broker | KiB / idle connection | KiB / durable queue | declares/s serial | declares/s 8 in flight | deletes/s | queues declared serial / 8 in flight (of $SCALE_QUEUES, ${SCALE_MAX_SECONDS} s cap) | connections opened (of $SCALE_CONNECTIONS) |"
    echo "|---|---:|---:|---:|---:|---:|---:|---:|"
    jq -s -r '
      def median: sort | if length == 0 then 0 else .[length/2|floor] end;
      map(select(.scenario == "8")) | group_by(.broker)[] as $g
      | "| \($g[0].broker) | \($g|map(.rss_per_connection_kb)|median) | \($g|map(.rss_per_queue_kb)|median) | \($g|map(.declare_serial_per_s)|median) | \($g|map(.declare_8_in_flight_per_s)|median) | \($g|map(.delete_serial_per_s)|median) | \($g|map(.queues_serial // .queues)|median) / \($g|map(.queues_8_in_flight // .queues)|median) | \($g|map(.connections_opened // .connections)|median) |"' \
      "$OUT.jsonl"
  fi
  echo
  echo "Raw runs: \`$(basename "$OUT").jsonl\` (one warren-perf or scale.py JSON line per run)."
} >"$OUT.md"
cp "$OUT.md" "$ROOT/bench/results/latest.md"

if command -v gnuplot >/dev/null; then
  jq -s -r 'map(select(.scenario != "8")) | group_by(.scenario)[] | . as $g | ($g[0].scenario) as $sc
    | (if $sc == "3" then "send_rate" else "recv_rate" end) as $m
    | def median: sort | .[length/2|floor];
    "\($sc) \($g|map(select(.broker=="rabbitmq"))|map(.[$m])|median) \($g|map(select(.broker=="warren"))|map(.[$m])|median)"' \
    "$OUT.jsonl" >"$OUT.dat"
  gnuplot <<GP || log "gnuplot failed; no plot"
set terminal png size 900,500 noenhanced
set output "$OUT.png"
set title "warren vs RabbitMQ: median throughput per scenario (msg/s, log scale)"
set style data histograms
set style fill solid 0.8
set logscale y
set xlabel "scenario"
set key top right
plot "$OUT.dat" using 2:xtic(1) title "RabbitMQ $RABBIT_VERSION", "" using 3 title "warren"
GP
  rm -f "$OUT.dat"
  [ -f "$OUT.png" ] && cp "$OUT.png" "$ROOT/bench/results/latest.png"
fi
log "wrote $OUT.md"
cat "$OUT.md"
