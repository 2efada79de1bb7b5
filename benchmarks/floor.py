"""The floor: how fast the controller-in-the-middle design can possibly be on this machine.

    python benchmarks/floor.py            # both floors, 2 engines
    python benchmarks/floor.py --pin 0    # the same, every process on CPU 0

kernelpar's messages go client -> controller -> engine and back (ARCHITECTURE.md), so a
direct task costs two zmq round trips and a load-balanced one also passes through a
Python scheduler.  This script times those paths with everything else taken away: no
serialization, no signing, no records, no IO-thread hand-off, a 16-byte message.

* F2  a client DEALER sends to engine 0 through a C ROUTER-ROUTER queue (pyzmq's
      ``monitored_queue`` in a thread of a third process, as the controller's mux) and
      the engine's DEALER echoes it back: the median round trip is the least W2
      (``rc[0].apply_sync(noop)``) can take here.
* F4  the same to both engines at once, waiting for both echoes: the least W4
      (``dview.execute('a = 1')``) can take here.
* F3  the client sends 10,000 messages at once to a relay written in plain Python (a
      ``zmq.Poller`` loop, no Twisted) that keeps at most one outstanding message per
      engine (``hwm`` 1, least loaded first) and returns the echoes: tasks/s and the CPU
      all processes spent per message (and each one's share: client, relay, engines)
      are the best W3 (``map_async`` of 10,000 no-ops, chunksize 1) can reach here.

Compare with ``bench.py`` run in the same minutes: what kernelpar adds is the
difference.  The calibration row is the same raw round trip as ``bench.py``'s.
"""

import argparse
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
from collections import deque

import psutil
import zmq

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from bench import cpu_s, row_printer, zmq_round_trip_us

now = time.perf_counter
ENGINES = 2
F2_CALLS = 3000
F3_TASKS = 10_000
POLL_MS = 10_000


def _engine(url, identity):
    """Echo every message back: ``[client_id, payload]`` in, the same out."""
    ctx = zmq.Context()
    sock = ctx.socket(zmq.DEALER)
    sock.identity = identity
    sock.connect(url)
    sock.send_multipart([b"", b"ready"])
    try:
        while sock.poll(POLL_MS):
            frames = sock.recv_multipart()
            if frames[-1] == b"stop":
                break
            sock.send_multipart(frames)
    finally:
        sock.close(linger=0)
        ctx.term()


def _queue(front_url, back_url):
    """The C ROUTER-ROUTER queue of F2 (the controller's mux), until the process is killed."""
    from zmq.devices import monitored_queue

    ctx = zmq.Context()
    front, back, monitor = ctx.socket(zmq.ROUTER), ctx.socket(zmq.ROUTER), ctx.socket(zmq.PUB)
    front.bind(front_url)
    back.bind(back_url)
    monitor.bind(front_url + "-monitor")
    monitored_queue(front, back, monitor)


def _relay(front_url, back_url, n_engines):
    """F3's scheduler: hwm 1, least loaded engine first, oldest task first."""
    ctx = zmq.Context()
    front, back = ctx.socket(zmq.ROUTER), ctx.socket(zmq.ROUTER)
    for sock in (front, back):
        sock.sndhwm = sock.rcvhwm = 0
    front.bind(front_url)
    back.bind(back_url)
    idle, waiting = deque(), deque()
    while len(idle) < n_engines:
        idle.append(back.recv_multipart()[0])
    poller = zmq.Poller()
    poller.register(front, zmq.POLLIN)
    poller.register(back, zmq.POLLIN)
    try:
        while True:
            events = dict(poller.poll(POLL_MS))
            if not events:
                return
            if back in events:
                while back.getsockopt(zmq.EVENTS) & zmq.POLLIN:
                    engine, client, payload = back.recv_multipart()
                    front.send_multipart([client, payload])
                    if waiting:
                        back.send_multipart([engine, *waiting.popleft()])
                    else:
                        idle.append(engine)
            if front in events:
                while front.getsockopt(zmq.EVENTS) & zmq.POLLIN:
                    task = front.recv_multipart()
                    if idle:
                        back.send_multipart([idle.popleft(), *task])
                    else:
                        waiting.append(task)
    finally:
        front.close(linger=0)
        back.close(linger=0)
        ctx.term()


def _start(target, *args):
    proc = multiprocessing.get_context("fork").Process(target=target, args=args, daemon=True)
    proc.start()
    return proc


def _stop(procs):
    for proc in procs:
        proc.kill()
        proc.join(10)


def _client(ctx, url):
    sock = ctx.socket(zmq.DEALER)
    sock.sndhwm = sock.rcvhwm = 0
    sock.connect(url)
    return sock


def _recv(sock):
    if not sock.poll(POLL_MS):
        raise RuntimeError(f"no answer within {POLL_MS // 1000} s")
    return sock.recv_multipart()


def floor_direct(ipc_dir, n_engines):
    """F2 (``n_engines`` 1) and F4 (2): median round trip (µs) from the client through the C
    queue to ``n_engines`` engines at once and back."""
    front, back = f"ipc://{ipc_dir}/f{2 * n_engines}-front", f"ipc://{ipc_dir}/f{2 * n_engines}-back"
    procs = [_start(_queue, front, back)]
    time.sleep(0.2)
    targets = [b"engine-%d" % i for i in range(n_engines)]
    procs += [_start(_engine, back, target) for target in targets]
    ctx = zmq.Context()
    sock = _client(ctx, front)
    try:
        time.sleep(0.2)  # the engines' "ready" go to the queue's front, ignored
        times = []
        for i in range(F2_CALLS + 100):
            t0 = now()
            for target in targets:
                sock.send_multipart([target, b"x" * 16])
            for _ in targets:
                _recv(sock)
            if i >= 100:
                times.append(now() - t0)
        return statistics.median(times) * 1e6
    finally:
        sock.close(linger=0)
        ctx.term()
        _stop(procs)


def floor_load_balanced(ipc_dir, n_engines=ENGINES):
    """F3: tasks/s, and CPU µs per task of ``{"all", "client", "relay", "engines"}``, for
    F3_TASKS echoes through the Python relay."""
    front, back = f"ipc://{ipc_dir}/f3-front", f"ipc://{ipc_dir}/f3-back"
    procs = [_start(_relay, front, back, n_engines)]
    procs += [_start(_engine, back, b"engine-%d" % i) for i in range(n_engines)]
    ctx = zmq.Context()
    sock = _client(ctx, front)
    parts = {"client": [psutil.Process()], "relay": [psutil.Process(procs[0].pid)],
             "engines": [psutil.Process(p.pid) for p in procs[1:]]}
    try:
        for _ in range(200):  # warm up
            sock.send(b"x" * 16)
        for _ in range(200):
            _recv(sock)
        cpu0, t0 = {name: cpu_s(ps) for name, ps in parts.items()}, now()
        for _ in range(F3_TASKS):
            sock.send(b"x" * 16)
        for _ in range(F3_TASKS):
            _recv(sock)
        wall = now() - t0
        cpu = {name: (cpu_s(ps) - cpu0[name]) / F3_TASKS * 1e6 for name, ps in parts.items()}
        cpu["all"] = sum(cpu.values())
        return F3_TASKS / wall, cpu
    finally:
        sock.close(linger=0)
        ctx.term()
        _stop(procs)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pin", type=int, metavar="CPU", help="run every process on this CPU only")
    args = parser.parse_args()
    if args.pin is not None:
        os.sched_setaffinity(0, {args.pin})  # inherited by every process started below
    print(f"CPUs in use: {len(os.sched_getaffinity(0))}; load {os.getloadavg()[0]:.1f}")
    row = row_printer([])
    rtt, rtt_cpu = zmq_round_trip_us()
    row("calibration: raw zmq round trip (goals: 70 us)", rtt, "us")
    row("calibration: CPU per raw round trip", rtt_cpu, "us")
    with tempfile.TemporaryDirectory(prefix="kernelpar-floor-") as ipc_dir:
        row("F2 floor of W2: client -> C queue -> engine", floor_direct(ipc_dir, 1) / 1000, "ms", 0.4)
        row("F4 floor of W4: the same to 2 engines at once", floor_direct(ipc_dir, 2) / 1000, "ms", 1)
        rate, cpu = floor_load_balanced(ipc_dir)
        row("F3 floor of W3: tasks/s through a Python relay", rate, "tasks/s", 3000, better="higher")
        row("F3 floor of W3: CPU per task, all processes", cpu["all"] / 1000, "ms", 0.6)
        for part in ("client", "relay", "engines"):
            row(f"F3   of which {part}", cpu[part] / 1000, "ms")


if __name__ == "__main__":
    main()
