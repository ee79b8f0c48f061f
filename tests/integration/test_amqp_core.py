"""Core AMQP 0-9-1 behaviour through pika and py-amqp, as RabbitMQ 3.x clients see it.

Every test here also passes against RabbitMQ 3.10 (BROKER_PORT=5672), which is how its
expectations were checked; see tests/integration/README.md.
"""
import socket
import struct
import time

import amqp
import pika
import pytest

from helpers import drain, uid


# --- connection ------------------------------------------------------------------------------

def test_server_properties_and_tune(broker_port):
    c = amqp.Connection(f"127.0.0.1:{broker_port}")
    c.connect()
    caps = c.server_properties["capabilities"]
    for cap in ("publisher_confirms", "exchange_exchange_bindings", "basic.nack",
                "consumer_cancel_notify", "connection.blocked", "authentication_failure_close",
                "per_consumer_qos"):
        assert caps[cap] is True, cap
    assert "product" in c.server_properties and "version" in c.server_properties
    assert c.channel_max == 2047
    assert c.frame_max == 131072
    c.close()


def test_bad_credentials_refused_with_403(broker_port):
    params = pika.ConnectionParameters("127.0.0.1", broker_port,
                                       credentials=pika.PlainCredentials("guest", "wrong"))
    with pytest.raises(pika.exceptions.ProbableAuthenticationError) as e:
        pika.BlockingConnection(params)
    assert "ACCESS_REFUSED" in str(e.value)


def test_unknown_vhost_is_530(broker_port):
    params = pika.ConnectionParameters("127.0.0.1", broker_port, virtual_host="no-such-vhost")
    with pytest.raises(pika.exceptions.ProbableAccessDeniedError) as e:
        pika.BlockingConnection(params)
    # RabbitMQ 3.10's text for a missing vhost.
    assert "(530) 'NOT_ALLOWED - vhost no-such-vhost not found'" in str(e.value)


def test_bad_protocol_header_gets_091_header(broker_port):
    with socket.create_connection(("127.0.0.1", broker_port), timeout=5) as s:
        s.sendall(b"AMQP\x00\x00\x09\x02")
        got = b""
        while len(got) < 8:
            chunk = s.recv(8 - len(got))
            if not chunk:
                break
            got += chunk
    assert got == b"AMQP\x00\x00\x09\x01"


class RawConn:
    def __init__(self, sock, read_frame):
        self.sock = sock
        self.read_frame = read_frame

    def sendall(self, data):
        self.sock.sendall(data)

    def close(self):
        self.sock.close()


def _handshake(port):
    """A raw socket through start/tune/open; returns the socket."""
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.sendall(b"AMQP\x00\x00\x09\x01")

    def read_frame():
        hdr = b""
        while len(hdr) < 7:
            hdr += s.recv(7 - len(hdr))
        t, ch, size = struct.unpack(">BHI", hdr)
        body = b""
        while len(body) < size + 1:
            body += s.recv(size + 1 - len(body))
        return t, ch, body[:-1]

    def method(cls, mid, args):
        payload = struct.pack(">HH", cls, mid) + args
        s.sendall(struct.pack(">BHI", 1, 0, len(payload)) + payload + b"\xce")

    read_frame()  # start
    resp = b"\x00guest\x00guest"
    method(10, 11, struct.pack(">I", 0) + b"\x05PLAIN" + struct.pack(">I", len(resp)) + resp +
           b"\x05en_US")
    read_frame()  # tune
    method(10, 31, struct.pack(">HIH", 2047, 131072, 0))
    method(10, 40, b"\x01/" + b"\x00" + b"\x00")
    read_frame()  # open-ok
    return RawConn(s, read_frame)


def test_bad_frame_end_is_501(broker_port):
    s = _handshake(broker_port)
    s.sendall(struct.pack(">BHI", 1, 1, 5) + b"\x00\x14\x00\x0a\x00" + b"\x00")  # bad end
    t, ch, payload = s.read_frame()
    cls, mid, code = struct.unpack(">HHH", payload[:6])
    assert (t, ch, cls, mid, code) == (1, 0, 10, 50, 501)
    s.close()


def test_method_on_unopened_channel_is_504(broker_port):
    s = _handshake(broker_port)
    payload = struct.pack(">HH", 50, 10) + b"\x00\x00" + b"\x01q" + b"\x00" + b"\x00\x00\x00\x00"
    s.sendall(struct.pack(">BHI", 1, 7, len(payload)) + payload + b"\xce")
    t, ch, payload = s.read_frame()
    cls, mid, code = struct.unpack(">HHH", payload[:6])
    assert (cls, mid, code) == (10, 50, 504)
    text = payload[7:7 + payload[6]].decode()
    assert text == "CHANNEL_ERROR - expected 'channel.open'"
    s.close()


def test_second_channel_open_is_504(broker_port):
    s = _handshake(broker_port)
    open_ = struct.pack(">HH", 20, 10) + b"\x00"
    s.sendall((struct.pack(">BHI", 1, 1, len(open_)) + open_ + b"\xce") * 2)
    s.read_frame()  # open-ok
    t, ch, payload = s.read_frame()
    cls, mid, code = struct.unpack(">HHH", payload[:6])
    assert (cls, mid, code) == (10, 50, 504)
    assert payload[7:7 + payload[6]].decode() == "CHANNEL_ERROR - second 'channel.open' seen"
    s.close()


# --- exchanges -------------------------------------------------------------------------------

def test_exchange_equivalence_406(conn):
    ch = conn.channel()
    x = uid("x")
    ch.exchange_declare(x, "direct")
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as e:
        ch.exchange_declare(x, "fanout")
    assert e.value.reply_code == 406
    assert e.value.reply_text == (f"PRECONDITION_FAILED - inequivalent arg 'type' for exchange "
                                  f"'{x}' in vhost '/': received 'fanout' but current is 'direct'")
    conn.channel().exchange_delete(x)


def test_passive_missing_exchange_404(conn):
    ch = conn.channel()
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as e:
        ch.exchange_declare("no-such-x", passive=True)
    assert e.value.reply_code == 404
    assert e.value.reply_text == "NOT_FOUND - no exchange 'no-such-x' in vhost '/'"


def test_reserved_amq_prefix_403(conn):
    ch = conn.channel()
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as e:
        ch.exchange_declare("amq.mine", "direct")
    assert e.value.reply_code == 403
    ch = conn.channel()
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as e:
        ch.queue_declare("amq.mine")
    assert e.value.reply_code == 403
    assert e.value.reply_text == ("ACCESS_REFUSED - queue name 'amq.mine' contains reserved "
                                  "prefix 'amq.*'")


def test_default_exchange_bind_403(conn):
    ch = conn.channel()
    q = ch.queue_declare("", exclusive=True).method.queue
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as e:
        ch.queue_bind(q, "")
    assert e.value.reply_code == 403
    assert e.value.reply_text == "ACCESS_REFUSED - operation not permitted on the default exchange"


def test_unknown_exchange_type_closes_connection_503(conn):
    # RabbitMQ 3.x: COMMAND_INVALID on the connection (4.0 made it a channel 406).
    ch = conn.channel()
    with pytest.raises(pika.exceptions.ConnectionClosedByBroker) as e:
        ch.exchange_declare(uid("x"), "no-such-type")
    assert e.value.reply_code == 503


def test_publish_to_internal_exchange_403(conn):
    ch = conn.channel()
    x = uid("x")
    ch.exchange_declare(x, "fanout", internal=True, auto_delete=False)
    ch.basic_publish(x, "", b"m")
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as e:
        ch.queue_declare("", exclusive=True)
    assert e.value.reply_code == 403
    assert e.value.reply_text == (f"ACCESS_REFUSED - cannot publish to internal exchange '{x}' "
                                  "in vhost '/'")
    conn.channel().exchange_delete(x)


# --- routing ---------------------------------------------------------------------------------

@pytest.mark.parametrize("pattern,key,match", [
    ("#", "a.b.c", True), ("a.#", "a", True), ("a.*", "a", False), ("*.b", "a.b", True),
    ("a.#.c", "a.c", True), ("*", "a.b", False), ("#.c", "c", True),
])
def test_topic_routing(conn, pattern, key, match):
    ch = conn.channel()
    q = ch.queue_declare("", exclusive=True).method.queue
    ch.queue_bind(q, "amq.topic", pattern)
    ch.basic_publish("amq.topic", key, b"m")
    got = drain(ch, q, 1, timeout=0.5)
    assert (len(got) == 1) == match


def test_headers_routing(conn):
    ch = conn.channel()
    qall = ch.queue_declare("", exclusive=True).method.queue
    qany = ch.queue_declare("", exclusive=True).method.queue
    ch.queue_bind(qall, "amq.headers", arguments={"x-match": "all", "a": 1, "b": "x"})
    ch.queue_bind(qany, "amq.headers", arguments={"x-match": "any", "a": 1, "b": "x"})
    ch.basic_publish("amq.headers", "", b"both", pika.BasicProperties(headers={"a": 1, "b": "x"}))
    ch.basic_publish("amq.headers", "", b"one", pika.BasicProperties(headers={"a": 1}))
    assert [b for _, _, b in drain(ch, qall, 1)] == [b"both"]
    assert sorted(b for _, _, b in drain(ch, qany, 2)) == [b"both", b"one"]
    assert drain(ch, qall, 1, timeout=0.3) == []


def test_exchange_to_exchange_binding(conn):
    ch = conn.channel()
    src, dst = uid("src"), uid("dst")
    ch.exchange_declare(src, "direct")
    ch.exchange_declare(dst, "fanout")
    ch.exchange_bind(dst, src, "k")
    q = ch.queue_declare("", exclusive=True).method.queue
    ch.queue_bind(q, dst)
    ch.basic_publish(src, "k", b"via-e2e")
    ch.basic_publish(src, "other", b"dropped")
    assert [b for _, _, b in drain(ch, q, 1)] == [b"via-e2e"]
    assert drain(ch, q, 1, timeout=0.3) == []
    ch.exchange_delete(src)
    ch.exchange_delete(dst)


def test_alternate_exchange(conn):
    ch = conn.channel()
    ae, main = uid("ae"), uid("main")
    ch.exchange_declare(ae, "fanout")
    ch.exchange_declare(main, "direct", arguments={"alternate-exchange": ae})
    q = ch.queue_declare("", exclusive=True).method.queue
    ch.queue_bind(q, ae)
    ch.basic_publish(main, "unbound", b"caught")
    assert [b for _, _, b in drain(ch, q, 1)] == [b"caught"]
    ch.exchange_delete(main)
    ch.exchange_delete(ae)


# --- queues ----------------------------------------------------------------------------------

def test_server_named_queue_and_empty_name_reuse(conn):
    ch = conn.channel()
    q = ch.queue_declare("", exclusive=True).method.queue
    assert q.startswith("amq.gen-")
    ch.confirm_delivery()
    ch.basic_publish("", q, b"x")
    # "" names the last queue declared on this channel (not for passive declares).
    assert ch.queue_purge("").method.message_count == 1


def test_exclusive_queue_locked_405_and_deleted_with_connection(connect):
    a, b = connect(), connect()
    q = a.channel().queue_declare(uid("excl"), exclusive=True).method.queue
    ch = b.channel()
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as e:
        ch.queue_declare(q, durable=True)  # 405 wins over the durable mismatch's 406
    assert e.value.reply_code == 405
    assert e.value.reply_text.startswith(
        f"RESOURCE_LOCKED - cannot obtain exclusive access to locked queue '{q}' in vhost '/'")
    a.close()
    ch = b.channel()
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as e:
        ch.queue_declare(q, passive=True)
    assert e.value.reply_code == 404


def test_queue_durable_mismatch_406(conn):
    ch = conn.channel()
    q = uid("q")
    ch.queue_declare(q)
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as e:
        ch.queue_declare(q, durable=True)
    assert e.value.reply_code == 406
    assert e.value.reply_text == (f"PRECONDITION_FAILED - inequivalent arg 'durable' for queue "
                                  f"'{q}' in vhost '/': received 'true' but current is 'false'")
    conn.channel().queue_delete(q)


def test_purge_delete_counts_and_conditions(conn):
    ch = conn.channel()
    q = uid("q")
    ch.queue_declare(q)
    ch.confirm_delivery()  # publishes are in the queue once confirmed
    for i in range(3):
        ch.basic_publish("", q, b"m")
    assert ch.queue_declare(q, passive=True).method.message_count == 3
    assert ch.queue_purge(q).method.message_count == 3
    ch.basic_publish("", q, b"m")
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as e:
        ch.queue_delete(q, if_empty=True)
    assert e.value.reply_code == 406
    ch = conn.channel()
    assert ch.queue_delete(q).method.message_count == 1
    assert ch.queue_delete(q).method.message_count == 0  # idempotent


def test_auto_delete_queue_goes_with_last_consumer(conn):
    ch = conn.channel()
    q = ch.queue_declare(uid("ad"), auto_delete=True).method.queue
    tag = ch.basic_consume(q, lambda *a: None)
    ch.basic_cancel(tag)
    ch2 = conn.channel()
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as e:
        ch2.queue_declare(q, passive=True)
    assert e.value.reply_code == 404


# --- basic -----------------------------------------------------------------------------------

def test_mandatory_unroutable_returns_before_confirm(conn):
    ch = conn.channel()
    ch.confirm_delivery()
    with pytest.raises(pika.exceptions.UnroutableError) as e:
        ch.basic_publish("amq.direct", uid("nobody"), b"lost?", mandatory=True)
    returned = e.value.messages[0]
    assert returned.method.reply_code == 312
    assert returned.method.reply_text == "NO_ROUTE"
    assert returned.body == b"lost?"


def test_publish_to_missing_exchange_closes_channel_404(conn):
    ch = conn.channel()
    ch.basic_publish("no-such-exchange", "", b"m")
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as e:
        ch.queue_declare("", exclusive=True)
    assert e.value.reply_code == 404
    assert e.value.reply_text == "NOT_FOUND - no exchange 'no-such-exchange' in vhost '/'"
    assert conn.is_open


def test_properties_and_headers_round_trip(conn):
    ch = conn.channel()
    q = ch.queue_declare("", exclusive=True).method.queue
    props = pika.BasicProperties(
        content_type="application/json", content_encoding="utf-8",
        headers={"s": "text", "i": 42, "neg": -7, "big": 2 ** 40, "t": True, "f": {"a": 1},
                 "l": [1, "two"]},
        delivery_mode=2, priority=3, correlation_id="c", reply_to="r", expiration="60000",
        message_id="m", timestamp=1700000000, type="ty", user_id="guest", app_id="app")
    ch.basic_publish("", q, b"payload", props)
    (m, p, b), = drain(ch, q, 1)
    assert b == b"payload"
    for field in ("content_type", "content_encoding", "headers", "delivery_mode", "priority",
                  "correlation_id", "reply_to", "expiration", "message_id", "timestamp", "type",
                  "user_id", "app_id"):
        assert getattr(p, field) == getattr(props, field), field


def test_large_and_empty_bodies(conn):
    ch = conn.channel()
    q = ch.queue_declare("", exclusive=True).method.queue
    big = bytes(range(256)) * 2000  # 512000 bytes: split over several frames
    ch.basic_publish("", q, big)
    ch.basic_publish("", q, b"")
    got = drain(ch, q, 2)
    assert [b for _, _, b in got] == [big, b""]


def test_user_id_mismatch_406(conn):
    ch = conn.channel()
    ch.basic_publish("", "x", b"m", pika.BasicProperties(user_id="mallory"))
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as e:
        ch.queue_declare("", exclusive=True)
    assert e.value.reply_code == 406
    assert e.value.reply_text == ("PRECONDITION_FAILED - user_id property set to 'mallory' but "
                                  "authenticated user was 'guest'")


def test_consume_missing_queue_404_and_tag_reuse_530(conn):
    ch = conn.channel()
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as e:
        ch.basic_consume("no-such-queue", lambda *a: None)
    assert e.value.reply_code == 404



def test_consumer_tag_reuse_is_530_on_connection(broker_port):
    # pika refuses a duplicate tag itself; py-amqp sends it.
    c = amqp.Connection(f"127.0.0.1:{broker_port}")
    c.connect()
    ch = c.channel()
    q = ch.queue_declare("", exclusive=True)[0]
    ch.basic_consume(q, consumer_tag="dup", callback=lambda m: None)
    with pytest.raises(amqp.exceptions.ConnectionError) as e:
        ch.basic_consume(q, consumer_tag="dup", callback=lambda m: None)
    assert e.value.reply_code == 530
    assert e.value.reply_text == "NOT_ALLOWED - attempt to reuse consumer tag 'dup'"


def test_exclusive_consumer_403(connect):
    a = connect()
    ch = a.channel()
    q = ch.queue_declare(uid("q")).method.queue
    ch.basic_consume(q, lambda *a: None, exclusive=True)
    ch2 = connect().channel()
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as e:
        ch2.basic_consume(q, lambda *a: None)
    assert e.value.reply_code == 403
    assert e.value.reply_text == f"ACCESS_REFUSED - queue '{q}' in vhost '/' in exclusive use"
    ch.queue_delete(q)


def test_unknown_delivery_tag_406(conn):
    ch = conn.channel()
    ch.basic_ack(99)
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as e:
        ch.queue_declare("", exclusive=True)
    assert e.value.reply_code == 406
    assert e.value.reply_text == "PRECONDITION_FAILED - unknown delivery tag 99"


def test_prefetch_size_nonzero_is_540_on_connection(conn):
    ch = conn.channel()
    with pytest.raises(pika.exceptions.ConnectionClosedByBroker) as e:
        ch.basic_qos(prefetch_size=10)
    assert e.value.reply_code == 540


def test_immediate_is_540_on_connection(broker_port):
    c = amqp.Connection(f"127.0.0.1:{broker_port}")
    c.connect()
    ch = c.channel()
    ch.basic_publish(amqp.Message(b"m"), exchange="", routing_key="x", immediate=True)
    with pytest.raises(amqp.exceptions.ConnectionError) as e:
        c.drain_events(timeout=5)
    assert e.value.reply_code == 540


def test_requeue_keeps_position_and_marks_redelivered(conn):
    ch = conn.channel()
    q = ch.queue_declare("", exclusive=True).method.queue
    for i in range(4):
        ch.basic_publish("", q, str(i).encode())
    got = drain(ch, q, 2, ack=False)
    ch.basic_nack(got[1][0].delivery_tag, requeue=True)
    ch.basic_reject(got[0][0].delivery_tag, requeue=True)
    again = drain(ch, q, 4)
    assert [b for _, _, b in again] == [b"0", b"1", b"2", b"3"]
    assert [m.redelivered for m, _, _ in again] == [True, True, False, False]


def test_ack_multiple_and_nack_without_requeue(conn):
    ch = conn.channel()
    q = ch.queue_declare("", exclusive=True).method.queue
    for i in range(5):
        ch.basic_publish("", q, str(i).encode())
    got = drain(ch, q, 5, ack=False)
    ch.basic_ack(got[2][0].delivery_tag, multiple=True)
    ch.basic_nack(got[4][0].delivery_tag, multiple=True, requeue=False)
    assert ch.queue_declare(q, passive=True).method.message_count == 0


def test_prefetch_limits_unacked_per_consumer(conn):
    ch = conn.channel()
    q = ch.queue_declare("", exclusive=True).method.queue
    for i in range(10):
        ch.basic_publish("", q, str(i).encode())
    ch.basic_qos(prefetch_count=3)
    got = []
    ch.basic_consume(q, lambda c, m, p, b: got.append(m))
    conn.process_data_events(time_limit=0.5)
    assert len(got) == 3
    ch.basic_ack(got[-1].delivery_tag, multiple=True)
    conn.process_data_events(time_limit=0.5)
    assert len(got) == 6


def test_server_cancel_when_queue_deleted(connect):
    c = connect()
    ch = c.channel()
    q = ch.queue_declare(uid("q")).method.queue
    cancelled = []
    ch.add_on_cancel_callback(lambda frame: cancelled.append(frame.method.consumer_tag))
    tag = ch.basic_consume(q, lambda *a: None)
    connect().channel().queue_delete(q)
    deadline = time.time() + 5
    while not cancelled and time.time() < deadline:
        c.process_data_events(time_limit=0.1)
    assert cancelled == [tag]


def test_recover_requeues_unacked(conn):
    ch = conn.channel()
    q = ch.queue_declare("", exclusive=True).method.queue
    ch.basic_publish("", q, b"m")
    (m, _, _), = drain(ch, q, 1, ack=False)
    ch.basic_recover(requeue=True)
    (m2, _, b), = drain(ch, q, 1)
    assert b == b"m" and m2.redelivered


# --- confirms and transactions ---------------------------------------------------------------

def test_confirms_count_from_one_and_cover_every_publish(broker_port):
    c = amqp.Connection(f"127.0.0.1:{broker_port}", confirm_publish=True)
    c.connect()
    ch = c.channel()
    q = ch.queue_declare("", exclusive=True)[0]
    for i in range(50):
        ch.basic_publish(amqp.Message(b"m"), exchange="", routing_key=q)  # waits for each ack
    assert ch.queue_declare(q, passive=True)[1] == 50
    c.close()


def test_confirm_and_tx_conflicts_406(conn):
    ch = conn.channel()
    ch.confirm_delivery()
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as e:
        ch.tx_select()
    assert e.value.reply_code == 406
    assert e.value.reply_text == "PRECONDITION_FAILED - cannot switch from confirm to tx mode"
    ch = conn.channel()
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as e:
        ch.tx_commit()
    assert e.value.reply_text == "PRECONDITION_FAILED - channel is not transactional"


def test_tx_commit_and_rollback(conn):
    ch = conn.channel()
    q = ch.queue_declare("", exclusive=True).method.queue
    ch.tx_select()
    ch.basic_publish("", q, b"rolled-back")
    ch.tx_rollback()
    assert ch.queue_declare(q, passive=True).method.message_count == 0
    ch.basic_publish("", q, b"committed")
    assert ch.queue_declare(q, passive=True).method.message_count == 0
    ch.tx_commit()
    assert ch.queue_declare(q, passive=True).method.message_count == 1
    (m, _, b), = drain(ch, q, 1, ack=False)
    ch.basic_ack(m.delivery_tag)
    ch.tx_rollback()  # the ack is undone
    ch.basic_recover(requeue=True)
    assert ch.queue_declare(q, passive=True).method.message_count == 1


def test_cc_and_bcc_sender_selected_routing(conn):
    ch = conn.channel()
    qs = {k: ch.queue_declare("", exclusive=True).method.queue for k in ("to", "cc", "bcc")}
    for k, q in qs.items():
        ch.queue_bind(q, "amq.direct", f"{q}-{k}")
    headers = {"CC": [f"{qs['cc']}-cc"], "BCC": [f"{qs['bcc']}-bcc"], "other": 1}
    ch.basic_publish("amq.direct", f"{qs['to']}-to", b"sel", pika.BasicProperties(headers=headers))
    for k, q in qs.items():
        (m, p, b), = drain(ch, q, 1)
        assert b == b"sel", k
        assert m.routing_key == f"{qs['to']}-to"
        assert p.headers == {"CC": [f"{qs['cc']}-cc"], "other": 1}, "BCC is stripped"
