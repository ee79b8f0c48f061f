"""Consumer rules (issue 5): consumer priorities (`x-priority`), single active consumer
(`x-single-active-consumer`), direct reply-to (`amq.rabbitmq.reply-to`) and the capabilities
that advertise them. Every expectation was checked against RabbitMQ 3.10.8
(BROKER_PORT=5672); differences with 4.x are noted where RabbitMQ changed."""
import socket
import struct
import subprocess
import sys
import time

from decimal import Decimal

import amqp
import pika
import pytest

from helpers import uid


def declare(ch, q=None, **args):
    q = q or uid("cq")
    ch.queue_declare(q, auto_delete=True, arguments=args or None)
    return q


def channel_error(fn):
    """Runs fn, which must make the broker close the channel; returns (code, text)."""
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as e:
        fn()
    return e.value.reply_code, e.value.reply_text


class Collector:
    """A pika consumer that keeps what it gets (and does not ack unless told)."""

    def __init__(self, ch, queue, prefetch=0, priority=None, auto_ack=False, exclusive=False,
                 tag=None):
        self.ch = ch
        self.got = []
        if prefetch:
            ch.basic_qos(prefetch_count=prefetch)
        args = {"x-priority": priority} if priority is not None else None
        self.tag = ch.basic_consume(queue, self.on_message, auto_ack=auto_ack,
                                    exclusive=exclusive, arguments=args, consumer_tag=tag)

    def on_message(self, ch, method, props, body):
        self.got.append((method, props, body))

    def bodies(self):
        return [b.decode() for _, _, b in self.got]

    def ack_all(self):
        if self.got:
            self.ch.basic_ack(self.got[-1][0].delivery_tag, multiple=True)


def pump(conn, until, timeout=5):
    deadline = time.time() + timeout
    while time.time() < deadline:
        conn.process_data_events(time_limit=0.02)
        if until():
            return True
    return until()


def settle(conn, seconds=0.3):
    deadline = time.time() + seconds
    while time.time() < deadline:
        conn.process_data_events(time_limit=0.02)


def publish_n(ch, q, n, start=0, **kw):
    for i in range(start, start + n):
        ch.basic_publish("", q, str(i).encode(), **kw)


# --- consumer priorities ----------------------------------------------------------------------


def test_higher_priority_consumer_gets_messages_while_it_has_credit(conn):
    setup = conn.channel()
    q = declare(setup)
    low = Collector(conn.channel(), q, priority=1)
    high = Collector(conn.channel(), q, prefetch=3, priority=10)
    publish_n(setup, q, 10)
    assert pump(conn, lambda: len(low.got) + len(high.got) == 10)
    assert high.bodies() == ["0", "1", "2"]  # then it is blocked: the rest go to the lower one
    assert low.bodies() == [str(i) for i in range(3, 10)]
    high.ack_all()
    low.ack_all()
    publish_n(setup, q, 2, start=10)
    assert pump(conn, lambda: len(high.got) == 5)
    assert high.bodies()[3:] == ["10", "11"]
    assert len(low.got) == 7


def test_equal_priorities_share_round_robin_and_lower_ones_wait(conn):
    setup = conn.channel()
    q = declare(setup)
    zero = Collector(conn.channel(), q)  # no x-priority: priority 0
    a = Collector(conn.channel(), q, priority=5)
    b = Collector(conn.channel(), q, priority=5)
    publish_n(setup, q, 6)
    assert pump(conn, lambda: len(a.got) + len(b.got) == 6)
    settle(conn, 0.2)
    assert a.bodies() == ["0", "2", "4"]
    assert b.bodies() == ["1", "3", "5"]
    assert zero.got == []


def test_negative_and_large_priorities_are_accepted(conn):
    setup = conn.channel()
    q = declare(setup)
    neg = Collector(conn.channel(), q, priority=-5)
    big = Collector(conn.channel(), q, priority=2**40)
    publish_n(setup, q, 2)
    assert pump(conn, lambda: len(big.got) == 2)
    assert neg.got == []


def test_priority_on_a_cancelled_higher_consumer_falls_back(conn):
    setup = conn.channel()
    q = declare(setup)
    low = Collector(conn.channel(), q, priority=0)
    high_ch = conn.channel()
    high = Collector(high_ch, q, priority=9)
    publish_n(setup, q, 1)
    assert pump(conn, lambda: len(high.got) == 1)
    high_ch.basic_cancel(high.tag)
    publish_n(setup, q, 1, start=1)
    assert pump(conn, lambda: len(low.got) == 1)
    assert low.bodies() == ["1"]


@pytest.mark.parametrize("value,type_name", [("high", "longstr"), (Decimal("1.5"), "decimal"),
                                              (True, "bool")])
def test_non_integer_x_priority_is_406(conn, value, type_name):
    q = declare(conn.channel())
    ch = conn.channel()
    code, text = channel_error(
        lambda: ch.basic_consume(q, lambda *a: None, arguments={"x-priority": value}))
    assert code == 406
    assert text == (f"PRECONDITION_FAILED - invalid arg 'x-priority' for queue '{q}' in vhost "
                    f"'/': \"expected integer, got {type_name}\"")
    assert conn.is_open


# --- single active consumer -----------------------------------------------------------------


def sac_queue(ch, durable=False, q=None):
    q = q or uid("sac")
    ch.queue_declare(q, durable=durable, auto_delete=not durable,
                     arguments={"x-single-active-consumer": True})
    return q


def test_single_active_consumer_gets_everything_and_fails_over_in_registration_order(conn):
    setup = conn.channel()
    q = sac_queue(setup)
    chans = [conn.channel() for _ in range(3)]
    cs = [Collector(c, q) for c in chans]
    publish_n(setup, q, 4)
    assert pump(conn, lambda: len(cs[0].got) == 4)
    settle(conn, 0.2)
    assert [len(c.got) for c in cs] == [4, 0, 0]
    assert setup.queue_declare(q, passive=True).method.consumer_count == 3
    cs[0].ack_all()
    chans[0].basic_cancel(cs[0].tag)
    publish_n(setup, q, 2, start=4)
    assert pump(conn, lambda: len(cs[1].got) == 2)
    settle(conn, 0.2)
    assert cs[1].bodies() == ["4", "5"] and cs[2].got == []
    # The active one's channel closes with unacked messages: they go to the next one.
    chans[1].close()
    assert pump(conn, lambda: len(cs[2].got) == 2)
    assert cs[2].bodies() == ["4", "5"]
    assert all(m.redelivered for m, _, _ in cs[2].got)


def test_single_active_consumer_fails_over_past_consumers_of_the_closing_channel(conn):
    setup = conn.channel()
    q = sac_queue(setup)
    closing = conn.channel()
    first = Collector(closing, q)
    Collector(closing, q)  # would be next, but its channel closes too
    last = Collector(conn.channel(), q)
    publish_n(setup, q, 2)
    assert pump(conn, lambda: len(first.got) == 2)
    closing.close()
    assert pump(conn, lambda: len(last.got) == 2)
    assert last.bodies() == ["0", "1"]
    publish_n(setup, q, 1, start=2)
    assert pump(conn, lambda: len(last.got) == 3)


def test_single_active_consumer_waits_for_credit_instead_of_using_the_others(conn):
    setup = conn.channel()
    q = sac_queue(setup)
    first = Collector(conn.channel(), q, prefetch=2)
    second = Collector(conn.channel(), q)
    publish_n(setup, q, 5)
    assert pump(conn, lambda: len(first.got) == 2)
    settle(conn, 0.3)
    assert second.got == []
    assert setup.queue_declare(q, passive=True).method.message_count == 3
    first.ack_all()
    assert pump(conn, lambda: len(first.got) == 4)


def test_single_active_consumer_ignores_priorities_in_3_10(conn):
    """RabbitMQ 3.10 classic queues: the first registered consumer is active whatever the
    priorities; on fail-over the highest-priority remaining one takes over (4.x quorum queues
    switch to a higher-priority consumer at once: not followed)."""
    setup = conn.channel()
    q = sac_queue(setup)
    first_ch = conn.channel()
    first = Collector(first_ch, q, priority=0)
    mid = Collector(conn.channel(), q, priority=5)
    top = Collector(conn.channel(), q, priority=10)
    publish_n(setup, q, 2)
    assert pump(conn, lambda: len(first.got) == 2)
    settle(conn, 0.2)
    assert mid.got == [] and top.got == []
    first.ack_all()
    first_ch.basic_cancel(first.tag)
    publish_n(setup, q, 1, start=2)
    assert pump(conn, lambda: len(top.got) == 1)
    assert mid.got == []


def test_exclusive_consume_on_a_single_active_consumer_queue_is_403(conn):
    setup = conn.channel()
    q = sac_queue(setup)
    ch = conn.channel()
    code, text = channel_error(lambda: ch.basic_consume(q, lambda *a: None, exclusive=True))
    assert (code, text) == (403, f"ACCESS_REFUSED - queue '{q}' in vhost '/' in exclusive use")


def test_single_active_consumer_after_the_connection_dies(connect, broker_port):
    conn = connect()
    setup = conn.channel()
    q = sac_queue(setup)
    # A consumer in another process takes two messages without acking, then is killed -9.
    script = (
        "import pika,os,signal,sys\n"
        f"c=pika.BlockingConnection(pika.ConnectionParameters('127.0.0.1',{broker_port}))\n"
        "ch=c.channel()\n"
        "n=[]\n"
        "def on(ch,m,p,b):\n"
        "    n.append(b)\n"
        "    if len(n)==2:\n"
        "        print('got',flush=True)\n"
        "        os.kill(os.getpid(),signal.SIGKILL)\n"
        f"ch.basic_consume('{q}',on)\n"
        "print('ready',flush=True)\n"
        "ch.start_consuming()\n")
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE)
    assert child.stdout.readline().strip() == b"ready"
    later = Collector(conn.channel(), q)
    publish_n(setup, q, 2)
    assert child.stdout.readline().strip() == b"got"
    child.wait(10)
    assert pump(conn, lambda: len(later.got) == 2, timeout=10)
    assert later.bodies() == ["0", "1"]
    assert all(m.redelivered for m, _, _ in later.got)


@pytest.mark.parametrize("value,type_name", [("true", "longstr"), (1, "signedint")])
def test_invalid_x_single_active_consumer_is_406(conn, value, type_name):
    ch = conn.channel()
    q = uid("sac")
    code, text = channel_error(
        lambda: ch.queue_declare(q, arguments={"x-single-active-consumer": value}))
    assert code == 406
    assert text == (f"PRECONDITION_FAILED - invalid arg 'x-single-active-consumer' for queue "
                    f"'{q}' in vhost '/': {{unacceptable_type,{type_name}}}")


def test_single_active_consumer_redeclare_must_match(conn):
    ch = conn.channel()
    q = sac_queue(ch)
    code, text = channel_error(lambda: ch.queue_declare(q, auto_delete=True))
    assert code == 406
    assert text == (f"PRECONDITION_FAILED - inequivalent arg 'x-single-active-consumer' for "
                    f"queue '{q}' in vhost '/': received none but current is the value 'true' "
                    f"of type 'bool'")


def test_false_single_active_consumer_is_a_normal_queue(conn):
    setup = conn.channel()
    q = uid("sac")
    setup.queue_declare(q, auto_delete=True, arguments={"x-single-active-consumer": False})
    a = Collector(conn.channel(), q)
    b = Collector(conn.channel(), q)
    publish_n(setup, q, 4)
    assert pump(conn, lambda: len(a.got) == 2 and len(b.got) == 2)


def test_single_active_consumer_survives_restart(warrend):
    def connect():
        return pika.BlockingConnection(pika.ConnectionParameters("127.0.0.1", warrend.port))

    c = connect()
    q = sac_queue(c.channel(), durable=True)
    c.close()
    warrend.stop()
    warrend.start()
    c = connect()
    setup = c.channel()
    a = Collector(c.channel(), q)
    b = Collector(c.channel(), q)
    publish_n(setup, q, 3)
    assert pump(c, lambda: len(a.got) == 3)
    settle(c, 0.2)
    assert b.got == []
    c.close()


# --- direct reply-to ------------------------------------------------------------------------

REPLY_TO = "amq.rabbitmq.reply-to"


def test_direct_reply_to_round_trip(connect):
    requester_conn, responder_conn = connect(), connect()
    req = requester_conn.channel()
    server = responder_conn.channel()
    q = declare(server)
    replies = Collector(req, REPLY_TO, auto_ack=True)
    ok = req.queue_declare(REPLY_TO)  # effectively passive: one consumer, no messages
    assert (ok.method.queue, ok.method.message_count, ok.method.consumer_count) == (REPLY_TO, 0, 1)
    req.basic_publish("", q, b"ask", pika.BasicProperties(reply_to=REPLY_TO, correlation_id="c1"))
    m, props, body = None, None, None
    deadline = time.time() + 5
    while m is None and time.time() < deadline:
        m, props, body = server.basic_get(q, auto_ack=True)
    assert body == b"ask" and props.correlation_id == "c1"
    reply_to = props.reply_to
    assert reply_to.startswith(REPLY_TO + ".") and len(reply_to) > len(REPLY_TO) + 10
    probe = responder_conn.channel()
    ok = probe.queue_declare(reply_to, passive=True)
    assert (ok.method.queue, ok.method.message_count, ok.method.consumer_count) == (reply_to, 0, 1)
    server.basic_publish("", reply_to, b"answer 1", pika.BasicProperties(correlation_id="c1"))
    server.basic_publish("", reply_to, b"answer 2")
    assert pump(requester_conn, lambda: len(replies.got) == 2)
    m, props, body = replies.got[0]
    assert (m.consumer_tag, m.exchange, m.routing_key, m.redelivered) == (
        replies.tag, "", reply_to, False)
    assert body == b"answer 1" and props.correlation_id == "c1"
    assert replies.bodies() == ["answer 1", "answer 2"]
    # After the requester cancels, replies are dropped and the name is gone.
    req.basic_cancel(replies.tag)
    server.basic_publish("", reply_to, b"late")
    settle(requester_conn, 0.2)
    assert len(replies.got) == 2
    code, text = channel_error(lambda: probe.queue_declare(reply_to, passive=True))
    assert (code, text) == (404, f"NOT_FOUND - no queue '{reply_to}' in vhost '/'")


def test_direct_reply_to_with_amqp_client(broker_port):
    """py-amqp as the requester, so a second client library sees the same thing."""
    c = amqp.Connection(f"127.0.0.1:{broker_port}")
    c.connect()
    ch = c.channel()
    got = []
    tag = ch.basic_consume(REPLY_TO, callback=got.append, no_ack=True)
    assert tag.startswith("amq.ctag-")  # generated by the server, as for any consumer
    q = uid("rpc")
    ch.queue_declare(q, auto_delete=True)
    ch.basic_publish(amqp.Message(b"ping", reply_to=REPLY_TO), routing_key=q)
    msg = None
    deadline = time.time() + 5
    while msg is None and time.time() < deadline:
        msg = ch.basic_get(q, no_ack=True)
    ch.basic_publish(amqp.Message(b"pong"), routing_key=msg.properties["reply_to"])
    c.drain_events(timeout=5)
    assert [m.body for m in got] == [b"pong"]
    assert got[0].delivery_info["consumer_tag"] == tag
    c.close()


def test_reply_consumer_must_be_no_ack(conn):
    ch = conn.channel()
    code, text = channel_error(lambda: ch.basic_consume(REPLY_TO, lambda *a: None))
    assert (code, text) == (406, "PRECONDITION_FAILED - reply consumer cannot acknowledge")


def test_one_reply_consumer_per_channel(conn):
    ch = conn.channel()
    ch.basic_consume(REPLY_TO, lambda *a: None, auto_ack=True)
    code, text = channel_error(
        lambda: ch.basic_consume(REPLY_TO, lambda *a: None, auto_ack=True))
    assert (code, text) == (406, "PRECONDITION_FAILED - reply consumer already set")
    other = conn.channel()  # another channel may have its own
    other.basic_consume(REPLY_TO, lambda *a: None, auto_ack=True)


def test_reply_consumer_tag_reuse_is_530(broker_port):
    c = amqp.Connection(f"127.0.0.1:{broker_port}")
    c.connect()
    ch = c.channel()
    q = uid("rq")
    ch.queue_declare(q, auto_delete=True)
    ch.basic_consume(q, consumer_tag="my-tag", callback=lambda m: None)
    with pytest.raises(amqp.exceptions.NotAllowed) as e:
        ch.basic_consume(REPLY_TO, consumer_tag="my-tag", callback=lambda m: None, no_ack=True)
    assert e.value.reply_text == "NOT_ALLOWED - attempt to reuse consumer tag 'my-tag'"


def test_publish_with_reply_to_but_no_reply_consumer_is_406(conn):
    consuming = conn.channel()
    consuming.basic_consume(REPLY_TO, lambda *a: None, auto_ack=True)
    ch = conn.channel()  # not this channel's consumer
    q = declare(ch)

    def go():
        ch.basic_publish("", q, b"x", pika.BasicProperties(reply_to=REPLY_TO))
        ch.queue_declare(q, passive=True)  # a round trip to see the close

    code, text = channel_error(go)
    assert (code, text) == (406, "PRECONDITION_FAILED - fast reply consumer does not exist")
    assert consuming.queue_declare(q, passive=True).method.message_count == 0


def test_reply_consumer_gone_with_its_channel(conn):
    req = conn.channel()
    req.basic_consume(REPLY_TO, lambda *a: None, auto_ack=True)
    server = conn.channel()
    q = declare(server)
    req.basic_publish("", q, b"ask", pika.BasicProperties(reply_to=REPLY_TO))
    deadline = time.time() + 5
    m = None
    while m is None and time.time() < deadline:
        m, props, _ = server.basic_get(q, auto_ack=True)
    req.close()
    server.basic_publish("", props.reply_to, b"late")  # dropped silently
    code, text = channel_error(lambda: server.queue_declare(props.reply_to, passive=True))
    assert (code, text) == (404, f"NOT_FOUND - no queue '{props.reply_to}' in vhost '/'")


def test_replies_with_mandatory(conn):
    """RabbitMQ 3.10 routes replies outside the queue lookup, so a mandatory reply comes back
    as basic.return NO_ROUTE even when it was delivered (4.2 stopped returning them)."""
    req = conn.channel()
    replies = Collector(req, REPLY_TO, auto_ack=True)
    server = conn.channel()
    q = declare(server)
    returned = []
    server.add_on_return_callback(lambda ch, m, p, b: returned.append((m, b)))
    req.basic_publish("", q, b"ask", pika.BasicProperties(reply_to=REPLY_TO))
    deadline = time.time() + 5
    m = None
    while m is None and time.time() < deadline:
        m, props, _ = server.basic_get(q, auto_ack=True)
    server.basic_publish("", props.reply_to, b"answer", mandatory=True)
    assert pump(conn, lambda: len(replies.got) == 1 and len(returned) == 1)
    assert (returned[0][0].reply_code, returned[0][0].reply_text) == (312, "NO_ROUTE")
    req.basic_cancel(replies.tag)
    server.basic_publish("", props.reply_to, b"late", mandatory=True)
    assert pump(conn, lambda: len(returned) == 2)
    assert returned[1][1] == b"late" and len(replies.got) == 1


def test_reply_to_names_that_do_not_exist_are_404(conn):
    """RabbitMQ 3.10 closes the connection with 541 INTERNAL_ERROR (a crash) for a declare of
    a malformed "amq.rabbitmq.reply-to.A.B"; Warren answers 404 for those as for these."""
    ch = conn.channel()
    for name in (REPLY_TO + ".bogus", REPLY_TO + "x"):
        code, text = channel_error(lambda: ch.queue_declare(name))
        assert (code, text) == (404, f"NOT_FOUND - no queue '{name}' in vhost '/'")
        ch = conn.channel()
    ok = ch.queue_declare(REPLY_TO, passive=True)  # even without a reply consumer
    assert (ok.method.message_count, ok.method.consumer_count) == (0, 1)


def test_reply_to_pseudo_queue_is_not_a_queue(conn):
    ch = conn.channel()
    for op in (lambda: ch.queue_bind(REPLY_TO, "amq.fanout"), lambda: ch.basic_get(REPLY_TO),
               lambda: ch.queue_purge(REPLY_TO)):
        code, text = channel_error(op)
        assert (code, text) == (404, f"NOT_FOUND - no queue '{REPLY_TO}' in vhost '/'")
        ch = conn.channel()
    assert ch.queue_delete(REPLY_TO).method.message_count == 0  # deleting nothing is fine
    returned = []
    ch.add_on_return_callback(lambda c, m, p, b: returned.append(m))
    ch.basic_publish("", REPLY_TO, b"x", mandatory=True)  # no special meaning as a key
    assert pump(conn, lambda: len(returned) == 1)
    assert returned[0].reply_text == "NO_ROUTE"


def test_reply_consumer_ignores_the_exclusive_flag(conn):
    ch = conn.channel()
    ch.basic_consume(REPLY_TO, lambda *a: None, auto_ack=True, exclusive=True)
    other = conn.channel()
    other.basic_consume(REPLY_TO, lambda *a: None, auto_ack=True, exclusive=True)


def test_reply_consumer_cancel_ok(conn):
    ch = conn.channel()
    tag = ch.basic_consume(REPLY_TO, lambda *a: None, auto_ack=True, consumer_tag="mine")
    assert tag == "mine"
    ch.basic_cancel("mine")
    # A new one can be set after the cancel.
    ch.basic_consume(REPLY_TO, lambda *a: None, auto_ack=True)


# --- capabilities -----------------------------------------------------------------------------

# RabbitMQ 3.10.8's connection.start capabilities table, byte for byte (type 'F' value).
RABBITMQ_CAPABILITIES = bytes.fromhex(
    "000000c7127075626c69736865725f636f6e6669726d7374011a65786368616e67655f65786368616e6765"
    "5f62696e64696e677374010a62617369632e6e61636b740116636f6e73756d65725f63616e63656c5f6e6f"
    "74696679740112636f6e6e656374696f6e2e626c6f636b6564740113636f6e73756d65725f7072696f7269"
    "7469657374011c61757468656e7469636174696f6e5f6661696c7572655f636c6f73657401107065725f63"
    "6f6e73756d65725f716f7374010f6469726563745f7265706c795f746f7401")


def test_capabilities_table_is_rabbitmqs_byte_for_byte(broker_port):
    s = socket.create_connection(("127.0.0.1", broker_port), timeout=10)
    s.sendall(b"AMQP\x00\x00\x09\x01")
    buf = b""
    while len(buf) < 7 or len(buf) < struct.unpack(">BHI", buf[:7])[2] + 8:
        chunk = s.recv(65536)
        assert chunk
        buf += chunk
    s.close()
    payload = buf[7:7 + struct.unpack(">BHI", buf[:7])[2]]
    assert payload[:4] == struct.pack(">HH", 10, 10)
    table = payload[10:10 + struct.unpack(">I", payload[6:10])[0]]
    key = b"\x0ccapabilitiesF"
    at = table.index(key) + len(key)
    size = struct.unpack(">I", table[at:at + 4])[0]
    assert table[at:at + 4 + size] == RABBITMQ_CAPABILITIES
