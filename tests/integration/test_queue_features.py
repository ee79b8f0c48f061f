"""Queue features (issue 5, queue half): argument validation, message TTL (queue and message,
active expiry), x-expires, length limits and overflow, dead-lettering with x-death, priority
queues, and all of them on durable queues across a restart. Every expectation that does not
need a restart was checked against RabbitMQ 3.10 (BROKER_PORT=5672); where Warren goes further
(messages expire where they are, not only at the head) the test says so."""
import os
import signal
import time

import pika
import pytest

from conftest import Warrend
from helpers import drain, uid


def channel_error(fn):
    """Runs fn, which must make the broker close the channel; returns (code, text)."""
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as e:
        fn()
    return e.value.reply_code, e.value.reply_text


def wait_for(cond, timeout=5):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = cond()
        if v:
            return v
        time.sleep(0.01)
    return cond()


def count(ch, q):
    return ch.queue_declare(q, passive=True).method.message_count


def gone_without_touching(conn, q, timeout=5):
    """Waits until queue q no longer exists. A passive declare would count as a use (x-expires
    restarts, as in RabbitMQ), so this probes with mandatory publishes on a confirm channel."""
    ch = conn.channel()
    ch.confirm_delivery()

    def probe():
        try:
            ch.basic_publish("", q, b"probe", mandatory=True)
            return False
        except pika.exceptions.UnroutableError:
            return True
    return wait_for(probe, timeout)


def dlx_setup(ch, exchange_type="fanout"):
    """A dead-letter exchange with one queue bound to everything; returns (dlx, dead queue)."""
    dlx, dead = uid("dlx"), uid("dead")
    ch.exchange_declare(dlx, exchange_type, auto_delete=True)
    ch.queue_declare(dead, auto_delete=True)
    ch.queue_bind(dead, dlx, "#" if exchange_type == "topic" else "")
    return dlx, dead


# --- 1. arguments ------------------------------------------------------------------------------

BAD_ARGS = [
    ({"x-message-ttl": -1}, "invalid arg 'x-message-ttl' for queue '{q}' in vhost '/': "
     "{{value_negative,-1}}"),
    ({"x-message-ttl": "abc"}, "invalid arg 'x-message-ttl' for queue '{q}' in vhost '/': "
     "\"expected integer, got longstr\""),
    ({"x-message-ttl": True}, "invalid arg 'x-message-ttl' for queue '{q}' in vhost '/': "
     "\"expected integer, got bool\""),
    ({"x-message-ttl": 2 ** 40}, "invalid arg 'x-message-ttl' for queue '{q}' in vhost '/': "
     "{{value_too_large,1099511627776}}"),
    ({"x-expires": 0}, "invalid arg 'x-expires' for queue '{q}' in vhost '/': {{value_zero,0}}"),
    ({"x-expires": -5}, "invalid arg 'x-expires' for queue '{q}' in vhost '/': "
     "{{value_negative,-5}}"),
    ({"x-expires": "x"}, "invalid arg 'x-expires' for queue '{q}' in vhost '/': "
     "\"expected integer, got longstr\""),
    ({"x-max-length": -1}, "invalid arg 'x-max-length' for queue '{q}' in vhost '/': "
     "{{value_negative,-1}}"),
    ({"x-max-length": "a"}, "invalid arg 'x-max-length' for queue '{q}' in vhost '/': "
     "\"expected integer, got longstr\""),
    ({"x-max-length-bytes": -1}, "invalid arg 'x-max-length-bytes' for queue '{q}' in vhost "
     "'/': {{value_negative,-1}}"),
    ({"x-max-priority": 256}, "invalid arg 'x-max-priority' for queue '{q}' in vhost '/': "
     "{{max_value_exceeded,256}}"),
    ({"x-max-priority": -1}, "invalid arg 'x-max-priority' for queue '{q}' in vhost '/': "
     "{{value_negative,-1}}"),
    ({"x-max-priority": "a"}, "invalid arg 'x-max-priority' for queue '{q}' in vhost '/': "
     "\"expected integer, got longstr\""),
    ({"x-overflow": "bogus"}, "invalid arg 'x-overflow' for queue '{q}' in vhost '/': "
     "invalid_overflow"),
    ({"x-overflow": 1}, "invalid arg 'x-overflow' for queue '{q}' in vhost '/': "
     "{{unacceptable_type,signedint}}"),
    ({"x-dead-letter-exchange": 1}, "invalid type 'signedint' for arg 'x-dead-letter-exchange' "
     "in queue '{q}' in vhost '/'"),
    ({"x-dead-letter-routing-key": "rk"}, "invalid arg 'x-dead-letter-routing-key' for queue "
     "'{q}' in vhost '/': routing_key_but_no_dlx_defined"),
    ({"x-dead-letter-routing-key": 5, "x-dead-letter-exchange": "dx"}, "invalid arg "
     "'x-dead-letter-routing-key' for queue '{q}' in vhost '/': {{unacceptable_type,signedint}}"),
    ({"x-queue-mode": "bad"}, "invalid arg 'x-queue-mode' for queue '{q}' in vhost '/': "
     "\"unsupported queue mode 'bad'\""),
]


@pytest.mark.parametrize("args,text", BAD_ARGS, ids=[str(a) for a, _ in BAD_ARGS])
def test_bad_queue_arguments_are_refused_with_rabbitmqs_text(conn, args, text):
    q = uid("badarg")
    code, got = channel_error(lambda: conn.channel().queue_declare(q, arguments=args))
    assert (code, got) == (406, "PRECONDITION_FAILED - " + text.format(q=q))
    # The broker keeps serving the connection, and nothing was declared.
    ch = conn.channel()
    code, _ = channel_error(lambda: ch.queue_declare(q, passive=True))
    assert code == 404


def test_good_arguments_are_accepted_and_compared_on_redeclare(conn):
    ch = conn.channel()
    q = uid("args")
    args = {"x-message-ttl": 1000, "x-max-length": 5, "x-overflow": "reject-publish",
            "x-max-priority": 255, "x-expires": 60000, "x-dead-letter-exchange": "",
            "x-dead-letter-routing-key": "k", "x-max-length-bytes": 0}
    ch.queue_declare(q, arguments=args)
    ch.queue_declare(q, arguments=args)  # same arguments: fine
    code, text = channel_error(lambda: ch.queue_declare(q, arguments={**args,
                                                                      "x-message-ttl": 2000}))
    assert (code, text) == (406, f"PRECONDITION_FAILED - inequivalent arg 'x-message-ttl' for "
                            f"queue '{q}' in vhost '/': received '2000' but current is '1000'")
    conn.channel().queue_delete(q)


@pytest.mark.parametrize("expiration,why", [
    ("abc", "no_integer"), ("", "no_integer"), (" 5", "no_integer"),
    ("-1", "{value_negative,-1}"), ("1.5", "{leftover_string,\".5\"}"),
    ("315360000001", "{value_too_large,315360000001}"),
])
def test_invalid_expiration_closes_the_channel(conn, expiration, why):
    ch = conn.channel()
    q = uid("exp")
    ch.queue_declare(q, auto_delete=True)

    def publish():
        ch.basic_publish("", q, b"x", pika.BasicProperties(expiration=expiration))
        ch.queue_declare(q, passive=True)

    code, text = channel_error(publish)
    assert (code, text) == (406, f"PRECONDITION_FAILED - invalid expiration '{expiration}': "
                            f"{why}")
    assert count(conn.channel(), q) == 0


# --- 2. dead-lettering -------------------------------------------------------------------------

def test_rejected_message_is_dead_lettered_with_x_death(conn):
    ch = conn.channel()
    dlx, dead = dlx_setup(ch, "topic")
    src = uid("src")
    ch.queue_declare(src, auto_delete=True, arguments={"x-dead-letter-exchange": dlx})
    ch.basic_publish("", src, b"m1", pika.BasicProperties(
        expiration="60000", headers={"CC": ["cc1"], "BCC": ["bcc1"]}, delivery_mode=2,
        content_type="text/plain"))
    m, _, _ = ch.basic_get(src)
    ch.basic_reject(m.delivery_tag, requeue=False)
    (m, p, b), = drain(ch, dead, 1)
    assert (m.exchange, m.routing_key, b) == (dlx, src, b"m1")
    assert p.expiration is None and p.content_type == "text/plain" and p.delivery_mode == 2
    h = p.headers
    assert h["CC"] == ["cc1"] and "BCC" not in h
    assert (h["x-first-death-reason"], h["x-first-death-queue"], h["x-first-death-exchange"]) == \
        ("rejected", src, "")
    assert "x-last-death-reason" not in h  # RabbitMQ 3.10 has no x-last-death-*
    (d,) = h["x-death"]
    assert d["count"] == 1 and d["reason"] == "rejected" and d["queue"] == src
    assert d["exchange"] == "" and d["routing-keys"] == [src, "cc1"]
    assert d["original-expiration"] == "60000"
    assert abs(time.mktime(d["time"].timetuple()) - time.mktime(time.gmtime())) < 120


def test_nack_without_requeue_dead_letters_and_requeue_does_not(conn):
    ch = conn.channel()
    dlx, dead = dlx_setup(ch)
    src = uid("src")
    ch.queue_declare(src, auto_delete=True, arguments={"x-dead-letter-exchange": dlx})
    for i in range(3):
        ch.basic_publish("", src, b"n%d" % i)
    got = drain(ch, src, 3, ack=False)
    ch.basic_nack(got[0][0].delivery_tag, requeue=True)
    ch.basic_nack(got[2][0].delivery_tag, multiple=True, requeue=False)
    bodies = sorted(b for _, _, b in drain(ch, dead, 2))
    assert bodies == [b"n1", b"n2"]
    (m, _, b), = drain(ch, src, 1)
    assert b == b"n0" and m.redelivered


def test_dead_letter_routing_key_replaces_key_and_drops_cc(conn):
    ch = conn.channel()
    dlx = uid("dlx")
    ch.exchange_declare(dlx, "direct", auto_delete=True)
    dead, other = uid("dead"), uid("other")
    for q, k in ((dead, "dlk"), (other, "cc1")):
        ch.queue_declare(q, auto_delete=True)
        ch.queue_bind(q, dlx, k)
    src = uid("src")
    ch.queue_declare(src, auto_delete=True, arguments={"x-dead-letter-exchange": dlx,
                                                       "x-dead-letter-routing-key": "dlk"})
    ch.basic_publish("", src, b"m", pika.BasicProperties(headers={"CC": ["cc1"]}))
    m, _, _ = ch.basic_get(src)
    ch.basic_reject(m.delivery_tag, requeue=False)
    (m, p, _), = drain(ch, dead, 1)
    assert m.routing_key == "dlk" and "CC" not in p.headers
    assert p.headers["x-death"][0]["routing-keys"] == [src, "cc1"]
    assert count(ch, other) == 0


def test_deaths_fold_per_queue_and_reason_most_recent_first(conn):
    ch = conn.channel()
    a, b = uid("a"), uid("b")
    # a dead-letters to b, b dead-letters back to a: rejections are not a cycle.
    ch.queue_declare(a, auto_delete=True, arguments={"x-dead-letter-exchange": "",
                                                     "x-dead-letter-routing-key": b})
    ch.queue_declare(b, auto_delete=True, arguments={"x-dead-letter-exchange": "",
                                                     "x-dead-letter-routing-key": a})
    ch.basic_publish("", a, b"loop")
    for q in (a, b, a):
        (m, _, _), = drain(ch, q, 1, ack=False)
        ch.basic_reject(m.delivery_tag, requeue=False)
    (m, p, _), = drain(ch, b, 1)
    deaths = p.headers["x-death"]
    assert [(d["queue"], d["reason"], d["count"]) for d in deaths] == \
        [(a, "rejected", 2), (b, "rejected", 1)]
    assert p.headers["x-first-death-queue"] == a


def test_missing_dead_letter_exchange_drops_the_message(conn):
    ch = conn.channel()
    src = uid("src")
    ch.queue_declare(src, auto_delete=True, arguments={"x-dead-letter-exchange": uid("none")})
    ch.basic_publish("", src, b"m")
    m, _, _ = ch.basic_get(src)
    ch.basic_reject(m.delivery_tag, requeue=False)
    assert count(ch, src) == 0
    ch.basic_publish("", src, b"still serving")
    assert wait_for(lambda: count(ch, src) == 1)


# --- 3. TTL ------------------------------------------------------------------------------------

def test_queue_ttl_dead_letters_expired_messages_with_reason_expired(conn):
    ch = conn.channel()
    dlx, dead = dlx_setup(ch)
    src = uid("ttl")
    ch.queue_declare(src, auto_delete=True, arguments={"x-dead-letter-exchange": dlx,
                                                       "x-message-ttl": 10})
    ch.basic_publish("", src, b"t", pika.BasicProperties(expiration="5"))
    (m, p, b), = drain(ch, dead, 1)
    assert b == b"t" and p.expiration is None
    (d,) = p.headers["x-death"]
    assert (d["reason"], d["queue"], d["original-expiration"]) == ("expired", src, "5")
    assert count(ch, src) == 0


def test_expired_message_behind_a_live_one_leaves_without_reaching_the_head(conn):
    """Beyond RabbitMQ (which expires per-message TTLs only at the head): Warren dead-letters a
    message when it expires wherever it is in the queue."""
    if not os.environ.get("WARREN_BIN"):
        pytest.skip("Warren only: RabbitMQ expires per-message TTLs at the head")
    ch = conn.channel()
    dlx, dead = dlx_setup(ch)
    src = uid("ttl")
    ch.queue_declare(src, auto_delete=True, arguments={"x-dead-letter-exchange": dlx})
    ch.basic_publish("", src, b"keeps")
    ch.basic_publish("", src, b"short", pika.BasicProperties(expiration="20"))
    (_, _, b), = drain(ch, dead, 1)
    assert b == b"short"
    assert count(ch, src) == 1


def test_expired_message_reaches_a_consumer_of_the_dead_letter_queue(conn):
    """The expiry runs on a timer, with no client request to carry it: the dead-lettered copy
    must still be pushed to a waiting consumer."""
    ch = conn.channel()
    dlx, dead = dlx_setup(ch)
    src = uid("ttlpush")
    ch.queue_declare(src, auto_delete=True, arguments={"x-dead-letter-exchange": dlx,
                                                       "x-message-ttl": 50})
    got = []
    ch.basic_consume(dead, lambda c, m, p, b: got.append(b), auto_ack=True)
    ch.basic_publish("", src, b"pushed")
    wait_for(lambda: conn.process_data_events(time_limit=0.05) or got)
    assert got == [b"pushed"]


def test_ttl_zero_goes_to_a_waiting_consumer_or_expires(conn):
    ch = conn.channel()
    dlx, dead = dlx_setup(ch)
    src = uid("ttl0")
    ch.queue_declare(src, auto_delete=True, arguments={"x-dead-letter-exchange": dlx,
                                                       "x-message-ttl": 0})
    ch.basic_publish("", src, b"nobody")
    (_, p, b), = drain(ch, dead, 1)
    assert b == b"nobody" and p.headers["x-death"][0]["reason"] == "expired"
    got = []
    ch.basic_consume(src, lambda c, m, p, b: got.append(b), auto_ack=True)
    ch.basic_publish("", src, b"taken")
    wait_for(lambda: conn.process_data_events(time_limit=0.02) or got)
    assert got == [b"taken"]


def test_expiry_cycle_without_rejection_is_dropped(conn):
    ch = conn.channel()
    src = uid("cycle")
    ch.queue_declare(src, auto_delete=True, arguments={"x-dead-letter-exchange": "",
                                                       "x-message-ttl": 10})
    ch.basic_publish("", src, b"gone")
    # It expires, is dead-lettered back to itself and dropped there (no endless loop).
    time.sleep(0.2)
    assert count(ch, src) == 0
    ch.basic_publish("", src, b"next")
    assert count(ch, src) in (0, 1)


def test_get_does_not_return_expired_messages(conn):
    ch = conn.channel()
    src = uid("ttlget")
    ch.queue_declare(src, auto_delete=True, arguments={"x-message-ttl": 30})
    ch.basic_publish("", src, b"old")
    time.sleep(0.1)  # past the TTL: the message is dead, whether removed yet or not
    assert ch.basic_get(src) == (None, None, None)
    assert count(ch, src) == 0


# --- 4. length limits --------------------------------------------------------------------------

def test_max_length_drop_head_dead_letters_with_reason_maxlen(conn):
    ch = conn.channel()
    dlx, dead = dlx_setup(ch)
    src = uid("maxlen")
    ch.queue_declare(src, auto_delete=True, arguments={"x-dead-letter-exchange": dlx,
                                                       "x-max-length": 2})
    for i in range(4):
        ch.basic_publish("", src, b"%d" % i)
    assert [b for _, _, b in drain(ch, src, 2)] == [b"2", b"3"]
    got = drain(ch, dead, 2)
    assert [b for _, _, b in got] == [b"0", b"1"]
    assert got[0][1].headers["x-death"][0]["reason"] == "maxlen"


def test_requeue_over_max_length_drops_the_head(conn):
    ch = conn.channel()
    src = uid("maxlenrq")
    ch.queue_declare(src, auto_delete=True, arguments={"x-max-length": 1})
    ch.basic_publish("", src, b"a")
    (m, _, _), = drain(ch, src, 1, ack=False)
    ch.basic_publish("", src, b"b")
    assert wait_for(lambda: count(ch, src) == 1)
    ch.basic_nack(m.delivery_tag, requeue=True)  # a goes back to the head, over the limit
    assert [b for _, _, b in drain(ch, src, 2, timeout=0.5)] == [b"b"]


def test_inequivalent_alternate_exchange_shows_both_values(conn):
    ch = conn.channel()
    x = uid("ae")
    ch.exchange_declare(x, "fanout", auto_delete=True, arguments={"alternate-exchange": "x1"})
    ch.queue_declare(x, auto_delete=True, exclusive=True)
    ch.queue_bind(x, x)  # keeps the auto-delete exchange alive until the connection closes
    code, text = channel_error(lambda: ch.exchange_declare(
        x, "fanout", auto_delete=True, arguments={"alternate-exchange": "x2"}))
    assert (code, text) == (406, f"PRECONDITION_FAILED - inequivalent arg 'alternate-exchange' "
                            f"for exchange '{x}' in vhost '/': received 'x2' but current is 'x1'")


def test_max_length_bytes_counts_body_bytes(conn):
    ch = conn.channel()
    src = uid("maxbytes")
    ch.queue_declare(src, auto_delete=True, arguments={"x-max-length-bytes": 10})
    for body in (b"aaaa", b"bbbb", b"cccc"):
        ch.basic_publish("", src, body)
    assert [b for _, _, b in drain(ch, src, 2)] == [b"bbbb", b"cccc"]


def test_reject_publish_nacks_confirms_and_drops_silently_otherwise(conn):
    ch = conn.channel()
    src = uid("rejpub")
    ch.queue_declare(src, auto_delete=True, arguments={"x-max-length": 1,
                                                       "x-overflow": "reject-publish"})
    ch.basic_publish("", src, b"first")
    ch.basic_publish("", src, b"dropped")  # no confirms: silently dropped
    assert wait_for(lambda: count(ch, src) == 1)
    ch.confirm_delivery()
    with pytest.raises(pika.exceptions.NackError):
        ch.basic_publish("", src, b"nacked")
    assert [b for _, _, b in drain(ch, src, 2, timeout=0.5)] == [b"first"]
    ch.basic_publish("", src, b"room again")  # acked
    assert count(ch, src) == 1


def test_reject_publish_dlx_nacks_and_dead_letters(conn):
    ch = conn.channel()
    dlx, dead = dlx_setup(ch)
    src = uid("rejdlx")
    ch.queue_declare(src, auto_delete=True, arguments={"x-max-length": 1,
                                                       "x-overflow": "reject-publish-dlx",
                                                       "x-dead-letter-exchange": dlx})
    ch.confirm_delivery()
    ch.basic_publish("", src, b"kept")
    with pytest.raises(pika.exceptions.NackError):
        ch.basic_publish("", src, b"refused")
    (_, p, b), = drain(ch, dead, 1)
    assert b == b"refused" and p.headers["x-death"][0]["reason"] == "maxlen"
    assert count(ch, src) == 1


# --- 5. x-expires ------------------------------------------------------------------------------

def test_unused_queue_is_deleted_after_x_expires(conn):
    ch = conn.channel()
    q = uid("expires")
    ch.queue_declare(q, arguments={"x-expires": 200})
    ch.basic_publish("", q, b"lost with the queue")
    assert gone_without_touching(conn, q)


def test_queue_with_a_consumer_does_not_expire_until_unused(conn):
    ch = conn.channel()
    q = uid("expires")
    ch.queue_declare(q, arguments={"x-expires": 100})
    tag = ch.basic_consume(q, lambda *a: None)
    time.sleep(0.4)
    assert ch.queue_declare(q, passive=True).method.consumer_count == 1
    ch.basic_cancel(tag)
    assert gone_without_touching(conn, q)


# --- 6. priorities -----------------------------------------------------------------------------

def test_priority_queue_delivers_by_priority_then_arrival(conn):
    ch = conn.channel()
    q = uid("prio")
    ch.queue_declare(q, auto_delete=True, arguments={"x-max-priority": 5})
    for body, prio in ((b"low1", 1), (b"none", None), (b"high1", 5), (b"over", 200),
                       (b"low2", 1), (b"high2", 5), (b"mid", 3)):
        ch.basic_publish("", q, body, pika.BasicProperties(priority=prio))
    got = [b for _, _, b in drain(ch, q, 7)]
    # 200 is above the maximum: treated as 5, after the earlier 5.
    assert got == [b"high1", b"over", b"high2", b"mid", b"low1", b"low2", b"none"]


def test_priority_requeue_keeps_position(conn):
    ch = conn.channel()
    q = uid("prio")
    ch.queue_declare(q, auto_delete=True, arguments={"x-max-priority": 2})
    for body, prio in ((b"a", 2), (b"b", 2), (b"c", 1)):
        ch.basic_publish("", q, body, pika.BasicProperties(priority=prio))
    got = drain(ch, q, 2, ack=False)
    assert [b for _, _, b in got] == [b"a", b"b"]
    ch.basic_nack(got[0][0].delivery_tag, requeue=True)
    assert [b for _, _, b in drain(ch, q, 2)] == [b"a", b"c"]
    ch.basic_ack(got[1][0].delivery_tag)


def test_dead_lettered_messages_keep_their_priority(conn):
    ch = conn.channel()
    dead, src = uid("pdead"), uid("psrc")
    ch.queue_declare(dead, auto_delete=True, arguments={"x-max-priority": 3})
    ch.queue_declare(src, auto_delete=True, arguments={"x-dead-letter-exchange": "",
                                                       "x-dead-letter-routing-key": dead})
    for body, prio in ((b"low", 1), (b"high", 3)):
        ch.basic_publish("", src, body, pika.BasicProperties(priority=prio))
    got = drain(ch, src, 2, ack=False)
    ch.basic_nack(got[-1][0].delivery_tag, multiple=True, requeue=False)
    assert wait_for(lambda: count(ch, dead) == 2)
    assert [b for _, _, b in drain(ch, dead, 2)] == [b"high", b"low"]


def test_priority_ignored_in_a_plain_queue(conn):
    ch = conn.channel()
    q = uid("plain")
    ch.queue_declare(q, auto_delete=True)
    for body, prio in ((b"1", 1), (b"2", 9)):
        ch.basic_publish("", q, body, pika.BasicProperties(priority=prio))
    assert [b for _, _, b in drain(ch, q, 2)] == [b"1", b"2"]


# --- 7. restart --------------------------------------------------------------------------------

PERSISTENT = 2


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
def test_durable_features_survive_a_restart(warrend_bin, sig):
    w = Warrend(warrend_bin).start()
    try:
        c = pika.BlockingConnection(pika.ConnectionParameters("127.0.0.1", w.port))
        ch = c.channel()
        ch.confirm_delivery()
        ch.exchange_declare("dlx", "fanout", durable=True)
        ch.queue_declare("dead", durable=True)
        ch.queue_bind("dead", "dlx")
        ch.queue_declare("ttl", durable=True, arguments={"x-message-ttl": 3000,
                                                         "x-dead-letter-exchange": "dlx"})
        ch.queue_declare("prio", durable=True, arguments={"x-max-priority": 9})
        ch.queue_declare("rej", durable=True, arguments={"x-dead-letter-exchange": "dlx",
                                                         "x-max-length": 2})
        ch.basic_publish("", "ttl", b"expires later", pika.BasicProperties(delivery_mode=2))
        ch.basic_publish("", "ttl", b"expires soon",
                         pika.BasicProperties(delivery_mode=2, expiration="2000"))
        for body, prio in ((b"p1", 1), (b"p9", 9), (b"p5", 5)):
            ch.basic_publish("", "prio", body, pika.BasicProperties(delivery_mode=2,
                                                                    priority=prio))
        ch.basic_publish("", "rej", b"r", pika.BasicProperties(delivery_mode=2))
        c.close()
        w.stop(sig)
        w.start()
        c = pika.BlockingConnection(pika.ConnectionParameters("127.0.0.1", w.port))
        ch = c.channel()
        # Arguments came back: redeclaring with them is equivalent.
        ch.queue_declare("prio", durable=True, arguments={"x-max-priority": 9})
        assert [b for _, _, b in drain(ch, "prio", 3)] == [b"p9", b"p5", b"p1"]
        # TTLs kept their absolute expiry: both are dead-lettered, the short one first.
        got = drain(ch, "dead", 2, timeout=10)
        assert [b for _, _, b in got] == [b"expires soon", b"expires later"]
        assert all(p.headers["x-death"][0]["reason"] == "expired" for _, p, _ in got)
        # DLX and max-length still work; the dead-lettered copy is stored durably.
        for body in (b"s", b"t"):
            ch.basic_publish("", "rej", body, pika.BasicProperties(delivery_mode=2))
        assert count(ch, "rej") == 2
        (m, _, _), = drain(ch, "rej", 1, ack=False)
        ch.basic_reject(m.delivery_tag, requeue=False)
        assert wait_for(lambda: count(ch, "dead") == 2)
        ch.queue_declare("exp", durable=True, arguments={"x-expires": 3000})
        c.close()
        w.stop(sig)
        w.start()
        c = pika.BlockingConnection(pika.ConnectionParameters("127.0.0.1", w.port))
        ch = c.channel()
        got = drain(ch, "dead", 2)
        assert sorted(b for _, _, b in got) == [b"r", b"s"]
        # x-expires counts again from the start: the unused durable queue goes away.
        assert ch.queue_declare("exp", passive=True).method.message_count == 0
        assert gone_without_touching(c, "exp", timeout=10)
        c.close()
    finally:
        w.stop()
