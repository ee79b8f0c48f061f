"""The crash suite (issue 4): confirmed persistent messages survive kill -9 at random moments.

Each cycle: two publishers (pika and py-amqp, confirm mode) publish numbered persistent messages
to a durable fanout exchange bound to two durable queues, while a consumer (manual acks,
prefetch 50) takes from the first queue and keeps some deliveries unacked. At a random moment
warrend gets SIGKILL. It is restarted on the same data dir and both queues are drained:
  - every confirmed message that the consumer had not acked is there (in each queue);
  - nothing is there that was never published, and no message is there twice;
  - messages that were delivered before the crash and not acked come back redelivered.
CRASH_CYCLES sets the number of cycles (default 12); CRASH_SEED the random seed.
"""
import os
import random
import signal
import threading
import time

import importlib.util

import amqp
import pika

# The Warrend process helper of the integration suites.
_spec = importlib.util.spec_from_file_location(
    "warren_integration", os.path.join(os.path.dirname(__file__), "..", "integration",
                                       "conftest.py"))
_integration = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_integration)
Warrend = _integration.Warrend


warrend_bin = _integration.warrend_bin  # the fixture: WARREN_BIN or skip

EXCHANGE = "crash.fanout"
QUEUES = ("crash.q1", "crash.q2")


class Run:
    def __init__(self):
        self.lock = threading.Lock()
        self.confirmed = set()
        self.acked = set()
        self.held = set()  # delivered to the consumer, not acked (updated as it goes)
        self.published_max = 0
        self.stop = threading.Event()
        self.errors = []


def declare_topology(port):
    c = pika.BlockingConnection(pika.ConnectionParameters("127.0.0.1", port))
    ch = c.channel()
    ch.exchange_declare(EXCHANGE, "fanout", durable=True)
    for q in QUEUES:
        ch.queue_declare(q, durable=True)
        ch.queue_bind(q, EXCHANGE)
    c.close()


def pika_publisher(port, run, ids):
    try:
        c = pika.BlockingConnection(pika.ConnectionParameters("127.0.0.1", port))
        ch = c.channel()
        ch.confirm_delivery()
        props = pika.BasicProperties(delivery_mode=2)
        for i in ids:
            if run.stop.is_set():
                return
            ch.basic_publish(EXCHANGE, "", str(i).encode(), props)  # returns once confirmed
            with run.lock:
                run.confirmed.add(i)
    except Exception:  # the broker was killed: expected
        pass


def amqp_publisher(port, run, ids):
    try:
        c = amqp.Connection(f"127.0.0.1:{port}", confirm_publish=True)
        c.connect()
        ch = c.channel()
        for i in ids:
            if run.stop.is_set():
                return
            ch.basic_publish(amqp.Message(str(i).encode(), delivery_mode=2), exchange=EXCHANGE)
            with run.lock:
                run.confirmed.add(i)
    except Exception:
        pass


def consumer(port, run, rng):
    try:
        c = pika.BlockingConnection(pika.ConnectionParameters("127.0.0.1", port))
        ch = c.channel()
        ch.basic_qos(prefetch_count=50)
        held = []
        for method, _, body in ch.consume(QUEUES[0], inactivity_timeout=0.05):
            if run.stop.is_set():
                break
            if method is None:
                continue
            held.append((method.delivery_tag, int(body)))
            with run.lock:
                run.held.add(int(body))
            if len(held) >= 20 or rng.random() < 0.1:
                tag, last = held[-1]
                with run.lock:  # counted as acked before it is sent: it may or may not land
                    run.acked.update(i for _, i in held)
                    run.held.difference_update(i for _, i in held)
                ch.basic_ack(tag, multiple=True)
                held.clear()
    except Exception:
        pass


def drain(port, queue):
    c = pika.BlockingConnection(pika.ConnectionParameters("127.0.0.1", port))
    ch = c.channel()
    got = []
    while True:
        m, _, body = ch.basic_get(queue, auto_ack=True)
        if m is None:
            break
        got.append((int(body), m.redelivered))
    c.close()
    return got


def test_kill9_cycles(warrend_bin):
    cycles = int(os.environ.get("CRASH_CYCLES", "12"))
    seed = int(os.environ.get("CRASH_SEED", str(int(time.time()))))
    rng = random.Random(seed)
    print(f"seed {seed}, {cycles} cycles")
    w = Warrend(warrend_bin).start()
    declare_topology(w.port)
    next_id = 1
    total_confirmed = 0
    try:
        for cycle in range(cycles):
            run = Run()
            n = 100000
            ids_a = range(next_id, next_id + n, 2)
            ids_b = range(next_id + 1, next_id + n, 2)
            next_id += n
            threads = [
                threading.Thread(target=pika_publisher, args=(w.port, run, ids_a)),
                threading.Thread(target=amqp_publisher, args=(w.port, run, ids_b)),
                threading.Thread(target=consumer, args=(w.port, run, random.Random(rng.random()))),
            ]
            for t in threads:
                t.start()
            time.sleep(rng.uniform(0.3, 1.5))
            # Killed in the middle of the traffic: publishes and acks are in flight.
            with run.lock:
                held_at_kill = set(run.held)
            w.stop(signal.SIGKILL)
            run.stop.set()
            for t in threads:
                t.join(10)
            w.start()
            got1 = drain(w.port, QUEUES[0])
            got2 = drain(w.port, QUEUES[1])
            ids1 = [i for i, _ in got1]
            ids2 = [i for i, _ in got2]
            published = set(ids_a) | set(ids_b)
            for name, ids in (("q1", ids1), ("q2", ids2)):
                assert len(ids) == len(set(ids)), f"cycle {cycle}: duplicates in {name}"
                assert set(ids) <= published, f"cycle {cycle}: {name} has never-published ids"
            missing1 = run.confirmed - run.acked - set(ids1)
            missing2 = run.confirmed - set(ids2)
            assert not missing1, f"cycle {cycle} (seed {seed}): confirmed, lost from q1: " \
                                 f"{sorted(missing1)[:10]}"
            assert not missing2, f"cycle {cycle} (seed {seed}): confirmed, lost from q2: " \
                                 f"{sorted(missing2)[:10]}"
            redelivered = {i for i, r in got1 if r}
            # Delivered and unacked at the kill: back, and flagged redelivered. The delivered
            # mark reaches the file in the same loop turn as the delivery, but a kill in the
            # microseconds between the two can miss it (docs/formats/segment-v1.md): allow 2.
            assert held_at_kill <= set(ids1) | run.acked, f"cycle {cycle}: unacked lost"
            not_flagged = (held_at_kill & set(ids1)) - redelivered
            assert len(not_flagged) <= 2, f"cycle {cycle}: not redelivered: {not_flagged}"
            total_confirmed += len(run.confirmed)
            print(f"cycle {cycle}: confirmed {len(run.confirmed)}, acked {len(run.acked)}, "
                  f"unacked at kill {len(held_at_kill)}, recovered q1 {len(ids1)} "
                  f"q2 {len(ids2)}, unconfirmed recovered "
                  f"{len(set(ids2) - run.confirmed)}")
        assert total_confirmed > 0, "nothing was confirmed in any cycle: the test proved nothing"
    finally:
        w.stop(signal.SIGKILL)
