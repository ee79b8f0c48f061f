"""Paging (docs/queues.md "Paging"): a queue keeps about `storage.queue_memory_bytes` of ready
messages in memory; the rest waits in page files under <data>/paging/ and comes back in order.
Transient messages in non-durable queues included: a backlog far larger than the budget does
not grow the broker's memory with it, and nothing is lost, reordered or changed."""
import os
import signal
import time

import pika
import pytest

from conftest import Warrend, rss_measuring_env
from helpers import open_channel, uid

PERSISTENT = pika.BasicProperties(delivery_mode=2)


def start(warrend_bin, tmp_path, queue_memory=1 << 20, env=None):
    cfg = tmp_path / "warren.toml"
    cfg.write_text(f"[storage]\nqueue_memory_bytes = {queue_memory}\n")
    return Warrend(warrend_bin, extra_args=["--config", str(cfg)], env=env).start()


@pytest.fixture
def w(warrend_bin, tmp_path):
    """A broker with a 1 MiB queue budget: a few thousand small messages page."""
    broker = start(warrend_bin, tmp_path)
    yield broker
    assert broker.stop() == 0


def page_files(w):
    root = os.path.join(w.data_dir, "paging")
    if not os.path.isdir(root):
        return 0
    return sum(len(files) for _, _, files in os.walk(root))


def consume(ch, queue, n, timeout=60, ack=True):
    """n deliveries through basic.consume (prefetch 500), as (redelivered, body) pairs."""
    got = []
    ch.basic_qos(prefetch_count=500)
    deadline = time.time() + timeout
    for m, _, b in ch.consume(queue, inactivity_timeout=1):
        if m is not None:
            got.append((m.redelivered, b))
            if ack:
                ch.basic_ack(m.delivery_tag)
        if len(got) >= n or time.time() > deadline:
            break
    ch.cancel()
    return got


def publish_numbered(ch, q, numbers, pad=b"." * 150, props=None):
    """Publishes b"%06d" % i + pad for each i: the first six bytes say which message it is."""
    for i in numbers:
        ch.basic_publish("", q, b"%06d" % i + pad, props(i) if callable(props) else props)


def numbers(got):
    """The message numbers of consume()'s (redelivered, body) pairs, in delivery order."""
    return [int(b[:6]) for _, b in got]


def vm_kb(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise AssertionError(f"no {field} for process {pid}")


def test_backlog_pages_out_and_comes_back_in_order(w):
    c, ch = open_channel(w)
    q = uid("q")
    ch.queue_declare(q)
    body = lambda i: b"%07d" % i + b"." * (i % 300)
    n = 30000  # about 5 MB of bodies with a 1 MiB budget
    for i in range(n):
        ch.basic_publish("", q, body(i))
    assert ch.queue_declare(q, passive=True).method.message_count == n
    assert page_files(w) > 0, "nothing was paged out"
    got = consume(ch, q, n)
    assert [b for _, b in got] == [body(i) for i in range(n)]
    assert not any(r for r, _ in got)
    assert ch.queue_declare(q, passive=True).method.message_count == 0
    assert page_files(w) == 0, "page files stay after everything was read back"
    c.close()


def test_memory_stays_flat_while_a_transient_backlog_grows(warrend_bin, tmp_path):
    """256 MiB of transient messages with no consumer: resident memory grows by a small part of
    it (budget 16 MiB), and every message comes back intact."""
    w = start(warrend_bin, tmp_path, queue_memory=16 << 20, env=rss_measuring_env())
    try:
        c, ch = open_channel(w, confirm=True)
        q = uid("q")
        ch.queue_declare(q)
        time.sleep(0.3)
        base_kb = vm_kb(w.proc.pid, "VmRSS")
        n, size = 4096, 64 << 10
        for i in range(n):
            ch.basic_publish("", q, (b"%06d" % i) * (size // 6))
        peak_mb = (vm_kb(w.proc.pid, "VmHWM") - base_kb) / 1024
        assert peak_mb < 100, f"resident memory grew by {peak_mb:.0f} MiB for a 256 MiB backlog"
        assert ch.queue_declare(q, passive=True).method.message_count == n
        got = consume(ch, q, n, timeout=120)
        assert len(got) == n
        assert all(b == (b"%06d" % i) * (size // 6) for i, (_, b) in enumerate(got))
        c.close()
    finally:
        assert w.stop() == 0


def test_requeued_messages_go_back_in_front_of_paged_ones(w):
    c, ch = open_channel(w)
    q = uid("q")
    ch.queue_declare(q)
    n = 20000
    publish_numbered(ch, q, range(n), pad=b"-" * 200)
    # Take 300 without acking, then close the channel: they are requeued at the head.
    ch.basic_qos(prefetch_count=300)
    taken = []
    for m, _, b in ch.consume(q, inactivity_timeout=2):
        if m is None:
            break
        taken.append(b[:6])
        if len(taken) == 300:
            break
    ch.close()
    ch = c.channel()
    assert ch.queue_declare(q, passive=True).method.message_count == n
    got = consume(ch, q, n)
    assert numbers(got) == list(range(n))
    assert [r for r, _ in got[:300]] == [True] * 300
    assert not any(r for r, _ in got[300:])
    c.close()


def test_durable_queue_keeps_persistent_paged_messages_across_a_crash(w):
    """Persistent and transient messages mixed far beyond the budget: after kill -9 every
    confirmed persistent one is back, in order; the transient ones and the page files are gone."""
    c, ch = open_channel(w)
    q = uid("dq")
    ch.queue_declare(q, durable=True)
    n = 20000
    publish_numbered(ch, q, range(n), props=lambda i: PERSISTENT if i % 2 == 0 else None)
    # One confirmed publish after them on the same connection: its confirm comes after the
    # sync that covers every message before it in the queue's log.
    confirmed = c.channel()
    confirmed.confirm_delivery()
    publish_numbered(confirmed, q, [n], props=PERSISTENT)
    assert ch.queue_declare(q, durable=True).method.message_count == n + 1
    assert page_files(w) > 0
    c.close()
    w.stop(signal.SIGKILL)
    w.start()
    assert page_files(w) == 0, "paging/ is emptied at start"
    c, ch = open_channel(w)
    assert ch.queue_declare(q, durable=True).method.message_count == n // 2 + 1
    got = consume(ch, q, n // 2 + 1)
    assert numbers(got) == list(range(0, n + 1, 2))
    c.close()


def test_paged_messages_expire_and_are_dead_lettered(w):
    c, ch = open_channel(w)
    q, dlq = uid("ttl"), uid("dlq")
    ch.queue_declare(dlq)
    ch.queue_declare(q, arguments={"x-message-ttl": 1000, "x-dead-letter-exchange": "",
                                   "x-dead-letter-routing-key": dlq})
    n = 20000
    publish_numbered(ch, q, range(n))
    assert page_files(w) > 0
    deadline = time.time() + 20
    while time.time() < deadline:
        if ch.queue_declare(q, passive=True).method.message_count == 0:
            break
        time.sleep(0.2)
    assert ch.queue_declare(q, passive=True).method.message_count == 0
    assert ch.queue_declare(dlq, passive=True).method.message_count == n
    assert numbers(consume(ch, dlq, n)) == list(range(n))
    c.close()


def test_max_length_counts_paged_messages(w):
    c, ch = open_channel(w)
    q = uid("ml")
    ch.queue_declare(q, arguments={"x-max-length": 15000})
    n = 25000
    publish_numbered(ch, q, range(n))
    assert ch.queue_declare(q, passive=True).method.message_count == 15000
    assert numbers(consume(ch, q, 15000)) == list(range(n - 15000, n))
    c.close()


def test_purge_and_delete_remove_page_files(w):
    c, ch = open_channel(w)
    q1, q2 = uid("p"), uid("d")
    for q in (q1, q2):
        ch.queue_declare(q)
        publish_numbered(ch, q, range(15000))
    assert page_files(w) > 0
    assert ch.queue_purge(q1).method.message_count == 15000
    assert ch.queue_delete(q2).method.message_count == 15000
    assert page_files(w) == 0
    ch.basic_publish("", q1, b"after")
    assert ch.basic_get(q1, auto_ack=True)[2] == b"after"
    c.close()


def test_purged_paged_persistent_messages_do_not_come_back(w):
    """Purge acks the paged persistent messages in the queue's log too: none return after a
    restart."""
    c, ch = open_channel(w)
    q = uid("dq")
    ch.queue_declare(q, durable=True)
    publish_numbered(ch, q, range(15000), props=PERSISTENT)
    assert page_files(w) > 0
    assert ch.queue_purge(q).method.message_count == 15000
    # A confirmed publish after the purge: its sync covers the purge's ack records.
    confirmed = c.channel()
    confirmed.confirm_delivery()
    publish_numbered(confirmed, q, [15000], props=PERSISTENT)
    c.close()
    w.stop(signal.SIGKILL)
    w.start()
    c, ch = open_channel(w)
    assert ch.queue_declare(q, durable=True).method.message_count == 1
    assert numbers(consume(ch, q, 1)) == [15000]
    c.close()
