#!/usr/bin/python3
"""How fast this machine's disk makes an append durable: the floor under every confirm latency.

  fsync_probe.py DIR [--seconds 3] [--size 5200]

Appends SIZE bytes to a fresh file in DIR and fdatasyncs it, again and again for SECONDS (one
thread, nothing else running), then prints one JSON line with the count and the p50 / p99 /
p99.9 / max of the fdatasync durations in microseconds. 5,200 bytes is about what one group
commit covers in scenario 4r (5,000 msg/s of 1 KiB, about 1,000 fdatasyncs a second). The file
is removed at the end. Not a test: nothing here fails because a disk is slow.
"""
import argparse
import json
import os
import time


def main():
    p = argparse.ArgumentParser()
    p.add_argument("dir")
    p.add_argument("--seconds", type=float, default=3.0)
    p.add_argument("--size", type=int, default=5200)
    args = p.parse_args()
    path = os.path.join(args.dir, f"fsync-probe-{os.getpid()}.tmp")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    buf = b"\x5a" * args.size
    took = []
    try:
        end = time.monotonic() + args.seconds
        while time.monotonic() < end:
            os.write(fd, buf)
            t = time.perf_counter()
            os.fdatasync(fd)
            took.append(time.perf_counter() - t)
    finally:
        os.close(fd)
        os.unlink(path)
    took.sort()
    n = len(took)

    def q(f):
        return round(took[min(n - 1, int(n * f))] * 1e6, 1)

    print(json.dumps({"fdatasyncs": n, "bytes_each": args.size, "p50_us": q(0.5), "p99_us": q(0.99),
                      "p999_us": q(0.999), "max_us": round(took[-1] * 1e6, 1)}))


if __name__ == "__main__":
    main()
