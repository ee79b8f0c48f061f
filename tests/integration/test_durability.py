"""Durability through real clients (issue 4): definitions and persistent messages survive a
restart and a kill -9; transient things do not. Each test restarts the same warrend (same port,
same data dir), so these run only against warrend (WARREN_BIN)."""
import json
import os
import signal

import amqp
import pika
import pytest

from conftest import Warrend
from helpers import drain, open_channel, uid

PERSISTENT = pika.BasicProperties(delivery_mode=2)


@pytest.fixture
def broker(warrend_bin):
    w = Warrend(warrend_bin).start()
    yield w
    w.stop(signal.SIGKILL)


def restart(w, sig=signal.SIGKILL):
    code = w.stop(sig)
    if sig == signal.SIGTERM:
        assert code == 0
    w.start()
    return w


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
def test_definitions_survive_and_transient_ones_do_not(broker, sig):
    c, ch = open_channel(broker, confirm=False)
    ch.exchange_declare("dx", "topic", durable=True)
    ch.exchange_declare("dx2", "fanout", durable=True, arguments={"alternate-exchange": "dx"})
    ch.exchange_declare("tx", "direct", durable=False)
    ch.queue_declare("dq", durable=True, arguments={"x-max-length": 10, "x-message-ttl": 60000})
    ch.queue_declare("tq", durable=False)
    ch.queue_declare("xq", durable=True, exclusive=True)  # exclusive: never persisted
    server_named = ch.queue_declare("", durable=True).method.queue
    ch.queue_bind("dq", "dx", "a.*")
    ch.queue_bind("tq", "dx", "b.*")  # to a transient queue: gone with it
    ch.exchange_bind("dx", "dx2", "")  # exchange-to-exchange
    c.close()
    restart(broker, sig)

    c, ch = open_channel(broker, confirm=False)
    ch.exchange_declare("dx", "topic", passive=True)
    ch.exchange_declare("dx2", "fanout", passive=True)
    ch.queue_declare(server_named, passive=True)
    # Arguments came back: an equivalent redeclare passes, a different one fails with 406.
    ch.queue_declare("dq", durable=True, arguments={"x-max-length": 10, "x-message-ttl": 60000})
    ch.exchange_declare("dx2", "fanout", durable=True, arguments={"alternate-exchange": "dx"})
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as e:
        ch.queue_declare("dq", durable=True, arguments={"x-max-length": 11})
    assert e.value.reply_code == 406
    ch = c.channel()
    for kind, name in (("exchange", "tx"), ("queue", "tq"), ("queue", "xq")):
        with pytest.raises(pika.exceptions.ChannelClosedByBroker) as e:
            if kind == "exchange":
                ch.exchange_declare(name, "direct", passive=True)
            else:
                ch.queue_declare(name, passive=True)
        assert e.value.reply_code == 404, name
        ch = c.channel()
    # The e2e binding and the queue binding route: dx2 -> dx -> dq.
    ch.confirm_delivery()
    ch.basic_publish("dx2", "a.b", b"routed", mandatory=True)
    assert [b for _, _, b in drain(ch, "dq", 1)] == [b"routed"]
    c.close()


def test_definitions_file_is_rabbitmq_export_format(broker):
    c, ch = open_channel(broker, confirm=False)
    ch.exchange_declare("fx", "direct", durable=True)
    ch.queue_declare("fq", durable=True, arguments={"x-max-priority": 5})
    ch.queue_bind("fq", "fx", "k")
    c.close()
    broker.stop(signal.SIGTERM)
    with open(os.path.join(broker.data_dir, "definitions.json")) as f:
        doc = json.load(f)
    assert {"name": "fq", "vhost": "/", "durable": True, "auto_delete": False,
            "arguments": {"x-max-priority": 5}} in doc["queues"]
    assert any(e["name"] == "fx" and e["type"] == "direct" for e in doc["exchanges"])
    assert {"source": "fx", "vhost": "/", "destination": "fq", "destination_type": "queue",
            "routing_key": "k", "arguments": {}} in doc["bindings"]
    assert doc["vhosts"] == [{"name": "/"}]
    assert not any(e["name"].startswith("amq.") or e["name"] == "" for e in doc["exchanges"])
    broker.start()


def test_deleted_and_unbound_stay_deleted(broker):
    c, ch = open_channel(broker, confirm=False)
    ch.exchange_declare("ux", "direct", durable=True)
    ch.queue_declare("uq", durable=True)
    ch.queue_declare("gone", durable=True)
    ch.queue_bind("uq", "ux", "k")
    ch.basic_publish("", "gone", b"x", PERSISTENT)
    ch.queue_unbind("uq", "ux", "k")
    ch.queue_delete("gone")
    c.close()
    restart(broker)
    c, ch = open_channel(broker, confirm=True)
    with pytest.raises(pika.exceptions.UnroutableError):
        ch.basic_publish("ux", "k", b"x", mandatory=True)
    # A queue declared again under a deleted queue's name starts empty.
    assert ch.queue_declare("gone", durable=True).method.message_count == 0
    c.close()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
def test_confirmed_persistent_messages_survive_transient_do_not(broker, sig):
    c, ch = open_channel(broker, confirm=True)
    ch.queue_declare("pq", durable=True)
    for i in range(100):
        ch.basic_publish("", "pq", b"p%d" % i, PERSISTENT)  # confirmed before returning
        ch.basic_publish("", "pq", b"t%d" % i)  # transient, in the same durable queue
    c.close()
    restart(broker, sig)
    c, ch = open_channel(broker, confirm=True)
    assert ch.queue_declare("pq", durable=True).method.message_count == 100
    got = drain(ch, "pq", 100)
    assert [b for _, _, b in got] == [b"p%d" % i for i in range(100)]
    assert all(p.delivery_mode == 2 for _, p, _ in got)
    assert not any(m.redelivered for m, _, _ in got)
    c.close()


def test_properties_and_bodies_come_back_byte_for_byte(broker):
    c, ch = open_channel(broker, confirm=True)
    ch.queue_declare("props", durable=True)
    props = pika.BasicProperties(delivery_mode=2, content_type="application/json",
                                 headers={"k": "v", "n": 7}, message_id="id-1",
                                 correlation_id="c-1", priority=3, reply_to="r")
    body = bytes(range(256)) * 300  # larger than one frame
    ch.basic_publish("amq.direct", "nowhere", b"unrouted", PERSISTENT)
    ch.basic_publish("", "props", body, props)
    c.close()
    restart(broker)
    c, ch = open_channel(broker, confirm=True)
    (m, p, b), = drain(ch, "props", 1)
    assert b == body
    assert m.routing_key == "props" and m.exchange == ""
    assert (p.content_type, p.headers, p.message_id, p.correlation_id, p.priority, p.reply_to) == (
        "application/json", {"k": "v", "n": 7}, "id-1", "c-1", 3, "r")
    c.close()


def test_acked_messages_do_not_come_back_unacked_come_back_redelivered(broker):
    c, ch = open_channel(broker, confirm=True)
    ch.queue_declare("aq", durable=True)
    for i in range(10):
        ch.basic_publish("", "aq", b"%d" % i, PERSISTENT)
    got = drain(ch, "aq", 10, ack=False)
    tags = [m.delivery_tag for m, _, _ in got]
    ch.basic_ack(tags[3], multiple=True)  # 0..3 acked
    ch.basic_reject(tags[4], requeue=False)  # 4 dropped
    # 5..9 are delivered and unacked when the broker dies.
    ch.queue_declare("aq", durable=True, passive=True)  # a round trip: the acks were read
    restart(broker)
    c, ch = open_channel(broker, confirm=True)
    got = drain(ch, "aq", 5)
    assert [b for _, _, b in got] == [b"5", b"6", b"7", b"8", b"9"]
    assert all(m.redelivered for m, _, _ in got)
    assert ch.queue_declare("aq", durable=True).method.message_count == 0
    c.close()


def test_purge_is_durable(broker):
    c, ch = open_channel(broker, confirm=True)
    ch.queue_declare("purged", durable=True)
    for i in range(5):
        ch.basic_publish("", "purged", b"x", PERSISTENT)
    assert ch.queue_purge("purged").method.message_count == 5
    ch.basic_publish("", "purged", b"after", PERSISTENT)
    c.close()
    restart(broker, signal.SIGTERM)
    c, ch = open_channel(broker, confirm=True)
    assert [b for _, _, b in drain(ch, "purged", 2, timeout=1)] == [b"after"]
    c.close()


def test_tx_commit_of_persistent_messages_is_durable(broker):
    c, ch = open_channel(broker, confirm=False)
    ch.queue_declare("txq", durable=True)
    ch.tx_select()
    for i in range(20):
        ch.basic_publish("", "txq", b"%d" % i, PERSISTENT)
    ch.tx_commit()  # commit-ok comes after the fdatasync
    ch.basic_publish("", "txq", b"uncommitted", PERSISTENT)
    restart(broker)
    c, ch = open_channel(broker, confirm=True)
    assert [b for _, _, b in drain(ch, "txq", 21, timeout=1)] == [b"%d" % i for i in range(20)]
    c.close()


def test_pipelined_methods_after_a_waiting_commit_keep_their_order(broker):
    """py-amqp: commit then more methods; every reply arrives, in order, after commit-ok."""
    c = amqp.Connection(f"127.0.0.1:{broker.port}")
    c.connect()
    ch = c.channel()
    ch.queue_declare("pipe", durable=True, auto_delete=False)
    ch.tx_select()
    for i in range(50):
        ch.basic_publish(amqp.Message(b"%d" % i, delivery_mode=2), routing_key="pipe")
    ch.tx_commit()
    ch.basic_publish(amqp.Message(b"50", delivery_mode=2), routing_key="pipe")
    ch.tx_commit()
    _, count, _ = ch.queue_declare("pipe", passive=True)
    assert count == 51
    c.close()


def test_confirms_with_amqp_client_many_in_flight(broker):
    """Publish 2000 persistent messages with py-amqp's confirm mode: all acked, all stored."""
    c = amqp.Connection(f"127.0.0.1:{broker.port}", confirm_publish=True)
    c.connect()
    ch = c.channel()
    ch.queue_declare("many", durable=True, auto_delete=False)
    for i in range(2000):
        ch.basic_publish(amqp.Message(b"%d" % i, delivery_mode=2), routing_key="many")
    c.close()
    restart(broker)
    c, ch = open_channel(broker, confirm=True)
    assert ch.queue_declare("many", durable=True).method.message_count == 2000
    c.close()


def test_backlog_beyond_queue_memory_is_read_back_from_disk(warrend_bin, tmp_path):
    """With a 64 KiB memory budget, 3000 x 1 KiB persistent messages live mostly on disk; they
    are all delivered, in order, intact, before and after a restart."""
    cfg = tmp_path / "warren.toml"
    cfg.write_text("[storage]\nqueue_memory_bytes = 65536\nsegment_bytes = 262144\n")
    w = Warrend(warrend_bin, extra_args=["--config", str(cfg)]).start()
    try:
        c, ch = open_channel(w, confirm=True)
        ch.queue_declare("big", durable=True)
        body = lambda i: (b"%06d" % i) * 170  # 1020 bytes
        for i in range(3000):
            ch.basic_publish("", "big", body(i), PERSISTENT)
        got = drain(ch, "big", 1500)
        assert [b for _, _, b in got] == [body(i) for i in range(1500)]
        c.close()
        restart(w)
        c, ch = open_channel(w, confirm=True)
        got = drain(ch, "big", 1500)
        assert [b for _, _, b in got] == [body(i) for i in range(1500, 3000)]
        c.close()
        # Fully acked segments are deleted: only the open segment (or none) remains.
        qdirs = os.listdir(os.path.join(w.data_dir, "queues"))
        segs = sum(len(os.listdir(os.path.join(w.data_dir, "queues", d))) for d in qdirs)
        assert segs <= 1
    finally:
        w.stop(signal.SIGKILL)


def test_corrupt_definitions_file_stops_start_with_one_line(warrend_bin):
    w = Warrend(warrend_bin)
    with open(os.path.join(w.data_dir, "definitions.json"), "w") as f:
        f.write("{not json")
    with pytest.raises(RuntimeError) as e:
        w.start()
    assert "definitions.json is not a JSON object" in str(e.value)


def test_rabbitmq_export_can_be_dropped_in(warrend_bin):
    """A file as `rabbitmqctl export_definitions` writes it (no warren_format) loads."""
    w = Warrend(warrend_bin)
    doc = {"rabbit_version": "3.10.8", "users": [], "vhosts": [{"name": "/"}],
           "permissions": [], "policies": [], "parameters": [], "global_parameters": [],
           "queues": [{"name": "imported", "vhost": "/", "durable": True,
                       "auto_delete": False, "arguments": {"x-queue-type": "classic"}}],
           "exchanges": [{"name": "ix", "vhost": "/", "type": "fanout", "durable": True,
                          "auto_delete": False, "internal": False, "arguments": {}}],
           "bindings": [{"source": "ix", "vhost": "/", "destination": "imported",
                         "destination_type": "queue", "routing_key": "", "arguments": {}}]}
    with open(os.path.join(w.data_dir, "definitions.json"), "w") as f:
        json.dump(doc, f)
    w.start()
    try:
        c, ch = open_channel(w, confirm=True)
        ch.basic_publish("ix", "", b"hi", mandatory=True)
        assert [b for _, _, b in drain(ch, "imported", 1)] == [b"hi"]
        c.close()
    finally:
        w.stop(signal.SIGKILL)


def test_low_disk_alarm_blocks_publishers_consumers_carry_on(warrend_bin, tmp_path):
    """A free-disk limit above what the disk has: the alarm is on from the start. A publishing
    pika connection gets connection.blocked and its publish is not taken; another connection
    still declares, gets and acks (RabbitMQ: only publishers are blocked)."""
    cfg = tmp_path / "warren.toml"
    cfg.write_text("[storage]\ndisk_free_limit = 1000000000000000000\n")
    w = Warrend(warrend_bin, extra_args=["--config", str(cfg)]).start()
    try:
        assert "disk alarm" in w.log_text()
        consumer = pika.BlockingConnection(pika.ConnectionParameters("127.0.0.1", w.port))
        cch = consumer.channel()
        cch.queue_declare("alarmq")
        publisher = pika.BlockingConnection(pika.ConnectionParameters("127.0.0.1", w.port))
        blocked = []
        publisher.add_on_connection_blocked_callback(
            lambda _conn, frame: blocked.append(frame.method.reason))
        pch = publisher.channel()
        pch.basic_publish("", "alarmq", b"held back")
        deadline = 50
        while not blocked and deadline:
            publisher.process_data_events(0.1)
            deadline -= 1
        assert blocked == ["low on disk"]
        # Consumers are not blocked; the held publish is not in the queue.
        assert cch.queue_declare("alarmq", passive=True).method.message_count == 0
        assert cch.basic_get("alarmq")[0] is None
        consumer.close()
    finally:
        w.stop(signal.SIGKILL)


def test_a_drained_queue_keeps_new_messages_across_restarts(broker):
    """Regression (found by the crash suite): after a restart with an empty queue, new messages
    were numbered from 1 again and the old ack records removed them at the next restart."""
    c, ch = open_channel(broker, confirm=True)
    ch.queue_declare("again", durable=True)
    for i in range(5):
        ch.basic_publish("", "again", b"old%d" % i, PERSISTENT)
    assert len(drain(ch, "again", 5)) == 5  # acked
    c.close()
    restart(broker)
    c, ch = open_channel(broker, confirm=True)
    for i in range(5):
        ch.basic_publish("", "again", b"new%d" % i, PERSISTENT)
    c.close()
    restart(broker)
    c, ch = open_channel(broker, confirm=True)
    assert [b for _, _, b in drain(ch, "again", 5)] == [b"new%d" % i for i in range(5)]
    c.close()
