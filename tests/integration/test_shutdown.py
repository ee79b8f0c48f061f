"""SIGTERM: every client is told, as by RabbitMQ, before warrend exits."""
import signal
import time

import pika
import pytest

import rawamqp as raw
from conftest import Warrend
from helpers import uid

FORCED = "CONNECTION_FORCED - broker forced connection closure with reason 'shutdown'"


def test_sigterm_sends_connection_forced_to_every_client(warrend_bin):
    w = Warrend(warrend_bin).start()
    conns = [pika.BlockingConnection(pika.ConnectionParameters("127.0.0.1", w.port))
             for _ in range(3)]
    for c in conns:
        c.channel().queue_declare(uid("q"), exclusive=True)
    rc = raw.RawConnection(w.port).handshake()
    rc.open_channel(1)
    # Mid-handshake connections are just closed.
    half = raw.RawConnection(w.port)
    half.send(raw.PROTOCOL_HEADER)
    half.expect(raw.CONNECTION_START)
    w.proc.send_signal(signal.SIGTERM)
    assert rc.expect_connection_close() == (320, FORCED, 0, 0)
    assert half.is_closed_by_peer(timeout=10)
    for c in conns:
        with pytest.raises(pika.exceptions.ConnectionClosedByBroker) as e:
            deadline = time.time() + 10
            while time.time() < deadline:
                c.process_data_events(time_limit=0.1)
        assert (e.value.reply_code, e.value.reply_text) == (320, FORCED)
    assert w.proc.wait(10) == 0
    assert "shutting down" in w.log_text()


def test_a_peer_that_does_not_read_does_not_hold_up_shutdown(warrend_bin):
    w = Warrend(warrend_bin, extra_args=["--write-buffer-bytes", "65536"]).start()
    conn = pika.BlockingConnection(pika.ConnectionParameters("127.0.0.1", w.port))
    ch = conn.channel()
    q = uid("q")
    ch.queue_declare(q)
    stalled = raw.RawConnection(w.port).handshake()
    stalled.open_channel(1)
    stalled.send(raw.method_frame(1, raw.BASIC_CONSUME, raw.basic_consume(q, "s", no_ack=True)))
    for _ in range(200):
        ch.basic_publish("", q, b"x" * 100000)
    w.proc.send_signal(signal.SIGTERM)
    assert w.proc.wait(15) == 0
    stalled.close()
