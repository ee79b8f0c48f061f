"""Configured limits with RabbitMQ's answers: connections, channels, frame size, message size,
queues per vhost and the consumer (acknowledgement) timeout. Each test starts warrend with a
small limit; what a client sees when it trips is RabbitMQ 3.10's (docs/operations.md)."""
import os
import socket
import struct
import time

import pika
import pytest
from pika.adapters.utils.connection_workflow import AMQPConnectorStackTimeout

import rawamqp as raw
from conftest import Warrend
from helpers import uid


@pytest.fixture
def start(warrend_bin):
    started = []

    def make(*args):
        w = Warrend(warrend_bin, extra_args=list(args)).start()
        started.append(w)
        return w

    yield make
    for w in started:
        assert w.stop() == 0


def params(w, **kw):
    return pika.ConnectionParameters("127.0.0.1", w.port, **kw)


# --- connections -----------------------------------------------------------------------------

def test_clients_beyond_max_connections_wait_until_one_closes(start):
    # RabbitMQ 3.10's connection_max (Ranch's max_connections) stops accepting: a client beyond
    # it connects at TCP level, gets no connection.start, and is served once a connection closes.
    w = start("--max-connections", "3")
    conns = [pika.BlockingConnection(params(w)) for _ in range(3)]
    waiting = raw.RawConnection(w.port)
    waiting.send(raw.PROTOCOL_HEADER)
    with pytest.raises(socket.timeout):
        waiting.recv_some(timeout=1.0)  # neither answered nor closed
    # A pika client that does not wait long enough fails with a timeout, not a close.
    t0 = time.time()
    with pytest.raises(AMQPConnectorStackTimeout, match="Timeout during AMQP handshake"):
        pika.BlockingConnection(params(w, connection_attempts=1, stack_timeout=1.5))
    assert time.time() - t0 >= 1.4
    # The three open ones keep working.
    ch = conns[0].channel()
    q = ch.queue_declare("", exclusive=True).method.queue
    ch.basic_publish("", q, b"still here")
    assert ch.basic_get(q, auto_ack=True)[2] == b"still here"
    # Closing one lets the waiting client in: it gets connection.start for the header it sent.
    conns[1].close()
    assert waiting.expect(raw.CONNECTION_START, timeout=5)
    waiting.close()
    c = pika.BlockingConnection(params(w))  # waits, if need be, until Warren saw the raw one go
    c.channel().basic_publish("", q, b"new")
    c.close()
    assert ch.basic_get(q, auto_ack=True)[2] == b"new"
    for c in (conns[0], conns[2]):
        c.close()
    assert "max_connections (3) reached: new connections wait until one closes" in w.log_text()


def test_file_limit_is_raised_and_logged(start):
    w = start()
    assert "open file limit is" in w.log_text()


# --- channel_max and frame_max -------------------------------------------------------------

def test_channel_max_counts_open_channels(broker_port):
    c = raw.RawConnection(broker_port).handshake(channel_max=4)
    for n in range(1, 5):
        c.open_channel(n)
    c.send(raw.method_frame(5, raw.CHANNEL_OPEN, raw.shortstr("")))
    assert c.expect_connection_close() == (
        530, "NOT_ALLOWED - number of channels opened (4) has reached the negotiated "
        "channel_max (4)", 0, 0)
    c.close()


def test_configured_channel_max_is_offered_in_tune(start):
    w = start("--channel-max", "5")
    conn = pika.BlockingConnection(params(w))
    assert conn._impl.params.channel_max == 5
    conn.close()


def test_frame_max_above_the_offer_is_refused(broker_port):
    c = raw.RawConnection(broker_port)
    c.send(raw.PROTOCOL_HEADER)
    c.expect(raw.CONNECTION_START)
    c.send(raw.method_frame(0, raw.CONNECTION_START_OK, raw.table({}) + raw.shortstr("PLAIN") +
                            raw.longstr("\0guest\0guest") + raw.shortstr("en_US")))
    r = c.expect(raw.CONNECTION_TUNE).args()
    _, offered, _ = r.u16(), r.u32(), r.u16()
    c.send(raw.method_frame(0, raw.CONNECTION_TUNE_OK, struct.pack(">HIH", 10, offered * 2, 0)))
    if not os.environ.get("WARREN_BIN"):
        # RabbitMQ 3.10 drops a client that fails tuning silently, 3 s later; Warren says why.
        assert c.read_all_until_close(timeout=10) == b""
        return
    assert c.expect_connection_close() == (
        530, f"NOT_ALLOWED - negotiated frame_max = {offered * 2} is higher than the maximum "
        f"allowed value ({offered})", 10, 31)
    c.close()


def test_small_frame_max_splits_large_messages(start):
    w = start("--frame-max", "4096")
    conn = pika.BlockingConnection(params(w, frame_max=131072))
    assert conn._impl.params.frame_max == 4096
    ch = conn.channel()
    q = ch.queue_declare("", exclusive=True).method.queue
    body = bytes(range(256)) * 400  # 100 KiB: 26 body frames
    ch.basic_publish("", q, body)
    assert ch.basic_get(q, auto_ack=True)[2] == body
    conn.close()


# --- message size ------------------------------------------------------------------------

def test_message_larger_than_max_message_size_closes_the_channel(start):
    w = start("--max-message-size", "1000")
    conn = pika.BlockingConnection(params(w))
    ch = conn.channel()
    q = ch.queue_declare("", exclusive=True).method.queue
    ch.basic_publish("", q, b"x" * 1000)
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as e:
        ch.basic_publish("", q, b"x" * 1001)
        ch.queue_declare(q, passive=True)  # a round trip to see the close
    assert (e.value.reply_code, e.value.reply_text) == (
        406, "PRECONDITION_FAILED - message size 1001 is larger than configured max size 1000")
    ch = conn.channel()
    assert ch.queue_declare(q, passive=True).method.message_count == 1
    conn.close()


def test_default_max_message_size_is_128_mib(start):
    w = start("--log-level", "info")
    c = raw.RawConnection(w.port).handshake()
    c.open_channel(1)
    c.send(raw.method_frame(1, raw.BASIC_PUBLISH, raw.basic_publish("", uid("q"))))
    c.send(raw.content_header(1, 134217729))
    ch, code, text, cls, meth = c.expect_channel_close()
    assert (ch, code, cls, meth) == (1, 406, 60, 40)
    assert text == ("PRECONDITION_FAILED - message size 134217729 is larger than configured max "
                    "size 134217728")
    c.close()


# --- queues per vhost ------------------------------------------------------------------------

def test_max_queues_per_vhost(start):
    w = start("--max-queues", "3")
    conn = pika.BlockingConnection(params(w))
    ch = conn.channel()
    names = [uid("q") for _ in range(3)]
    for n in names:
        ch.queue_declare(n)
    ch.queue_declare(names[0])  # redeclaring an existing queue is not a new queue
    ch.queue_declare(names[1], passive=True)
    extra = uid("q")
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as e:
        ch.queue_declare(extra)
    assert (e.value.reply_code, e.value.reply_text) == (
        406, f"PRECONDITION_FAILED - cannot declare queue '{extra}': queue limit in vhost '/' (3) "
        "is reached")
    ch = conn.channel()
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as e:
        ch.queue_declare("", exclusive=True)
    assert e.value.reply_text.startswith("PRECONDITION_FAILED - cannot declare queue 'amq.gen-")
    ch = conn.channel()
    ch.queue_delete(names[2])
    ch.queue_declare(extra)
    conn.close()


# --- consumer timeout --------------------------------------------------------------------

def test_unacked_delivery_older_than_consumer_timeout_closes_the_channel(start):
    w = start("--consumer-timeout", "1000")
    conn = pika.BlockingConnection(params(w))
    ch = conn.channel()
    q = uid("q")
    ch.queue_declare(q)
    ch.basic_publish("", q, b"slow")
    ch.basic_publish("", q, b"fast")
    # A consumer that acks at once is never timed out.
    good_ch = conn.channel()
    good = []
    closed = []
    slow_ch = conn.channel()
    slow_ch._impl.add_on_close_callback(lambda _ch, reason: closed.append(reason))
    slow_ch.basic_qos(prefetch_count=1)
    slow_ch.basic_consume(q, lambda *a: None)  # never acks
    good_ch.basic_consume(q, lambda c, m, p, b: (good.append(b), c.basic_ack(m.delivery_tag)))
    deadline = time.time() + 10
    while not closed and time.time() < deadline:
        conn.process_data_events(time_limit=0.1)
    assert closed, "the channel with the unacked delivery was not closed"
    reason = closed[0]
    assert (reason.reply_code, reason.reply_text) == (
        406, "PRECONDITION_FAILED - delivery acknowledgement on channel 3 timed out. Timeout "
        "value used: 1000 ms. This timeout value can be configured, see consumers doc guide to "
        "learn more")
    # The timed-out delivery was requeued and went to the consumer that acks.
    deadline = time.time() + 5
    while len(good) < 2 and time.time() < deadline:
        conn.process_data_events(time_limit=0.1)
    assert sorted(good) == [b"fast", b"slow"]
    assert good_ch.is_open
    conn.close()
    assert "delivery acknowledgement on channel 3 timed out" in w.log_text()
