"""``ipcluster <mode> [options]``: IPython 0.10's command line (options come after the mode).

::

    ipcluster local -n 4 [-r --client-port P --engine-port P] [-x] [-y] [--logdir DIR] [-- CONTROLLER ARGS]
    ipcluster mpiexec|mpirun -n 4 [--mpi mpi4py] ...
    ipcluster pbs|sge|lsf -n 4 [-s SCRIPT] [-q QUEUE] ...
    ipcluster ssh [--clusterfile FILE] [--sshx FILE] [-e] ...
    ipcluster -n 4                # 0.9's form, taken as 'local'

``local`` starts the controller and N engines (default 2) of the IPython directory's
classic cluster (profile ``default``, cluster id ``''``) in the foreground: the
controller writes the three FURL files into ``$IPYTHONDIR/security/`` next to the JSON
connection files, so legacy (``MultiEngineClient()``) and modern (``Client()``) clients
can use it at once.  The client FURL files appear once the N engines have registered
(and, without ``-r``, old ones are deleted first), and ipcluster says so on stdout
before it reports the cluster as running.  Ctrl-C (SIGINT) or SIGTERM stop everything.
The controller logs to ``<logdir>/ipcontroller<pid>.log`` and the engines to
``<logdir>/ipengine<ipcluster pid>-<engine pid>.log`` (``--logdir`` defaults to
``$IPYTHONDIR/log``).

The other modes parse their 0.10 options, then run through the launcher of that name
if kernelpar has one, or exit 1 saying which launcher is missing.  Their mode-specific
options (``--mpi``, the batch scripts and queues, the ssh cluster file) are accepted
but not yet forwarded: that comes with the launchers.
"""

import argparse
import asyncio
import logging
import os
import sys
import time

from ..wire import connection
from ..wire import furl as furls
from .app import split_controller_args
from .cluster import Cluster, ClusterRunning
from .launchers import LauncherNotAvailable
from .process import POLL_INTERVAL

log = logging.getLogger("kernelpar.cluster.ipcluster")

LEGACY_MODES = ("local", "mpiexec", "mpirun", "pbs", "sge", "lsf", "ssh")
#: seconds the controller and the engines get to come up
STARTUP_TIMEOUT = 60.0


def is_legacy(argv):
    """True for 0.10's ``ipcluster <mode> ...`` and 0.9's ``ipcluster -n N`` (no mode)."""
    if not argv:
        return False
    if argv[0] in LEGACY_MODES:
        return True
    return argv[0].startswith("-") and any(
        a in ("-n", "--num", "--n") or a.startswith(("--num=", "--n=")) or (a.startswith("-n") and a[2:].isdigit())
        for a in argv)


def _base_parser():
    base = argparse.ArgumentParser(add_help=False)
    base.add_argument("-n", "--num", "--n", type=int, dest="n", default=2, help="number of engines (default 2)")
    base.add_argument("-r", action="store_true", dest="reuse",
                      help="reuse the FURL files (needs --client-port and --engine-port)")
    base.add_argument("--client-port", type=int, default=0, help="controller port for clients (default: any)")
    base.add_argument("--engine-port", type=int, default=0, help="controller port for engines (default: any)")
    base.add_argument("-x", action="store_true", dest="client_insecure", help="insecure (pbu://) client FURLs")
    base.add_argument("-y", action="store_true", dest="engine_insecure", help="insecure (pbu://) engine FURLs")
    base.add_argument("--logdir", default=None, help="log directory (default: $IPYTHONDIR/log)")
    return base


def build_parser():
    parser = argparse.ArgumentParser(
        prog="ipcluster", description="IPython 0.10 form: start a controller and engines (options after the mode).",
        epilog="Arguments after '--' go to the controller. The ipyparallel form is: ipcluster start|stop|list ...")
    sub = parser.add_subparsers(dest="mode", metavar="MODE")
    sub.required = True
    base = _base_parser()
    sub.add_parser("local", parents=[base], help="controller and engines on this host")
    for mode in ("mpirun", "mpiexec"):
        p = sub.add_parser(mode, parents=[base], help=f"engines started with {mode}")
        p.add_argument("--mpi", default=None, help="how engines call MPI_Init (e.g. mpi4py)")
    for mode, submit in (("pbs", "qsub"), ("sge", "qsub"), ("lsf", "bsub")):
        p = sub.add_parser(mode, parents=[base], help=f"engines as a {mode.upper()} job array ({submit})")
        p.add_argument("-s", f"--{mode}-script", dest="script", default=None, help="job script template")
        p.add_argument("-q", "--queue", default=None, help="queue to submit to")
    ssh = sub.add_parser("ssh", parents=[base], help="engines on other hosts, started over ssh")
    ssh.add_argument("--clusterfile", default="clusterfile.py", help="Python file defining engines = {host: n}")
    ssh.add_argument("--sshx", default=None, help="launcher script run on each host")
    ssh.add_argument("-e", "--copyenvs", action="store_true", help="copy the local environment to the engines")
    return parser


def parse(argv):
    """``(args, controller_args)`` for a legacy command line (0.9's mode-less form means 'local')."""
    argv, controller_args = split_controller_args(list(argv))
    if argv and argv[0] not in LEGACY_MODES:
        argv = ["local", *argv]
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.n < 0:
        parser.error(f"-n must be >= 0, not {args.n}")
    return args, controller_args


def controller_arguments(args, logdir):
    """The ``ipcontroller`` options for a legacy cluster's controller."""
    cargs = ["--furl-files", "--client-furls-after-engines", str(args.n), "-l", os.path.join(logdir, "ipcontroller")]
    if args.reuse:
        cargs.append("-r")
    for option, value in (("--client-port", args.client_port), ("--engine-port", args.engine_port)):
        if value:
            cargs += [option, str(value)]
    if args.client_insecure:
        cargs.append("-x")
    if args.engine_insecure:
        cargs.append("-y")
    return cargs


def _print(line):
    print(line, flush=True)


async def _report_ready(cluster, mode, n, ipython_dir, timeout):
    """Say which engines start, wait until they registered and the client FURL files exist."""
    for i in range(n):
        _print(f"starting engine: {i}")
    if n:
        client = await cluster.connect_client()
        try:
            await cluster._wait_for_engines(client, n)
        finally:
            client.close()
    wanted = [furls.default_furl_file(kind, ipython_dir) for kind in furls.KINDS]
    deadline = time.monotonic() + timeout
    while not all(os.path.exists(path) for path in wanted):
        if time.monotonic() > deadline:
            missing = ", ".join(p for p in wanted if not os.path.exists(p))
            raise RuntimeError(f"the controller did not write {missing} within {timeout:g} s")
        await asyncio.sleep(POLL_INTERVAL)
    _print(f"ipcluster {mode}: the controller (pid {cluster.controller.pid}) and {n} engines are "
           f"running; FURL files in {os.path.dirname(wanted[0])}. Ctrl-C stops everything.")


def run(args, controller_args):
    """Run a legacy cluster in the foreground; the exit status."""
    from .app import ALREADY_STARTED
    from .start import run_foreground

    if args.reuse and not (args.client_port and args.engine_port):
        print("ipcluster: -r (reuse FURL files) needs fixed ports: give both --client-port and --engine-port, "
              f"e.g. ipcluster {args.mode} -n {args.n} -r --client-port=10101 --engine-port=10102", file=sys.stderr)
        return 1
    ipython_dir = connection.ipython_dir()
    logdir = os.path.abspath(os.path.expanduser(args.logdir or os.path.join(ipython_dir, "log")))
    try:
        cluster = Cluster(
            n=args.n, profile_dir=os.path.join(ipython_dir, "profile_default"), cluster_id="",
            controller_args=controller_arguments(args, logdir) + controller_args,
            engine_args=["-l", os.path.join(logdir, f"ipengine{os.getpid()}-")],
            engine_timeout=STARTUP_TIMEOUT, engines=args.mode, log=log,
        )
        cluster.ensure_not_running()
    except LauncherNotAvailable as e:
        print(f"ipcluster {args.mode}: {e} (issue 'launchers').\n"
              f"For a cluster on this machine use: ipcluster local -n {args.n} (or: ipcluster start -n {args.n})",
              file=sys.stderr)
        return 1
    except ClusterRunning as e:
        print(f"ipcluster {args.mode}: {e}", file=sys.stderr)
        return ALREADY_STARTED
    os.makedirs(logdir, exist_ok=True)
    if not args.reuse:
        # 0.10: a waiting script must never find the FURLs of an earlier controller
        for kind in furls.KINDS:
            furls.remove_furl_file(furls.default_furl_file(kind, ipython_dir))
    return asyncio.run(run_foreground(
        cluster, lambda c: _report_ready(c, args.mode, args.n, ipython_dir, STARTUP_TIMEOUT)))


def main(argv):
    args, controller_args = parse(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stdout,
                        format="%(asctime)s [ipcluster] %(levelname)s %(message)s", datefmt="%H:%M:%S")
    return run(args, controller_args)
