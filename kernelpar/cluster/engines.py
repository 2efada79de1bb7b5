"""``ipcluster engines``: add a set of engines to a cluster that is already running.

The cluster is found through its cluster file (``ipcluster start``'s, or any
``Cluster``'s); the new engine set is recorded there, so ``ipcluster stop`` and
``ipcluster list`` see it.

* In the foreground (the default) the engines belong to this command: they exit with it
  (they watch its pid), and Ctrl-C, SIGTERM or SIGHUP stop them, not the cluster.  The
  command also ends when they have all exited (the controller stopping ends them).
* ``--daemonize``: the command returns once the new engines have registered; they then
  live as long as the cluster (``ipcluster stop`` stops them with it).  No background
  process is needed for that: the cluster file holds their pids.
"""

import asyncio
import logging
import os
import signal
import sys
import time

from ..wire import connection
from . import files
from .arguments import cpu_count
from .cluster import Cluster, wait_for_engines
from .launchers import LauncherNotAvailable
from .launchers.base import exit_codes

log = logging.getLogger("kernelpar.cluster.ipcluster")

#: how often the foreground command looks at its engines
WATCH_INTERVAL = 0.1


def cmd_engines(args):
    profile_dir = connection.locate_profile_dir(args.profile, args.profile_dir, args.ipython_dir, create=False)
    path = files.cluster_file_path(profile_dir, args.cluster_id)
    kwargs = {"engines": args.engines} if args.engines else {}
    try:
        cluster = Cluster.from_file(path, ipython_dir=args.ipython_dir, log=log, **kwargs)
    except FileNotFoundError:
        print(f"ipcluster engines: no cluster {args.cluster_id!r} is running in {profile_dir} (no {path})",
              file=sys.stderr)
        return 1
    except (ValueError, KeyError, LauncherNotAvailable) as e:
        print(f"ipcluster engines: cannot use {path}: {e}", file=sys.stderr)
        return 1
    if not (cluster.controller and cluster.controller.running):
        print(f"ipcluster engines: the controller of cluster {args.cluster_id!r} in {profile_dir} is not running",
              file=sys.stderr)
        return 1
    n = args.n if args.n is not None else cpu_count()
    if args.daemonize:
        return asyncio.run(_add_detached(cluster, n))
    return asyncio.run(_run_foreground(cluster, n))


async def _add_detached(cluster, n):
    client = await cluster.connect_client()
    try:
        before = len(client.ids)
        set_id = await cluster.start_engines(n, parent_pid=None)
        engine_set = cluster.engines[set_id]

        def check():
            if not engine_set.poll():
                raise RuntimeError(f"the new engines exited: {engine_set.stop_data}\n"
                                   f"{engine_set.get_output(tail=3000)}")

        try:
            await wait_for_engines(client, before + n, cluster.engine_timeout, check)
        except (RuntimeError, TimeoutError) as e:  # the engines exited, or did not register in time
            await cluster.stop_engines(set_id)
            print(f"ipcluster engines --daemonize: {e}", file=sys.stderr)
            return 1
    finally:
        client.close()
    print(f"Added {n} engines (set {set_id}) to cluster {cluster.cluster_id!r}; "
          f"they stop with it (ipcluster stop)")
    return 0


async def _run_foreground(cluster, n):
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        loop.add_signal_handler(sig, stop.set)
    set_id = await cluster.start_engines(n, parent_pid=os.getpid())
    engine_set = cluster.engines[set_id]
    log.info("added %d engines (set %s, pids %s) to cluster %r", n, set_id, " ".join(map(str, engine_set.pids)),
             cluster.cluster_id)
    started = time.monotonic()
    while not stop.is_set():
        if not engine_set.poll():
            statuses = exit_codes(engine_set.stop_data)
            log.warning("the engines of set %s exited after %.0f s (statuses %s)", set_id,
                        time.monotonic() - started, " ".join(map(str, statuses)))
            await cluster.stop_engines(set_id)  # records that they are gone
            return 0 if all(code == 0 for code in statuses) else 1
        try:
            await asyncio.wait_for(stop.wait(), WATCH_INTERVAL)
        except asyncio.TimeoutError:
            pass
    await cluster.stop_engines(set_id)
    log.info("stopped engine set %s (signal received); the cluster keeps running", set_id)
    return 0
