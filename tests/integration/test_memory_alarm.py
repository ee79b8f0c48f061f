"""The memory high-water mark (RabbitMQ's vm_memory_high_watermark): above it publishers are
blocked (connection.blocked "low on memory" to clients that announced the capability, their
publishes wait unread in the socket), consumers carry on, and queues page their messages out to
disk; below it publishers are unblocked and the held publishes arrive."""
import threading
import time

import pika

from conftest import Warrend, rss_measuring_env
from helpers import rss_kb, uid


def rss(pid):
    return rss_kb(pid) * 1024


def hwm(pid):
    """Peak resident memory (VmHWM) of process `pid` in bytes."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmHWM for process {pid}")


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


def test_alarm_pages_out_clears_and_a_publisher_far_beyond_the_mark_completes(warrend_bin,
                                                                            tmp_path):
    """No consumer, 200 MiB published against a mark 40 MiB above the idle broker, with a queue
    budget (1 GiB) that would never page on its own: the alarm blocks the publisher and pages
    the queue out to disk, memory falls back under the mark, the alarm clears and the held
    publishes are read. Every message is confirmed and comes back; memory never went far past
    the mark."""
    probe = Warrend(warrend_bin, env=rss_measuring_env()).start()
    time.sleep(0.5)
    base = rss(probe.proc.pid)
    assert probe.stop() == 0
    mark = base + 40 * 1024 * 1024
    cfg = tmp_path / "warren.toml"
    cfg.write_text("[storage]\nqueue_memory_bytes = 1073741824\n")
    w = Warrend(warrend_bin, extra_args=["--memory-high-watermark-bytes", str(mark),
                                         "--config", str(cfg)],
                env=rss_measuring_env()).start()
    q = uid("q")
    n = 200  # five times what fits under the mark
    body = lambda i: (b"%06d" % i) * ((1 << 20) // 6)
    blocked, unblocked, errors, confirmed = [], [], [], []

    # The publisher runs on its own thread and connection: while Warren does not read it, its
    # writes block in the socket (TCP back-pressure) until the alarm clears.
    def publish():
        try:
            pub = pika.BlockingConnection(params(w))
            pub.add_on_connection_blocked_callback(lambda _c, f: blocked.append(f.method.reason))
            pub.add_on_connection_unblocked_callback(lambda _c, f: unblocked.append(True))
            pch = pub.channel()
            pch.confirm_delivery()
            for i in range(n):
                pch.basic_publish("", q, body(i))  # returns once confirmed
                confirmed.append(i)
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
        publisher.join(180)
        assert not errors, errors
        assert len(confirmed) == n, f"only {len(confirmed)} of {n} publishes were confirmed"
        log = w.log_text()
        assert "publishers are blocked" in log, "the alarm never went on"
        assert "paged out to disk" in log
        assert blocked and set(blocked) == {"low on memory"}
        assert unblocked, "connection.unblocked never came"
        # The alarm reacts to samples: allow one sampling period of traffic above the mark.
        peak = hwm(w.proc.pid)
        assert peak < mark + 64 * 1024 * 1024, f"peak RSS {peak >> 20} MiB, mark {mark >> 20} MiB"
        assert sch.queue_declare(q, passive=True).method.message_count == n
        got = 0
        deadline = time.time() + 120
        while got < n and time.time() < deadline:
            m, _, b = sch.basic_get(q, auto_ack=True)
            if m is None:
                setup.process_data_events(time_limit=0.05)
                continue
            assert b == body(got)
            got += 1
        assert got == n
        setup.close()
    finally:
        assert w.stop() == 0
