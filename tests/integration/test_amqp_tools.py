"""rabbitmq-c's command-line tools (Debian's amqp-tools) against the broker."""
import subprocess
import uuid


def tool(port, name, *args, input_=None):
    r = subprocess.run([name, "--url", f"amqp://guest:guest@127.0.0.1:{port}", *args],
                       capture_output=True, timeout=20, input=input_)
    return r


def test_declare_publish_get_consume_delete(broker_port):
    q = f"tools-{uuid.uuid4().hex[:8]}"
    r = tool(broker_port, "amqp-declare-queue", "--queue", q)
    assert r.returncode == 0, r.stderr
    assert r.stdout.decode().strip() == q
    for body in (b"one", b"two", b"three"):
        r = tool(broker_port, "amqp-publish", "--routing-key", q, "--body", body.decode(),
                 "--content-type", "text/plain")
        assert r.returncode == 0, r.stderr
    r = tool(broker_port, "amqp-get", "--queue", q)
    assert r.returncode == 0, r.stderr
    assert r.stdout == b"one"
    # amqp-consume runs a command per message; -c 2 stops after two.
    r = tool(broker_port, "amqp-consume", "--queue", q, "-c", "2", "cat")
    assert r.returncode == 0, r.stderr
    assert r.stdout == b"twothree"
    r = tool(broker_port, "amqp-get", "--queue", q)
    assert r.returncode != 0  # empty queue: amqp-get fails
    r = tool(broker_port, "amqp-delete-queue", "--queue", q)
    assert r.returncode == 0, r.stderr


def test_publish_to_missing_exchange_is_reported(broker_port):
    r = tool(broker_port, "amqp-publish", "--exchange", "no-such-exchange", "--routing-key", "k",
             "--body", "x")
    # rabbitmq-c learns of the 404 when it closes its channel, prints it and exits 1.
    assert r.returncode == 1
    assert ("server channel error 404, message: NOT_FOUND - no exchange 'no-such-exchange' "
            "in vhost '/'") in r.stderr.decode()
