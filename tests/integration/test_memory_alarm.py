"""The memory high-water mark (RabbitMQ's vm_memory_high_watermark): above it publishers are
blocked (connection.blocked "low on memory" to clients that announced the capability, their
publishes wait unread in the socket), consumers carry on; below it they are unblocked and the
held publishes arrive."""
import threading
import time

import pika

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
    q = uid("q")
    n = 120  # 120 MiB: three times what fits under the mark
    blocked, unblocked, errors = [], [], []

    # The publisher runs on its own thread and connection: once Warren stops reading it, its
    # writes block in the socket (TCP back-pressure) until the alarm clears.
    def publish():
        try:
            pub = pika.BlockingConnection(params(w))
            pub.add_on_connection_blocked_callback(lambda _c, f: blocked.append(f.method.reason))
            pub.add_on_connection_unblocked_callback(lambda _c, f: unblocked.append(True))
            pch = pub.channel()
            pch.confirm_delivery()
            for _ in range(n):
                pch.basic_publish("", q, b"m" * (1 << 20))  # returns once confirmed
            pub.process_data_events(time_limit=0.5)
            pub.close()
        except Exception as e:  # reported by the main thread
            errors.append(e)

    try:
        setup = pika.BlockingConnection(params(w))
        sch = setup.channel()
        sch.queue_declare(q)
        publisher = threading.Thread(target=publish, daemon=True)
        publisher.start()
        # Blocked: the queue stops growing well short of n, and Warren says why.
        deadline = time.time() + 60
        while "publishers are blocked" not in w.log_text() and time.time() < deadline:
            time.sleep(0.1)
        assert "publishers are blocked" in w.log_text(), "the alarm never went on"
        time.sleep(1.5)
        held_at = sch.queue_declare(q, passive=True).method.message_count
        time.sleep(1.5)
        assert sch.queue_declare(q, passive=True).method.message_count == held_at < n
        # Drain from another connection: memory goes back under the mark, the held publishes
        # are read, and every one of them arrives.
        got = 0
        deadline = time.time() + 120
        while got < n and time.time() < deadline:
            m, _, _ = sch.basic_get(q, auto_ack=True)
            if m is None:
                setup.process_data_events(time_limit=0.05)
            else:
                got += 1
        publisher.join(30)
        assert not errors, errors
        assert got == n
        assert blocked == ["low on memory"]
        assert unblocked, "connection.unblocked never came"
        setup.close()
    finally:
        assert w.stop() == 0
