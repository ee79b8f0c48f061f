#!/usr/bin/python3
"""How often this machine stops running a busy thread: the floor under every p99.

  stall_probe.py [--seconds 3] [--cpu N]

Spins on one CPU reading the monotonic clock and records every gap of more than 1 ms between
two reads: time the thread did not run although it never blocked (the hypervisor took the vCPU,
or the kernel ran something else there). Prints one JSON line: how many gaps, their total and
largest in ms, and the share of the time lost. On a dedicated machine with nothing else
running there are none; on the shared 2-CPU VM of bench/README.md a few per second of 1-8 ms,
which is what a message caught in one waits. Not a test: nothing here fails because a machine
is noisy.
"""
import argparse
import json
import os
import time


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--seconds", type=float, default=3.0)
    p.add_argument("--cpu", type=int, default=None, help="pin to this CPU (default: the last)")
    args = p.parse_args()
    cpu = args.cpu if args.cpu is not None else max(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cpu})
    clock = time.perf_counter
    start = last = clock()
    end = start + args.seconds
    gaps = []
    while last < end:
        now = clock()
        if now - last > 0.001:
            gaps.append(now - last)
        last = now
    total = sum(gaps)
    print(json.dumps({"cpu": cpu, "seconds": args.seconds, "gaps_over_1ms": len(gaps),
                      "lost_ms": round(total * 1e3, 1), "max_ms": round(max(gaps, default=0) * 1e3, 2),
                      "lost_share": round(total / (last - start), 4)}))


if __name__ == "__main__":
    main()
