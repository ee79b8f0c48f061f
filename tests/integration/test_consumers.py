"""Consumer rules (issue 5): consumer priorities (`x-priority`), single active consumer
(`x-single-active-consumer`). Every expectation was checked against RabbitMQ 3.10.8
(BROKER_PORT=5672); differences with 4.x are noted where RabbitMQ changed."""
import subprocess
import sys
import time

from decimal import Decimal

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
