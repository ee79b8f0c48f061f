"""A small raw-socket AMQP 0-9-1 client for hostile-input tests.

Frames are written by hand (so they can be wrong on purpose) and the broker's reply frames are
read and decoded: enough of the protocol to reach an open channel and to recognise
connection.close / channel.close and the few other replies the tests look at.
"""
import socket
import struct
import time

PROTOCOL_HEADER = b"AMQP\x00\x00\x09\x01"
FRAME_METHOD, FRAME_HEADER, FRAME_BODY, FRAME_HEARTBEAT = 1, 2, 3, 8
FRAME_END = b"\xce"

# (class, method) ids of the methods the tests send or expect.
CONNECTION_START = (10, 10)
CONNECTION_START_OK = (10, 11)
CONNECTION_TUNE = (10, 30)
CONNECTION_TUNE_OK = (10, 31)
CONNECTION_OPEN = (10, 40)
CONNECTION_OPEN_OK = (10, 41)
CONNECTION_CLOSE = (10, 50)
CONNECTION_CLOSE_OK = (10, 51)
CONNECTION_BLOCKED = (10, 60)
CONNECTION_UNBLOCKED = (10, 61)
CHANNEL_OPEN = (20, 10)
CHANNEL_OPEN_OK = (20, 11)
CHANNEL_CLOSE = (20, 40)
CHANNEL_CLOSE_OK = (20, 41)
EXCHANGE_DECLARE = (40, 10)
QUEUE_DECLARE = (50, 10)
QUEUE_DECLARE_OK = (50, 11)
BASIC_QOS = (60, 10)
BASIC_CONSUME = (60, 20)
BASIC_CONSUME_OK = (60, 21)
BASIC_PUBLISH = (60, 40)
BASIC_DELIVER = (60, 60)


# --- encoding --------------------------------------------------------------------------------

def shortstr(s):
    b = s.encode() if isinstance(s, str) else s
    return struct.pack(">B", len(b)) + b


def longstr(s):
    b = s.encode() if isinstance(s, str) else s
    return struct.pack(">I", len(b)) + b


def field_value(v):
    if isinstance(v, bool):
        return b"t" + struct.pack(">B", int(v))
    if isinstance(v, int):
        return b"l" + struct.pack(">q", v)
    if isinstance(v, (str, bytes)):
        return b"S" + longstr(v)
    if isinstance(v, dict):
        return b"F" + table(v)
    if isinstance(v, list):
        body = b"".join(field_value(x) for x in v)
        return b"A" + struct.pack(">I", len(body)) + body
    raise TypeError(type(v))


def table(d):
    body = b"".join(shortstr(k) + field_value(v) for k, v in d.items())
    return struct.pack(">I", len(body)) + body


def bits(*flags):
    v = 0
    for i, f in enumerate(flags):
        if f:
            v |= 1 << i
    return struct.pack(">B", v)


def method_payload(ids, args=b""):
    return struct.pack(">HH", *ids) + args


def frame(ftype, channel, payload):
    return struct.pack(">BHI", ftype, channel, len(payload)) + payload + FRAME_END


def method_frame(channel, ids, args=b""):
    return frame(FRAME_METHOD, channel, method_payload(ids, args))


def content_header(channel, body_size, flags=0, props=b"", class_id=60):
    return frame(FRAME_HEADER, channel,
                 struct.pack(">HHQH", class_id, 0, body_size, flags) + props)


def body_frame(channel, data):
    return frame(FRAME_BODY, channel, data)


def queue_declare(name, durable=False, exclusive=False, auto_delete=False, args=None):
    return struct.pack(">H", 0) + shortstr(name) + bits(False, durable, exclusive, auto_delete,
                                                        False) + table(args or {})


def exchange_declare(name, etype="direct", args=None):
    return (struct.pack(">H", 0) + shortstr(name) + shortstr(etype) +
            bits(False, False, False, False, False) + table(args or {}))


def basic_publish(exchange, routing_key, mandatory=False):
    return struct.pack(">H", 0) + shortstr(exchange) + shortstr(routing_key) + bits(mandatory, False)


def basic_consume(queue, tag="", no_ack=False):
    return struct.pack(">H", 0) + shortstr(queue) + shortstr(tag) + bits(
        False, no_ack, False, False) + table({})


# --- decoding --------------------------------------------------------------------------------

class Reader:
    def __init__(self, data):
        self.data = data
        self.pos = 0

    def take(self, n):
        b = self.data[self.pos:self.pos + n]
        self.pos += n
        return b

    def u8(self):
        return self.take(1)[0]

    def u16(self):
        return struct.unpack(">H", self.take(2))[0]

    def u32(self):
        return struct.unpack(">I", self.take(4))[0]

    def u64(self):
        return struct.unpack(">Q", self.take(8))[0]

    def shortstr(self):
        return self.take(self.u8()).decode(errors="replace")

    def longstr(self):
        return self.take(self.u32())


class Frame:
    def __init__(self, ftype, channel, payload):
        self.type = ftype
        self.channel = channel
        self.payload = payload

    @property
    def method(self):
        if self.type != FRAME_METHOD or len(self.payload) < 4:
            return None
        return struct.unpack(">HH", self.payload[:4])

    def args(self):
        r = Reader(self.payload)
        r.pos = 4
        return r

    def close_args(self):
        """(reply_code, reply_text, class_id, method_id) of a connection/channel.close."""
        r = self.args()
        return r.u16(), r.shortstr(), r.u16(), r.u16()

    def __repr__(self):
        return f"Frame(type={self.type}, channel={self.channel}, method={self.method})"


class Closed(Exception):
    """The broker closed the socket."""


class RawConnection:
    def __init__(self, port, host="127.0.0.1", timeout=5.0):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.buf = b""
        self.frame_max = 131072

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def send(self, data):
        self.sock.sendall(data)

    def recv_some(self, timeout=5.0):
        """Bytes the broker sent, or b"" once it closed the socket."""
        self.sock.settimeout(timeout)
        try:
            return self.sock.recv(65536)
        except ConnectionResetError:
            return b""

    def read_all_until_close(self, timeout=5.0):
        """Everything the broker sends until it closes the socket (raises on timeout)."""
        out = self.buf
        self.buf = b""
        deadline = time.time() + timeout
        while True:
            left = deadline - time.time()
            if left <= 0:
                raise TimeoutError(f"socket still open after {timeout}s; got {out!r}")
            chunk = self.recv_some(left)
            if not chunk:
                return out
            out += chunk

    def is_closed_by_peer(self, timeout=5.0):
        try:
            self.read_all_until_close(timeout)
            return True
        except (TimeoutError, socket.timeout):
            return False

    def read_frame(self, timeout=5.0):
        deadline = time.time() + timeout
        while True:
            if len(self.buf) >= 7:
                ftype, channel, size = struct.unpack(">BHI", self.buf[:7])
                if len(self.buf) >= size + 8:
                    payload = self.buf[7:7 + size]
                    assert self.buf[7 + size:8 + size] == FRAME_END, "bad frame end from broker"
                    self.buf = self.buf[size + 8:]
                    return Frame(ftype, channel, payload)
            left = deadline - time.time()
            if left <= 0:
                raise TimeoutError("no complete frame from the broker")
            chunk = self.recv_some(left)
            if not chunk:
                raise Closed(f"socket closed; unparsed bytes {self.buf!r}")
            self.buf += chunk

    def expect(self, ids, timeout=5.0):
        """Reads frames (skipping heartbeats) until a method frame; asserts it is `ids`."""
        f = self.next_method(timeout)
        assert f.method == ids, f"expected {ids}, got {f.method} {f.payload!r}"
        return f

    def next_method(self, timeout=5.0):
        while True:
            f = self.read_frame(timeout)
            if f.type != FRAME_HEARTBEAT:
                return f

    def handshake(self, user="guest", password="guest", vhost="/", channel_max=0,
                  frame_max=None, heartbeat=0, capabilities=None):
        self.send(PROTOCOL_HEADER)
        self.expect(CONNECTION_START)
        props = {"product": "rawamqp"}
        if capabilities:
            props["capabilities"] = capabilities
        self.send(method_frame(0, CONNECTION_START_OK,
                               table(props) + shortstr("PLAIN") +
                               longstr(f"\0{user}\0{password}") + shortstr("en_US")))
        tune = self.expect(CONNECTION_TUNE)
        r = tune.args()
        server_channel_max, server_frame_max, _ = r.u16(), r.u32(), r.u16()
        self.frame_max = frame_max or server_frame_max
        self.send(method_frame(0, CONNECTION_TUNE_OK, struct.pack(
            ">HIH", channel_max or server_channel_max, self.frame_max, heartbeat)))
        self.send(method_frame(0, CONNECTION_OPEN, shortstr(vhost) + shortstr("") + bits(False)))
        self.expect(CONNECTION_OPEN_OK)
        return self

    def open_channel(self, channel=1):
        self.send(method_frame(channel, CHANNEL_OPEN, shortstr("")))
        self.expect(CHANNEL_OPEN_OK)
        return channel

    def expect_connection_close(self, timeout=5.0):
        """Reads until connection.close; answers close-ok; returns its arguments."""
        while True:
            f = self.next_method(timeout)
            if f.method == CONNECTION_CLOSE:
                args = f.close_args()
                try:
                    self.send(method_frame(0, CONNECTION_CLOSE_OK))
                except OSError:
                    pass
                return args

    def expect_channel_close(self, timeout=5.0):
        """Reads until channel.close; answers close-ok; returns (channel, code, text, cls, m)."""
        while True:
            f = self.next_method(timeout)
            if f.method == CONNECTION_CLOSE:
                raise AssertionError(f"connection closed instead: {f.close_args()}")
            if f.method == CHANNEL_CLOSE:
                args = f.close_args()
                self.send(method_frame(f.channel, CHANNEL_CLOSE_OK))
                return (f.channel,) + args
