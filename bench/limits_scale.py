#!/usr/bin/python3
"""Resource limits at scale (issue 8): 10,000 open connections and 100,000 queues on one warrend.

  limits_scale.py --warrend build/release/src/app/warrend [--connections 10000] [--queues 100000]

Starts its own warrend on a free port (its start-up log shows the open-file limit it raised to),
opens N raw AMQP connections (pipelined handshake, one channel each) and keeps them open, then
declares Q transient queues on one channel (no-wait, one synchronous declare at the end). Prints
the broker's RSS (VmRSS) at each step and writes a Markdown summary to bench/results/. Not a
test: nothing fails because a machine is slow; it fails only if the broker refuses or dies.
"""
import argparse
import os
import resource
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "integration"))
import rawamqp as raw  # noqa: E402
from helpers import rss_kb  # noqa: E402


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pipelined_handshake():
    return (raw.PROTOCOL_HEADER +
            raw.method_frame(0, raw.CONNECTION_START_OK,
                             raw.table({"product": "limits_scale"}) + raw.shortstr("PLAIN") +
                             raw.longstr("\0guest\0guest") + raw.shortstr("en_US")) +
            raw.method_frame(0, raw.CONNECTION_TUNE_OK, b"\x07\xff\x00\x02\x00\x00\x00\x00") +
            raw.method_frame(0, raw.CONNECTION_OPEN, raw.shortstr("/") + raw.shortstr("") +
                             raw.bits(False)) +
            raw.method_frame(1, raw.CHANNEL_OPEN, raw.shortstr("")))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--warrend", required=True)
    ap.add_argument("--connections", type=int, default=10000)
    ap.add_argument("--queues", type=int, default=100000)
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results"))
    args = ap.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

    data = tempfile.mkdtemp(prefix="warren-scale-")
    port = free_port()
    log = open(os.path.join(data, "warrend.log"), "wb")
    proc = subprocess.Popen([args.warrend, "--amqp-port", str(port), "--bind", "127.0.0.1",
                             "--data-dir", data], stdout=log, stderr=log)
    rows = []
    try:
        time.sleep(1.0)
        rows.append(("started", 0, rss_kb(proc.pid)))
        hello = pipelined_handshake()
        conns = []
        t0 = time.monotonic()
        batch = 200
        for start in range(0, args.connections, batch):
            group = []
            for _ in range(min(batch, args.connections - start)):
                c = raw.RawConnection(port, timeout=30)
                c.send(hello)
                group.append(c)
            for c in group:
                c.expect(raw.CONNECTION_START, timeout=30)
                c.expect(raw.CONNECTION_TUNE, timeout=30)
                c.expect(raw.CONNECTION_OPEN_OK, timeout=30)
                c.expect(raw.CHANNEL_OPEN_OK, timeout=30)
            conns.extend(group)
        conn_secs = time.monotonic() - t0
        time.sleep(2.0)
        rows.append((f"{len(conns)} connections open", conn_secs, rss_kb(proc.pid)))

        c = conns[0]
        t0 = time.monotonic()
        chunk = []
        for i in range(args.queues):
            chunk.append(raw.method_frame(1, raw.QUEUE_DECLARE, b"\x00\x00" +
                                          raw.shortstr(f"scale-{i}") + raw.bits(
                                              False, False, False, False, True) + raw.table({})))
            if len(chunk) == 1000:
                c.send(b"".join(chunk))
                chunk = []
        c.send(b"".join(chunk))
        c.send(raw.method_frame(1, raw.QUEUE_DECLARE, raw.queue_declare("scale-last")))
        c.expect(raw.QUEUE_DECLARE_OK, timeout=600)
        queue_secs = time.monotonic() - t0
        time.sleep(2.0)
        rows.append((f"+ {args.queues} queues", queue_secs, rss_kb(proc.pid)))
        assert proc.poll() is None, "warrend died"
    finally:
        proc.terminate()
        proc.wait(60)
        log.close()
    limit_line = next((ln for ln in open(os.path.join(data, "warrend.log"), errors="replace")
                       if "open file limit" in ln), "").strip()
    stamp = time.strftime("%Y%m%d-%H%M%S")
    lines = [f"# limits_scale {stamp}", "", f"`bench/limits_scale.py --connections "
             f"{args.connections} --queues {args.queues}`; warrend log: `{limit_line}`", "",
             "| step | seconds | RSS (MiB) |", "| --- | --- | --- |"]
    for step, secs, kb in rows:
        lines.append(f"| {step} | {secs:.1f} | {kb / 1024:.1f} |")
    base = rows[0][2]
    lines += ["", f"Per connection: {(rows[1][2] - base) / max(args.connections, 1):.1f} KiB; "
              f"per queue: {(rows[2][2] - rows[1][2]) * 1024 / max(args.queues, 1):.0f} bytes."]
    text = "\n".join(lines) + "\n"
    print(text)
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, f"limits_scale-{stamp}.md"), "w") as f:
        f.write(text)


if __name__ == "__main__":
    main()
