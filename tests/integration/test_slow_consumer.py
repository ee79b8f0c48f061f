"""A consumer whose peer stops reading its socket does not make Warren buffer without bound.

Above limits.write_buffer_bytes of unwritten output a connection's consumers get no more
deliveries: messages wait in the queue (or go to other consumers) and flow again once the peer
reads. Memory is measured as the broker process's resident set (/proc/PID/status).
"""
import socket
import threading
import time

import pika
import pytest

import rawamqp as raw
from conftest import Warrend, rss_measuring_env
from helpers import rss_kb, uid

MSG = 100 * 1024
WRITE_BUFFER = 1 << 20


@pytest.fixture
def broker(warrend_bin):
    w = Warrend(warrend_bin, extra_args=["--write-buffer-bytes", str(WRITE_BUFFER)],
                env=rss_measuring_env()).start()
    yield w
    assert w.stop() == 0


def rss(pid):
    return rss_kb(pid) * 1024


def stalled_consumer(port, queue, no_ack):
    c = raw.RawConnection(port)
    c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
    c.handshake()
    c.open_channel(1)
    c.send(raw.method_frame(1, raw.BASIC_CONSUME, raw.basic_consume(queue, "stalled", no_ack)))
    c.expect(raw.BASIC_CONSUME_OK)
    return c


def body(i):
    return i.to_bytes(4, "big") + b"x" * (MSG - 4)


def test_stalled_consumer_does_not_grow_memory_and_others_keep_receiving(broker):
    n = 2000  # 200 MB
    q = uid("q")
    setup = pika.BlockingConnection(pika.ConnectionParameters("127.0.0.1", broker.port))
    setup.channel().queue_declare(q)
    # Unlimited prefetch, manual acks: the worst case for a peer that never reads.
    stalled = stalled_consumer(broker.port, q, no_ack=False)

    received = []
    stop = threading.Event()
    errors = []

    def healthy():
        try:
            conn = pika.BlockingConnection(pika.ConnectionParameters("127.0.0.1", broker.port))
            ch = conn.channel()
            ch.basic_consume(q, lambda c, m, p, b: received.append(int.from_bytes(b[:4], "big")),
                             auto_ack=True)
            while not stop.is_set():
                conn.process_data_events(time_limit=0.1)
            conn.close()
        except Exception as e:
            errors.append(e)

    t = threading.Thread(target=healthy, daemon=True)
    t.start()
    base = rss(broker.proc.pid)
    peak = base
    pub = pika.BlockingConnection(pika.ConnectionParameters("127.0.0.1", broker.port))
    pch = pub.channel()
    for i in range(n):
        pch.basic_publish("", q, body(i))
        if i % 50 == 0:
            peak = max(peak, rss(broker.proc.pid))
    # Everything but what the stalled consumer holds reaches the healthy one.
    deadline = time.time() + 60
    while len(received) < n - 100 and time.time() < deadline and not errors:
        peak = max(peak, rss(broker.proc.pid))
        time.sleep(0.05)
    assert not errors, errors
    held = n - len(received)
    assert held <= 100, f"the stalled consumer was handed {held} messages ({held * MSG} bytes)"
    # 200 MB went through; the broker never held more than a fraction of it.
    assert peak - base < 100 * 1024 * 1024, f"RSS grew from {base} to {peak}"
    # The stalled consumer goes away: what it was handed is requeued to the healthy one.
    stalled.close()
    deadline = time.time() + 30
    while len(received) < n and time.time() < deadline:
        time.sleep(0.05)
    stop.set()
    t.join(10)
    assert sorted(received) == list(range(n)), "a message was lost"
    pub.close()
    setup.close()


def test_deliveries_wait_in_the_queue_and_resume_when_the_peer_reads(broker):
    n = 200  # 20 MB, twenty times the write buffer
    q = uid("q")
    conn = pika.BlockingConnection(pika.ConnectionParameters("127.0.0.1", broker.port))
    ch = conn.channel()
    ch.queue_declare(q)
    stalled = stalled_consumer(broker.port, q, no_ack=True)
    for i in range(n):
        ch.basic_publish("", q, body(i))
    # Most messages are still in the queue: the consumer was not handed them.
    deadline = time.time() + 10
    waiting = 0
    while time.time() < deadline:
        waiting = ch.queue_declare(q, passive=True).method.message_count
        if waiting > n // 2:
            break
        time.sleep(0.05)
    assert waiting > n // 2, f"only {waiting} of {n} messages wait in the queue"
    # The peer reads again: every message arrives, in order.
    got = []
    deadline = time.time() + 60
    while len(got) < n and time.time() < deadline:
        f = stalled.read_frame(timeout=10)
        if f.method == raw.BASIC_DELIVER:
            header = stalled.read_frame()
            size = raw.Reader(header.payload[4:12]).u64()
            data = b""
            while len(data) < size:
                data += stalled.read_frame().payload
            got.append(int.from_bytes(data[:4], "big"))
    assert got == list(range(n))
    assert ch.queue_declare(q, passive=True).method.message_count == 0
    stalled.close()
    conn.close()
