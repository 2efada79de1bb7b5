"""kernelpar's own benchmarks: the issue's speed and memory goals, as a printed table.

Runs on a fresh local cluster of 2 engines, through the public API only:

* W1  start (``Cluster(n=2).start_and_connect_sync()``) until one no-op round trip on
      both engines; stop, and the time until every process it started is gone
* W2  ``rc[0].apply_sync(noop)`` latency
* W4  ``dview.execute('a = 1')`` on both engines
* W5  push of a 100 MB array to both engines, pull from one
* W6  scatter + gather of 10M float64
* W7  direct no-op tasks: controller and client RSS growth, total CPU per task

Usage: ``python benchmarks/bench.py [--quick] [--json FILE]``.  The goals column is the
issue's; ``ok`` compares against it.  Timings vary with machine load: run it on an
idle machine and compare with ``../shared/bench/peerbench.py`` runs made at the same time.
"""

import argparse
import gc
import json
import os
import statistics
import sys
import tempfile
import time

import numpy as np
import psutil

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir))

import kernelpar as ipp  # noqa: E402

now = time.perf_counter


def noop(*args):
    return None


def median_us(fn, n, warm=20):
    for _ in range(warm):
        fn()
    times = []
    for _ in range(n):
        t0 = now()
        fn()
        times.append(now() - t0)
    return statistics.median(times) * 1e6


def rss_mb(procs):
    total = 0
    for p in procs:
        try:
            total += p.memory_info().rss
        except psutil.Error:
            pass
    return total / 2**20


def cpu_s(procs):
    total = 0.0
    for p in procs:
        try:
            t = p.cpu_times()
            total += t.user + t.system
        except psutil.Error:
            pass
    return total


def cluster_processes():
    me = psutil.Process()
    return [p for p in me.children(recursive=True) if "kernelpar" in " ".join(p.cmdline())]


def run(args):
    rows = []

    def row(name, value, unit, goal=None, better="lower"):
        ok = None
        if goal is not None:
            ok = value <= goal if better == "lower" else value >= goal
        rows.append({"workload": name, "value": value, "unit": unit, "goal": goal, "ok": ok})
        mark = "" if ok is None else ("ok" if ok else "MISSED")
        goal_text = "" if goal is None else f"{'<=' if better == 'lower' else '>='} {goal:g}"
        print(f"{name:<44} {value:>10.3f} {unit:<7} {goal_text:<10} {mark}", flush=True)

    profile_dir = tempfile.mkdtemp(prefix="kernelpar-bench-")
    t0 = now()
    cluster = ipp.Cluster(n=2, profile_dir=profile_dir)
    rc = cluster.start_and_connect_sync()
    dview = rc[:]
    dview.apply_sync(noop)
    row("W1 start to first round trip on 2 engines", now() - t0, "s", 1.0)
    e0 = rc[0]

    procs = cluster_processes()
    ctrl = psutil.Process(cluster.controller.pid)
    row("W1 idle controller RSS", rss_mb([ctrl]), "MB", 100)

    row("W2 rc[0].apply_sync(noop) median", median_us(lambda: e0.apply_sync(noop), args.lat_n) / 1000, "ms", 0.4)
    row("W4 dview.execute('a = 1') median", median_us(lambda: dview.execute("a = 1", block=True), args.bcast_n) / 1000,
        "ms", 1.0)

    # W7 before the big transfers, so freed buffers cannot hide growth
    me = psutil.Process()
    views = [rc[i] for i in rc.ids]
    gc.collect()
    time.sleep(0.5)
    ctrl0, client0 = rss_mb([ctrl]), rss_mb([me])
    everyone = procs + [me]
    cpu0 = cpu_s(everyone)
    t0 = now()
    batch = 1000
    for start in range(0, args.tasks, batch):
        ars = [views[i % len(views)].apply_async(noop) for i in range(start, min(start + batch, args.tasks))]
        rc.wait(ars, timeout=120)
        del ars
    elapsed = now() - t0
    cpu = cpu_s(everyone) - cpu0
    gc.collect()
    time.sleep(1.0)
    row(f"W7 {args.tasks} direct no-op tasks: throughput", args.tasks / elapsed, "tasks/s")
    row("W7 controller RSS growth", rss_mb([ctrl]) - ctrl0, "MB", 30)
    row("W7 client RSS growth (no results kept)", rss_mb([me]) - client0, "MB", 30)
    row("W7 total CPU per direct no-op task", cpu / args.tasks * 1000, "ms", 1.0)

    big = np.random.default_rng(0).random(int(args.big_mb * 1e6) // 8)
    dview.push({"big": big}, block=True)
    push, pull = [], []
    for _ in range(args.reps):
        t0 = now()
        dview.push({"big": big}, block=True)
        push.append(now() - t0)
        t0 = now()
        got = e0.pull("big", block=True)
        pull.append(now() - t0)
        assert got.shape == big.shape and got[-1] == big[-1]
        del got
    row(f"W5 push {big.nbytes / 1e6:.0f} MB to 2 engines", 2 * big.nbytes / statistics.median(push) / 1e9, "GB/s", 0.8,
        better="higher")
    row(f"W5 pull {big.nbytes / 1e6:.0f} MB from 1 engine", big.nbytes / statistics.median(pull) / 1e9, "GB/s", 0.7,
        better="higher")
    dview.execute("big = None", block=True)
    del big

    arr = np.random.default_rng(1).random(args.sg_elems)
    times = []
    for _ in range(args.reps + 1):
        t0 = now()
        dview.scatter("x", arr, block=True)
        out = dview.gather("x", block=True)
        times.append(now() - t0)
        assert out.shape == arr.shape and out[0] == arr[0] and out[-1] == arr[-1]
        del out
    row(f"W6 scatter + gather of {args.sg_elems:,} float64", statistics.median(times[1:]), "s", 0.25)
    dview.execute("x = None", block=True)

    procs = cluster_processes()
    t0 = now()
    rc.close()
    cluster.stop_cluster_sync()
    row("W1 stop call", now() - t0, "s")
    deadline = now() + 15
    while any(p.is_running() and p.status() != psutil.STATUS_ZOMBIE for p in procs) and now() < deadline:
        time.sleep(0.01)
    row("W1 stop until no process is left", now() - t0, "s", 1.0)
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    ap.add_argument("--json", help="also write the rows to this file")
    args = ap.parse_args()
    full = dict(lat_n=2000, bcast_n=500, tasks=50_000, big_mb=100.0, sg_elems=10_000_000, reps=5)
    quick = dict(lat_n=200, bcast_n=50, tasks=2_000, big_mb=10.0, sg_elems=1_000_000, reps=2)
    for k, v in (quick if args.quick else full).items():
        setattr(args, k, v)
    print(f"kernelpar {ipp.__version__}, Python {sys.version.split()[0]}, {os.cpu_count()} CPUs, "
          f"load {os.getloadavg()[0]:.1f}")
    print(f"{'workload':<44} {'value':>10} {'unit':<7} {'goal':<10}")
    rows = run(args)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
