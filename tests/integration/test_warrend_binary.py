"""The warrend binary itself: flags, config errors, start-up lines, signals, refusal."""
import os
import signal
import socket
import subprocess
import tempfile

from conftest import Warrend


def run(binary, *args):
    return subprocess.run([binary, *args], capture_output=True, text=True, timeout=20)


def test_help_lists_the_flags(warrend_bin):
    r = run(warrend_bin, "--help")
    assert r.returncode == 0
    for flag in ("--amqp-port", "--data-dir", "--config", "--log-level"):
        assert flag in r.stdout


def test_bad_flag_is_one_line_naming_it(warrend_bin):
    r = run(warrend_bin, "--amqp-prot", "5672")
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert "--amqp-prot" in lines[0]


def test_bad_flag_value_names_the_key(warrend_bin):
    r = run(warrend_bin, "--log-level", "loud")
    assert r.returncode == 2
    assert r.stderr.strip() == ("warrend: --log-level: key 'log.level' must be one of trace, "
                                "debug, info, warning, error, critical, off")


def test_unknown_config_key_is_one_line_naming_it(warrend_bin):
    with tempfile.NamedTemporaryFile("w", suffix=".toml", delete=False) as f:
        f.write("[limits]\nframe_mxa = 5\n")
    r = run(warrend_bin, "--config", f.name)
    os.unlink(f.name)
    assert r.returncode == 2
    assert r.stderr.strip() == f"warrend: config error: unknown key 'limits.frame_mxa' in {f.name}"


def test_missing_config_file(warrend_bin):
    r = run(warrend_bin, "--config", "/nonexistent/warren.toml")
    assert r.returncode == 2
    assert "cannot read config file '/nonexistent/warren.toml'" in r.stderr


def test_config_file_is_applied(warrend_bin):
    w = Warrend(warrend_bin)
    cfg = os.path.join(w.data_dir, "warren.toml")
    with open(cfg, "w") as f:
        f.write(f"[amqp]\nport = {w.port}\n[log]\nlevel = \"debug\"\n")
    w.extra_args = ["--config", cfg]
    w.start()
    try:
        assert f"amqp listening on 127.0.0.1:{w.port}" in w.log_text()
    finally:
        assert w.stop() == 0


def test_start_up_lines_and_clean_sigterm(warrend):
    text = warrend.log_text()
    assert "warrend 0.1.0 starting; data in" in text
    assert f"amqp listening on 127.0.0.1:{warrend.port}" in text
    assert warrend.stop(signal.SIGTERM) == 0
    assert "received SIGTERM, shutting down" in warrend.log_text()


def test_sigint_also_exits_cleanly(warrend):
    assert warrend.stop(signal.SIGINT) == 0


def test_creates_the_data_dir(warrend_bin):
    w = Warrend(warrend_bin)
    nested = os.path.join(w.data_dir, "a", "b")
    w.data_arg = nested
    w.start()
    try:
        assert os.path.isdir(nested)
    finally:
        assert w.stop() == 0


def test_garbage_gets_the_protocol_header_and_close(warrend):
    # RabbitMQ answers an unsupported header with its own and closes (amqp-behaviours 4.1.1).
    with socket.create_connection(("127.0.0.1", warrend.port), timeout=5) as s:
        s.sendall(b"GET / HTTP/1.1\r\n\r\n")
        got = b""
        while True:
            chunk = s.recv(100)
            if not chunk:
                break
            got += chunk
    assert got == b"AMQP\x00\x00\x09\x01"


def test_port_in_use_is_a_clear_error(warrend_bin, warrend):
    other = tempfile.mkdtemp(prefix="warren-it-")  # its own data dir: the port is the clash
    r = run(warrend_bin, "--amqp-port", str(warrend.port), "--bind", "127.0.0.1",
            "--data-dir", other)
    assert r.returncode == 1
    assert f"cannot listen on 127.0.0.1:{warrend.port}" in r.stderr


def test_second_broker_on_the_same_data_dir_is_refused(warrend, warrend_bin):
    r = run(warrend_bin, "--amqp-port", "0", "--data-dir", warrend.data_dir)
    assert r.returncode == 1
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "is in use by another warrend" in lines[0], r.stderr
