#!/usr/bin/python3
"""Scenario 8 of the side-by-side benchmark (issue 6): footprint of idle connections and of
durable queues, for any AMQP 0-9-1 broker.

  scale.py --port P --pid BROKER_PID [--connections 1000] [--queues 10000] [--max-seconds 120]

1. Opens N connections (handshake done, one channel open each) and keeps them idle for a few
   seconds; reports the broker's RSS growth per connection (VmRSS from /proc/<pid>/status).
2. On one connection, declares Q durable queues one after the other (each declare waits for its
   declare-ok, as most applications do), then again Q with 8 declares in flight on 8 channels;
   reports declares per second and the RSS growth per queue. Deletes the queues afterwards.
   Each declare phase, and the deletes, stop at --max-seconds (a broker that handles 10 durable
   queues a second would otherwise take 17 minutes a phase); the rates and the RSS per queue
   are then over the queues it did declare, and "queues_serial" / "queues_8_in_flight" /
   "queues_deleted" say how many that was. Connections time out (10 s to connect, 60 s for a
   reply) and the connection phase reports how many it opened ("connections_opened").

Prints one JSON line. Uses Debian's python3-amqp (py-amqp). Not a test: nothing here fails
because a machine is slow.
"""
import argparse
import json
import os
import sys
import threading
import time

import amqp

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "integration"))
from helpers import rss_kb  # noqa: E402


def settle(pid, seconds=3.0):
    """RSS after the broker has had time to settle (Erlang's GC, our buffers)."""
    time.sleep(seconds)
    return rss_kb(pid)


def connect(port):
    # Timeouts, so that a broker that stops answering (RabbitMQ at its file-descriptor limit
    # leaves new connections hanging in the handshake) ends the phase instead of the run.
    c = amqp.Connection(f"127.0.0.1:{port}", userid="guest", password="guest", heartbeat=0,
                        connect_timeout=10, read_timeout=60, write_timeout=60)
    c.connect()
    return c


def idle_connections(args):
    before = settle(args.pid, 1.0)
    conns = []
    error = None
    t0 = time.monotonic()
    for _ in range(args.connections):
        try:
            c = connect(args.port)
            c.channel()
        except Exception as e:  # reported with how many were open, not hidden
            error = repr(e)
            break
        conns.append(c)
    open_s = time.monotonic() - t0
    after = settle(args.pid)
    for c in conns:
        try:
            c.close()
        except Exception:
            pass
    n = max(1, len(conns))
    return {
        "connections": args.connections,
        "connections_opened": len(conns),
        "connection_error": error,
        "connect_per_s": round(len(conns) / open_s, 1),
        "rss_before_kb": before,
        "rss_connections_kb": after,
        "rss_per_connection_kb": round((after - before) / n, 2),
    }


def declare_queues(args):
    prefix = f"scale-{int(time.time())}-"
    conn = connect(args.port)
    ch = conn.channel()
    before = settle(args.pid, 1.0)

    # One at a time: each declare waits for its declare-ok.
    t0 = time.monotonic()
    deadline = t0 + args.max_seconds
    serial = 0
    while serial < args.queues and time.monotonic() < deadline:
        ch.queue_declare(f"{prefix}s{serial}", durable=True, auto_delete=False)
        serial += 1
    serial_s = time.monotonic() - t0
    after = settle(args.pid)

    # 8 declarers in flight, each on its own connection (py-amqp is not thread-safe per
    # connection).
    workers = 8
    per = args.queues // workers
    declared = [0] * workers
    errors = []

    def declarer(w):
        try:
            c = connect(args.port)
            chw = c.channel()
            while declared[w] < per and time.monotonic() < deadline:
                chw.queue_declare(f"{prefix}p{w}-{declared[w]}", durable=True, auto_delete=False)
                declared[w] += 1
            c.close()
        except Exception as e:  # reported, not hidden
            errors.append(repr(e))

    t0 = time.monotonic()
    deadline = t0 + args.max_seconds
    threads = [threading.Thread(target=declarer, args=(w,)) for w in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    parallel_s = time.monotonic() - t0

    parallel = sum(declared)

    # Deletes, capped like the declares; a broker that keeps what is left is restarted between
    # runs by side_by_side.sh (warrend) or deletes them faster than it declared them (RabbitMQ).
    names = [f"{prefix}s{i}" for i in range(serial)]
    names += [f"{prefix}p{w}-{i}" for w in range(workers) for i in range(declared[w])]
    t0 = time.monotonic()
    deadline = t0 + args.max_seconds
    deleted = 0
    for name in names:
        if time.monotonic() >= deadline:
            break
        ch.queue_delete(name)
        deleted += 1
    delete_s = time.monotonic() - t0
    conn.close()
    return {
        "queues": args.queues,
        "queues_serial": serial,
        "queues_8_in_flight": parallel,
        "declare_serial_per_s": round(serial / serial_s, 1),
        "declare_8_in_flight_per_s": round(parallel / parallel_s, 1),
        "queues_deleted": deleted,
        "delete_serial_per_s": round(deleted / delete_s, 1),
        "rss_queues_kb": after,
        "rss_per_queue_kb": round((after - before) / max(1, serial), 2),
        "errors": errors,
    }


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--pid", type=int, required=True)
    p.add_argument("--connections", type=int, default=1000)
    p.add_argument("--queues", type=int, default=10000)
    p.add_argument("--max-seconds", type=float, default=120.0,
                   help="stop each declare phase after this long")
    args = p.parse_args()
    out = {}
    out.update(idle_connections(args))
    out.update(declare_queues(args))
    print(json.dumps(out))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
