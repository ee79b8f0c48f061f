"""Helpers shared by the integration tests (fixtures live in conftest.py)."""
import time
import uuid

import pika


def uid(prefix="t"):
    """A unique name, so tests never collide on a shared broker."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def drain(ch, queue, n, timeout=5, ack=True):
    """Takes n messages with basic.get polling; returns (method, props, body) tuples."""
    got = []
    deadline = time.time() + timeout
    while len(got) < n and time.time() < deadline:
        m, p, b = ch.basic_get(queue, auto_ack=ack)
        if m is None:
            time.sleep(0.01)
            continue
        got.append((m, p, b))
    return got


def rss_kb(pid):
    """The resident set (VmRSS) of process `pid` in KiB."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError(f"no VmRSS for process {pid}")


def open_channel(w, confirm=False):
    """A pika connection to Warrend `w` and a channel on it (in confirm mode if asked)."""
    c = pika.BlockingConnection(pika.ConnectionParameters("127.0.0.1", w.port))
    ch = c.channel()
    if confirm:
        ch.confirm_delivery()
    return c, ch
