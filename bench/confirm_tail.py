#!/usr/bin/python3
"""Where do slow publisher confirms come from? One traced warren-only run of scenario 4r.

  confirm_tail.py [--port 5801] [--seconds 10] [--rate 5000] [--slow-ms 2] [--warrend PATH]
                  [--perf PATH] [--data-parent build/bench-data] [--out DIR]

Starts a fresh warrend, records with ftrace (its own instance, CLOCK_MONOTONIC) the
fdatasync / pwrite64 / sendmsg / recvmsg / write / read / epoll_wait calls and the scheduler
switches of warrend and warren-perf, runs two SCHED_FIFO stall probes (one per CPU: a 1 ms
sleep that overshoots by more than 1 ms means the vCPU did not run), runs warren-perf with
--confirm-log, and lines every confirm slower than --slow-ms up with what happened in its
window. Prints the distributions and, for slow confirms, which cause explains them:

  vm_stall      a probe saw the vCPU stop for >= 1 ms inside the window
  slow_sync     an fdatasync overlapping the window took > 1.5 ms
  loop_blocked  the event-loop thread spent > 1 ms in one syscall (or off CPU in D state)
  client        warren-perf read the ack > 1 ms after warrend sent it, or wrote the message
                > 1 ms after stamping it
  disk_chain    none of these, but fdatasyncs ran for half the window or more: the message
                waited for the sync in flight, then for its own (each under 1.5 ms)
  queueing      none of these

A window can have several; "first cause" takes them in the order above. Also printed: the
longest leg of the oldest message's path (stamped, producer's write, loop's pwrite64, next
fdatasync start, its end, the ack's send, the producer's read). Needs root (tracefs).
Not a test: nothing fails because a machine is slow.
"""
import argparse
import bisect
import collections
import csv
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

TRACE = "/sys/kernel/tracing"
SYSCALLS = ["fdatasync", "pwrite64", "pread64", "sendmsg", "recvmsg", "write", "read", "writev",
            "sendto", "recvfrom", "epoll_wait", "epoll_pwait", "futex", "openat", "ftruncate",
            "fallocate", "fsync"]
FD = re.compile(r"fd: (?:0x)?([0-9a-f]+)")
LINE = re.compile(r"^\s*(.+?)-(\d+)\s+\[(\d+)\]\s+\S+\s+([\d.]+):\s+(\w+)(: |\(| -> )(.*)$")


def w(path, value):
    with open(path, "w") as f:
        f.write(value)


def set_events(inst, value):
    """Switches the traced syscalls and scheduler events of instance `inst` on ("1") or off."""
    for s in SYSCALLS:
        for k in ("enter", "exit"):
            ev = f"{inst}/events/syscalls/sys_{k}_{s}"
            if os.path.exists(ev):
                w(f"{ev}/enable", value)
    w(f"{inst}/events/sched/sched_switch/enable", value)
    w(f"{inst}/events/sched/sched_wakeup/enable", value)


def probe(cpu, seconds, out):
    """SCHED_FIFO: sleep 1 ms, record overshoots > 1 ms as (start, end) monotonic seconds."""
    os.sched_setaffinity(0, {cpu})
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(50))
    except OSError:
        pass
    end = time.monotonic() + seconds
    while True:
        t0 = time.monotonic()
        if t0 > end:
            break
        time.sleep(0.001)
        t1 = time.monotonic()
        if t1 - t0 > 0.002:
            out.append((t0 + 0.001, t1))


def quantiles(xs):
    xs = sorted(xs)
    if not xs:
        return {}
    n = len(xs)
    q = lambda f: round(xs[min(n - 1, int(n * f))] * 1e3, 3)
    return {"n": n, "p50_ms": q(0.5), "p99_ms": q(0.99), "p999_ms": q(0.999),
            "max_ms": round(xs[-1] * 1e3, 3), "over_1ms": sum(x > 0.001 for x in xs),
            "over_2ms": sum(x > 0.002 for x in xs)}


def main():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, default=5801)
    p.add_argument("--seconds", type=float, default=10)
    p.add_argument("--rate", type=float, default=5000)
    p.add_argument("--slow-ms", type=float, default=2.0)
    p.add_argument("--warrend", default=os.path.join(root, "build/release/src/app/warrend"))
    p.add_argument("--perf", default=os.path.join(root, "build/release/tools/perf/warren-perf"))
    p.add_argument("--data-parent", default=os.path.join(root, "build/bench-data"))
    p.add_argument("--out", default=None, help="keep the trace and the confirm log here")
    p.add_argument("--no-trace", action="store_true", help="only the probes and confirm log")
    p.add_argument("--analyse", metavar="DIR", help="only analyse the --out DIR of an earlier run")
    args = p.parse_args()
    if args.analyse:
        with open(os.path.join(args.analyse, "stalls.json")) as f:
            stalls = [tuple(x) for x in json.load(f)]
        trace = os.path.join(args.analyse, "trace.txt")
        analyse(args, args.analyse, trace if os.path.exists(trace) else None,
                os.path.join(args.analyse, "confirms.csv"), stalls)
        return

    os.makedirs(args.data_parent, exist_ok=True)
    data = tempfile.mkdtemp(prefix="confirm-tail.", dir=args.data_parent)
    out = args.out or tempfile.mkdtemp(prefix="confirm-tail-out.")
    os.makedirs(out, exist_ok=True)
    inst = f"{TRACE}/instances/warren-confirm-tail-{os.getpid()}"
    broker = None
    try:
        broker = subprocess.Popen([args.warrend, "--amqp-port", str(args.port), "--data-dir", data,
                                   "--log-level", "warning"], stdout=subprocess.DEVNULL)
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", args.port), 0.2).close()
                break
            except OSError:
                time.sleep(0.05)
        if not args.no_trace:
            os.mkdir(inst)
            w(f"{inst}/trace_clock", "mono")
            w(f"{inst}/buffer_size_kb", "65536")
            set_events(inst, "1")
            w(f"{inst}/tracing_on", "1")
        stalls = []
        probes = [threading.Thread(target=probe, args=(c, args.seconds + 1.5, stalls))
                  for c in sorted(os.sched_getaffinity(0))]
        for t in probes:
            t.start()
        log = os.path.join(out, "confirms.csv")
        perf = subprocess.run(
            [args.perf, "--uri", f"127.0.0.1:{args.port}", "--producers", "1", "--consumers", "1",
             "--size", "1024", "--persistent", "--durable", "--confirm", "1000", "--prefetch",
             "1000", "--multi-ack", "100", "--rate", str(args.rate), "--duration",
             str(args.seconds), "--confirm-log", log, "--broker-pid", str(broker.pid)],
            capture_output=True, text=True)
        perf_pid = None
        if not args.no_trace:
            w(f"{inst}/tracing_on", "0")
        for t in probes:
            t.join()
        summary = [l for l in perf.stdout.splitlines() if "latency" in l or "confirmed" in l]
        trace_path = os.path.join(out, "trace.txt")
        if not args.no_trace:
            with open(f"{inst}/trace") as src, open(trace_path, "w") as dst:
                for line in src:
                    dst.write(line)
    finally:
        if broker:
            broker.send_signal(signal.SIGTERM)
            broker.wait()
        if os.path.isdir(inst):
            set_events(inst, "0")
            os.rmdir(inst)
        subprocess.run(["rm", "-rf", data])
    print("\n".join(summary))
    with open(os.path.join(out, "stalls.json"), "w") as f:
        json.dump(sorted(stalls), f)
    with open(os.path.join(out, "perf.txt"), "w") as f:
        f.write(perf.stdout)
    analyse(args, out, trace_path if not args.no_trace else None, log, stalls)


def analyse(args, out, trace_path, log, stalls):
    slow = args.slow_ms / 1e3
    confirms = []
    with open(log) as f:
        for r in csv.DictReader(f):
            confirms.append((int(r["oldest_sent_ns"]) / 1e9, int(r["newest_sent_ns"]) / 1e9,
                             int(r["at_ns"]) / 1e9, int(r["count"])))
    slow_c = [c for c in confirms if c[2] - c[0] > slow]
    stalls.sort()
    res = {"confirm_events": len(confirms), "slow_confirm_events": len(slow_c),
           "slow_messages_upper_bound": sum(c[3] for c in slow_c),
           "stalls_over_1ms": len(stalls),
           "stall_ms": quantiles([b - a for a, b in stalls])}
    if trace_path is None:
        print(json.dumps(res, indent=1))
        return
    # Parse the trace: syscall spans per tid, off-CPU spans per tid.
    comm_of = {}
    spans = collections.defaultdict(list)  # (tid, name) -> [(start, end)]
    open_sys = {}
    fd_bytes = collections.Counter()  # (tid, syscall, fd) -> bytes returned
    io_by_fd = collections.defaultdict(list)
    offcpu = collections.defaultdict(list)  # tid -> [(start, end, state)]
    switched_out = {}
    for line in open(trace_path):
        m = LINE.match(line)
        if not m:
            continue
        comm, tid, ts, ev, sep, rest = m.group(1).strip(), int(m.group(2)), \
            float(m.group(4)), m.group(5), m.group(6), m.group(7)
        comm_of[tid] = comm
        if sep == "(" and ev.startswith("sys_"):
            fd = FD.match(rest)
            open_sys[tid] = (ev[4:], ts, int(fd.group(1), 16) if fd else -1)
        elif sep == " -> " and ev.startswith("sys_"):
            o = open_sys.pop(tid, None)
            if o and o[0] == ev[4:]:
                spans[(tid, o[0])].append((o[1], ts))
                ret = int(rest, 16) if rest.startswith("0x") else 0
                fd_bytes[(tid, o[0], o[2])] += ret
                if o[0] in ("sendto", "recvfrom", "sendmsg", "recvmsg"):
                    io_by_fd[(tid, o[0], o[2])].append((o[1], ts))
        elif ev == "sched_switch":
            kv = dict(x.split("=", 1) for x in rest.replace(" ==> ", " ").split() if "=" in x)
            prev, nxt = int(kv["prev_pid"]), int(kv["next_pid"])
            comm_of.setdefault(prev, kv["prev_comm"])
            st = kv["prev_state"]
            if st.startswith("D") and prev in open_sys:
                st = "D:" + open_sys[prev][0]
            switched_out[prev] = (ts, st)
            if nxt in switched_out:
                t0, st = switched_out.pop(nxt)
                offcpu[nxt].append((t0, ts, st))
    tids_w = {t for t, c in comm_of.items() if c.startswith("warrend")}
    tids_p = {t for t, c in comm_of.items() if c.startswith("warren-perf")}
    sync_tids = {t for (t, n) in spans if n == "fdatasync" and t in tids_w}
    loop_tids = {t for (t, n) in spans if n == "pwrite64" and t in tids_w} - sync_tids
    fds = sorted(s for t in sync_tids for s in spans[(t, "fdatasync")])
    res["warrend_threads"] = {str(t): comm_of[t] for t in sorted(tids_w)}
    res["sync_tids"], res["loop_tids"] = sorted(sync_tids), sorted(loop_tids)
    res["fdatasync"] = quantiles([b - a for a, b in fds])
    loop_sys = collections.defaultdict(list)
    for (t, n), ss in spans.items():
        if t in loop_tids and n not in ("epoll_wait", "epoll_pwait", "futex"):
            loop_sys[n].extend(ss)
    res["loop_syscalls"] = {n: quantiles([b - a for a, b in ss]) for n, ss in loop_sys.items()}
    loop_all = sorted(s for ss in loop_sys.values() for s in ss)
    loop_off = sorted((a, b, st) for t in loop_tids for (a, b, st) in offcpu[t])
    res["loop_offcpu_D"] = quantiles([b - a for a, b, st in loop_off if st.startswith("D")])
    res["loop_offcpu_D_by_syscall"] = dict(collections.Counter(
        st for a, b, st in loop_off if st.startswith("D") and b - a > 0.0005))
    res["loop_offcpu_runnable"] = quantiles([b - a for a, b, st in loop_off
                                             if st.startswith("R")])
    perf_off = sorted((a, b, st) for t in tids_p for (a, b, st) in offcpu[t])
    res["perf_offcpu_runnable"] = quantiles([b - a for a, b, st in perf_off
                                             if st.startswith("R")])
    # The producer's connection: the fd warrend reads most bytes from, and the fd warren-perf
    # sends most bytes to. Acks are warrend's sends on the first, read on the second.
    w_in = max(((b, k) for k, b in fd_bytes.items() if k[0] in loop_tids and k[1] == "recvfrom"),
               default=(0, None))[1]
    p_out = max(((b, k) for k, b in fd_bytes.items() if k[0] in tids_p and k[1] == "sendto"),
                default=(0, None))[1]
    w_send = sorted(e for k, ss in io_by_fd.items() if w_in and k[0] == w_in[0] and
                    k[2] == w_in[2] and k[1] in ("sendto", "sendmsg") for s, e in ss)
    p_writes = sorted(s for k, ss in io_by_fd.items() if p_out and k[0] == p_out[0] and
                      k[2] == p_out[2] and k[1] in ("sendto", "sendmsg") for s, e in ss)
    res["producer_fds"] = {"warrend": w_in, "perf": p_out, "acks_sent": len(w_send),
                           "publish_writes": len(p_writes)}

    def within(spans_, a, b):
        """The spans (sorted by start, none longer than 1 s) that overlap [a, b]."""
        i = bisect.bisect_left(spans_, (a - 1.0,))
        out_ = []
        while i < len(spans_) and spans_[i][0] < b:
            if spans_[i][1] > a:
                out_.append(spans_[i])
            i += 1
        return out_

    causes = collections.Counter()
    first = collections.Counter()
    first_msgs = collections.Counter()  # weighted by the messages each confirm covered
    over5 = collections.Counter()  # confirms slower than 5 ms (the p99 region), by first cause
    detail = []
    fd_starts = [a for a, b in fds]
    for (o_sent, n_sent, at, cnt) in slow_c:
        a, b = o_sent, at
        c = []
        st = [s for s in stalls if s[0] < b and s[1] > a]
        if st:
            c.append("vm_stall")
        syncs = within(fds, a, b)
        if any(e - s > 0.0015 for s, e in syncs):
            c.append("slow_sync")
        ls = within(loop_all, a, b)
        lo = [s for s in within(loop_off, a, b) if s[2].startswith("D")]
        if any(e - s > 0.001 for s, e in ls) or any(e - s > 0.001 for s, e, _ in lo):
            c.append("loop_blocked")
        # client: ack read late (last warrend send before `at` vs at), or the write late.
        j = bisect.bisect_left(w_send, at) - 1
        k = bisect.bisect_left(p_writes, o_sent)
        late_read = at - w_send[j] if j >= 0 else 0
        late_write = p_writes[k] - o_sent if k < len(p_writes) else 0
        if late_read > 0.001 or late_write > 0.001:
            c.append("client")
        if not c and sum(e - s for s, e in syncs) >= 0.5 * (b - a):
            c.append("disk_chain")
        if not c:
            c.append("queueing")
        for x in c:
            causes[x] += 1
        first[c[0]] += 1
        first_msgs[c[0]] += cnt
        if b - a > 0.005:
            over5[c[0]] += 1
        detail.append({"sent": round(o_sent, 6), "latency_ms": round((at - o_sent) * 1e3, 3),
                       "n": cnt, "causes": c,
                       "syncs_ms": [round((e - s) * 1e3, 2) for s, e in syncs],
                       "max_loop_syscall_ms": round(max([e - s for s, e in ls], default=0) * 1e3,
                                                    2),
                       "stall_ms": [round((e - s) * 1e3, 2) for s, e in st],
                       "ack_read_late_ms": round(late_read * 1e3, 2),
                       "write_late_ms": round(late_write * 1e3, 2)})
    # The path of the oldest message of each slow confirm: stamped -> the producer's write ->
    # the loop's pwrite64 -> the fdatasync that starts next -> its end -> the loop's next send
    # -> the producer's read. Which leg took longest?
    pw = sorted(s for t in loop_tids for s in spans[(t, "pwrite64")])
    pw_end = [e for s, e in pw]
    legs = collections.Counter()
    leg_ms = collections.defaultdict(list)
    names = ["client_send", "to_pwrite", "wait_sync_start", "fdatasync", "to_ack_send",
             "client_read"]
    for (o_sent, n_sent, at, cnt) in slow_c:
        k = bisect.bisect_left(p_writes, o_sent)
        t1 = p_writes[k] if k < len(p_writes) else o_sent
        k = bisect.bisect_left(pw_end, t1)
        t2 = pw_end[k] if k < len(pw_end) else t1
        k = bisect.bisect_left(fd_starts, t2)
        if k >= len(fds):
            continue
        t3, t4 = fds[k]
        k = bisect.bisect_left(w_send, t4)
        t5 = w_send[k] if k < len(w_send) else at
        pts = [o_sent, t1, t2, t3, t4, min(t5, at), at]
        d = [max(0.0, pts[i + 1] - pts[i]) for i in range(6)]
        for n_, x in zip(names, d):
            leg_ms[n_].append(x)
        legs[names[d.index(max(d))]] += 1
    res["slow_longest_leg"] = dict(legs)
    res["slow_leg_mean_ms"] = {n_: round(sum(v) / len(v) * 1e3, 3) for n_, v in leg_ms.items()
                               if v}
    slow_fds = [x for x in fds if x[1] - x[0] > 0.002]
    res["fdatasync_over_2ms_in_a_stall"] = f"{sum(bool(within(stalls, a, b)) for a, b in slow_fds)}"\
        f" of {len(slow_fds)}"
    slow_loop = [x for x in loop_all if x[1] - x[0] > 0.001]
    res["loop_syscalls_over_1ms_in_a_stall"] = \
        f"{sum(bool(within(stalls, a, b)) for a, b in slow_loop)} of {len(slow_loop)}"
    res["slow_messages_by_first_cause"] = dict(first_msgs)
    res["over_5ms_by_first_cause"] = dict(over5)
    res["slow_causes_any"] = dict(causes)
    res["slow_causes_first"] = dict(first)
    with open(os.path.join(out, "slow.json"), "w") as f:
        json.dump(detail, f, indent=0)
    res["out"] = out
    print(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
