"""The messaging patterns applications build on Warren, through pika (checked against
RabbitMQ 3.10 with BROKER_PORT=5672 as well)."""
import signal
import subprocess
import textwrap
import time

import pika

from helpers import drain, uid


def test_fanout_pub_sub_one_exclusive_queue_per_subscriber(connect):
    x = uid("news")
    pub = connect().channel()
    pub.exchange_declare(x, "fanout")
    subs = []
    for _ in range(3):
        ch = connect().channel()
        q = ch.queue_declare("", exclusive=True).method.queue
        ch.queue_bind(q, x)
        subs.append((ch, q))
    pub.confirm_delivery()
    for i in range(10):
        pub.basic_publish(x, "", f"n{i}".encode())
    for ch, q in subs:
        assert [b for _, _, b in drain(ch, q, 10)] == [f"n{i}".encode() for i in range(10)]
    pub.exchange_delete(x)


def test_durable_queue_keeps_messages_while_consumer_is_away(connect):
    q = uid("inbox")
    away = connect()
    away.channel().queue_declare(q, durable=True)
    away.close()
    pub = connect().channel()
    pub.confirm_delivery()
    for i in range(5):
        pub.basic_publish("", q, f"m{i}".encode(), pika.BasicProperties(delivery_mode=2))
    back = connect().channel()
    got = drain(back, q, 5)
    assert [b for _, _, b in got] == [f"m{i}".encode() for i in range(5)]
    back.queue_delete(q)


def test_competing_consumers_round_robin(connect):
    q = uid("work")
    ch = connect().channel()
    ch.queue_declare(q)
    seen = {"a": [], "b": []}
    ch.basic_consume(q, lambda c, m, p, b: seen["a"].append(b), auto_ack=True)
    ch.basic_consume(q, lambda c, m, p, b: seen["b"].append(b), auto_ack=True)
    for i in range(10):
        ch.basic_publish("", q, str(i).encode())
    deadline = time.time() + 5
    while len(seen["a"]) + len(seen["b"]) < 10 and time.time() < deadline:
        ch.connection.process_data_events(time_limit=0.05)
    assert len(seen["a"]) == 5 and len(seen["b"]) == 5
    assert sorted(seen["a"] + seen["b"], key=int) == [str(i).encode() for i in range(10)]
    ch.queue_delete(q)


def test_slow_consumer_does_not_stall_the_others(connect):
    q = uid("work")
    ch = connect().channel()
    ch.queue_declare(q)
    ch.basic_qos(prefetch_count=1)
    slow, fast = [], []
    ch.basic_consume(q, lambda c, m, p, b: slow.append(m))  # never acks
    ch.basic_consume(q, lambda c, m, p, b: (fast.append(b), c.basic_ack(m.delivery_tag)))
    for i in range(20):
        ch.basic_publish("", q, str(i).encode())
    deadline = time.time() + 5
    while len(slow) + len(fast) < 20 and time.time() < deadline:
        ch.connection.process_data_events(time_limit=0.05)
    assert len(slow) == 1 and len(fast) == 19
    ch.queue_delete(q)


WORKER = textwrap.dedent("""
    import sys, pika
    c = pika.BlockingConnection(pika.ConnectionParameters("127.0.0.1", int(sys.argv[1])))
    ch = c.channel()
    ch.basic_qos(prefetch_count=3)
    got = []
    def cb(ch_, m, p, b):
        got.append(b)
        if len(got) == 3:
            print("holding", flush=True)
    ch.basic_consume(sys.argv[2], cb)  # manual ack, never acks: it dies mid-work
    ch.start_consuming()
""")


def test_work_queue_consumer_dies_mid_work_and_others_get_its_messages(broker_port, connect):
    q = uid("jobs")
    ch = connect().channel()
    ch.queue_declare(q, durable=True)
    ch.confirm_delivery()
    for i in range(10):
        ch.basic_publish("", q, f"job{i}".encode(), pika.BasicProperties(delivery_mode=2))
    worker = subprocess.Popen(["/usr/bin/python3", "-c", WORKER, str(broker_port), q],
                              stdout=subprocess.PIPE, text=True)
    assert worker.stdout.readline().strip() == "holding"
    worker.send_signal(signal.SIGKILL)  # dies with 3 unacked deliveries
    worker.wait(10)
    done = []
    deadline = time.time() + 10
    while len(done) < 10 and time.time() < deadline:
        m, p, b = ch.basic_get(q)
        if m is None:
            time.sleep(0.02)
            continue
        done.append((b, m.redelivered))
        ch.basic_ack(m.delivery_tag)
    assert sorted(b for b, _ in done) == sorted(f"job{i}".encode() for i in range(10))
    assert [b for b, r in done if r] == [b"job0", b"job1", b"job2"]
    ch.queue_delete(q)


def test_rpc_with_reply_to_and_correlation_id(connect):
    rpc_q = uid("rpc")
    server = connect().channel()
    server.queue_declare(rpc_q)

    def on_request(ch, m, props, body):
        ch.basic_publish("", props.reply_to, str(int(body) * 2).encode(),
                         pika.BasicProperties(correlation_id=props.correlation_id))
        ch.basic_ack(m.delivery_tag)

    server.basic_consume(rpc_q, on_request)
    client = connect().channel()
    reply_q = client.queue_declare("", exclusive=True).method.queue
    answers = {}
    client.basic_consume(reply_q, lambda c, m, p, b: answers.__setitem__(p.correlation_id, b),
                         auto_ack=True)
    for n in (1, 21, 50):
        client.basic_publish("", rpc_q, str(n).encode(),
                             pika.BasicProperties(reply_to=reply_q, correlation_id=f"c{n}"))
    deadline = time.time() + 5
    while len(answers) < 3 and time.time() < deadline:
        server.connection.process_data_events(time_limit=0.02)
        client.connection.process_data_events(time_limit=0.02)
    assert answers == {"c1": b"2", "c21": b"42", "c50": b"100"}
    server.queue_delete(rpc_q)
