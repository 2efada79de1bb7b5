"""``ipcluster start``: run a cluster in the foreground, or in a background ipcluster.

Foreground (the default): start the controller and the engines, then watch them.
Ctrl-C, SIGTERM or SIGHUP stop everything and exit 0.  The controller exiting (e.g. a
client's ``shutdown(hub=True)``) stops the engines and ends ipcluster.  Engines that
all exit within ``EARLY_SHUTDOWN`` seconds of the start, each with a status saying it
never registered, could not start: everything is stopped, their output logged, exit 1.
Engines that ran and ended (``mec.kill()``, user code calling ``os._exit``) leave the
controller running, as does ``-n 0``.  SIGUSR1/SIGUSR2 are relayed to the engines.

``--daemonize``: the same command without ``--daemonize`` is started in a new session
(the background ipcluster, logging to ``<profile>/log/ipcluster-*.log``).  It owns and
watches the cluster, so the controller and engines still exit if it is killed.  This
process returns only once N engines have registered (it connects a client and waits),
so scripts can use the cluster at once (ipyparallel issue #241: it returned before the
engines existed).  If that fails it prints why, with the background ipcluster's log,
stops it, and exits non-zero.
"""

import asyncio
import logging
import os
import signal
import sys
import time

from ..wire import connection
from ..wire.protocol import EXIT_NOT_REGISTERED
from . import files
from .app import ALREADY_STARTED
from .arguments import cpu_count
from .cluster import Cluster, ClusterRunning, wait_for_engines
from .launchers import LauncherNotAvailable
from .launchers.base import PARENT_PID_ENV, exit_codes, pythonpath_with_kernelpar
from .process import POLL_INTERVAL, ProcessHandle, stop_handles

EARLY_SHUTDOWN = 30.0
#: exit statuses of an engine that never registered (argparse's usage error is 2)
COULD_NOT_START = frozenset({2, EXIT_NOT_REGISTERED})
log = logging.getLogger("kernelpar.cluster.ipcluster")


def make_cluster(args, controller_args):
    return Cluster(
        n=args.n, profile=args.profile, profile_dir=args.profile_dir, ipython_dir=args.ipython_dir,
        cluster_id=args.cluster_id, controller_args=controller_args, controller_ip=args.ip,
        controller_location=args.location, delay=args.delay, engine_timeout=args.engine_timeout,
        log_level=logging.getLevelName(args.log_level.upper()), engines=args.engines,
        controller=args.controller, work_dir=args.work_dir, log=log,
    )


def cmd_start(args, controller_args):
    try:
        cluster = make_cluster(args, controller_args)
        cluster.ensure_not_running()
    except LauncherNotAvailable as e:
        print(f"ipcluster start: {e}", file=sys.stderr)
        return 1
    except ClusterRunning as e:
        print(f"ipcluster start: {e}", file=sys.stderr)
        return ALREADY_STARTED
    if args.daemonize:
        return daemonize(args, controller_args, cluster)
    return asyncio.run(run_foreground(cluster))


# --- foreground


async def run_foreground(cluster, on_started=None):
    """Start ``cluster``, watch it until a signal or its controller exits, stop it; the exit status.

    ``on_started(cluster)``, a coroutine function, runs once the cluster has started (a
    signal still stops everything meanwhile); if it raises, the cluster is stopped.
    """
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        loop.add_signal_handler(sig, stop.set)
    for sig in (signal.SIGUSR1, signal.SIGUSR2):
        loop.add_signal_handler(sig, lambda sig=sig: [es.signal(sig) for es in cluster.engines.values()])
    cluster.ipcluster_process = ProcessHandle(os.getpid())

    starting = asyncio.ensure_future(cluster.start_cluster())
    stopping = asyncio.ensure_future(stop.wait())
    await asyncio.wait([starting, stopping], return_when=asyncio.FIRST_COMPLETED)
    if not starting.done():
        starting.cancel()  # start_cluster stops whatever it had started
        await asyncio.gather(starting, return_exceptions=True)
        log.info("interrupted while starting: stopped")
        return 1
    stopping.cancel()
    try:
        starting.result()
    except ClusterRunning as e:
        print(f"ipcluster start: {e}", file=sys.stderr)
        return ALREADY_STARTED
    except Exception as e:
        log.error("could not start the cluster: %s", e)
        return 1
    pids = [pid for es in cluster.engines.values() for pid in es.pids]
    log.info("cluster %r started in %s: controller pid %s, %d engines (pids %s)", cluster.cluster_id,
             cluster.profile_dir, cluster.controller.pid, len(pids), " ".join(map(str, pids)))
    code = await _after_start(cluster, on_started, stop) if on_started is not None else None
    if code is None:
        code = await _watch(cluster, stop)
    await cluster.stop_cluster()
    log.info("cluster %r stopped", cluster.cluster_id)
    return code


async def _after_start(cluster, on_started, stop):
    """Run ``on_started(cluster)`` unless a signal comes first; an exit status if it failed or was interrupted."""
    hook = asyncio.ensure_future(on_started(cluster))
    stopping = asyncio.ensure_future(stop.wait())
    await asyncio.wait([hook, stopping], return_when=asyncio.FIRST_COMPLETED)
    stopping.cancel()
    if not hook.done():
        hook.cancel()
        await asyncio.gather(hook, return_exceptions=True)
        log.info("stopping the cluster (signal received)")
        return 0
    try:
        hook.result()
    except Exception as e:
        log.error("%s", e)
        return 1
    return None


async def _watch(cluster, stop):
    started = time.monotonic()
    engines_gone = False
    while not stop.is_set():
        if not cluster.controller.poll():
            code = cluster.controller.stop_data.get("exit_code")
            log.info("the controller exited (status %s): stopping the engines", code)
            return 0 if code == 0 else 1
        engine_sets = [es for es in cluster.engines.values() if es.n]
        if not engines_gone and engine_sets and not any(es.poll() for es in engine_sets):
            engines_gone = True
            output = "\n".join(es.get_output(tail=3000) for es in engine_sets)
            statuses = [code for es in engine_sets for code in exit_codes(es.stop_data)]
            if (time.monotonic() - started < EARLY_SHUTDOWN and statuses
                    and all(code in COULD_NOT_START for code in statuses)):
                log.error("the engines could not start (none registered); stopping the cluster. "
                          "Engine output:\n%s", output)
                return 1
            log.warning("all engines have exited (statuses %s); the controller keeps running",
                        " ".join(map(str, statuses)))
        try:
            await asyncio.wait_for(stop.wait(), 0.1)
        except asyncio.TimeoutError:
            pass
    log.info("stopping the cluster (signal received)")
    return 0


# --- daemonize


class _BackgroundExited(RuntimeError):
    def __init__(self, status):
        super().__init__(f"the background ipcluster exited with status {status} before the cluster was up")
        self.status = status


def _child_argv(args, cluster):
    argv = ["start", "--profile-dir", cluster.profile_dir, "--cluster-id", cluster.cluster_id,
            "--log-level", args.log_level]
    for option, value in (("-n", args.n), ("--ipython-dir", args.ipython_dir), ("--ip", args.ip),
                          ("--location", args.location), ("--work-dir", args.work_dir),
                          ("--engines", args.engines), ("--controller", args.controller), ("--delay", args.delay),
                          ("--engine-timeout", args.engine_timeout)):
        if value is not None:
            argv += [option, str(value)]
    return argv


def _stop_command(args, cluster):
    where = f"--profile-dir {cluster.profile_dir}" if args.profile_dir else f"--profile {args.profile or 'default'}"
    return f"ipcluster stop {where}" + (f" --cluster-id {cluster.cluster_id}" if cluster.cluster_id else "")


def _started_by(cluster_file, pid):
    """True once ``cluster_file`` describes a running controller started by ipcluster ``pid``."""
    try:
        d = files.read_cluster_file(cluster_file)
        return bool(d.get("controller")) and (d["cluster"].get("ipcluster") or {}).get("pid") == pid
    except (OSError, ValueError, KeyError):
        return False


async def _wait_until_up(cluster, handle, n, timeout):
    import kernelpar

    deadline = time.monotonic() + timeout

    def check():
        if handle.poll() is not None:
            raise _BackgroundExited(handle.returncode)
        if time.monotonic() > deadline:
            raise TimeoutError(f"the cluster was not up with {n} engines after {timeout:g} s")

    # The background ipcluster deletes stale connection files before it starts its
    # controller and only then writes the cluster file: once the file names it, a client
    # connection file belongs to the new controller.
    client_file = connection.connection_file(cluster.profile_dir, "client", cluster.cluster_id)
    while not (_started_by(cluster.cluster_file, handle.pid) and os.path.exists(client_file)):
        check()
        await asyncio.sleep(POLL_INTERVAL)
    client = kernelpar.Client(client_file)
    try:
        await wait_for_engines(client, n, max(0.0, deadline - time.monotonic()), check)
    finally:
        client.close()


def daemonize(args, controller_args, cluster):
    n = cluster.n if cluster.n is not None else cpu_count()
    output = os.path.join(cluster.profile_dir, "log",
                          f"ipcluster-{cluster.cluster_id or 'default'}-{int(time.time())}-{os.getpid()}.log")
    cmd = [sys.executable, "-m", "kernelpar.cluster", *_child_argv(args, cluster), "--", *controller_args]
    env = dict(os.environ)
    env.pop(PARENT_PID_ENV, None)  # the background ipcluster must outlive us
    pythonpath = pythonpath_with_kernelpar(env.get("PYTHONPATH"))
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    handle = ProcessHandle.spawn(cmd, env, output)
    try:
        # the controller and the engines each get engine_timeout: allow for both
        asyncio.run(_wait_until_up(cluster, handle, n, 2 * cluster.engine_timeout))
    except (Exception, KeyboardInterrupt) as e:
        asyncio.run(stop_handles([handle], term_grace=2.0))
        with open(output, errors="replace") as f:
            text = f.read()[-6000:]
        print(f"ipcluster start --daemonize: {e}\n--- {output}\n{text}", file=sys.stderr)
        if isinstance(e, _BackgroundExited) and e.status == ALREADY_STARTED:
            return ALREADY_STARTED
        return 1
    print(f"Cluster {cluster.cluster_id!r} is running in the background with {n} engines "
          f"(ipcluster pid {handle.pid}, log {output}).\nStop it with: {_stop_command(args, cluster)}")
    return 0
