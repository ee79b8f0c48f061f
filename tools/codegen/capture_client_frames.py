#!/usr/bin/python3
"""Records the bytes real AMQP clients send, for the codec's golden-byte tests.

Usage: capture_client_frames.py OUT_DIR

Runs a minimal fake broker on a loopback port that answers with canned frames (start, tune,
open-ok, channel.open-ok, declare-ok, close-ok), lets pika and py-amqp (Debian's python3-pika and
python3-amqp; run with /usr/bin/python3) connect, declare a queue with arguments, publish a
message with every basic property set, and close. Everything each client sent after the
8-byte protocol header is written to OUT_DIR/<client>.bin. The codec test decodes those frames
and requires byte-identical re-encoding.
"""
import os
import socket
import struct
import sys
import threading


def frame(ftype, channel, payload):
    return struct.pack(">BHI", ftype, channel, len(payload)) + payload + b"\xce"


def shortstr(s):
    return bytes([len(s)]) + s


def longstr(s):
    return struct.pack(">I", len(s)) + s


def method(cls, mid, args=b""):
    return struct.pack(">HH", cls, mid) + args


REPLIES = {
    (10, 11): [(0, method(10, 30, struct.pack(">HIH", 2047, 131072, 60)))],  # start-ok -> tune
    (10, 31): [],  # tune-ok
    (10, 40): [(0, method(10, 41, shortstr(b"")))],  # open -> open-ok
    (20, 10): [(None, method(20, 11, longstr(b"")))],  # channel.open -> open-ok
    (50, 10): [(None, method(50, 11, shortstr(b"golden") + struct.pack(">II", 0, 0)))],
    (85, 10): [(None, method(85, 11))],  # confirm.select -> select-ok
    (20, 40): [(None, method(20, 41))],  # channel.close -> close-ok
    (10, 50): [(0, method(10, 51))],  # connection.close -> close-ok
}


def serve(sock, record):
    conn, _ = sock.accept()
    conn.settimeout(10)
    buf = b""
    while len(buf) < 8:
        buf += conn.recv(8 - len(buf))
    start = method(10, 10, bytes([0, 9]) + struct.pack(">I", 0) + longstr(b"PLAIN AMQPLAIN") +
                   longstr(b"en_US"))
    conn.sendall(frame(1, 0, start))
    data = b""
    done = False
    while not done:
        chunk = conn.recv(65536)
        if not chunk:
            break
        data += chunk
        record.extend(chunk)
        while len(data) >= 7:
            ftype, ch, size = struct.unpack(">BHI", data[:7])
            if len(data) < size + 8:
                break
            payload = data[7:7 + size]
            data = data[size + 8:]
            if ftype != 1:
                continue
            cls, mid = struct.unpack(">HH", payload[:4])
            for (reply_ch, reply) in REPLIES.get((cls, mid), []):
                conn.sendall(frame(1, ch if reply_ch is None else reply_ch, reply))
            if (cls, mid) == (10, 50):
                done = True
    conn.close()


PROPS = dict(content_type="application/json", content_encoding="utf-8",
             delivery_mode=2, priority=5, correlation_id="corr-1", reply_to="replies",
             expiration="60000", message_id="msg-1", timestamp=1700000000, type="kind",
             user_id="guest", app_id="golden", cluster_id="c1")
HEADERS = {"s": "text", "i": 42, "neg": -7, "big": 2**40, "t": True,
           "nested": {"a": 1}, "list": [1, "two", False]}


def run_pika(port):
    import pika
    params = pika.ConnectionParameters("127.0.0.1", port, heartbeat=60)
    c = pika.BlockingConnection(params)
    ch = c.channel()
    ch.queue_declare("golden", arguments={"x-message-ttl": 60000, "x-max-priority": 10})
    ch.basic_publish("amq.direct", "golden", b"hello golden",
                     pika.BasicProperties(headers=HEADERS, **PROPS))
    ch.basic_publish("", "golden", b"")
    c.close()


def run_pyamqp(port):
    import amqp
    c = amqp.Connection(f"127.0.0.1:{port}", userid="guest", password="guest")
    c.connect()
    ch = c.channel()
    ch.queue_declare("golden", arguments={"x-expires": 120000})
    props = dict(PROPS)
    props["timestamp"] = None
    del props["timestamp"]
    ch.basic_publish(amqp.Message(b"hello golden", application_headers=HEADERS, **props),
                     exchange="amq.direct", routing_key="golden")
    ch.close()
    c.close()


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    for name, client in (("pika", run_pika), ("pyamqp", run_pyamqp)):
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        sock.listen(1)
        record = bytearray()
        t = threading.Thread(target=serve, args=(sock, record))
        t.start()
        client(sock.getsockname()[1])
        t.join(10)
        with open(os.path.join(out, name + ".bin"), "wb") as f:
            f.write(bytes(record))
        print(name, len(record), "bytes")


if __name__ == "__main__":
    main()
