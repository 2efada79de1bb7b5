"""Where a workload's CPU goes: CPU time and context switches per call, thread by thread.

    python benchmarks/threadcpu.py w2 2000     # rc[0].apply_sync(noop)
    python benchmarks/threadcpu.py w4 2000     # dview.execute('a = 1')
    python benchmarks/threadcpu.py w3 10       # lview.map_async(noop, range(1000)), per task
    python benchmarks/threadcpu.py w7 10       # 1000 direct apply_async + wait, per task

Starts a local cluster of 2 engines, warms the workload up, then reads every thread's
on-CPU time and context-switch count from ``/proc/<pid>/task/<tid>/schedstat`` (Linux)
before and after the measured calls, in the client, the controller and the engines.
Threads are named as the kernel knows them, with their ids: ``ZMQbg/IO/0`` is libzmq's
I/O thread, ``python`` any other thread but the main one (the client's IO thread, the
controller's C device threads, the engine's reactor and heart threads).  The switch counts show how many
times each thread was woken per call; on a VM where a wake-up costs tens of
microseconds of CPU, they explain most of the totals.
"""

import glob
import os
import statistics
import sys
import tempfile
import time

import psutil

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir))

import kernelpar as ipp  # noqa: E402


def noop(*args):
    return None


def workloads(rc):
    """``name -> (call, tasks per call)``."""
    e0, dview, lview = rc[0], rc[:], rc.load_balanced_view()
    return {
        "w2": (lambda: e0.apply_sync(noop), 1),
        "w4": (lambda: dview.execute("a = 1", block=True), 1),
        "w3": (lambda: lview.map_async(noop, range(1000), chunksize=1).get(60), 1000),
        "w7": (lambda: rc.wait([rc[i % 2].apply_async(noop) for i in range(1000)], timeout=60), 1000),
    }


def thread_stats(pid):
    """``{(tid, name): (cpu seconds, context switches)}`` of every thread of ``pid``."""
    stats = {}
    for task in glob.glob(f"/proc/{pid}/task/*"):
        try:
            with open(f"{task}/comm") as f:
                name = f.read().strip()
            with open(f"{task}/schedstat") as f:
                on_cpu_ns, _, switches = f.read().split()
        except OSError:
            continue  # the thread ended
        tid = int(task.rsplit("/", 1)[1])
        stats[(tid, "main" if tid == pid else f"{name} {tid}")] = (int(on_cpu_ns) / 1e9, int(switches))
    return stats


def cluster_roles(rc_pid):
    roles = {"client": rc_pid}
    engines = 0
    for proc in psutil.Process(rc_pid).children(recursive=True):
        cmdline = " ".join(proc.cmdline())
        if "kernelpar.controller" in cmdline:
            roles["controller"] = proc.pid
        elif "kernelpar.engine" in cmdline:
            roles[f"engine {engines}"] = proc.pid
            engines += 1
    return roles


def main(argv):
    name = argv[1] if len(argv) > 1 else "w2"
    calls = int(argv[2]) if len(argv) > 2 else 2000
    cluster = ipp.Cluster(n=2, profile_dir=tempfile.mkdtemp(prefix="kernelpar-threadcpu-"))
    rc = cluster.start_and_connect_sync()
    try:
        table = workloads(rc)
        if name not in table:
            raise SystemExit(f"unknown workload {name!r}: choose one of {', '.join(table)}")
        call, per_call = table[name]
        for _ in range(max(1, 200 // per_call)):
            call()
        roles = cluster_roles(os.getpid())
        before = {role: thread_stats(pid) for role, pid in roles.items()}
        times = []
        for _ in range(calls):
            t0 = time.perf_counter()
            call()
            times.append(time.perf_counter() - t0)
        after = {role: thread_stats(pid) for role, pid in roles.items()}
    finally:
        rc.close()
        cluster.stop_cluster_sync()
    tasks = calls * per_call
    print(f"{name}: {calls} calls, {tasks} tasks; median call {statistics.median(times) * 1e6:.0f} us, "
          f"wall per task {sum(times) / tasks * 1e6:.0f} us")
    print(f"{'process':<12} {'thread':<18} {'CPU us/task':>12} {'switches/task':>14}")
    total_cpu = total_switches = 0.0
    for role in roles:
        for key, (cpu, switches) in sorted(after[role].items()):
            if key not in before[role]:
                continue
            cpu = (cpu - before[role][key][0]) / tasks * 1e6
            switches = (switches - before[role][key][1]) / tasks
            total_cpu += cpu
            total_switches += switches
            if cpu >= 1 or switches >= 0.05:
                print(f"{role:<12} {key[1]:<18} {cpu:>12.1f} {switches:>14.2f}")
    print(f"{'all':<12} {'':<18} {total_cpu:>12.1f} {total_switches:>14.2f}")


if __name__ == "__main__":
    main(sys.argv)
