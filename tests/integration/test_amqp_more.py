"""More of RabbitMQ's AMQP behaviour: heartbeats, channel_max, exchange deletion rules,
auto-delete exchanges, global prefetch, basic.get counts. Checked against RabbitMQ 3.10."""
import socket
import struct
import time

import amqp
import pika
import pytest

from helpers import uid


def raw_connect(port, channel_max=2047, heartbeat=0):
    """Handshake by hand with the given tune-ok values; returns (socket, read_frame)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(b"AMQP\x00\x00\x09\x01")
    buf = b""

    def read_frame():
        nonlocal buf
        while True:
            if len(buf) >= 7:
                t, ch, size = struct.unpack(">BHI", buf[:7])
                if len(buf) >= size + 8:
                    frame = (t, ch, buf[7:7 + size])
                    buf = buf[size + 8:]
                    return frame
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                return None
            if not chunk:
                return None
            buf += chunk

    def method(ch, cls, mid, args=b""):
        payload = struct.pack(">HH", cls, mid) + args
        s.sendall(struct.pack(">BHI", 1, ch, len(payload)) + payload + b"\xce")

    read_frame()
    resp = b"\x00guest\x00guest"
    method(0, 10, 11, struct.pack(">I", 0) + b"\x05PLAIN" + struct.pack(">I", len(resp)) +
           resp + b"\x05en_US")
    read_frame()
    method(0, 10, 31, struct.pack(">HIH", channel_max, 131072, heartbeat))
    method(0, 10, 40, b"\x01/\x00\x00")
    assert read_frame()[2][:4] == struct.pack(">HH", 10, 41)
    return s, read_frame, method


def test_server_sends_heartbeats_and_drops_a_silent_client(broker_port):
    s, read_frame, _ = raw_connect(broker_port, heartbeat=1)
    start = time.time()
    saw_heartbeat = False
    while True:
        f = read_frame()
        if f is None:
            break  # the server dropped the TCP connection (no connection.close)
        assert f[0] == 8, f"only heartbeats expected, got frame type {f[0]}"
        saw_heartbeat = True
    elapsed = time.time() - start
    assert saw_heartbeat
    assert 1.5 <= elapsed <= 8, elapsed
    s.close()


def test_opening_more_than_channel_max_channels_is_530(broker_port):
    # channel_max bounds how many channels are open, not their numbers (RabbitMQ 3.10).
    s, read_frame, method = raw_connect(broker_port, channel_max=2)
    for ch in (1, 7):
        method(ch, 20, 10, b"\x00")
        assert read_frame()[2][:4] == struct.pack(">HH", 20, 11)
    method(9, 20, 10, b"\x00")
    t, ch, payload = read_frame()
    cls, mid, code = struct.unpack(">HHH", payload[:6])
    assert (ch, cls, mid, code) == (0, 10, 50, 530)
    text = payload[7:7 + payload[6]].decode()
    assert text == ("NOT_ALLOWED - number of channels opened (2) has reached the negotiated "
                    "channel_max (2)")
    s.close()


def test_deleting_amq_exchanges_is_403(conn):
    ch = conn.channel()
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as e:
        ch.exchange_delete("amq.direct")
    assert e.value.reply_code == 403


def test_exchange_delete_if_unused(conn):
    ch = conn.channel()
    x = uid("x")
    ch.exchange_declare(x, "fanout")
    q = ch.queue_declare("", exclusive=True).method.queue
    ch.queue_bind(q, x)
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as e:
        ch.exchange_delete(x, if_unused=True)
    assert e.value.reply_code == 406
    ch = conn.channel()
    ch.exchange_delete(x)
    ch.exchange_delete(x)  # idempotent


def test_auto_delete_exchange_goes_with_its_last_binding(conn):
    ch = conn.channel()
    x = uid("ad")
    ch.exchange_declare(x, "fanout", auto_delete=True)
    q = ch.queue_declare("", exclusive=True).method.queue
    ch.queue_bind(q, x)
    ch.exchange_declare(x, passive=True)
    ch.queue_unbind(q, x)
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as e:
        ch.exchange_declare(x, passive=True)
    assert e.value.reply_code == 404


def test_global_prefetch_limits_the_channel(conn):
    ch = conn.channel()
    q1 = ch.queue_declare("", exclusive=True).method.queue
    q2 = ch.queue_declare("", exclusive=True).method.queue
    for q in (q1, q2):
        for i in range(5):
            ch.basic_publish("", q, b"m")
    ch.basic_qos(prefetch_count=3, global_qos=True)
    got = []
    ch.basic_consume(q1, lambda c, m, p, b: got.append(m))
    ch.basic_consume(q2, lambda c, m, p, b: got.append(m))
    conn.process_data_events(time_limit=0.5)
    assert len(got) == 3, "three unacked on the whole channel"


def test_get_ok_message_count_is_what_remains(conn):
    ch = conn.channel()
    q = ch.queue_declare("", exclusive=True).method.queue
    ch.confirm_delivery()
    for i in range(3):
        ch.basic_publish("", q, str(i).encode())
    m, _, b = ch.basic_get(q, auto_ack=True)
    assert (b, m.message_count) == (b"0", 2)
    m, _, b = ch.basic_get(q, auto_ack=True)
    assert (b, m.message_count) == (b"1", 1)


def test_declare_ok_counts_consumers(conn):
    ch = conn.channel()
    q = ch.queue_declare("", exclusive=True).method.queue
    ch.basic_consume(q, lambda *a: None)
    ch.basic_consume(q, lambda *a: None)
    assert ch.queue_declare(q, passive=True).method.consumer_count == 2


def test_amqplain_login(broker_port):
    c = amqp.Connection(f"127.0.0.1:{broker_port}", login_method="AMQPLAIN")
    c.connect()
    assert c.connected
    c.close()


def test_channel_flow_active_false_is_540(broker_port):
    # RabbitMQ 3.x refuses client-initiated flow control.
    c = amqp.Connection(f"127.0.0.1:{broker_port}")
    c.connect()
    ch = c.channel()
    with pytest.raises(amqp.exceptions.ConnectionError) as e:
        ch.flow(False)
        c.drain_events(timeout=5)
    assert e.value.reply_code == 540


def test_cr_lf_are_stripped_from_exchange_names_on_declare_and_delete(conn):
    # RabbitMQ 3.10 strips CR/LF from exchange names in exchange.declare and .delete. (For a
    # queue it kept them, and then hung on a second such declare, so queues are not tested.)
    ch = conn.channel()
    x = uid("xcrlf")
    ch.exchange_declare(x[:3] + "\r\n" + x[3:], "fanout")
    ch.exchange_declare(x, passive=True)
    ch.exchange_delete(x[:3] + "\n" + x[3:])
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as e:
        ch.exchange_declare(x, passive=True)
    assert e.value.reply_code == 404


BAD_UTF8 = b"x\xff\xfe"


def _shortstr(b):
    return bytes([len(b)]) + b


@pytest.mark.parametrize("what", ["queue.declare", "exchange.declare", "queue.bind key",
                                  "basic.consume tag"])
def test_malformed_utf8_in_a_name_closes_the_connection_with_501(broker_port, what):
    """RabbitMQ 3.10 (checked): connection.close 501 FRAME_ERROR 'Malformed UTF-8 in shortstr',
    class and method 0."""
    s, read_frame, method = raw_connect(broker_port)
    method(1, 20, 10, b"\x00")  # channel.open
    assert read_frame()[2][:4] == struct.pack(">HH", 20, 11)
    if what == "queue.declare":
        method(1, 50, 10, b"\x00\x00" + _shortstr(BAD_UTF8) + b"\x02" + struct.pack(">I", 0))
    elif what == "exchange.declare":
        method(1, 40, 10, b"\x00\x00" + _shortstr(BAD_UTF8) + _shortstr(b"direct") + b"\x00" +
               struct.pack(">I", 0))
    elif what == "queue.bind key":
        method(1, 50, 20, b"\x00\x00" + _shortstr(b"") + _shortstr(b"amq.direct") +
               _shortstr(BAD_UTF8) + b"\x00" + struct.pack(">I", 0))
    else:
        method(1, 60, 20, b"\x00\x00" + _shortstr(b"") + _shortstr(BAD_UTF8) + b"\x00" +
               struct.pack(">I", 0))
    t, ch, payload = read_frame()
    assert (t, ch) == (1, 0)
    cls, mid, code = struct.unpack(">HHH", payload[:6])
    text = payload[7:7 + payload[6]]
    assert (cls, mid, code) == (10, 50, 501)
    assert text == b"FRAME_ERROR - Malformed UTF-8 in shortstr"
    assert struct.unpack(">HH", payload[7 + payload[6]:]) == (0, 0)
    s.close()


def test_publish_routing_key_need_not_be_utf8(broker_port):
    """basic.publish is not checked (RabbitMQ 3.10 accepts it): the message routes by bytes."""
    s, read_frame, method = raw_connect(broker_port)
    method(1, 20, 10, b"\x00")
    read_frame()
    method(1, 85, 10, b"\x00")  # confirm.select
    read_frame()
    method(1, 60, 40, b"\x00\x00" + _shortstr(b"") + _shortstr(BAD_UTF8) + b"\x00")
    header = struct.pack(">HHQH", 60, 0, 1, 0)
    s.sendall(struct.pack(">BHI", 2, 1, len(header)) + header + b"\xce")
    s.sendall(struct.pack(">BHI", 3, 1, 1) + b"x\xce")
    t, ch, payload = read_frame()
    assert struct.unpack(">HH", payload[:4]) == (60, 80)  # basic.ack: accepted
    s.close()
