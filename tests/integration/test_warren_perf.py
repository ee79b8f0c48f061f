"""warren-perf (tools/perf) against the real warrend: its broker sampling (--broker-pid) and its
per-confirm log (--confirm-log), which bench/side_by_side.sh and bench/confirm_tail.py read."""
import csv
import json
import os
import subprocess
import tempfile


def test_confirm_log_and_broker_sampling(warrend, perf_bin):
    # At 5,000 msg/s for a second: long enough for the broker's CPU to count in clock ticks
    # (10 ms) and for a few RSS samples (every 100 ms).
    messages = 5000
    log = os.path.join(tempfile.mkdtemp(prefix="warren-perf-"), "confirms.csv")
    r = subprocess.run(
        [perf_bin, "--uri", f"127.0.0.1:{warrend.port}", "--producers", "1", "--consumers", "1",
         "--size", "100", "--persistent", "--durable", "--confirm", "200", "--prefetch", "200",
         "--multi-ack", "10", "--rate", "5000", "--pmessages", str(messages),
         "--duration", "0",
         "--confirm-log", log, "--broker-pid", str(warrend.proc.pid)],
        capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    summary = json.loads(r.stdout.strip().splitlines()[-1])
    assert summary["confirmed"] == messages
    # --broker-pid: the broker's CPU and RSS, read from /proc by warren-perf itself.
    assert summary["broker_cpu_s"] > 0
    assert summary["rss_peak_kb"] >= summary["rss_base_kb"] > 0

    with open(log) as f:
        rows = list(csv.DictReader(f))
    assert rows, "no confirm logged"
    assert sum(int(row["count"]) for row in rows) == messages
    for row in rows:
        oldest, newest, at = (int(row[k]) for k in ("oldest_sent_ns", "newest_sent_ns", "at_ns"))
        assert 0 < oldest <= newest <= at, row
    # Confirms arrive in publish order: each one covers publishes after the previous one's.
    for prev, row in zip(rows, rows[1:]):
        assert int(row["oldest_sent_ns"]) >= int(prev["newest_sent_ns"])
        assert int(row["at_ns"]) >= int(prev["at_ns"])
