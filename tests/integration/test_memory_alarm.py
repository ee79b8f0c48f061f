"""The memory high-water mark (RabbitMQ's vm_memory_high_watermark): above it publishers are
blocked (connection.blocked "low on memory" to clients that announced the capability, their
publishes wait unread in the socket), consumers carry on; below it they are unblocked and the
held publishes arrive."""
import time

import pika
import pytest

from conftest import Warrend, rss_measuring_env
from helpers import rss_kb, uid


def rss(pid):
    return rss_kb(pid) * 1024


def params(w):
    return pika.ConnectionParameters("127.0.0.1", w.port)


def test_tiny_mark_blocks_publishers_but_not_consumers(warrend_bin):
    w = Warrend(warrend_bin, extra_args=["--memory-high-watermark-bytes", "1"]).start()
    try:
        q = uid("q")
        other = pika.BlockingConnection(params(w))
        och = other.channel()
        och.queue_declare(q)
        pub = pika.BlockingConnection(params(w))
        blocked = []
        pub.add_on_connection_blocked_callback(lambda _c, f: blocked.append(f.method.reason))
        pch = pub.channel()
        pch.basic_publish("", q, b"held")
        deadline = time.time() + 10
        while not blocked and time.time() < deadline:
            pub.process_data_events(time_limit=0.1)
        assert blocked == ["low on memory"]
        # Not lost, not taken: the publish waits; other clients still declare, get and ack.
        assert och.queue_declare(q, passive=True).method.message_count == 0
        och.queue_declare(uid("q2"), exclusive=True)
        assert och.basic_get(q)[0] is None
        assert "memory alarm" in w.log_text()
        other.close()
    finally:
        assert w.stop() == 0


def test_alarm_clears_below_the_mark_and_held_publishes_arrive(warrend_bin):
    probe = Warrend(warrend_bin, env=rss_measuring_env()).start()
    time.sleep(0.5)
    base = rss(probe.proc.pid)
    assert probe.stop() == 0
    mark = base + 40 * 1024 * 1024
    w = Warrend(warrend_bin, extra_args=["--memory-high-watermark-bytes", str(mark)],
                env=rss_measuring_env()).start()
    try:
        q = uid("q")
        pub = pika.BlockingConnection(params(w))
        blocked, unblocked = [], []
        pub.add_on_connection_blocked_callback(lambda _c, f: blocked.append(f.method.reason))
        pub.add_on_connection_unblocked_callback(lambda _c, f: unblocked.append(True))
        pch = pub.channel()
        pch.queue_declare(q)
        body = b"m" * (1 << 20)
        sent = 0
        deadline = time.time() + 30
        while not blocked and time.time() < deadline:
            pch.basic_publish("", q, body)
            sent += 1
            pub.process_data_events(time_limit=0 if sent % 10 else 0.05)
        assert blocked == ["low on memory"], f"not blocked after {sent} MiB"
        # Drain the queue from another connection: memory goes back under the mark.
        sub = pika.BlockingConnection(params(w))
        sch = sub.channel()
        got = 0
        deadline = time.time() + 30
        while not unblocked and time.time() < deadline:
            m, _, b = sch.basic_get(q, auto_ack=True)
            if m is not None:
                got += 1
            else:
                sub.process_data_events(time_limit=0.05)
            pub.process_data_events(time_limit=0)
        assert unblocked, "not unblocked after the queue was drained"
        # Everything published, the held publishes included, arrives.
        deadline = time.time() + 30
        while got < sent and time.time() < deadline:
            m, _, b = sch.basic_get(q, auto_ack=True)
            if m is None:
                sub.process_data_events(time_limit=0.05)
                pub.process_data_events(time_limit=0)
            else:
                got += 1
        assert got == sent
        assert "memory alarm cleared" in w.log_text()
        pub.close()
        sub.close()
    finally:
        assert w.stop() == 0
