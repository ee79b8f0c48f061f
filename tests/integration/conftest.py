"""Shared fixtures for the integration suites.

The broker under test is either
  - the `warrend` binary named by WARREN_BIN, started per test on a free port with a fresh
    data dir (CTest sets this), or
  - an already running broker on BROKER_PORT (for example RabbitMQ on 5672, to check that a
    test encodes RabbitMQ's real behaviour).
Run with Debian's python: /usr/bin/python3 -m pytest tests/integration
"""
import os
import re
import signal
import socket
import subprocess
import tempfile
import time

import pika
import pytest


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Warrend:
    """A warrend process on a free port with its own data dir; stderr goes to a log file."""

    def __init__(self, binary, extra_args=(), env=None):
        self.binary = binary
        self.env = env  # extra environment variables for the broker process
        self.data_dir = tempfile.mkdtemp(prefix="warren-it-")
        self.log_path = os.path.join(self.data_dir, "warrend.log")
        self.port = free_port()
        self.extra_args = list(extra_args)
        self.data_arg = self.data_dir  # what --data-dir says; the log stays in data_dir
        self.proc = None

    def start(self):
        # A restart appends to the same log: look for the listening line after this point.
        offset = os.path.getsize(self.log_path) if os.path.exists(self.log_path) else 0
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [self.binary, "--amqp-port", str(self.port), "--data-dir", self.data_arg,
             "--bind", "127.0.0.1"] + self.extra_args,
            stdout=self.log, stderr=self.log,
            env=dict(os.environ, **self.env) if self.env else None)
        deadline = time.time() + 10
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("warrend exited early:\n" + self.log_text())
            if re.search(rf"amqp listening on \S+:{self.port}", self.log_text()[offset:]):
                return self
            time.sleep(0.02)
        raise RuntimeError("warrend did not start listening:\n" + self.log_text())

    def log_text(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")

    def stop(self, sig=signal.SIGTERM, timeout=10):
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        finally:
            self.log.close()


def rss_measuring_env():
    """Environment for a broker whose test measures its resident memory.

    Under AddressSanitizer freed blocks sit in a quarantine of up to 256 MiB (to catch
    use-after-free), so RSS would say nothing about what Warren holds. Such a broker runs with
    the quarantine off; it stays fully instrumented (overflows, leaks, undefined behaviour).
    Outside ASan: None (inherit the environment)."""
    if "asan" not in os.environ.get("WARREN_BIN", ""):
        return None
    opts = os.environ.get("ASAN_OPTIONS", "")
    return {"ASAN_OPTIONS": ":".join(o for o in (opts, "quarantine_size_mb=0") if o)}


def binary_from_env(var, what):
    binary = os.environ.get(var)
    if not binary:
        pytest.skip(f"{var} not set: this test runs only {what}")
    return binary


@pytest.fixture
def warrend_bin():
    return binary_from_env("WARREN_BIN", "against warrend")


@pytest.fixture
def perf_bin():
    """warren-perf (tools/perf), passed by ctest."""
    return binary_from_env("WARREN_PERF", "with warren-perf (through ctest)")


@pytest.fixture
def warrend(warrend_bin):
    w = Warrend(warrend_bin).start()
    yield w
    code = w.stop()
    if code not in (0, None):
        print(w.log_text())
    assert code == 0, f"warrend exited with {code} on SIGTERM"


@pytest.fixture
def broker_port(request):
    """Port of the broker under test: a fresh warrend, or BROKER_PORT."""
    if os.environ.get("WARREN_BIN"):
        return request.getfixturevalue("warrend").port
    if os.environ.get("BROKER_PORT"):
        return int(os.environ["BROKER_PORT"])
    pytest.skip("set WARREN_BIN or BROKER_PORT")


@pytest.fixture
def connect(broker_port):
    """Opens pika connections to the broker under test; closes them after the test."""
    opened = []

    def make(**kw):
        c = pika.BlockingConnection(pika.ConnectionParameters("127.0.0.1", broker_port, **kw))
        opened.append(c)
        return c

    yield make
    for c in opened:
        if c.is_open:
            c.close()


@pytest.fixture
def conn(connect):
    return connect()
